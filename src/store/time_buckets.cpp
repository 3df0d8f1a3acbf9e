#include "store/time_buckets.h"

namespace callrec::buckets {
namespace {
void cover_at(std::int64_t first, std::int64_t last, int level, std::vector<segment>& out) {
  if (first > last) return;
  if (level == span_count) {
    out.push_back(segment{segment::exact, first, last});
    return;
  }
  const std::int64_t w = count_spans[level];
  const std::int64_t lo = ceil_div(first, w);
  const std::int64_t hi = floor_div(last + 1, w) - 1;
  if (lo > hi) {
    cover_at(first, last, level + 1, out);
    return;
  }
  cover_at(first, lo * w - 1, level + 1, out);
  out.push_back(segment{level, lo, hi});
  cover_at((hi + 1) * w, last, level + 1, out);
}
}  // namespace

std::vector<segment> cover(std::int64_t first, std::int64_t last) {
  std::vector<segment> out;
  cover_at(first, last, 0, out);
  return out;
}

segment children(int level, std::int64_t b) noexcept {
  const std::int64_t ratio = count_spans[level] / count_spans[level + 1];
  return segment{level + 1, b * ratio, b * ratio + ratio - 1};
}

}  // namespace callrec::buckets
