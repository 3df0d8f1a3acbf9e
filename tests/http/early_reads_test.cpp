#include <gtest/gtest.h>

#include "http/early_reads.h"

namespace callrec::http {
namespace {

// Feeds `n` early reads (each one the thread wants) with hits at the given rate (hits of every 10).
void feed(early_reads& e, std::uint32_t n, int hits_of_10) {
  for (std::uint32_t i = 0; i < n; ++i) {
    while (!e.want()) {
    }
    e.record(static_cast<int>(i % 10) < hits_of_10);
  }
}

// How many of `answers` answers the thread follows with an early read.
int wanted(early_reads& e, int answers) {
  int n = 0;
  for (int i = 0; i < answers; ++i) n += e.want() ? 1 : 0;
  return n;
}

TEST(early_reads, on_from_the_start_and_while_most_hit) {
  early_reads e;
  EXPECT_TRUE(e.on());
  EXPECT_EQ(wanted(e, 100), 100);
  feed(e, 10 * early_reads::window, 9);
  EXPECT_TRUE(e.on());
}

TEST(early_reads, a_window_of_mostly_misses_turns_them_off_until_probes_hit_again) {
  early_reads e;
  feed(e, early_reads::window - 1, 1);
  EXPECT_TRUE(e.on()) << "the verdict comes at the end of a window";
  e.record(false);
  EXPECT_FALSE(e.on());
  EXPECT_EQ(wanted(e, 64 * 100), 100) << "while off, one answer in 64 probes";
  feed(e, early_reads::window, 1);
  EXPECT_FALSE(e.on());
  feed(e, early_reads::window, 8);  // the clients got quick again
  EXPECT_TRUE(e.on());
}

TEST(early_reads, exactly_half_is_not_most) {
  early_reads e;
  feed(e, early_reads::window, 5);  // 256 reads at 5 of 10: 130 hits, over half
  EXPECT_TRUE(e.on());
  for (std::uint32_t i = 0; i < early_reads::window; ++i) e.record(i % 2 == 0);
  EXPECT_FALSE(e.on());
}

}  // namespace
}  // namespace callrec::http
