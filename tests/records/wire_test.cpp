#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "records/wire.h"

namespace callrec {
namespace {

namespace json = boost::json;
constexpr std::int64_t now = 1700000000;

result<filter_request> parse(const std::string& body, std::int32_t retention = 7) {
  return parse_filter_request(json::parse(body).as_object(), 1400000001, retention, now);
}

TEST(record_json, matches_the_trtc_sample_field_for_field) {
  call_record r{"2ae7d549", 88888888, media_type::video, "123456", 1688705638, 1688705641, 1688705668,
                "alice", {"bob1", "bob2"}, call_type::single, call_result::normal_end};
  std::string out;
  append_record_json(out, r);
  auto v = json::parse(out).as_object();
  EXPECT_EQ(v.at("callId"), "2ae7d549");
  EXPECT_EQ(v.at("sdkAppId"), 88888888);
  EXPECT_EQ(v.at("mediaType"), "video");
  EXPECT_EQ(v.at("roomId"), "123456");
  EXPECT_EQ(v.at("startCallTs"), 1688705638);
  EXPECT_EQ(v.at("acceptTs"), 1688705641);
  EXPECT_EQ(v.at("endTs"), 1688705668);
  EXPECT_EQ(v.at("caller"), "alice");
  EXPECT_EQ(v.at("totalUserNumber"), 3);
  EXPECT_EQ(v.at("callType"), "single");
  EXPECT_EQ(v.at("callResult"), "normal_end");
  EXPECT_EQ(v.at("callees"), (json::array{"bob1", "bob2"}));
  EXPECT_EQ(v.size(), 12u);
}

TEST(record_json, escapes_strings) {
  call_record r;
  r.call_id = "a\"b\\c\x01";
  r.caller = "x";
  std::string out;
  append_record_json(out, r);
  EXPECT_EQ(json::parse(out).at("callId").as_string(), "a\"b\\c\x01");
}

// A store writes records from its rows' views (callees joined by spaces): the same bytes as from a record.
TEST(record_json, from_fields_equals_from_record) {
  const std::vector<std::vector<std::string>> callee_lists = {{}, {"bob"}, {"b1", "b\"2", "b3"}};
  for (const auto& callees : callee_lists) {
    call_record r{"c\\1", 1400000001, media_type::audio, "r\x02", 1, 2, 3, "al\"ice", callees,
                  call_type::group, call_result::reject};
    std::string joined;
    for (const auto& c : callees) joined += (joined.empty() ? "" : " ") + c;
    record_fields f{r.call_id, r.sdkappid, r.media, r.room_id, r.start_ts, r.accept_ts, r.end_ts, r.caller,
                    joined, r.type, r.result};
    std::string from_record, from_fields;
    append_record_json(from_record, r);
    append_record_json(from_fields, f);
    EXPECT_EQ(from_fields, from_record);
    EXPECT_EQ(json::parse(from_fields).at("totalUserNumber"), callees.size() + 1);
    EXPECT_EQ(json::parse(from_fields).at("callees").as_array().size(), callees.size());
  }
}

TEST(plain_call_id_body, reads_only_the_plain_form) {
  EXPECT_EQ(plain_call_id_body(R"({"callId":"c-1"})"), "c-1");
  EXPECT_EQ(plain_call_id_body(" {\n\t\"callId\" : \"a b\" }\r\n"), "a b");
  EXPECT_EQ(plain_call_id_body(R"({"callId":""})"), "");  // empty: the API then says it is invalid
  for (const char* other : {R"({"callId":"a\"b"})", R"({"callId":"a\u0062"})", "{\"callId\":\"\xc3\xa9\"}",
                            R"({"callId":1})", R"({"callId":"a","x":1})", R"({"callid":"a"})", R"([{"callId":"a"}])",
                            R"({"callId":"a"}x)", R"({"callId":"a")", R"({"callId":"a"}})", "", "{}"}) {
    EXPECT_EQ(plain_call_id_body(other), std::nullopt) << other;
  }
}

TEST(filter_request, defaults) {
  auto r = parse("{\"startTimestamp\": 1699990000}");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->filter.start_ts, 1699990000);
  EXPECT_EQ(r->filter.end_ts, now);
  EXPECT_EQ(r->filter.limit, 100u);
  EXPECT_EQ(r->page, 1u);
  EXPECT_EQ(r->filter.offset, 0u);
  EXPECT_FALSE(r->filter.result);
  EXPECT_FALSE(r->filter.descending);
}

TEST(filter_request, clamps_to_retention_and_computes_offset) {
  auto r = parse("{\"startTimestamp\": 0, \"numberPerPage\": 50, \"page\": 3}", 7);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->filter.start_ts, now - 7 * 86400);
  EXPECT_EQ(r->filter.offset, 100u);
  auto empty = parse("{\"startTimestamp\": 0, \"endTimestamp\": 10}");
  ASSERT_TRUE(empty);
  EXPECT_TRUE(empty->empty_window);
}

TEST(filter_request, errors_have_the_right_code_and_name_the_field) {
  struct tc {
    const char* body;
    errc code;
    const char* field;
  } cases[] = {
      {"{}", errc::invalid_param, "startTimestamp"},
      {"{\"startTimestamp\": \"1\"}", errc::bad_body, "startTimestamp"},
      {"{\"startTimestamp\": 1.5}", errc::invalid_param, "startTimestamp"},
      {"{\"startTimestamp\": -1}", errc::invalid_param, "startTimestamp"},
      {"{\"startTimestamp\": 5, \"endTimestamp\": 4}", errc::invalid_param, "endTimestamp"},
      {"{\"startTimestamp\": 5, \"endTimestamp\": true}", errc::bad_body, "endTimestamp"},
      {"{\"startTimestamp\": 5, \"callResult\": \"ok\"}", errc::invalid_param, "callResult"},
      {"{\"startTimestamp\": 5, \"callResult\": 1}", errc::bad_body, "callResult"},
      {"{\"startTimestamp\": 5, \"callType\": \"triple\"}", errc::invalid_param, "callType"},
      {"{\"startTimestamp\": 5, \"numberPerPage\": 1001}", errc::invalid_param, "numberPerPage"},
      {"{\"startTimestamp\": 5, \"numberPerPage\": 0}", errc::invalid_param, "numberPerPage"},
      {"{\"startTimestamp\": 5, \"page\": 0}", errc::invalid_param, "page"},
      {"{\"startTimestamp\": 5, \"page\": \"2\"}", errc::bad_body, "page"},
      {"{\"startTimestamp\": 5, \"userId\": \"a b\"}", errc::invalid_param, "userId"},
      {"{\"startTimestamp\": 5, \"order\": \"up\"}", errc::invalid_param, "order"},
      {"{\"startTimestamp\": 5, \"cursor\": \"***\"}", errc::invalid_param, "cursor"},
      {"{\"startTimestamp\": 5, \"mediaType\": \"text\"}", errc::invalid_param, "mediaType"},
  };
  for (const auto& c : cases) {
    auto r = parse(c.body);
    ASSERT_FALSE(r) << c.body;
    EXPECT_EQ(r.error().code, c.code) << c.body;
    EXPECT_NE(r.error().message.find(c.field), std::string::npos) << r.error().message;
  }
}

TEST(filter_request, all_extensions) {
  auto r = parse(
      "{\"startTimestamp\": 1699990000, \"endTimestamp\": 1699999999, \"callResult\": \"reject\", \"callType\": "
      "\"group\", \"mediaType\": \"audio\", \"userId\": \"bob\", \"caller\": \"alice\", \"roomId\": \"7\", \"order\": "
      "\"desc\", \"numberPerPage\": 1000}");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->filter.result, call_result::reject);
  EXPECT_EQ(r->filter.type, call_type::group);
  EXPECT_EQ(r->filter.media, media_type::audio);
  EXPECT_EQ(r->filter.user_id, "bob");
  EXPECT_EQ(r->filter.caller, "alice");
  EXPECT_EQ(r->filter.room_id, "7");
  EXPECT_TRUE(r->filter.descending);
  EXPECT_EQ(r->filter.limit, 1000u);
}

TEST(cursor, round_trips_and_rejects_garbage) {
  record_cursor c{1700000000, "call:with:colons"};
  EXPECT_EQ(decode_cursor(encode_cursor(c)), c);
  EXPECT_FALSE(decode_cursor(""));
  EXPECT_FALSE(decode_cursor("!!"));
  EXPECT_FALSE(decode_cursor("bm9jb2xvbg"));  // "nocolon"
  // A timestamp of 19 digits could overflow (found by fuzz_body under UBSan); 18 digits always fit.
  EXPECT_FALSE(decode_cursor("OTk5OTk5OTk5OTk5OTk5OTk5OTp4"));  // "9999999999999999999:x"
  auto big = decode_cursor("OTk5OTk5OTk5OTk5OTk5OTk5Ong");    // "999999999999999999:x"
  ASSERT_TRUE(big);
  EXPECT_EQ(big->start_ts, 999999999999999999);
  EXPECT_EQ(big->call_id, "x");
}

TEST(identifiers, user_and_call_ids) {
  EXPECT_TRUE(valid_user_id("administrator"));
  EXPECT_FALSE(valid_user_id(""));
  EXPECT_FALSE(valid_user_id("a b"));
  EXPECT_FALSE(valid_user_id(std::string(33, 'a')));
  EXPECT_TRUE(valid_user_id(std::string(32, 'a')));
  EXPECT_TRUE(valid_call_id(std::string(64, 'c')));
  EXPECT_FALSE(valid_call_id(std::string(65, 'c')));
  EXPECT_FALSE(valid_call_id("a\nb"));
}

}  // namespace
}  // namespace callrec
