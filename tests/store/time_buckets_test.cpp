#include "store/time_buckets.h"

#include <gtest/gtest.h>

#include <random>

namespace callrec::buckets {
namespace {

TEST(time_buckets, floor_and_ceil_division_round_toward_minus_and_plus_infinity) {
  EXPECT_EQ(floor_div(7, 3), 2);
  EXPECT_EQ(floor_div(-7, 3), -3);
  EXPECT_EQ(floor_div(-6, 3), -2);
  EXPECT_EQ(ceil_div(7, 3), 3);
  EXPECT_EQ(ceil_div(-7, 3), -2);
  EXPECT_EQ(ceil_div(6, 3), 2);
}

TEST(time_buckets, a_whole_day_is_one_bucket) {
  auto s = cover(86400 * 3, 86400 * 4 - 1);
  ASSERT_EQ(s.size(), 1u);
  EXPECT_EQ(s[0], (segment{0, 3, 3}));
}

TEST(time_buckets, partial_ten_seconds_are_exact_seconds) {
  auto s = cover(3600 + 33, 3600 + 37);
  ASSERT_EQ(s.size(), 1u);
  EXPECT_EQ(s[0], (segment{segment::exact, 3633, 3637}));
  // 3633..3785: exact 3633-3639, 10 s buckets 364-365 (3640-3659), minutes 61-62 (3660-3779),
  // 10 s bucket... none (3780-3785 is a partial one): exact 3780-3785.
  s = cover(3633, 3600 + 60 * 3 + 5);
  ASSERT_EQ(s.size(), 4u);
  EXPECT_EQ(s[0], (segment{segment::exact, 3633, 3639}));
  EXPECT_EQ(s[1], (segment{4, 364, 365}));
  EXPECT_EQ(s[2], (segment{3, 61, 62}));
  EXPECT_EQ(s[3], (segment{segment::exact, 3780, 3785}));
}

TEST(time_buckets, cover_is_an_ordered_partition_with_coarsest_buckets) {
  std::mt19937_64 rng(5);
  for (int i = 0; i < 20000; ++i) {
    std::int64_t a = static_cast<std::int64_t>(rng() % (86400 * 10)) - 86400 * 3;
    std::int64_t b = a + static_cast<std::int64_t>(rng() % (i % 2 ? 86400 * 4 : 4000));
    auto segs = cover(a, b);
    ASSERT_FALSE(segs.empty());
    std::int64_t next = a;
    int exact = 0;
    for (const auto& s : segs) {
      ASSERT_EQ(s.first_second(), next);
      ASSERT_LE(s.lo, s.hi);
      if (s.level == segment::exact) {
        ++exact;
        ASSERT_LT(s.hi - s.lo, 19);  // within two partial finest buckets
      } else if (s.level > 0) {
        // Never a run of finer buckets that a coarser bucket would cover.
        const std::int64_t ratio = count_spans[s.level - 1] / count_spans[s.level];
        ASSERT_LT(s.hi - s.lo + 1, 2 * ratio);
      }
      next = s.last_second() + 1;
    }
    ASSERT_EQ(next, b + 1);
    ASSERT_LE(exact, 2);
    ASSERT_LE(segs.size(), static_cast<std::size_t>(2 * span_count + 1));
  }
  EXPECT_TRUE(cover(10, 9).empty());
}

TEST(time_buckets, children_span_their_parent) {
  for (int level = 0; level + 1 < span_count; ++level) {
    auto c = children(level, 5);
    EXPECT_EQ(c.level, level + 1);
    EXPECT_EQ(c.first_second(), 5 * count_spans[level]);
    EXPECT_EQ(c.last_second(), 6 * count_spans[level] - 1);
  }
}

}  // namespace
}  // namespace callrec::buckets
