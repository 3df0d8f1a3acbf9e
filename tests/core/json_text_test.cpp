// JSON string output: what append_json_string writes must parse back to the same bytes.
#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <string>

#include "core/json_text.h"

namespace callrec {
namespace {

std::string escaped(std::string_view s) {
  std::string out;
  append_json_string(out, s);
  return out;
}

TEST(json_text, plain_text_is_copied_between_quotes) {
  EXPECT_EQ(escaped(""), "\"\"");
  EXPECT_EQ(escaped("sim-28c567f9fb3c27dc-511474"), "\"sim-28c567f9fb3c27dc-511474\"");
  EXPECT_EQ(escaped("caf\xc3\xa9 \xe4\xbd\xa0\xe5\xa5\xbd"), "\"caf\xc3\xa9 \xe4\xbd\xa0\xe5\xa5\xbd\"");  // UTF-8 as is
}

TEST(json_text, quotes_backslashes_and_control_characters_are_escaped) {
  EXPECT_EQ(escaped("a\"b\\c"), R"("a\"b\\c")");
  EXPECT_EQ(escaped("\b\f\n\r\t"), R"("\b\f\n\r\t")");
  EXPECT_EQ(escaped(std::string("x\0y", 3)), R"("x\u0000y")");
  EXPECT_EQ(escaped("\x1f\x7f"), "\"\\u001f\x7f\"");  // DEL needs no escape
  EXPECT_EQ(escaped("\"\""), R"("\"\"")");             // escapes next to each other, no plain run between
  EXPECT_EQ(escaped("end\n"), R"("end\n")");           // an escape last
}

TEST(json_text, every_ascii_byte_round_trips_through_a_json_parser) {
  std::string all;
  for (int c = 0; c < 0x80; ++c) all += static_cast<char>(c);
  for (std::string s : {all, all + all, "plain" + all.substr(0, 40) + "plain"}) {
    auto v = boost::json::parse(escaped(s));
    ASSERT_TRUE(v.is_string());
    EXPECT_EQ(std::string(v.as_string()), s);
  }
}

}  // namespace
}  // namespace callrec
