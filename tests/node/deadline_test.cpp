// The request deadline (SPEC section 1) against a store that answers late: the request answers 101001 at the
// deadline, its connection goes on serving, and nobody else waits for it. Over every transport.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "support/gated_store.h"
#include "support/test_server.h"

namespace callrec::testing {
namespace {

using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

constexpr auto deadline = 1000ms;

class deadline_test : public ::testing::TestWithParam<transport> {
 protected:
  gated_store* gate = nullptr;
  test_server srv{GetParam(), {}, "deadline", [this](callrec::node& s) {
                    s.request_deadline = deadline;
                    s.wrap_store = [this](std::unique_ptr<store> inner) {
                      auto g = std::make_unique<gated_store>(std::move(inner));
                      gate = g.get();
                      return std::unique_ptr<store>(std::move(g));
                    };
                  }};
  client cli{srv};

  void SetUp() override {
    // One finished call, so a read that gets through has a record to find.
    auto a = cli.post(api_target("events/report"),
                      R"({"events":[{"callId":"c1","event":"start_call","userId":"alice","callees":["bob"],)"
                      R"("mediaType":"audio","ts":1700000000000},)"
                      R"({"callId":"c1","event":"reject_call","userId":"bob","ts":1700000002000}]})");
    ASSERT_EQ(a.code(), 0) << a.body;
  }
  // A call's first event: the write path, which does not wait for the store's reads.
  http_answer start_call(const std::string& id) {
    return cli.post(api_target("events/report"), R"({"events":[{"callId":")" + id +
                                                      R"(","event":"start_call","userId":"alice","callees":["bob"],)"
                                                      R"("mediaType":"audio","ts":1700000005000}]})");
  }
  static http_answer get_record(client& c) {
    return c.post(api_target("records/get_record_by_callId"), R"({"callId":"c1"})");
  }
};

TEST_P(deadline_test, a_late_store_answers_101001_at_the_deadline_and_the_connection_goes_on) {
  gate->shut();
  const auto t0 = steady::now();
  auto a = get_record(cli);
  const auto waited = steady::now() - t0;
  EXPECT_EQ(a.status, 200u);
  EXPECT_EQ(a.code(), 101001) << a.body;
  EXPECT_NE(a.message().find("deadline"), std::string::npos) << a.message();
  EXPECT_GE(waited, deadline);
  EXPECT_LT(waited, deadline + 2s) << "the answer came long after the deadline";

  auto page = cli.post(api_target("records/get_records_by_filter"),
                       R"({"startTimestamp":1699999000,"endTimestamp":1700001000})");
  EXPECT_EQ(page.code(), 101001) << page.body;

  // The same connection answers what does not need the store's reads, and takes new events meanwhile.
  EXPECT_EQ(cli.get("/healthz").status, 200u);
  auto ev = start_call("c2");
  EXPECT_EQ(ev.code(), 0) << ev.body;
  EXPECT_EQ(cli.connects(), 1) << "the connection was dropped";

  // Once the store answers again, so does the API, on the same connection; the late answers were dropped.
  gate->open();
  auto ok = get_record(cli);
  EXPECT_EQ(ok.code(), 0) << ok.body;
  EXPECT_EQ(ok.data().at("callId").as_string(), "c1");
  EXPECT_EQ(cli.connects(), 1);
}

TEST_P(deadline_test, under_load_every_held_request_answers_by_its_deadline_and_others_are_served) {
  gate->shut();
  constexpr int clients = 24;
  std::atomic<int> timely{0}, answered{0};
  std::vector<std::thread> load;
  for (int i = 0; i < clients; ++i) {
    load.emplace_back([&] {
      client c{srv};
      for (int round = 0; round < 2; ++round) {
        const auto t0 = steady::now();
        auto a = get_record(c);
        const auto waited = steady::now() - t0;
        if (a.code() == 101001 && waited >= deadline && waited < deadline + 2s) ++timely;
        ++answered;
      }
    });
  }
  ASSERT_TRUE(gate->wait_held(clients)) << "the requests did not reach the store";
  // Every I/O thread is free while the store holds the reads: a health check and an event report go through.
  EXPECT_EQ(cli.get("/healthz").status, 200u);
  auto ev = start_call("c3");
  EXPECT_EQ(ev.code(), 0) << ev.body;
  EXPECT_EQ(answered.load(), 0) << "a held request answered before the store did or the deadline passed";
  for (auto& t : load) t.join();
  EXPECT_EQ(timely.load(), 2 * clients);
  gate->open();
  EXPECT_EQ(get_record(cli).code(), 0);
}

// A server stopped while the store holds a read: the request still gets an answer or a closed connection, the
// held read is completed by the store's close(), and nothing is left behind (the sanitizer pass checks leaks).
TEST_P(deadline_test, stopping_while_a_read_is_held_ends_cleanly) {
  gate->shut();
  std::optional<http_answer> answer;
  std::thread waiter([&] {
    client c{srv};
    try {
      answer = get_record(c);
    } catch (const std::exception&) {
      // the connection closed unanswered: allowed while stopping
    }
  });
  ASSERT_TRUE(gate->wait_held(1));
  srv.stop();
  waiter.join();
  if (answer) {
    EXPECT_EQ(answer->code(), 101001) << answer->body;
  }
}

INSTANTIATE_TEST_SUITE_P(transports, deadline_test, ::testing::ValuesIn(all_transports),
                         [](const auto& info) { return to_string(info.param); });

// HTTP/2: a held request holds its stream only; the other streams of the same connection are answered.
class deadline_h2_test : public deadline_test {};

TEST_P(deadline_h2_test, a_held_stream_does_not_hold_the_other_streams_of_its_connection) {
  gate->shut();
  h2_connection h2(srv.port(), h2_connection::options{}, srv.client_tls());
  const std::vector<std::pair<std::string, std::string>> json_type{{"content-type", "application/json"}};
  const auto held = h2.request("POST", api_target("records/get_record_by_callId"), R"({"callId":"c1"})", json_type);
  ASSERT_TRUE(h2.run_until([&] { return gate->answered() == 0 && gate->wait_held(1, 0s); }));
  const auto health = h2.request("GET", "/healthz");
  const auto events = h2.request("POST", api_target("events/report"),
                                 R"({"events":[{"callId":"c4","event":"start_call","userId":"alice",)"
                                 R"("callees":["bob"],"mediaType":"audio","ts":1700000005000}]})",
                                 json_type);
  ASSERT_TRUE(h2.run_until([&] { return h2.complete(health) && h2.complete(events); }));
  EXPECT_FALSE(h2.complete(held)) << "the held stream answered before its deadline";
  EXPECT_EQ(h2.streams[health].status, 200);
  EXPECT_NE(h2.streams[events].body.find("\"errorCode\":0"), std::string::npos) << h2.streams[events].body;
  ASSERT_TRUE(h2.run_until([&] { return h2.complete(held); }));
  EXPECT_NE(h2.streams[held].body.find("\"errorCode\":101001"), std::string::npos) << h2.streams[held].body;
}

INSTANTIATE_TEST_SUITE_P(transports, deadline_h2_test, ::testing::Values(transport::h2c, transport::h2),
                         [](const auto& info) { return to_string(info.param); });

}  // namespace
}  // namespace callrec::testing
