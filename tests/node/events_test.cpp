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

// The events scenarios run over each store.
class events_test : public ::testing::TestWithParam<store_kind> {
 protected:
  test_server srv{api_setup{transport::plain, GetParam()}};
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

TEST_P(events_test, users_report_their_own_events) {
  auto a = report({ev("u1", "start_call", {{"callees", json::array{"bob"}}})}, "alice");
  ASSERT_EQ(a.code(), 0) << a.body;
  EXPECT_EQ(a.data().at("applied").as_int64(), 1);
  EXPECT_EQ(report({ev("u1", "accept_call")}, "bob").code(), 0);
  EXPECT_EQ(report({ev("u1", "hangup", {{"userId", "bob"}})}, "bob").code(), 0);
  EXPECT_EQ(result_of("u1"), "normal_end");
}

TEST_P(events_test, a_user_cannot_act_for_another_or_in_a_foreign_call) {
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

TEST_P(events_test, administrators_must_name_the_user) {
  auto a = report({ev("a1", "start_call", {{"callees", json::array{"bob"}}})});
  EXPECT_EQ(a.code(), 70001);
  EXPECT_NE(a.message().find("events[0]"), std::string::npos);
  EXPECT_NE(a.message().find("userId"), std::string::npos);
}

TEST_P(events_test, a_refused_event_names_its_index_and_the_rest_is_applied) {
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

TEST_P(events_test, duplicates_and_late_events_are_ignored_and_counted) {
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

TEST_P(events_test, ringing_times_out_without_further_traffic) {
  ASSERT_EQ(report({ev("t1", "start_call", {{"userId", "alice"}, {"callees", json::array{"bob"}}, {"timeoutSec", 30}})})
                .code(),
            0);
  EXPECT_EQ(get_record("t1").code(), 101050);
  srv.clock().advance_ms(29000);
  srv.node().run_maintenance_once();
  EXPECT_EQ(get_record("t1").code(), 101050);
  srv.clock().advance_ms(2000);
  // The maintenance thread fires the timer by itself; no request is sent until the record exists.
  ASSERT_TRUE(eventually([&] { return srv.node().metrics().timers_fired.value() > 0; }));
  auto a = get_record("t1");
  ASSERT_EQ(a.code(), 0) << a.body;
  EXPECT_EQ(a.data().at("callResult").as_string(), "not_answer");
  EXPECT_EQ(a.data().at("endTs").as_int64(), t0_ms / 1000 + 30);
}

TEST_P(events_test, timers_survive_a_restart) {
  ASSERT_EQ(report({ev("t2", "start_call", {{"userId", "alice"}, {"callees", json::array{"bob"}}}),
                    ev("t2", "accept_call", {{"userId", "bob"}})})
                .code(),
            0);
  srv.restart();
  client fresh(srv.port());
  srv.clock().advance_ms(61000);  // heartbeats stopped for longer than heartbeat_sec (60)
  srv.node().run_maintenance_once();
  auto a = fresh.post(api_target("records/get_record_by_callId"), "{\"callId\":\"t2\"}");
  ASSERT_EQ(a.code(), 0) << a.body;
  EXPECT_EQ(a.data().at("callResult").as_string(), "offline");
}

TEST_P(events_test, acknowledged_batches_survive_a_restart) {
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

TEST_P(events_test, numeric_room_ids_become_decimal_text) {
  ASSERT_EQ(report({ev("n1", "start_call", {{"userId", "alice"}, {"callees", json::array{"bob"}}, {"roomId", 42}}),
                    ev("n1", "cancel_call", {{"userId", "alice"}})})
                .code(),
            0);
  auto a = get_record("n1");
  EXPECT_EQ(a.data().at("roomId").as_string(), "42");
  EXPECT_EQ(a.data().at("callResult").as_string(), "cancel");
}

TEST_P(events_test, malformed_events_are_refused_with_their_reason) {
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

// Issue 11, defect 4: eventId idempotency is per call and acting user (SPEC 5). A participant who sends
// another's eventId first does not turn that participant's real event into a silent duplicate.
TEST_P(events_test, an_event_id_is_scoped_to_the_call_and_the_acting_user) {
  ASSERT_EQ(report({ev("e1", "start_call", {{"callees", json::array{"bob", "carol"}}, {"eventId", "shared"}})},
                   "alice")
                .code(),
            0);
  auto first = report({ev("e1", "accept_call", {{"eventId", "shared"}})}, "bob");
  EXPECT_EQ(first.data().at("applied").as_int64(), 1) << first.body;
  auto carol = report({ev("e1", "accept_call", {{"eventId", "shared"}})}, "carol");
  EXPECT_EQ(carol.data().at("applied").as_int64(), 1) << carol.body;
  auto retry = report({ev("e1", "accept_call", {{"eventId", "shared"}})}, "carol");
  EXPECT_EQ(retry.data().at("duplicates").as_int64(), 1) << "carol's own retry is the duplicate";
  ASSERT_EQ(report({ev("e1", "hangup", {{"userId", "alice"}}), ev("e1", "hangup", {{"userId", "bob"}}),
                    ev("e1", "hangup", {{"userId", "carol"}})})
                .code(),
            0);
  auto rec = get_record("e1");
  ASSERT_EQ(rec.code(), 0) << rec.body;
  EXPECT_EQ(rec.data().at("callResult").as_string(), "normal_end");
}

// Issue 11, defect 5: one rule per field (SPEC 4 and 5), and each limit named the same way wherever it is
// enforced: by the events parser, the call state machine and the filter.
TEST_P(events_test, field_limits_follow_the_spec_and_name_the_same_rule) {
  const std::string room_rule = "roomId must be " + std::string(rule::room_id);
  auto start = [&](const std::string& call, json::object extra) {
    extra["userId"] = "alice";
    if (!extra.contains("callees")) extra["callees"] = json::array{"bob"};
    return report({ev(call, "start_call", std::move(extra))});
  };
  auto refused_with = [&](const http_answer& a, const std::string& text) {
    EXPECT_EQ(a.code(), 70001) << a.body;
    EXPECT_NE(a.message().find(text), std::string::npos) << a.message();
  };
  // roomId: a number 1..4294967294, or 1..64 bytes of TRTC's string-room alphabet.
  refused_with(start("l1", {{"roomId", std::string(65, 'r')}}), room_rule);
  refused_with(start("l1", {{"roomId", "a\nb"}}), room_rule);
  refused_with(start("l1", {{"roomId", "caf\xc3\xa9"}}), room_rule);
  refused_with(start("l1", {{"roomId", "\xe2\x80\xa8"}}), room_rule);  // U+2028
  refused_with(start("l1", {{"roomId", "'quoted'"}}), room_rule);
  refused_with(start("l1", {{"roomId", ""}}), room_rule);
  refused_with(start("l1", {{"roomId", 0}}), room_rule);
  refused_with(start("l1", {{"roomId", 4294967295LL}}), room_rule);
  EXPECT_EQ(start("l2", {{"roomId", std::string(64, 'r')}}).code(), 0);
  EXPECT_EQ(start("l3", {{"roomId", "Room 7 !#$%&()+-:;<=.>?@[]^_{}|~,"}}).code(), 0);
  EXPECT_EQ(start("l4", {{"roomId", 4294967294LL}}).code(), 0);
  auto filter = cli.post(api_target("records/get_records_by_filter"),
                         "{\"startTimestamp\":1,\"roomId\":\"" + std::string(65, 'r') + "\"}");
  refused_with(filter, room_rule);
  EXPECT_EQ(cli.post(api_target("records/get_records_by_filter"), "{\"startTimestamp\":1,\"roomId\":4294967294}").code(),
            0);

  // callees: at most 100 per call, start_call and invite_user together, with the same words each time.
  json::array many;
  for (int i = 0; i < 101; ++i) many.push_back(json::value("u" + std::to_string(i)));
  refused_with(start("l5", {{"callees", many}}), std::string(rule::callees));
  many.pop_back();
  ASSERT_EQ(start("l6", {{"callees", many}}).code(), 0);
  auto invite = report({ev("l6", "invite_user", {{"userId", "alice"}, {"callees", json::array{"u100"}}})});
  refused_with(invite, std::string(rule::callees));
  auto join = report({ev("l6", "join_in_group_call", {{"userId", "late"}})});
  refused_with(join, std::string(rule::callees));

  // eventId: 1..64 bytes; callId: 1..64 bytes.
  refused_with(start("l7", {{"eventId", std::string(65, 'e')}}), "eventId must be " + std::string(rule::event_id));
  refused_with(start("l7", {{"eventId", ""}}), "eventId must be " + std::string(rule::event_id));
  EXPECT_EQ(start("l8", {{"eventId", std::string(64, 'e')}}).code(), 0);
  refused_with(start(std::string(65, 'c'), {}), "callId must be " + std::string(rule::call_id));
  auto lookup = cli.post(api_target("records/get_record_by_callId"), "{\"callId\":\"" + std::string(65, 'c') + "\"}");
  refused_with(lookup, "callId must be " + std::string(rule::call_id));
}

INSTANTIATE_TEST_SUITE_P(stores, events_test, ::testing::ValuesIn(test_stores()),
                         [](const ::testing::TestParamInfo<store_kind>& p) { return to_string(p.param); });

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
  srv.node().run_maintenance_once();
  // The usersig made at t0 for one day has expired too: make a fresh one.
  const auto now_s = srv.clock().now_s();
  const std::string target = "/v1/records/get_record_by_callId?sdkappid=" + std::to_string(app_id) +
                             "&identifier=administrator&usersig=" + usersig_for("administrator", now_s) +
                             "&random=1&contenttype=json";
  EXPECT_EQ(cli.post(target, "{\"callId\":\"old\"}").code(), 101050);
  EXPECT_GE(srv.node().metrics().records_purged.value(), 1u);
}

}  // namespace
}  // namespace callrec::testing
