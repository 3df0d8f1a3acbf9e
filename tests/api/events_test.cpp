// events/report over real sockets: authorization, per-event outcomes, timers without traffic, restarts.
#include <gtest/gtest.h>

#include "support/test_server.h"

namespace callrec::testing {
namespace {

namespace json = boost::json;

json::object ev(std::string call, std::string name, json::object extra = {}) {
  json::object o = std::move(extra);
  o["callId"] = call;
  o["event"] = name;
  return o;
}

class events_test : public ::testing::Test {
 protected:
  test_server srv;
  client cli{srv.port()};

  http_answer report(json::array events, const std::string& identifier = "administrator") {
    json::object body;
    body["events"] = std::move(events);
    return cli.post(api_target("events/report", identifier), json::serialize(body));
  }
  http_answer get_record(const std::string& id) {
    return cli.post(api_target("records/get_record_by_callId"), "{\"callId\":\"" + id + "\"}");
  }
  std::string result_of(const std::string& id) {
    auto a = get_record(id);
    if (a.code() != 0) return "code " + std::to_string(a.code());
    return std::string(a.data().at("callResult").as_string());
  }
};

TEST_F(events_test, users_report_their_own_events) {
  auto a = report({ev("u1", "start_call", {{"callees", json::array{"bob"}}})}, "alice");
  ASSERT_EQ(a.code(), 0) << a.body;
  EXPECT_EQ(a.data().at("applied").as_int64(), 1);
  EXPECT_EQ(report({ev("u1", "accept_call")}, "bob").code(), 0);
  EXPECT_EQ(report({ev("u1", "hangup", {{"userId", "bob"}})}, "bob").code(), 0);
  EXPECT_EQ(result_of("u1"), "normal_end");
}

TEST_F(events_test, a_user_cannot_act_for_another_or_in_a_foreign_call) {
  ASSERT_EQ(report({ev("u2", "start_call", {{"callees", json::array{"bob"}}})}, "alice").code(), 0);
  auto other = report({ev("u2", "accept_call", {{"userId", "bob"}})}, "mallory");
  EXPECT_EQ(other.code(), 70004);
  EXPECT_EQ(other.data().at("results").as_array()[0].at("errorCode").as_int64(), 70004);
  auto foreign = report({ev("u2", "hangup")}, "mallory");
  EXPECT_EQ(foreign.code(), 70004);
  auto ts = report({ev("u2", "accept_call", {{"ts", t0_ms}})}, "bob");
  EXPECT_EQ(ts.code(), 70001);
  // None of that changed the call: bob can still accept.
  EXPECT_EQ(report({ev("u2", "accept_call")}, "bob").code(), 0);
}

TEST_F(events_test, administrators_must_name_the_user) {
  auto a = report({ev("a1", "start_call", {{"callees", json::array{"bob"}}})});
  EXPECT_EQ(a.code(), 70001);
  EXPECT_NE(a.message().find("events[0]"), std::string::npos);
  EXPECT_NE(a.message().find("userId"), std::string::npos);
}

TEST_F(events_test, a_refused_event_names_its_index_and_the_rest_is_applied) {
  auto a = report({
      ev("r1", "start_call", {{"userId", "alice"}, {"callees", json::array{"bob"}}}),
      ev("r1", "accept_call", {{"userId", "stranger"}}),
      ev("r1", "accept_call", {{"userId", "bob"}}),
      ev("r1", "hangup", {{"userId", "alice"}}),
  });
  EXPECT_EQ(a.code(), 70001);
  EXPECT_NE(a.message().find("events[1]"), std::string::npos) << a.message();
  const auto& results = a.data().at("results").as_array();
  ASSERT_EQ(results.size(), 4u);
  EXPECT_EQ(results[0].at("status").as_string(), "applied");
  EXPECT_EQ(results[1].at("status").as_string(), "refused");
  EXPECT_EQ(results[2].at("status").as_string(), "applied");
  EXPECT_EQ(results[3].at("status").as_string(), "applied");
  EXPECT_EQ(result_of("r1"), "normal_end");
}

TEST_F(events_test, duplicates_and_late_events_are_ignored_and_counted) {
  json::array evs{ev("d1", "start_call", {{"userId", "alice"}, {"callees", json::array{"bob"}}, {"eventId", "e1"}}),
                  ev("d1", "reject_call", {{"userId", "bob"}, {"eventId", "e2"}})};
  ASSERT_EQ(report(evs).code(), 0);
  auto first = get_record("d1");
  auto again = report(evs);  // replay of the whole batch after the call ended
  EXPECT_EQ(again.code(), 0);
  EXPECT_EQ(again.data().at("late").as_int64(), 2);
  EXPECT_EQ(get_record("d1").data(), first.data());
  auto m = cli.get("/metrics");
  EXPECT_NE(m.body.find("callrec_events_total{outcome=\"late\"} 2"), std::string::npos);
  // Both reports were committed (each alone: nothing else was queued), and their latency observed.
  EXPECT_NE(m.body.find("callrec_store_commits_total 2\n"), std::string::npos) << m.body;
  EXPECT_NE(m.body.find("callrec_store_commit_updates_total 2\n"), std::string::npos);
  EXPECT_NE(m.body.find("callrec_store_commit_seconds_count 2\n"), std::string::npos);

  ASSERT_EQ(report({ev("d2", "start_call", {{"userId", "alice"}, {"callees", json::array{"bob"}}, {"eventId", "x"}})})
                .code(),
            0);
  auto dup = report({ev("d2", "start_call", {{"userId", "alice"}, {"callees", json::array{"bob"}}, {"eventId", "x"}})});
  EXPECT_EQ(dup.data().at("duplicates").as_int64(), 1);
}

TEST_F(events_test, ringing_times_out_without_further_traffic) {
  ASSERT_EQ(report({ev("t1", "start_call", {{"userId", "alice"}, {"callees", json::array{"bob"}}, {"timeoutSec", 30}})})
                .code(),
            0);
  EXPECT_EQ(get_record("t1").code(), 101050);
  srv.clock().advance_ms(29000);
  srv.service().run_maintenance_once();
  EXPECT_EQ(get_record("t1").code(), 101050);
  srv.clock().advance_ms(2000);
  // The maintenance thread fires the timer by itself; no request is sent until the record exists.
  ASSERT_TRUE(eventually([&] { return srv.service().metrics().timers_fired.value() > 0; }));
  auto a = get_record("t1");
  ASSERT_EQ(a.code(), 0) << a.body;
  EXPECT_EQ(a.data().at("callResult").as_string(), "not_answer");
  EXPECT_EQ(a.data().at("endTs").as_int64(), t0_ms / 1000 + 30);
}

TEST_F(events_test, timers_survive_a_restart) {
  ASSERT_EQ(report({ev("t2", "start_call", {{"userId", "alice"}, {"callees", json::array{"bob"}}}),
                    ev("t2", "accept_call", {{"userId", "bob"}})})
                .code(),
            0);
  srv.restart();
  client fresh(srv.port());
  srv.clock().advance_ms(61000);  // heartbeats stopped for longer than heartbeat_sec (60)
  srv.service().run_maintenance_once();
  auto a = fresh.post(api_target("records/get_record_by_callId"), "{\"callId\":\"t2\"}");
  ASSERT_EQ(a.code(), 0) << a.body;
  EXPECT_EQ(a.data().at("callResult").as_string(), "offline");
}

TEST_F(events_test, acknowledged_batches_survive_a_restart) {
  ASSERT_EQ(report({ev("s1", "start_call", {{"userId", "alice"}, {"callees", json::array{"bob", "carol"}}}),
                    ev("s1", "accept_call", {{"userId", "bob"}})})
                .code(),
            0);
  srv.restart();
  client fresh(srv.port());
  json::object body;
  body["events"] = json::array{ev("s1", "hangup", {{"userId", "bob"}})};
  auto a = fresh.post(api_target("events/report"), json::serialize(body));
  ASSERT_EQ(a.code(), 0) << a.body;
  auto r = fresh.post(api_target("records/get_record_by_callId"), "{\"callId\":\"s1\"}");
  ASSERT_EQ(r.code(), 0) << r.body;
  EXPECT_EQ(r.data().at("callType").as_string(), "group");
  EXPECT_EQ(r.data().at("totalUserNumber").as_int64(), 3);
}

TEST_F(events_test, numeric_room_ids_become_decimal_text) {
  ASSERT_EQ(report({ev("n1", "start_call", {{"userId", "alice"}, {"callees", json::array{"bob"}}, {"roomId", 42}}),
                    ev("n1", "cancel_call", {{"userId", "alice"}})})
                .code(),
            0);
  auto a = get_record("n1");
  EXPECT_EQ(a.data().at("roomId").as_string(), "42");
  EXPECT_EQ(a.data().at("callResult").as_string(), "cancel");
}

TEST_F(events_test, malformed_events_are_refused_with_their_reason) {
  auto a = report({json::value("x"), ev("m1", "dance", {{"userId", "alice"}}), ev("", "hangup", {{"userId", "a"}})});
  EXPECT_EQ(a.code(), 70009);  // the first refusal: events[0] is not an object
  const auto& res = a.data().at("results").as_array();
  EXPECT_EQ(res[0].at("errorCode").as_int64(), 70009);
  EXPECT_EQ(res[1].at("errorCode").as_int64(), 70001);
  EXPECT_EQ(res[2].at("errorCode").as_int64(), 70001);
  json::array many;
  for (int i = 0; i < 501; ++i) many.push_back(ev("big", "heartbeat", {{"userId", "alice"}}));
  EXPECT_EQ(report(many).code(), 70001);
}

}  // namespace
}  // namespace callrec::testing

namespace callrec::testing {
namespace {

TEST(retention, records_older_than_the_window_are_removed_in_the_background) {
  test_server srv([](server_config& c) { c.apps[0].retention_days = 1; });
  client cli(srv.port());
  json::object body;
  body["events"] = json::array{ev("old", "start_call", {{"userId", "alice"}, {"callees", json::array{"bob"}}}),
                               ev("old", "reject_call", {{"userId", "bob"}})};
  ASSERT_EQ(cli.post(api_target("events/report"), json::serialize(body)).code(), 0);
  ASSERT_EQ(cli.post(api_target("records/get_record_by_callId"), "{\"callId\":\"old\"}").code(), 0);
  srv.clock().advance_ms(2LL * 86400 * 1000);
  srv.service().run_maintenance_once();
  // The usersig made at t0 for one day has expired too: make a fresh one.
  const auto now_s = srv.clock().now_s();
  const std::string target = "/v1/records/get_record_by_callId?sdkappid=" + std::to_string(app_id) +
                             "&identifier=administrator&usersig=" + usersig_for("administrator", now_s) +
                             "&random=1&contenttype=json";
  EXPECT_EQ(cli.post(target, "{\"callId\":\"old\"}").code(), 101050);
  EXPECT_GE(srv.service().metrics().records_purged.value(), 1u);
}

}  // namespace
}  // namespace callrec::testing
