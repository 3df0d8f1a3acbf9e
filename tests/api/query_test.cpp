#include <gtest/gtest.h>

#include <regex>

#include "api/envelope.h"
#include "api/query.h"

namespace callrec::api {
namespace {

TEST(query, parses_the_five_parameters) {
  auto r = parse_hub_query("usersig=eJw*-_&identifier=admin%31&sdkappid=88888888&random=99999999&contenttype=json&x=1");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->sdkappid, 88888888u);
  EXPECT_EQ(r->identifier, "admin1");
  EXPECT_EQ(r->usersig(), "eJw*-_");
  EXPECT_EQ(r->random, 99999999u);
}

TEST(query, usersig_is_decoded_only_when_escaped) {
  const std::string plain = "sdkappid=1&identifier=a&usersig=eJw*-_&random=1&contenttype=json";
  auto r = parse_hub_query(plain);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->usersig(), "eJw*-_");
  EXPECT_EQ(r->usersig().data(), plain.data() + plain.find("eJw"));  // a view into the query, not a copy
  const std::string escaped = "sdkappid=1&identifier=a&usersig=eJw%2A%2d_&random=1&contenttype=json";
  auto e = parse_hub_query(escaped);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->usersig(), "eJw*-_");
  hub_params moved = std::move(*e);  // the decoded copy moves with the parameters
  EXPECT_EQ(moved.usersig(), "eJw*-_");
}

TEST(query, bad_escapes_and_ranges) {
  EXPECT_FALSE(parse_hub_query("sdkappid=1&identifier=a%2&usersig=s&random=1&contenttype=json"));
  EXPECT_FALSE(parse_hub_query("sdkappid=1&identifier=a&usersig=s&random=1&contenttype=json&random=2"));
  EXPECT_FALSE(parse_hub_query("sdkappid=01x&identifier=a&usersig=s&random=1&contenttype=json"));
  EXPECT_FALSE(parse_hub_query("sdkappid=1&identifier=a&usersig=&random=1&contenttype=json"));
  EXPECT_EQ(percent_decode("a%41%4a"), "aAJ");
  EXPECT_FALSE(percent_decode("%G1"));
  EXPECT_FALSE(percent_decode("%4"));
}

TEST(query, split_target) {
  auto p = split_target("/v1/a/b?x=1?y");
  EXPECT_EQ(p.path, "/v1/a/b");
  EXPECT_EQ(p.query, "x=1?y");
  EXPECT_EQ(split_target("/healthz").query, "");
}

TEST(envelope, shape) {
  auto e = make_envelope(0, "Success", "abc", "{\"x\":1}");
  EXPECT_EQ(e, "{\"errorCode\":0,\"errorMessage\":\"Success\",\"requestId\":\"abc\",\"data\":{\"x\":1}}");
  EXPECT_EQ(make_envelope(70001, "bad \"x\"", "r", ""),
            "{\"errorCode\":70001,\"errorMessage\":\"bad \\\"x\\\"\",\"requestId\":\"r\"}");
  const auto a = new_request_id(), b = new_request_id();
  EXPECT_TRUE(std::regex_match(std::string(std::string_view(a)), std::regex("[0-9a-f]{32}")));
  EXPECT_NE(std::string_view(a), std::string_view(b));
}

}  // namespace
}  // namespace callrec::api
