// Rate limits (SPEC 3): the limits table, one token bucket, and the in-process limiter over apps.
#include <gtest/gtest.h>

#include "limits/limits.h"
#include "limits/local_rate_limiter.h"
#include "support/io_runner.h"

namespace callrec::limits {
namespace {

TEST(limits_table, names_defaults_and_units_are_the_spec_s) {
  EXPECT_EQ(find("get_record_by_callId"), id("get_record_by_callId"));
  EXPECT_FALSE(find("get_record_by_callid"));  // names are case-sensitive, as in the configuration
  const rates r = default_rates();
  EXPECT_EQ(r[id("get_record_by_callId")], 20);
  EXPECT_EQ(r[id("get_records_by_filter")], 200);
  EXPECT_EQ(r[id("callback")], 10);
  EXPECT_EQ(r[id("events")], 2000);
  EXPECT_EQ(table[id("events")].counts, unit::event);
  EXPECT_EQ(table[id("get_record_by_callId")].counts, unit::request);
}

TEST(token_bucket, admits_a_burst_then_refills_with_time) {
  token_bucket b(10);
  int admitted = 0;
  for (int i = 0; i < 20; ++i) admitted += b.admit(1000);
  EXPECT_EQ(admitted, 10);
  EXPECT_FALSE(b.admit(1050));
  EXPECT_TRUE(b.admit(1100));  // 100 ms at 10/s = one token
  token_bucket events(100);
  EXPECT_TRUE(events.admit(0 + 1, 0));
  events.charge(1, 500);  // a big batch takes the balance below zero
  EXPECT_FALSE(events.admit(1000, 0));
  EXPECT_TRUE(events.admit(5002, 0));
}

TEST(local_rate_limiter, keeps_one_bucket_per_app_and_limit) {
  rates slow = default_rates();
  slow[id("get_record_by_callId")] = 2;
  local_rate_limiter limiter({{1, slow}, {2, default_rates()}});
  const auto get = id("get_record_by_callId");
  testing::io_runner io;
  EXPECT_TRUE(io.run(limiter.admit(1, get, 1, 1000)));
  EXPECT_TRUE(io.run(limiter.admit(1, get, 1, 1000)));
  EXPECT_FALSE(io.run(limiter.admit(1, get, 1, 1000))) << "app 1 spent its 2/s";
  EXPECT_TRUE(io.run(limiter.admit(1, id("get_records_by_filter"), 1, 1000))) << "another limit of app 1";
  EXPECT_TRUE(io.run(limiter.admit(2, get, 1, 1000))) << "another app";
  EXPECT_FALSE(io.run(limiter.admit(3, get, 1, 1000))) << "an app the limiter does not know";
  EXPECT_TRUE(io.run(limiter.admit(1, get, 1, 1500))) << "half a second refills one";
  // An event limit: admitted while a token is left, then charged the batch.
  const auto events = id("events");
  EXPECT_EQ(limiter.admit_now(2, events, 0, 1000), true) << "decided at once, without a coroutine";
  limiter.charge(2, events, 2500, 1000);
  EXPECT_EQ(limiter.admit_now(2, events, 0, 1000), false);
  EXPECT_EQ(limiter.admit_now(2, events, 0, 1300), true);  // 500 owed, 600 refilled
}

}  // namespace
}  // namespace callrec::limits
