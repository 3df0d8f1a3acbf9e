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

// Bytes that are not UTF-8 (client input quoted in a message) must still give valid UTF-8 JSON: each maximal
// ill-formed part becomes one U+FFFD, and well-formed text around it is kept.
TEST(json_text, bytes_that_are_not_utf8_become_replacement_characters) {
  const std::string fffd = "\xef\xbf\xbd";
  EXPECT_EQ(escaped("/v1/\xff"), "\"/v1/" + fffd + "\"");
  EXPECT_EQ(escaped("\x80\x80"), "\"" + fffd + fffd + "\"");           // stray continuation bytes
  EXPECT_EQ(escaped("a\xe4\xbd"), "\"a" + fffd + "\"");                // truncated at the end
  EXPECT_EQ(escaped("\xe4\xbdz"), "\"" + fffd + "z\"");                // truncated before ASCII
  EXPECT_EQ(escaped("\xc0\xaf"), "\"" + fffd + fffd + "\"");           // overlong '/'
  EXPECT_EQ(escaped("\xed\xa0\x80"), "\"" + fffd + fffd + fffd + "\"");  // a surrogate
  EXPECT_EQ(escaped("\xf4\x90\x80\x80"), "\"" + fffd + fffd + fffd + fffd + "\"");  // past U+10FFFF
  EXPECT_EQ(escaped("\xf0\x9f\x98\x80\xff\""), "\"\xf0\x9f\x98\x80" + fffd + "\\\"\"");
}

TEST(json_text, every_byte_string_gives_json_that_parses) {
  // Every pair of bytes, and each byte with a valid 3-byte character around it.
  for (int a = 0; a < 256; ++a) {
    for (int b = 0; b < 256; ++b) {
      const std::string s{static_cast<char>(a), static_cast<char>(b)};
      boost::system::error_code ec;
      auto v = boost::json::parse(escaped(s), ec);
      ASSERT_FALSE(ec) << a << " " << b;
      ASSERT_TRUE(v.is_string());
      if (utf8_sequence_length(s) == 2 || (a < 0x80 && b < 0x80)) {
        EXPECT_EQ(std::string(v.as_string()), s);
      }
    }
    const std::string s = "\xe4\xbd\xa0" + std::string(1, static_cast<char>(a)) + "\xe5\xa5\xbd";
    boost::system::error_code ec;
    (void)boost::json::parse(escaped(s), ec);
    ASSERT_FALSE(ec) << a;
  }
}

// Long plain runs are scanned eight bytes at a time: a byte that needs escaping or checking is found wherever
// it stands in a word, and at the edges of one.
TEST(json_text, a_special_byte_is_found_at_every_position_of_a_long_string) {
  for (char special : {'"', '\\', '\n', '\x1f', '\x7f', '\xff', '\xc3', '\x80', ' ', '~'}) {
    for (std::size_t at = 0; at < 27; ++at) {
      std::string s(27, 'a');
      s[at] = special;
      boost::system::error_code ec;
      const auto v = boost::json::parse(escaped(s), ec);
      ASSERT_FALSE(ec) << int(special) << " at " << at;
      if (static_cast<unsigned char>(special) < 0x80) {
        EXPECT_EQ(std::string(v.as_string()), s) << int(special) << " at " << at;
      } else {
        EXPECT_NE(std::string(v.as_string()).find("\xef\xbf\xbd"), std::string::npos);  // lone, so replaced
      }
    }
  }
  const std::string han = "\xe4\xbd\xa0\xe5\xa5\xbd\xe4\xbd\xa0\xe5\xa5\xbd-plain-ascii-text";
  EXPECT_EQ(escaped(han), "\"" + han + "\"");
}

TEST(json_text, clip_bounds_quoted_input_at_a_character_boundary) {
  EXPECT_EQ(clip("short"), "short");
  EXPECT_EQ(clip(std::string(64, 'a')), std::string(64, 'a'));
  EXPECT_EQ(clip(std::string(65, 'a')), std::string(64, 'a') + "...");
  // 21 three-byte characters are 63 bytes; the 22nd would cross 64, so it is left out whole.
  std::string han;
  for (int i = 0; i < 30; ++i) han += "\xe4\xbd\xa0";
  EXPECT_EQ(clip(han), han.substr(0, 63) + "...");
  EXPECT_EQ(clip(han, 3), "\xe4\xbd\xa0...");
  EXPECT_EQ(clip(han, 2), "...");
}

}  // namespace
}  // namespace callrec
