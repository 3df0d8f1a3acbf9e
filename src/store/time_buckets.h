// The counting scheme shared by every store (SPEC section 4: exact totalNum without counting rows at query
// time). Records are counted per (app, span, bucket, result, type, media) in the same transaction that
// inserts or deletes them, where bucket = floor(start_ts / span) for each span in `count_spans`. A query
// window is covered by whole buckets, coarsest first, plus at most two runs of seconds at its edges that
// are counted exactly over the records index.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

namespace callrec::buckets {

// Bucket widths in seconds, coarsest first; each divides the previous one.
// The finest (10 s) keeps the exact edge counts small: at a million records a day, at most ~200 rows.
inline constexpr std::array<std::int64_t, 5> count_spans{86400, 3600, 600, 60, 10};
inline constexpr int span_count = static_cast<int>(count_spans.size());

constexpr std::int64_t floor_div(std::int64_t a, std::int64_t b) noexcept {
  std::int64_t q = a / b;
  return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}
constexpr std::int64_t ceil_div(std::int64_t a, std::int64_t b) noexcept { return -floor_div(-a, b); }

constexpr std::int64_t bucket_of(std::int64_t ts, int level) noexcept { return floor_div(ts, count_spans[level]); }

// Part of a window: buckets [lo, hi] of count_spans[level], or (level == exact) seconds [lo, hi].
struct segment {
  static constexpr int exact = -1;
  int level = exact;
  std::int64_t lo = 0;
  std::int64_t hi = 0;

  std::int64_t first_second() const noexcept { return level == exact ? lo : lo * count_spans[level]; }
  std::int64_t last_second() const noexcept { return level == exact ? hi : (hi + 1) * count_spans[level] - 1; }
  bool operator==(const segment&) const = default;
};

// Bounds on the seconds a window may name, so arithmetic never overflows.
inline constexpr std::int64_t min_second = -(std::int64_t{1} << 50);
inline constexpr std::int64_t max_second = std::int64_t{1} << 50;

// Covers the seconds [first, last] (inclusive; within [min_second, max_second]) with disjoint segments in
// ascending order: whole buckets as coarse as they fit, exact seconds only inside the partial finest
// buckets at the two edges. Empty when first > last.
std::vector<segment> cover(std::int64_t first, std::int64_t last);

// The segments of bucket `b` at `level` one level finer (the whole bucket; level < span_count - 1).
segment children(int level, std::int64_t b) noexcept;

}  // namespace callrec::buckets
