// One service on many nodes (SPEC 8): several nodes in this process over one PostgreSQL schema and one Redis,
// each with its own store pool, rate limiter and timers, exactly as separate machines would run them.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <thread>

#include "support/eventually.h"
#include "support/redis_process.h"
#include "support/test_server.h"

namespace callrec::testing {
namespace {

namespace json = boost::json;
using namespace std::chrono_literals;

std::string redis_url() {
  const char* url = std::getenv("CALLREC_REDIS_URL");
  return url ? url : "";
}

class cluster_test : public ::testing::Test {
 protected:
  void SetUp() override {
    if (const auto why = pg_unavailable(); !why.empty()) GTEST_SKIP() << why;
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    const auto schema = pg_schema_name(std::string("cluster.") + info->name() + std::to_string(::getpid()));
    ASSERT_EQ(pg_exec(pg_base_url(), "DROP SCHEMA IF EXISTS " + schema + " CASCADE"), "");
    url_ = pg_schema_url(schema);
  }
  // A node of the cluster; `with_redis`: its rate limits are the cluster's.
  std::unique_ptr<test_server> node(bool with_redis = false) {
    return std::make_unique<test_server>(
        [this, with_redis](server_config& c) {
          c.store = url_;
          if (with_redis) c.redis = redis_url();
        },
        "cluster");
  }
  static http_answer report(client& cli, const json::array& events, const std::string& as = "administrator") {
    json::object body;
    body["events"] = events;
    return cli.post(api_target("events/report", as), json::serialize(body));
  }
  static http_answer get_record(client& cli, const std::string& id) {
    return cli.post(api_target("records/get_record_by_callId"), "{\"callId\":\"" + id + "\"}");
  }

  std::string url_;
};

TEST_F(cluster_test, a_call_reported_through_different_nodes_is_one_record) {
  auto a = node(), b = node(), c = node();
  client ca(a->port()), cb(b->port()), cc(c->port());
  // Within the ringing and heartbeat windows of the nodes' clocks (t0): no timer ends the call meanwhile.
  const std::int64_t t = t0_ms - 10000;
  ASSERT_EQ(report(ca, {event_of("x1", "start_call", "alice",
                           {{"callees", json::array{"bob", "carol"}}, {"ts", t}, {"eventId", "s"}, {"roomId", "9"}})})
                .code(),
            0);
  ASSERT_EQ(report(cb, {event_of("x1", "accept_call", "bob", {{"ts", t + 2000}, {"eventId", "a"}})}).code(), 0);
  // The same event again through another node is a duplicate, not a second accept.
  auto again = report(cc, {event_of("x1", "accept_call", "bob", {{"ts", t + 2000}, {"eventId", "a"}})});
  ASSERT_EQ(again.code(), 0);
  EXPECT_EQ(again.data().at("duplicates").as_int64(), 1);
  ASSERT_EQ(report(cc, {event_of("x1", "reject_call", "carol", {{"ts", t + 3000}})}).code(), 0);
  ASSERT_EQ(report(ca, {event_of("x1", "hangup", "alice", {{"ts", t + 8000}})}).code(), 0);
  // Every node answers the same record, the one a single node would have written.
  std::string first;
  for (auto* cli : {&ca, &cb, &cc}) {
    auto r = get_record(*cli, "x1");
    ASSERT_EQ(r.code(), 0) << r.body;
    EXPECT_EQ(r.data().at("callResult").as_string(), "normal_end");
    EXPECT_EQ(r.data().at("acceptTs").as_int64(), (t + 2000) / 1000);
    const auto body = json::serialize(r.data());
    if (first.empty()) first = body;
    EXPECT_EQ(body, first);
  }
  // Events after the end are late on every node.
  auto late = report(cb, {event_of("x1", "hangup", "bob", {{"ts", t + 9000}})});
  EXPECT_EQ(late.data().at("late").as_int64(), 1);
}

TEST_F(cluster_test, two_nodes_racing_on_the_same_calls_lose_nothing) {
  auto a = node(), b = node();
  constexpr int calls = 40;
  const std::int64_t t = t0_ms - 20000;
  {
    client ca(a->port());
    json::array starts;
    for (int i = 0; i < calls; ++i) {
      starts.push_back(event_of("r" + std::to_string(i), "start_call", "alice",
                          {{"callees", json::array{"bob", "carol"}}, {"ts", t + i}}));
    }
    ASSERT_EQ(report(ca, starts).code(), 0);
  }
  // bob accepts every call through node a while carol accepts the same calls through node b, in opposite
  // orders, batch by batch: the transactions of the two nodes contend for the same calls all the time.
  std::atomic<int> failures{0}, applied{0};
  auto accept_all = [&](test_server& srv, const std::string& user, bool reverse) {
    client cli(srv.port());
    for (int k = 0; k < calls; k += 4) {
      json::array batch;
      for (int j = 0; j < 4; ++j) {
        const int i = reverse ? calls - 1 - (k + j) : k + j;
        batch.push_back(event_of("r" + std::to_string(i), "accept_call", user, {{"ts", t + 5000 + i}}));
      }
      auto r = report(cli, batch);
      if (r.code() != 0) ++failures;
      applied += static_cast<int>(r.data().at("applied").as_int64());
    }
  };
  std::thread ta(accept_all, std::ref(*a), "bob", false);
  std::thread tb(accept_all, std::ref(*b), "carol", true);
  ta.join();
  tb.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(applied.load(), 2 * calls) << "every accept applied once, none lost or doubled";
  client cb(b->port());
  json::array hangups;
  for (int i = 0; i < calls; ++i) {
    for (const char* user : {"alice", "bob", "carol"}) {
      hangups.push_back(event_of("r" + std::to_string(i), "hangup", user, {{"ts", t + 15000}}));
    }
  }
  ASSERT_EQ(report(cb, hangups).code(), 0);
  client ca(a->port());
  for (int i = 0; i < calls; ++i) {
    auto r = get_record(ca, "r" + std::to_string(i));
    ASSERT_EQ(r.code(), 0) << r.body;
    EXPECT_EQ(r.data().at("callResult").as_string(), "normal_end");
    EXPECT_EQ(r.data().at("acceptTs").as_int64(), (t + 5000 + i) / 1000);
  }
}

TEST_F(cluster_test, rate_limits_hold_for_the_whole_cluster) {
  if (redis_url().empty()) GTEST_SKIP() << "CALLREC_REDIS_URL is not set: run the tests through scripts/test";
  // Buckets of earlier runs (the nodes' clocks all stand at t0) must not count.
  ASSERT_EQ(std::system(("redis-cli -u '" + redis_url() + "' FLUSHALL >/dev/null").c_str()), 0);
  auto a = node(true), b = node(true);
  ASSERT_TRUE(eventually([&] {
    return a->node().metrics().rate_limit_shared.load() == 1 && b->node().metrics().rate_limit_shared.load() == 1;
  }));
  // The limited app allows 2 requests a second (a burst of 2) on each API: 2 for the cluster at one instant.
  client ca(a->port()), cb(b->port());
  const auto target = api_target("records/get_record_by_callId", "administrator", limited_app_id);
  int admitted = 0, limited = 0;
  for (int i = 0; i < 3; ++i) {
    for (auto* cli : {&ca, &cb}) {
      const auto code = cli->post(target, "{\"callId\":\"none\"}").code();
      if (code == 70005) {
        ++limited;
      } else {
        ++admitted;
        EXPECT_EQ(code, 101050);
      }
    }
  }
  EXPECT_EQ(admitted, 2);
  EXPECT_EQ(limited, 4);
  EXPECT_EQ(a->node().metrics().rate_limit_local_decisions.value(), 0u);
}

TEST_F(cluster_test, nodes_keep_answering_while_redis_stops_and_take_it_back) {
  if (!redis_installed()) GTEST_SKIP() << "redis-server is not installed: run scripts/bootstrap";
  redis_process redis(free_port());
  auto a = std::make_unique<test_server>(
      [&](server_config& c) {
        c.store = url_;
        c.redis = redis.url();
      },
      "cluster");
  client ca(a->port());
  auto& m = a->node().metrics();
  ASSERT_TRUE(eventually([&] { return m.rate_limit_shared.load() == 1; }));
  ASSERT_EQ(get_record(ca, "none").code(), 101050);
  redis.stop();
  // Requests go on being answered, decided by the node alone; /metrics says so.
  ASSERT_TRUE(eventually([&] {
    EXPECT_EQ(get_record(ca, "none").code(), 101050);
    return m.rate_limit_shared.load() == 0;
  }));
  EXPECT_EQ(get_record(ca, "none").code(), 101050);
  EXPECT_GT(m.rate_limit_local_decisions.value(), 0u);
  EXPECT_NE(ca.get("/metrics").body.find("callrec_rate_limit_shared_up 0"), std::string::npos);
  redis.start();
  EXPECT_TRUE(eventually([&] { return m.rate_limit_shared.load() == 1; })) << "the node reconnects by itself";
  const auto local = m.rate_limit_local_decisions.value();
  EXPECT_EQ(get_record(ca, "none").code(), 101050);
  EXPECT_EQ(m.rate_limit_local_decisions.value(), local);
}

}  // namespace
}  // namespace callrec::testing
