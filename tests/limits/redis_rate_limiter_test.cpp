// The cluster's rate limits in Redis: limiters of two "nodes" share one bucket; without Redis each decides
// alone, says so once and in its metrics, and takes Redis back when it answers again. Each test runs a
// redis-server of its own on a free loopback port (the package scripts/bootstrap installs).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>

#include "limits/redis_rate_limiter.h"
#include "support/eventually.h"
#include "support/redis_process.h"
#include "support/io_runner.h"

namespace callrec::limits {
namespace {

using namespace std::chrono_literals;

using testing::eventually;
using testing::free_port;
using testing::redis_installed;
using testing::redis_process;

constexpr std::uint32_t app = 1400000001;
constexpr limit_id get = id("get_record_by_callId");

rates ten_per_second() {
  rates r = default_rates();
  r[get] = 10;
  return r;
}

class redis_limiter_test : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!redis_installed()) GTEST_SKIP() << "redis-server is not installed: run scripts/bootstrap";
    port_ = free_port();
    server_ = std::make_unique<redis_process>(port_);
  }
  std::unique_ptr<redis_rate_limiter> make(obs::metrics& m) {
    redis_options o;
    o.url = "redis://127.0.0.1:" + std::to_string(port_);
    o.reconnect_every = 100ms;
    auto l = std::make_unique<redis_rate_limiter>(o, std::vector<std::pair<std::uint32_t, rates>>{{app, ten_per_second()}},
                                                  m);
    l->attach(io_.context().get_executor());  // the thread that runs the checks
    return l;
  }
  // One decision as a request makes it, on the I/O thread: at once when the limiter can, else by asking Redis.
  bool decide(redis_rate_limiter& l, std::int64_t now_ms) {
    return io_.run([](redis_rate_limiter& l, std::int64_t now_ms) -> boost::asio::awaitable<bool> {
      if (auto now = l.admit_now(app, get, 1, now_ms)) co_return *now;
      co_return co_await l.admit(app, get, 1, now_ms);
    }(l, now_ms));
  }

  int port_ = 0;
  std::unique_ptr<redis_process> server_;
  testing::io_runner io_;
};

TEST_F(redis_limiter_test, two_nodes_share_one_bucket) {
  obs::metrics m1, m2;
  auto a = make(m1);
  auto b = make(m2);
  ASSERT_TRUE(eventually([&] { return a->shared_up() && b->shared_up(); }));
  // 10 per second, a burst of 10: the two nodes together admit 10 at one instant, not 10 each.
  int admitted = 0;
  for (int i = 0; i < 20; ++i) admitted += decide(i % 2 ? *a : *b, 1'700'000'000'000);
  EXPECT_EQ(admitted, 10);
  // 100 ms later one token has come back, for whichever node asks first.
  EXPECT_TRUE(decide(*b, 1'700'000'000'100));
  EXPECT_FALSE(decide(*a, 1'700'000'000'100));
  EXPECT_EQ(m1.rate_limit_local_decisions.value(), 0u);
  EXPECT_NE(m1.render().find("callrec_rate_limit_shared_up 1\n"), std::string::npos);
}

TEST_F(redis_limiter_test, concurrent_checks_share_script_calls_and_the_limit_holds) {
  obs::metrics m1, m2;
  auto a = make(m1);
  auto b = make(m2);
  ASSERT_TRUE(eventually([&] { return a->shared_up() && b->shared_up(); }));
  // 200 checks at one instant, all in flight together on both nodes: a node queues the checks that arrive
  // while its call for the bucket is out and decides them in its next call; the cluster still admits 10.
  constexpr int checks = 200;
  std::atomic<int> answered{0}, admitted{0};
  for (int i = 0; i < checks; ++i) {
    io_.spawn((i % 2 ? *a : *b).admit(app, get, 1, 1'700'000'000'000), std::function<void(bool)>([&](bool ok) {
                admitted += ok;
                ++answered;
              }));
  }
  ASSERT_TRUE(eventually([&] { return answered.load() == checks; }));
  EXPECT_EQ(admitted.load(), 10);
  EXPECT_EQ(m1.rate_limit_local_decisions.value() + m2.rate_limit_local_decisions.value(), 0u);
  EXPECT_EQ(m1.rate_limit_shared_decisions.value() + m2.rate_limit_shared_decisions.value(), std::uint64_t{checks});
  EXPECT_LT(m1.rate_limit_redis_calls.value() + m2.rate_limit_redis_calls.value(), std::uint64_t{checks})
      << "checks queued behind a call out are decided together";
  EXPECT_NE(m1.render().find("callrec_rate_limit_redis_calls_total "), std::string::npos);
}

TEST_F(redis_limiter_test, events_are_charged_to_the_shared_bucket) {
  obs::metrics m1, m2;
  auto a = make(m1);
  auto b = make(m2);
  ASSERT_TRUE(eventually([&] { return a->shared_up() && b->shared_up(); }));
  constexpr limit_id events = id("events");
  // Default 2000 events/s: node a admits a batch and is charged 2500 events for it.
  ASSERT_TRUE(io_.run(a->admit(app, events, 0, 1'700'000'000'000)));
  io_.run([](redis_rate_limiter& l) -> boost::asio::awaitable<bool> {
    l.charge(app, events, 2500, 1'700'000'000'000);  // on the I/O thread, as a request charges
    co_return true;
  }(*a));
  // The charge is applied in Redis before node b asks (same connection order is not guaranteed across
  // nodes: wait until b sees the balance below one token).
  EXPECT_TRUE(eventually([&] { return !io_.run(b->admit(app, events, 0, 1'700'000'000'000)); }));
}

TEST_F(redis_limiter_test, without_redis_each_node_decides_alone_and_takes_redis_back) {
  obs::metrics m;
  auto a = make(m);
  ASSERT_TRUE(eventually([&] { return a->shared_up(); }));
  server_->stop();
  // The next decisions are local (the limiter notices the lost connection or the missing answer).
  ASSERT_TRUE(eventually([&] {
    (void)decide(*a, 1'700'000'000'000);
    return !a->shared_up();
  }));
  int admitted = 0;
  for (int i = 0; i < 20; ++i) admitted += decide(*a, 1'700'000'001'000);
  EXPECT_EQ(admitted, 10) << "the local bucket has the app's own rate";
  EXPECT_GT(m.rate_limit_local_decisions.value(), 0u);
  EXPECT_NE(m.render().find("callrec_rate_limit_shared_up 0\n"), std::string::npos);
  server_->start();
  EXPECT_TRUE(eventually([&] { return a->shared_up(); })) << "the limiter reconnects by itself";
  const auto local = m.rate_limit_local_decisions.value();
  (void)decide(*a, 1'700'000'002'000);
  EXPECT_EQ(m.rate_limit_local_decisions.value(), local);
}

TEST_F(redis_limiter_test, a_redis_that_does_not_answer_is_given_up_within_the_deadline) {
  obs::metrics m;
  auto a = make(m);
  ASSERT_TRUE(eventually([&] { return a->shared_up(); }));
  server_->pause();
  // The check waits for at most answer_within (100 ms), then decides locally; the connection is given up, so
  // the next checks decide at once.
  const auto begin = std::chrono::steady_clock::now();
  EXPECT_TRUE(decide(*a, 1'700'000'000'000));
  EXPECT_LT(std::chrono::steady_clock::now() - begin, 2s);
  EXPECT_EQ(m.rate_limit_local_decisions.value(), 1u);
  EXPECT_FALSE(a->shared_up());
  EXPECT_TRUE(decide(*a, 1'700'000'000'000));
  EXPECT_EQ(m.rate_limit_local_decisions.value(), 2u);
  server_->resume();
  EXPECT_TRUE(eventually([&] { return a->shared_up(); })) << "the limiter reconnects by itself";
}

TEST_F(redis_limiter_test, an_unreachable_redis_from_the_start_leaves_decisions_local) {
  obs::metrics m;
  redis_options o;
  o.url = "redis://127.0.0.1:1";
  auto l = std::make_unique<redis_rate_limiter>(o, std::vector<std::pair<std::uint32_t, rates>>{{app, ten_per_second()}}, m);
  EXPECT_FALSE(l->shared_up());
  EXPECT_TRUE(l->admit_now(app, get, 1, 1'700'000'000'000).value());
  EXPECT_FALSE(l->admit_now(0, get, 1, 1'700'000'000'000).value()) << "an app not configured is refused";
}

TEST(redis_url, parses_host_port_password_and_database) {
  auto a = parse_redis_url("redis://:pw@10.0.0.5:6380/2");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->host, "10.0.0.5");
  EXPECT_EQ(a->port, 6380);
  EXPECT_EQ(a->password, "pw");
  EXPECT_EQ(a->db, 2);
  a = parse_redis_url("redis://cache.internal");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->host, "cache.internal");
  EXPECT_EQ(a->port, 6379);
  EXPECT_FALSE(parse_redis_url("http://x"));
  EXPECT_FALSE(parse_redis_url("redis://h:0"));
  EXPECT_FALSE(parse_redis_url("redis://h:6379/x"));
  EXPECT_FALSE(parse_redis_url("redis://"));
}

}  // namespace
}  // namespace callrec::limits
