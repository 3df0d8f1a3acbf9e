// The v1 hub over real sockets: every API, every error code, the check order, the envelope.
#include <gtest/gtest.h>

#include <fstream>
#include <regex>
#include <set>

#include "support/test_server.h"

namespace callrec::testing {
namespace {

namespace json = boost::json;

// Every hub test runs over HTTP/1.1 and HTTP/2, each plain and over TLS, and over each store (the API must not
// care which).
class hub_test : public ::testing::TestWithParam<api_setup> {
 protected:
  test_server srv{GetParam()};
  client cli{srv};

  http_answer report(const json::array& events, const std::string& identifier = "administrator") {
    json::object body;
    body["events"] = events;
    return cli.post(api_target("events/report", identifier), json::serialize(body));
  }
  static json::object ev(std::string call, std::string name, std::string user, json::object extra = {}) {
    json::object o = std::move(extra);
    o["callId"] = call;
    o["event"] = name;
    o["userId"] = user;
    return o;
  }
  // A finished 1:1 call: alice calls bob, bob accepts 3 s later, hangs up 30 s later (within heartbeat_sec).
  void make_call(const std::string& id, std::int64_t start_ms, const std::string& result = "normal_end") {
    json::array evs;
    evs.push_back(ev(id, "start_call", "alice",
                     {{"callees", json::array{"bob"}}, {"mediaType", "video"}, {"roomId", "123456"}, {"ts", start_ms}}));
    if (result == "normal_end") {
      evs.push_back(ev(id, "accept_call", "bob", {{"ts", start_ms + 3000}}));
      evs.push_back(ev(id, "hangup", "bob", {{"ts", start_ms + 33000}}));
    } else if (result == "reject") {
      evs.push_back(ev(id, "reject_call", "bob", {{"ts", start_ms + 2000}}));
    } else if (result == "cancel") {
      evs.push_back(ev(id, "cancel_call", "alice", {{"ts", start_ms + 2000}}));
    }
    auto a = report(evs);
    ASSERT_EQ(a.code(), 0) << a.body;
  }
  http_answer get_record(const std::string& id) {
    return cli.post(api_target("records/get_record_by_callId"), "{\"callId\":\"" + id + "\"}");
  }
};

TEST_P(hub_test, record_of_a_reported_call_has_every_field) {
  make_call("2ae7d549-c441-4a9b-87c0-61810fe19582", t0_ms - 100000);
  auto a = get_record("2ae7d549-c441-4a9b-87c0-61810fe19582");
  ASSERT_EQ(a.status, 200u);
  ASSERT_EQ(a.code(), 0) << a.body;
  EXPECT_EQ(a.message(), "Success");
  const auto& d = a.data().as_object();
  EXPECT_EQ(d.at("callId").as_string(), "2ae7d549-c441-4a9b-87c0-61810fe19582");
  EXPECT_EQ(d.at("sdkAppId").as_int64(), app_id);
  EXPECT_EQ(d.at("mediaType").as_string(), "video");
  EXPECT_EQ(d.at("roomId").as_string(), "123456");
  EXPECT_EQ(d.at("startCallTs").as_int64(), (t0_ms - 100000) / 1000);
  EXPECT_EQ(d.at("acceptTs").as_int64(), (t0_ms - 97000) / 1000);
  EXPECT_EQ(d.at("endTs").as_int64(), (t0_ms - 67000) / 1000);
  EXPECT_EQ(d.at("caller").as_string(), "alice");
  EXPECT_EQ(d.at("callees").as_array(), (json::array{"bob"}));
  EXPECT_EQ(d.at("totalUserNumber").as_int64(), 2);
  EXPECT_EQ(d.at("callType").as_string(), "single");
  EXPECT_EQ(d.at("callResult").as_string(), "normal_end");
}

TEST_P(hub_test, unknown_call_is_101050) {
  auto a = get_record("nope");
  EXPECT_EQ(a.status, 200u);
  EXPECT_EQ(a.code(), 101050);
  EXPECT_FALSE(a.json.as_object().contains("data"));
  EXPECT_EQ(a.content_type, "application/json");
}

TEST_P(hub_test, request_id_is_32_hex_unique_and_sent_as_header) {
  std::set<std::string> ids;
  for (int i = 0; i < 50; ++i) {
    auto a = get_record("x");
    std::string id(a.json.at("requestId").as_string());
    EXPECT_TRUE(std::regex_match(id, std::regex("[0-9a-f]{32}"))) << id;
    EXPECT_EQ(a.request_id_header, id);
    ids.insert(id);
  }
  EXPECT_EQ(ids.size(), 50u);
}

TEST_P(hub_test, request_id_is_in_the_access_log) {
  auto a = get_record("x");
  std::string id(a.json.at("requestId").as_string());
  srv.stop();  // flushes the log
  std::ifstream in(srv.dir() / "access.log");
  std::string line, found;
  while (std::getline(in, line)) {
    if (line.find(id) != std::string::npos) found = line;
  }
  ASSERT_FALSE(found.empty());
  auto v = json::parse(found).as_object();
  EXPECT_EQ(v.at("api").as_string(), "records/get_record_by_callId");
  EXPECT_EQ(v.at("sdkappid").as_int64(), app_id);
  EXPECT_EQ(v.at("errorCode").as_int64(), 101050);
  EXPECT_TRUE(v.contains("latencyMs"));
}

// --- 70001: path, method, query parameters, body fields ---

TEST_P(hub_test, unknown_path_and_wrong_method_are_70001) {
  auto a = cli.post("/v1/records/nope?sdkappid=1", "{}");
  EXPECT_EQ(a.status, 200u);
  EXPECT_EQ(a.code(), 70001);
  EXPECT_NE(a.message().find("unknown API path"), std::string::npos);
  auto g = cli.get(api_target("records/get_record_by_callId"));
  EXPECT_EQ(g.code(), 70001);
  EXPECT_NE(g.message().find("POST"), std::string::npos);
}

TEST_P(hub_test, query_parameters_are_checked) {
  const std::string path = "/v1/records/get_record_by_callId?";
  const std::string sig = usersig_for("administrator");
  struct tc {
    std::string query, expect_in_message;
  } cases[] = {
      {"identifier=administrator&usersig=" + sig + "&random=1&contenttype=json", "sdkappid"},
      {"sdkappid=abc&identifier=administrator&usersig=" + sig + "&random=1&contenttype=json", "sdkappid"},
      {"sdkappid=4294967296&identifier=administrator&usersig=" + sig + "&random=1&contenttype=json", "sdkappid"},
      {"sdkappid=1400000001&usersig=" + sig + "&random=1&contenttype=json", "identifier"},
      {"sdkappid=1400000001&identifier=administrator&random=1&contenttype=json", "usersig"},
      {"sdkappid=1400000001&identifier=administrator&usersig=" + sig + "&contenttype=json", "random"},
      {"sdkappid=1400000001&identifier=administrator&usersig=" + sig + "&random=4294967296&contenttype=json", "random"},
      {"sdkappid=1400000001&identifier=administrator&usersig=" + sig + "&random=-1&contenttype=json", "random"},
      {"sdkappid=1400000001&identifier=administrator&usersig=" + sig + "&random=1&contenttype=xml", "contenttype"},
      {"sdkappid=1400000001&identifier=administrator&usersig=" + sig + "&random=1", "contenttype"},
      {"sdkappid=1400000001&identifier=administrator&usersig=" + sig + "&random=1&contenttype=JSON", "contenttype"},
      {"sdkappid=1400000001&sdkappid=1400000001&identifier=administrator&usersig=" + sig +
           "&random=1&contenttype=json",
       "more than once"},
  };
  for (const auto& c : cases) {
    auto a = cli.post(path + c.query, "{\"callId\":\"x\"}");
    EXPECT_EQ(a.code(), 70001) << c.query;
    EXPECT_NE(a.message().find(c.expect_in_message), std::string::npos) << a.message();
  }
  // random at both ends of its range is fine.
  auto lo = cli.post(path + "sdkappid=1400000001&identifier=administrator&usersig=" + sig +
                         "&random=0&contenttype=json",
                     "{\"callId\":\"x\"}");
  EXPECT_EQ(lo.code(), 101050);
  auto hi = cli.post(path + "sdkappid=1400000001&identifier=administrator&usersig=" + sig +
                         "&random=4294967295&contenttype=json",
                     "{\"callId\":\"x\"}");
  EXPECT_EQ(hi.code(), 101050);
}

TEST_P(hub_test, body_fields_are_checked) {
  EXPECT_EQ(cli.post(api_target("records/get_record_by_callId"), "{}").code(), 70001);
  EXPECT_EQ(cli.post(api_target("records/get_record_by_callId"), "{\"callId\":\"\"}").code(), 70001);
  EXPECT_EQ(cli.post(api_target("records/get_record_by_callId"), "{\"callId\":\"" + std::string(65, 'a') + "\"}").code(),
            70001);
  EXPECT_EQ(cli.post(api_target("records/get_records_by_filter"), "{}").code(), 70001);
  EXPECT_EQ(cli.post(api_target("records/get_records_by_filter"), "{\"startTimestamp\":10,\"endTimestamp\":5}").code(),
            70001);
  EXPECT_EQ(
      cli.post(api_target("records/get_records_by_filter"), "{\"startTimestamp\":1,\"numberPerPage\":1001}").code(),
      70001);
  EXPECT_EQ(cli.post(api_target("records/get_records_by_filter"), "{\"startTimestamp\":1,\"numberPerPage\":0}").code(),
            70001);
  EXPECT_EQ(cli.post(api_target("records/get_records_by_filter"), "{\"startTimestamp\":1,\"page\":0}").code(), 70001);
  EXPECT_EQ(cli.post(api_target("records/get_records_by_filter"), "{\"startTimestamp\":1,\"callResult\":\"x\"}").code(),
            70001);
  EXPECT_EQ(cli.post(api_target("records/get_records_by_filter"), "{\"startTimestamp\":1,\"callType\":\"x\"}").code(),
            70001);
  EXPECT_EQ(cli.post(api_target("events/report"), "{}").code(), 70001);
  EXPECT_EQ(cli.post(api_target("events/report"), "{\"events\":[]}").code(), 70001);
}

// --- 70009: body not a JSON object, wrong JSON types ---

TEST_P(hub_test, body_type_errors_are_70009) {
  for (const std::string body : {"", "not json", "[]", "\"x\"", "{\"callId\": 1}", "{\"callId\": [\"x\"]}", "{"}) {
    auto a = cli.post(api_target("records/get_record_by_callId"), body);
    EXPECT_EQ(a.code(), 70009) << body;
  }
  EXPECT_EQ(cli.post(api_target("records/get_records_by_filter"), "{\"startTimestamp\":\"1\"}").code(), 70009);
  EXPECT_EQ(cli.post(api_target("records/get_records_by_filter"), "{\"startTimestamp\":1,\"callResult\":3}").code(),
            70009);
  EXPECT_EQ(cli.post(api_target("events/report"), "{\"events\":{}}").code(), 70009);
}

// --- 70002 / 70003: UserSig ---

TEST_P(hub_test, bad_usersig_is_70002_and_expired_is_70003) {
  auto target = [](const std::string& sig, const std::string& id = "administrator", std::uint32_t app = app_id) {
    return "/v1/records/get_record_by_callId?sdkappid=" + std::to_string(app) + "&identifier=" + id +
           "&usersig=" + sig + "&random=7&contenttype=json";
  };
  const std::string body = "{\"callId\":\"x\"}";
  EXPECT_EQ(cli.post(target("garbage"), body).code(), 70002);
  EXPECT_EQ(cli.post(target(usersig_for("administrator", t0_ms / 1000, app_id, other_key)), body).code(), 70002);
  EXPECT_EQ(cli.post(target(usersig_for("ops")), body).code(), 70002);  // issued for another identifier
  EXPECT_EQ(cli.post(target(usersig_for("administrator", t0_ms / 1000, unentitled_app_id)), body).code(), 70002);
  auto unknown = cli.post(target(usersig_for("administrator"), "administrator", 12345), body);
  EXPECT_EQ(unknown.code(), 70002);
  EXPECT_NE(unknown.message().find("sdkappid"), std::string::npos);
  // Issued 2 days ago for 1 day: expired.
  EXPECT_EQ(cli.post(target(usersig_for("administrator", t0_ms / 1000 - 2 * 86400, app_id, app_key, 86400)), body).code(),
            70003);
  // Expires exactly now: still valid.
  EXPECT_EQ(cli.post(target(usersig_for("administrator", t0_ms / 1000 - 100, app_id, app_key, 100)), body).code(),
            101050);
}

// --- 70004, 50001, 70005 ---

TEST_P(hub_test, non_admin_is_70004_on_admin_apis) {
  EXPECT_EQ(cli.post(api_target("records/get_record_by_callId", "alice"), "{\"callId\":\"x\"}").code(), 70004);
  EXPECT_EQ(cli.post(api_target("records/get_records_by_filter", "alice"), "{\"startTimestamp\":1}").code(), 70004);
  EXPECT_EQ(cli.post(api_target("records/get_record_by_callId", "ops"), "{\"callId\":\"x\"}").code(), 101050);
}

TEST_P(hub_test, unentitled_app_is_50001) {
  EXPECT_EQ(cli.post(api_target("records/get_record_by_callId", "administrator", unentitled_app_id), "{\"callId\":\"x\"}")
                .code(),
            50001);
}

TEST_P(hub_test, rate_limit_is_70005_and_executes_nothing) {
  const auto target = api_target("records/get_record_by_callId", "administrator", limited_app_id);
  int limited = 0;
  for (int i = 0; i < 5; ++i) limited += cli.post(target, "{\"callId\":\"x\"}").code() == 70005;
  EXPECT_EQ(limited, 3);  // a burst of 2, nothing refills while the injected clock stands still
  srv.clock().advance_ms(1000);
  EXPECT_EQ(cli.post(target, "{\"callId\":\"x\"}").code(), 101050);
  // Events: a batch over the limit is refused whole and nothing is applied.
  json::object body;
  body["events"] = json::array{ev("rl", "start_call", "alice", {{"callees", json::array{"bob"}}})};
  auto events_target = api_target("events/report", "administrator", limited_app_id);
  auto first = cli.post(events_target, json::serialize(body));
  EXPECT_EQ(first.code(), 0) << first.body;
  body["events"] = json::array{ev("rl", "accept_call", "bob"), ev("rl", "hangup", "bob")};
  EXPECT_EQ(cli.post(events_target, json::serialize(body)).code(), 0);  // bucket now below one token
  body["events"] = json::array{ev("rl2", "start_call", "alice", {{"callees", json::array{"bob"}}})};
  EXPECT_EQ(cli.post(events_target, json::serialize(body)).code(), 70005);
}

TEST_P(hub_test, checks_run_in_the_specified_order) {
  // Bad path wins over bad query.
  EXPECT_NE(cli.post("/v1/x/y", "").message().find("unknown API path"), std::string::npos);
  // Bad query wins over bad UserSig.
  EXPECT_EQ(cli.post("/v1/records/get_record_by_callId?sdkappid=1400000001&identifier=administrator&usersig=bad"
                     "&random=1&contenttype=xml",
                     "").code(),
            70001);
  // Bad UserSig wins over non-admin and bad body.
  EXPECT_EQ(cli.post("/v1/records/get_record_by_callId?sdkappid=1400000001&identifier=alice&usersig=bad&random=1"
                     "&contenttype=json",
                     "not json").code(),
            70002);
  // Non-admin wins over entitlement.
  EXPECT_EQ(cli.post(api_target("records/get_record_by_callId", "alice", unentitled_app_id), "").code(), 70004);
  // Entitlement wins over a bad body.
  EXPECT_EQ(cli.post(api_target("records/get_record_by_callId", "administrator", unentitled_app_id), "x").code(), 50001);
}

// --- get_records_by_filter ---

TEST_P(hub_test, filter_totals_paging_and_cursor) {
  // 25 calls, one a minute, results rotating normal_end / reject / cancel.
  const char* results[] = {"normal_end", "reject", "cancel"};
  for (int i = 0; i < 25; ++i) {
    make_call("call-" + std::to_string(100 + i), t0_ms - 3600000 + i * 60000, results[i % 3]);
  }
  const std::int64_t from = (t0_ms - 3600000) / 1000;
  auto q = [&](const std::string& extra) {
    return cli.post(api_target("records/get_records_by_filter"),
                    "{\"startTimestamp\":" + std::to_string(from) + extra + "}");
  };
  auto all = q(",\"numberPerPage\":10");
  ASSERT_EQ(all.code(), 0) << all.body;
  EXPECT_EQ(all.data().at("totalNum").as_int64(), 25);
  EXPECT_EQ(all.data().at("page").as_int64(), 1);
  EXPECT_EQ(all.data().at("callRecordList").as_array().size(), 10u);
  EXPECT_EQ(all.data().at("callRecordList").as_array()[0].at("callId").as_string(), "call-100");

  auto p3 = q(",\"numberPerPage\":10,\"page\":3");
  EXPECT_EQ(p3.data().at("callRecordList").as_array().size(), 5u);
  EXPECT_EQ(p3.data().at("callRecordList").as_array()[0].at("callId").as_string(), "call-120");
  auto past = q(",\"numberPerPage\":10,\"page\":4");
  EXPECT_EQ(past.data().at("totalNum").as_int64(), 25);
  EXPECT_TRUE(past.data().at("callRecordList").as_array().empty());

  auto rejects = q(",\"callResult\":\"reject\"");
  EXPECT_EQ(rejects.data().at("totalNum").as_int64(), 8);
  for (const auto& r : rejects.data().at("callRecordList").as_array()) EXPECT_EQ(r.at("callResult").as_string(), "reject");

  // Window edges are inclusive.
  auto edge = cli.post(api_target("records/get_records_by_filter"),
                       "{\"startTimestamp\":" + std::to_string(from + 60) + ",\"endTimestamp\":" +
                           std::to_string(from + 120) + "}");
  EXPECT_EQ(edge.data().at("totalNum").as_int64(), 2);

  // Keyset paging walks the same order as offset paging.
  std::vector<std::string> walked;
  std::string cursor;
  for (int guard = 0; guard < 10; ++guard) {
    auto a = q(",\"numberPerPage\":7" + (cursor.empty() ? std::string() : ",\"cursor\":\"" + cursor + "\""));
    ASSERT_EQ(a.code(), 0) << a.body;
    for (const auto& r : a.data().at("callRecordList").as_array()) walked.emplace_back(r.at("callId").as_string());
    if (!a.data().as_object().contains("nextCursor")) break;
    cursor = std::string(a.data().at("nextCursor").as_string());
  }
  ASSERT_EQ(walked.size(), 25u);
  for (int i = 0; i < 25; ++i) EXPECT_EQ(walked[static_cast<std::size_t>(i)], "call-" + std::to_string(100 + i));

  auto desc = q(",\"order\":\"desc\",\"numberPerPage\":1");
  EXPECT_EQ(desc.data().at("callRecordList").as_array()[0].at("callId").as_string(), "call-124");
  auto by_user = q(",\"userId\":\"bob\"");
  EXPECT_EQ(by_user.data().at("totalNum").as_int64(), 25);
  auto by_stranger = q(",\"userId\":\"zed\"");
  EXPECT_EQ(by_stranger.data().at("totalNum").as_int64(), 0);
  EXPECT_EQ(q(",\"cursor\":\"!!\"").code(), 70001);
}

TEST_P(hub_test, filter_start_is_clamped_to_the_retention_window) {
  make_call("old", t0_ms - 7LL * 86400 * 1000 + 60000);  // a minute inside the 7-day window
  make_call("new", t0_ms - 86400LL * 1000);
  srv.clock().advance_ms(120000);  // "old" has left the window
  auto a = cli.post(api_target("records/get_records_by_filter"), "{\"startTimestamp\":0}");
  ASSERT_EQ(a.code(), 0);
  EXPECT_EQ(a.data().at("totalNum").as_int64(), 1);
  EXPECT_EQ(a.data().at("callRecordList").as_array()[0].at("callId").as_string(), "new");
}

// --- operational endpoints ---

TEST_P(hub_test, health_ready_and_metrics) {
  auto h = cli.get("/healthz");
  EXPECT_EQ(h.status, 200u);
  EXPECT_EQ(cli.get("/readyz").status, 200u);
  get_record("x");
  auto m = cli.get("/metrics");
  EXPECT_EQ(m.status, 200u);
  EXPECT_NE(m.body.find("callrec_requests_total{api=\"records/get_record_by_callId\",errorCode=\"101050\"}"),
            std::string::npos);
  EXPECT_NE(m.body.find("callrec_request_duration_seconds_bucket"), std::string::npos);
  EXPECT_NE(m.body.find("callrec_live_calls"), std::string::npos);
  // One HTTP/2 connection so far (this client's), carrying the 4 requests above.
  const bool h2 = uses_http2(GetParam().t);
  EXPECT_NE(m.body.find(h2 ? "callrec_h2_connections_total 1\n" : "callrec_h2_connections_total 0\n"),
            std::string::npos);
  EXPECT_NE(m.body.find(h2 ? "callrec_h2_streams_total 4\n" : "callrec_h2_streams_total 0\n"), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(setups, hub_test,
                         ::testing::ValuesIn(api_setups({std::begin(all_transports), std::end(all_transports)})),
                         setup_name);

}  // namespace
}  // namespace callrec::testing
