// What a black-box security review found in the API (issue 11), and the seed's own examples: client bytes
// quoted into JSON answers, a path without a version, `curl -I` on the root.
#include <gtest/gtest.h>

#include "support/raw_socket.h"
#include "support/test_server.h"

namespace callrec::testing {
namespace {

namespace json = boost::json;

// Defect 2: every answer is valid UTF-8 JSON, whatever bytes the client quoted, and a quoted value is bounded.
void expect_valid_answer(const std::string& what, const std::string& raw_body) {
  boost::system::error_code ec;
  const json::value v = json::parse(raw_body, ec);  // Boost.JSON refuses invalid UTF-8
  ASSERT_FALSE(ec) << what << ": the answer is not valid UTF-8 JSON: " << raw_body;
  ASSERT_TRUE(v.is_object()) << what;
  const auto* message = v.as_object().if_contains("errorMessage");
  ASSERT_TRUE(message && message->is_string()) << what << ": " << raw_body;
  EXPECT_LE(message->as_string().size(), 400u) << what << ": " << raw_body;
  EXPECT_NE(v.as_object().at("errorCode").as_int64(), 0) << what;
}

std::string body_of(const std::string& http) {
  const auto head_end = http.find("\r\n\r\n");
  return head_end == std::string::npos ? std::string() : http.substr(head_end + 4);
}

TEST(client_bytes_in_answers, every_error_that_quotes_client_input_is_valid_utf8_json) {
  test_server srv;
  const std::string bad = "\xff\xfe\xc0\xaf\xed\xa0\x80\xe4\xbd";  // stray, overlong, surrogate, truncated
  const std::string long_bad = std::string(300, 'a') + "\xe4\xbd\xa0\xe4\xbd\xa0" + std::string(2000, '\xff');
  const std::string query = api_target("events/report").substr(api_target("events/report").find('?'));
  auto sig = usersig_for("administrator");

  // Request targets, sent raw (no client library would send these bytes).
  std::vector<std::string> targets = {"/v1/" + bad, "/" + bad, "/v1/records/" + long_bad + query,
                                      "/records/" + bad + query, "/" + long_bad};
  auto q = [&](const std::string& sdkappid, const std::string& identifier, const std::string& usersig,
               const std::string& random, const std::string& contenttype) {
    return "/v1/records/get_record_by_callId?sdkappid=" + sdkappid + "&identifier=" + identifier +
           "&usersig=" + usersig + "&random=" + random + "&contenttype=" + contenttype;
  };
  // Query parameters: names and values, raw and %-escaped.
  for (const std::string& v : {bad, std::string("%ff%fe%c0"), long_bad}) {
    targets.push_back(q(v, "administrator", sig, "1", "json"));
    targets.push_back(q(std::to_string(app_id), v, sig, "1", "json"));
    targets.push_back(q(std::to_string(app_id), "administrator", v, "1", "json"));
    targets.push_back(q(std::to_string(app_id), "administrator", sig, v, "json"));
    targets.push_back(q(std::to_string(app_id), "administrator", sig, "1", v));
    targets.push_back(q(std::to_string(app_id), "administrator", sig, "1", "json") + "&" + v + "=1&sdkappid=" + v);
  }
  for (const auto& target : targets) {
    raw_socket s(srv.port());
    const std::string body = "{}";
    s.send("POST " + target + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 2\r\n\r\n" + body);
    const std::string out = s.read_all();
    expect_valid_answer(target.substr(0, 80), body_of(out));
  }

  // JSON bodies: bytes that are not UTF-8 (the parser refuses them), and valid text in every field an error
  // message may quote.
  client cli(srv.port());
  std::string long_text;
  for (int i = 0; i < 200; ++i) long_text += "\xe4\xbd\xa0";
  const std::string lt = json::serialize(json::value(long_text));
  std::vector<std::pair<std::string, std::string>> posts = {
      {"records/get_record_by_callId", "{\"callId\":\"" + bad + "\"}"},
      {"records/get_record_by_callId", "{\"callId\":" + lt + "}"},
      {"records/get_record_by_callId", "{\"callId\":\"\\ud800\"}"},
      {"records/get_records_by_filter", "{\"startTimestamp\":1,\"roomId\":" + lt + "}"},
      {"records/get_records_by_filter", "{\"startTimestamp\":1,\"userId\":" + lt + ",\"callResult\":" + lt + "}"},
      {"records/get_records_by_filter", "{\"startTimestamp\":1,\"cursor\":" + lt + "}"},
      {"records/get_records_by_filter", "{\"startTimestamp\":1,\"order\":\"" + bad + "\"}"},
      {"events/report", "{\"events\":[{\"callId\":\"c\",\"event\":" + lt + ",\"userId\":\"u\"}]}"},
      {"events/report", "{\"events\":[{\"callId\":" + lt + ",\"event\":\"hangup\",\"userId\":\"u\"}]}"},
      {"events/report", "{\"events\":[{\"callId\":\"c\",\"event\":\"hangup\",\"userId\":" + lt + "}]}"},
      {"events/report", "{\"events\":[{\"callId\":\"c\",\"event\":\"hangup\",\"userId\":\"u\",\"eventId\":" + lt + "}]}"},
      {"events/report", "{\"events\":[{\"callId\":\"c\",\"event\":\"start_call\",\"userId\":\"u\",\"callees\":[" + lt +
                            "],\"roomId\":" + lt + ",\"mediaType\":" + lt + ",\"callType\":" + lt + "}]}"},
      {"events/report", "{\"events\":[{\"callId\":\"c\",\"event\":\"start_call\",\"userId\":\"u\",\"callees\":[\"v\"],"
                        "\"roomId\":\"\\u2028\"}]}"},
      {"events/report", "{\"events\":[{\"callId\":\"" + bad + "\",\"event\":\"hangup\"}]}"},
  };
  for (const auto& [api, body] : posts) {
    const auto a = cli.post(api_target(api), body);
    expect_valid_answer(api + " " + body.substr(0, 60), a.body);
  }
}

// The seed's examples, over every transport.
class seed_examples : public ::testing::TestWithParam<transport> {};

// Seed item 7: its sample request has no version; such a path is v1.
TEST_P(seed_examples, a_path_without_a_version_is_v1) {
  test_server srv(GetParam());
  client cli(srv);
  const std::string target = api_target("records/get_record_by_callId");
  const std::string unversioned = target.substr(3);  // "/records/get_record_by_callId?..."
  ASSERT_EQ(unversioned.rfind("/records/", 0), 0u);
  auto a = cli.post(unversioned, "{\"callId\":\"nope\"}");
  EXPECT_EQ(a.status, 200u);
  EXPECT_EQ(a.code(), 101050) << a.body;
  auto events = cli.post(api_target("events/report").substr(3),
                         R"({"events":[{"callId":"sv","event":"start_call","userId":"a","callees":["b"]}]})");
  EXPECT_EQ(events.code(), 0) << events.body;
  auto unknown = cli.post("/records/get_everything" + target.substr(target.find('?')), "{}");
  EXPECT_EQ(unknown.status, 200u);
  EXPECT_EQ(unknown.code(), 70001);
  EXPECT_EQ(cli.post("/v2/records/get_record_by_callId", "{}").status, 404u);
}

// Seed item 8: the FAQ's connectivity test, `curl -I https://<host>`, expects 200.
TEST_P(seed_examples, the_root_answers_200_naming_the_service) {
  test_server srv(GetParam());
  client cli(srv);
  auto a = cli.get("/");
  EXPECT_EQ(a.status, 200u);
  ASSERT_TRUE(a.json.is_object()) << a.body;
  EXPECT_EQ(a.json.at("service").as_string(), "callrec");
  EXPECT_EQ(a.json.at("health").as_string(), "/healthz");
  auto head = cli.request(boost::beast::http::verb::head, "/", "");
  EXPECT_EQ(head.status, 200u);
  EXPECT_TRUE(head.body.empty());
  EXPECT_EQ(cli.post("/", "{}").status, 404u) << "the root is not an API";
}

INSTANTIATE_TEST_SUITE_P(transports, seed_examples, ::testing::ValuesIn(all_transports),
                         [](const auto& info) { return to_string(info.param); });

}  // namespace
}  // namespace callrec::testing
