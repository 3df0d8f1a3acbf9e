// UserSig codec (SPEC section 2): official npm tokens, hostile tokens, and the caching verifier.
#include "auth/usersig.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <zlib.h>

#include <atomic>
#include <boost/json.hpp>
#include <cstdint>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "auth/base64.h"
#include "auth/usersig_cache.h"

namespace callrec::auth {
namespace {

namespace json = boost::json;

constexpr std::string_view key = "5bd2850fff3ecb11d7c805251c51ee463a25727bddc2385f3fa8bfee1bb93b5e";
constexpr std::uint32_t appid = 1400000001;
constexpr std::int64_t t0 = 1700000000;

// ---- helpers: build tokens by hand ----------------------------------------------------------------------------

std::string deflate(std::string_view data, int level) {
  uLongf size = compressBound(static_cast<uLong>(data.size()));
  std::string out(size, '\0');
  EXPECT_EQ(compress2(reinterpret_cast<Bytef*>(out.data()), &size, reinterpret_cast<const Bytef*>(data.data()),
                      static_cast<uLong>(data.size()), level),
            Z_OK);
  out.resize(size);
  return out;
}

std::string inflate(std::string_view data) {
  std::string out(1 << 20, '\0');
  uLongf size = out.size();
  EXPECT_EQ(uncompress(reinterpret_cast<Bytef*>(out.data()), &size, reinterpret_cast<const Bytef*>(data.data()),
                       static_cast<uLong>(data.size())),
            Z_OK);
  out.resize(size);
  return out;
}

// A token whose payload is exactly `payload` (any bytes), compressed at `level`.
std::string token_of(std::string_view payload, int level = Z_DEFAULT_COMPRESSION) {
  return base64_encode(deflate(payload, level), base64_alphabet::usersig);
}

// The JSON text inside a token.
std::string payload_of(std::string_view token) {
  const auto compressed = base64_decode(token, base64_alphabet::usersig);
  EXPECT_TRUE(compressed.has_value());
  return inflate(compressed.value_or(""));
}

std::string hmac_base64(std::string_view k, std::string_view content) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  std::size_t n = 0;
  EXPECT_NE(EVP_Q_mac(nullptr, "HMAC", nullptr, "SHA256", nullptr, k.data(), k.size(),
                      reinterpret_cast<const unsigned char*>(content.data()), content.size(), mac, sizeof mac, &n),
            nullptr);
  return base64_encode(std::string_view(reinterpret_cast<const char*>(mac), n));
}

std::string content_of(std::string_view id, std::string_view sdkappid, std::string_view time, std::string_view expire) {
  return "TLS.identifier:" + std::string(id) + "\nTLS.sdkappid:" + std::string(sdkappid) +
         "\nTLS.time:" + std::string(time) + "\nTLS.expire:" + std::string(expire) + "\n";
}

// A JSON object of the fields of a valid token for (appid, "alice", t0, 3600), signed with `key`.
json::object signed_fields() {
  json::object o;
  o["TLS.ver"] = "2.0";
  o["TLS.identifier"] = "alice";
  o["TLS.sdkappid"] = appid;
  o["TLS.time"] = t0;
  o["TLS.expire"] = 3600;
  o["TLS.sig"] = hmac_base64(key, content_of("alice", "1400000001", "1700000000", "3600"));
  return o;
}

// Serialises `o` with its keys in the order given (fields not listed are left out).
std::string ordered_json(const json::object& o, const std::vector<std::string>& order) {
  std::string out = "{";
  for (const auto& k : order) {
    if (out.size() > 1) out += ",";
    out += json::serialize(json::value(k)) + ":" + json::serialize(o.at(k));
  }
  return out + "}";
}

const std::vector<std::string> npm_order = {"TLS.ver",  "TLS.identifier", "TLS.sdkappid",
                                            "TLS.time", "TLS.expire",     "TLS.sig"};

std::string str(const json::value& v) { return std::string(v.as_string().data(), v.as_string().size()); }

void expect_error(const result<usersig_claims>& r, errc code, std::string_view message_part) {
  ASSERT_FALSE(r.has_value()) << "expected failure containing: " << message_part;
  EXPECT_EQ(r.error().code, code) << r.error().message;
  EXPECT_NE(r.error().message.find(message_part), std::string::npos) << r.error().message;
  EXPECT_LE(r.error().message.size(), 120u) << "messages must not echo input";
}

// ---- the npm fixtures ------------------------------------------------------------------------------------------

struct npm_token {
  std::string kind;
  std::uint32_t sdkappid;
  std::string key;
  std::string identifier;
  std::int64_t time;
  std::int64_t expire;
  std::optional<std::string> userbuf;  // raw bytes
  std::string token;
};

const std::vector<npm_token>& npm_tokens() {
  static const std::vector<npm_token> tokens = [] {
    std::ifstream in(CALLREC_TEST_DATA "/usersig/npm_tokens.json");
    std::stringstream text;
    text << in.rdbuf();
    const json::value doc = json::parse(text.str());
    std::vector<npm_token> out;
    for (const auto& v : doc.at("tokens").as_array()) {
      const auto& o = v.as_object();
      npm_token t{str(o.at("kind")),
                  static_cast<std::uint32_t>(o.at("sdkappid").to_number<std::uint64_t>()),
                  str(o.at("key")),
                  str(o.at("identifier")),
                  o.at("time").to_number<std::int64_t>(),
                  o.at("expire").to_number<std::int64_t>(),
                  std::nullopt,
                  str(o.at("token"))};
      if (const auto* ub = o.if_contains("userbuf_base64")) t.userbuf = base64_decode(str(*ub));
      out.push_back(std::move(t));
    }
    return out;
  }();
  return tokens;
}

TEST(usersig_npm, fixtures_are_loaded) {
  ASSERT_GE(npm_tokens().size(), 8u);
  int with_userbuf = 0;
  for (const auto& t : npm_tokens()) with_userbuf += t.userbuf.has_value();
  EXPECT_GE(with_userbuf, 2);
}

TEST(usersig_npm, every_fixture_verifies_at_its_time) {
  for (const auto& t : npm_tokens()) {
    SCOPED_TRACE(t.identifier + " " + t.kind);
    const auto r = verify_usersig(t.token, t.key, t.sdkappid, t.identifier, t.time);
    ASSERT_TRUE(r.has_value()) << r.error().message;
    EXPECT_EQ(r->identifier, t.identifier);
    EXPECT_EQ(r->sdkappid, t.sdkappid);
    EXPECT_EQ(r->time, t.time);
    EXPECT_EQ(r->expire, t.expire);
    EXPECT_EQ(r->userbuf, t.userbuf);
  }
}

TEST(usersig_npm, expiry_is_inclusive_of_time_plus_expire) {
  for (const auto& t : npm_tokens()) {
    SCOPED_TRACE(t.identifier);
    EXPECT_TRUE(verify_usersig(t.token, t.key, t.sdkappid, t.identifier, t.time + t.expire).has_value());
    expect_error(verify_usersig(t.token, t.key, t.sdkappid, t.identifier, t.time + t.expire + 1), errc::usersig_expired,
                 "usersig: expired");
  }
}

TEST(usersig_npm, signature_recomputes_from_decoded_claims) {
  for (const auto& t : npm_tokens()) {
    SCOPED_TRACE(t.identifier);
    const auto claims = decode_usersig(t.token);
    ASSERT_TRUE(claims.has_value()) << claims.error().message;
    const json::value payload = json::parse(payload_of(t.token));
    EXPECT_EQ(usersig_signature(t.key, *claims), str(payload.at("TLS.sig")));
  }
}

TEST(usersig_npm, make_usersig_writes_the_npm_payload) {
  // Same JSON text as the npm package (so the same bytes before compression); the compressed bytes depend on the
  // zlib build (node bundles its own), so they are not compared.
  for (const auto& t : npm_tokens()) {
    SCOPED_TRACE(t.identifier);
    const std::string ours = make_usersig(t.key, t.sdkappid, t.identifier, t.time, t.expire, t.userbuf);
    EXPECT_EQ(payload_of(ours), payload_of(t.token));
  }
}

TEST(usersig_npm, recompressed_at_any_level) {
  for (const auto& t : npm_tokens()) {
    for (const int level : {0, 1, 9}) {
      SCOPED_TRACE(t.identifier + " level " + std::to_string(level));
      const std::string token = token_of(payload_of(t.token), level);
      const auto r = verify_usersig(token, t.key, t.sdkappid, t.identifier, t.time);
      EXPECT_TRUE(r.has_value()) << r.error().message;
    }
  }
}

TEST(usersig_npm, padding_may_be_missing) {
  int stripped = 0;
  for (const auto& t : npm_tokens()) {
    std::string token = t.token;
    while (!token.empty() && token.back() == '_') token.pop_back();
    stripped += token.size() != t.token.size();
    EXPECT_TRUE(verify_usersig(token, t.key, t.sdkappid, t.identifier, t.time).has_value());
  }
  EXPECT_GT(stripped, 0);
}

TEST(usersig_npm, wrong_key_identifier_or_app_is_invalid) {
  const auto& t = npm_tokens().front();
  expect_error(verify_usersig(t.token, "another-key", t.sdkappid, t.identifier, t.time), errc::usersig_invalid,
               "usersig: signature mismatch");
  expect_error(verify_usersig(t.token, std::string(t.key) + "0", t.sdkappid, t.identifier, t.time),
               errc::usersig_invalid, "usersig: signature mismatch");
  expect_error(verify_usersig(t.token, t.key, t.sdkappid, t.identifier + "x", t.time), errc::usersig_invalid,
               "usersig: issued for another identifier");
  expect_error(verify_usersig(t.token, t.key, t.sdkappid + 1, t.identifier, t.time), errc::usersig_invalid,
               "usersig: issued for another sdkappid");
}

TEST(usersig_npm, signature_is_checked_before_expiry) {
  // A forged token learns nothing about expiry: a bad signature answers 70002 even long after expiry.
  const auto& t = npm_tokens().front();
  expect_error(verify_usersig(t.token, "wrong", t.sdkappid, t.identifier, t.time + t.expire + 100),
               errc::usersig_invalid, "signature mismatch");
  // And a mismatch of identifier answers 70002 rather than 70003.
  expect_error(verify_usersig(t.token, t.key, t.sdkappid, "someone-else", t.time + t.expire + 100),
               errc::usersig_invalid, "another identifier");
}

TEST(usersig_npm, every_truncation_is_invalid) {
  const auto& t = npm_tokens().front();
  for (std::size_t n = 0; n + 1 < t.token.size(); ++n) {
    const std::string_view prefix = std::string_view(t.token).substr(0, n);
    const auto r = verify_usersig(prefix, t.key, t.sdkappid, t.identifier, t.time);
    ASSERT_FALSE(r.has_value()) << n;
    EXPECT_EQ(r.error().code, errc::usersig_invalid);
  }
}

TEST(usersig_npm, every_single_character_change_is_invalid) {
  const auto& t = npm_tokens()[1];
  std::string token = t.token;
  for (std::size_t i = 0; i < token.size(); ++i) {
    const char saved = token[i];
    token[i] = saved == 'A' ? 'B' : 'A';
    const auto r = verify_usersig(token, t.key, t.sdkappid, t.identifier, t.time);
    // Changing only the unused low bits of the last character may leave the bytes intact.
    if (r.has_value()) {
      EXPECT_EQ(base64_decode(token, base64_alphabet::usersig), base64_decode(t.token, base64_alphabet::usersig)) << i;
    } else {
      EXPECT_EQ(r.error().code, errc::usersig_invalid) << i;
    }
    token[i] = saved;
  }
}

// ---- generated tokens ------------------------------------------------------------------------------------------

TEST(usersig, round_trip) {
  const std::string token = make_usersig(key, appid, "alice", t0, 86400);
  const auto decoded = decode_usersig(token);
  ASSERT_TRUE(decoded.has_value()) << decoded.error().message;
  EXPECT_EQ(*decoded, (usersig_claims{"alice", appid, t0, 86400, std::nullopt}));
  const auto verified = verify_usersig(token, key, appid, "alice", t0 + 10);
  ASSERT_TRUE(verified.has_value()) << verified.error().message;
  EXPECT_EQ(*verified, *decoded);
}

TEST(usersig, round_trip_of_awkward_identifiers_and_userbufs) {
  const std::vector<std::string> ids = {"",
                                        "a",
                                        "with space",
                                        "quote\"back\\slash",
                                        std::string("nul\0ctl\x01\x1f", 10),
                                        "\xe7\x94\xa8\xe6\x88\xb7",
                                        "tab\tnew\nline",
                                        std::string(300, 'x')};
  const std::vector<std::optional<std::string>> bufs = {std::nullopt, std::string(), std::string("\0\xff\x80", 3),
                                                        std::string(1000, '\x7f')};
  for (const auto& id : ids) {
    for (const auto& buf : bufs) {
      const std::string token = make_usersig("k", 7, id, t0, 60, buf);
      const auto r = verify_usersig(token, "k", 7, id, t0);
      ASSERT_TRUE(r.has_value()) << r.error().message;
      EXPECT_EQ(*r, (usersig_claims{id, 7, t0, 60, buf}));
    }
  }
}

TEST(usersig, signature_matches_an_independent_hmac) {
  const std::vector<std::string> keys = {"", "k", std::string(64, 'a'), std::string(65, 'b'), std::string(200, 'c')};
  for (const auto& k : keys) {
    EXPECT_EQ(usersig_signature(k, usersig_claims{"bob", 42, 5, -1, std::nullopt}),
              hmac_base64(k, content_of("bob", "42", "5", "-1")));
    EXPECT_EQ(usersig_signature(k, usersig_claims{"bob", 42, 5, 6, std::string("\x01\x02\x03", 3)}),
              hmac_base64(k, content_of("bob", "42", "5", "6") + "TLS.userbuf:AQID\n"));
  }
}

TEST(usersig, many_keys_on_one_thread) {
  // Per-thread HMAC key states are bounded; past the bound they are rebuilt, with the same answers.
  for (int i = 0; i < 1100; ++i) {
    const std::string k = "key-" + std::to_string(i);
    ASSERT_EQ(usersig_signature(k, usersig_claims{"u", 1, 2, 3, std::nullopt}),
              hmac_base64(k, content_of("u", "1", "2", "3")));
  }
}

TEST(usersig, keys_in_any_order_and_unknown_keys_ignored) {
  const json::object o = signed_fields();
  const std::vector<std::vector<std::string>> orders = {
      npm_order,
      {"TLS.sig", "TLS.expire", "TLS.time", "TLS.sdkappid", "TLS.identifier", "TLS.ver"},
      {"TLS.ver", "TLS.identifier", "TLS.sdkappid", "TLS.expire", "TLS.time", "TLS.sig"},  // the C++ generator
      {"TLS.identifier", "TLS.time", "TLS.sig", "TLS.ver", "TLS.expire", "TLS.sdkappid"},
  };
  for (const auto& order : orders) {
    const auto r = verify_usersig(token_of(ordered_json(o, order)), key, appid, "alice", t0);
    EXPECT_TRUE(r.has_value()) << r.error().message;
  }
  json::object extra = o;
  extra["TLS.future"] = json::array{1, 2};
  extra["other"] = "x";
  EXPECT_TRUE(verify_usersig(token_of(json::serialize(extra)), key, appid, "alice", t0).has_value());
  // Whitespace in the JSON is fine too: the payload is parsed, not matched.
  std::string spaced = json::serialize(o);
  spaced = " \n" + spaced.insert(1, "\t ") + " ";
  EXPECT_TRUE(verify_usersig(token_of(spaced), key, appid, "alice", t0).has_value());
}

TEST(usersig, numbers_as_numeric_strings) {
  // Some generators (PHP, Python with a string expire) emit numbers as strings; the signature covers the text.
  json::object o = signed_fields();
  o["TLS.sdkappid"] = "1400000001";
  o["TLS.time"] = "1700000000";
  o["TLS.expire"] = "3600";
  auto r = verify_usersig(token_of(json::serialize(o)), key, appid, "alice", t0 + 3600);
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(*r, (usersig_claims{"alice", appid, t0, 3600, std::nullopt}));

  o["TLS.expire"] = "03600";  // signed as written
  o["TLS.sig"] = hmac_base64(key, content_of("alice", "1400000001", "1700000000", "03600"));
  r = verify_usersig(token_of(json::serialize(o)), key, appid, "alice", t0);
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->expire, 3600);
}

TEST(usersig, userbuf_is_signed_as_written) {
  json::object o = signed_fields();
  o["TLS.userbuf"] = "AQID";
  o["TLS.sig"] = hmac_base64(key, content_of("alice", "1400000001", "1700000000", "3600") + "TLS.userbuf:AQID\n");
  auto r = verify_usersig(token_of(json::serialize(o)), key, appid, "alice", t0);
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->userbuf, std::string("\x01\x02\x03", 3));

  // A userbuf that was not signed does not verify.
  o["TLS.userbuf"] = "AQIE";
  expect_error(verify_usersig(token_of(json::serialize(o)), key, appid, "alice", t0), errc::usersig_invalid,
               "signature mismatch");
  // null counts as absent.
  o = signed_fields();
  o["TLS.userbuf"] = nullptr;
  r = verify_usersig(token_of(json::serialize(o)), key, appid, "alice", t0);
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_FALSE(r->userbuf.has_value());
}

TEST(usersig, expiry_arithmetic_saturates) {
  constexpr auto max = std::numeric_limits<std::int64_t>::max();
  constexpr auto min = std::numeric_limits<std::int64_t>::min();
  EXPECT_EQ(usersig_expires_at({"", 0, max, 10, std::nullopt}), max);
  EXPECT_EQ(usersig_expires_at({"", 0, min, -10, std::nullopt}), min);
  EXPECT_EQ(usersig_expires_at({"", 0, 100, 20, std::nullopt}), 120);
  const std::string forever = make_usersig(key, appid, "alice", max, max);
  EXPECT_TRUE(verify_usersig(forever, key, appid, "alice", max).has_value());
  const std::string never = make_usersig(key, appid, "alice", t0, -1);
  expect_error(verify_usersig(never, key, appid, "alice", t0), errc::usersig_expired, "expired");
}

// ---- hostile tokens --------------------------------------------------------------------------------------------

TEST(usersig_hostile, not_base64) {
  expect_error(decode_usersig(""), errc::usersig_invalid, "usersig: empty");
  for (const char* bad : {"!!!!", "eJw 9", "eJw9\n", "eJyr+gr", "eJyr/gr", "eJyr=", "e", "eJyrV", "eJ_yr", "eJ___"}) {
    expect_error(decode_usersig(bad), errc::usersig_invalid, "usersig: not base64");
  }
}

TEST(usersig_hostile, not_zlib) {
  expect_error(decode_usersig(base64_encode("hello world", base64_alphabet::usersig)), errc::usersig_invalid,
               "usersig: not a zlib stream");
  expect_error(decode_usersig("AAAA"), errc::usersig_invalid, "usersig: not a zlib stream");
  // A raw deflate stream (no zlib header) is not what generators produce.
  const std::string z = deflate("{}", 6);
  expect_error(decode_usersig(base64_encode(z.substr(2), base64_alphabet::usersig)), errc::usersig_invalid,
               "usersig: not a zlib stream");
  // Trailing bytes after the stream.
  expect_error(
      decode_usersig(base64_encode(deflate(json::serialize(signed_fields()), 6) + "x", base64_alphabet::usersig)),
      errc::usersig_invalid, "usersig: data after the zlib stream");
  // A corrupted checksum.
  std::string bad_sum = deflate(json::serialize(signed_fields()), 6);
  bad_sum.back() = static_cast<char>(bad_sum.back() ^ 1);
  expect_error(decode_usersig(base64_encode(bad_sum, base64_alphabet::usersig)), errc::usersig_invalid,
               "usersig: not a zlib stream");
  // A truncated stream.
  const std::string full = deflate(json::serialize(signed_fields()), 6);
  expect_error(decode_usersig(base64_encode(full.substr(0, full.size() / 2), base64_alphabet::usersig)),
               errc::usersig_invalid, "usersig: truncated zlib stream");
}

TEST(usersig_hostile, decompression_bomb_is_refused) {
  // 8 MiB of JSON compresses to ~8 KiB; it must be refused after inflating at most the cap.
  std::string big = R"({"TLS.ver":"2.0","pad":")" + std::string(8 << 20, 'a') + "\"}";
  const std::string z = deflate(big, 9);
  const std::string token = base64_encode(z, base64_alphabet::usersig);
  ASSERT_LE(token.size(), max_usersig_token_size) << "the bomb must get past the size check to test the inflate cap";
  expect_error(decode_usersig(token), errc::usersig_invalid, "usersig: payload larger than 8192 bytes");

  // Exactly at the cap is fine. (This case found Boost.JSON 1.81 reading input that ends where its parser object
  // begins as incomplete, boostorg/json#814: see decode in usersig.cpp.)
  json::object o = signed_fields();
  o["pad"] = std::string(max_usersig_payload_size - json::serialize(o).size() - 9, ' ');
  const std::string exact = json::serialize(o);
  ASSERT_EQ(exact.size(), max_usersig_payload_size);
  const auto at_cap = verify_usersig(token_of(exact), key, appid, "alice", t0);
  EXPECT_TRUE(at_cap.has_value()) << at_cap.error().message;
  o["pad"] = std::string(o["pad"].as_string().size() + 1, ' ');
  expect_error(decode_usersig(token_of(json::serialize(o))), errc::usersig_invalid, "payload larger than");
}

TEST(usersig_hostile, huge_token_is_refused_without_echo) {
  const std::string huge(1 << 20, 'A');
  expect_error(decode_usersig(huge), errc::usersig_invalid, "usersig: too long");
  expect_error(verify_usersig(huge, key, appid, "alice", t0), errc::usersig_invalid, "usersig: too long");
}

TEST(usersig_hostile, payload_not_a_json_object) {
  for (const char* payload : {"[]", "\"x\"", "1", "null", "true", "[{\"TLS.ver\":\"2.0\"}]"}) {
    expect_error(decode_usersig(token_of(payload)), errc::usersig_invalid, "usersig: payload is not a JSON object");
  }
  for (const char* payload : {"", "{", "{\"TLS.ver\":}", "{\"a\":1}x", "\xff\xfe", "{\"TLS.ver\":\"\xc3\x28\"}"}) {
    expect_error(decode_usersig(token_of(payload)), errc::usersig_invalid, "usersig: payload is not JSON");
  }
  // Deep nesting stops at the parser's depth limit instead of recursing.
  expect_error(decode_usersig(token_of(std::string(4000, '[') + std::string(4000, ']'))), errc::usersig_invalid,
               "usersig: payload is not JSON");
}

TEST(usersig_hostile, missing_fields_are_named) {
  const json::object full = signed_fields();
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"TLS.ver", "usersig: TLS.ver missing"},           {"TLS.identifier", "usersig: TLS.identifier missing"},
      {"TLS.sdkappid", "usersig: TLS.sdkappid missing"}, {"TLS.time", "usersig: TLS.time missing"},
      {"TLS.expire", "usersig: TLS.expire missing"},     {"TLS.sig", "usersig: TLS.sig missing"},
  };
  for (const auto& [field, message] : cases) {
    json::object o = full;
    o.erase(field);
    expect_error(decode_usersig(token_of(json::serialize(o))), errc::usersig_invalid, message);
  }
  expect_error(decode_usersig(token_of("{}")), errc::usersig_invalid, "usersig: TLS.ver missing");
}

TEST(usersig_hostile, wrong_field_types_are_named) {
  struct bad_field {
    std::string field;
    json::value value;
    std::string message;
  };
  const std::vector<bad_field> cases = {
      {"TLS.ver", "1.0", "TLS.ver is not \"2.0\""},
      {"TLS.ver", 2.0, "TLS.ver is not \"2.0\""},
      {"TLS.identifier", 12, "TLS.identifier is not a string"},
      {"TLS.identifier", nullptr, "TLS.identifier is not a string"},
      {"TLS.sdkappid", -1, "TLS.sdkappid out of range"},
      {"TLS.sdkappid", 4294967296, "TLS.sdkappid out of range"},
      {"TLS.sdkappid", "4294967296", "TLS.sdkappid out of range"},
      {"TLS.sdkappid", 1400000001.0, "TLS.sdkappid is not an integer"},
      {"TLS.sdkappid", "14x", "TLS.sdkappid is not an integer"},
      {"TLS.sdkappid", "", "TLS.sdkappid is not an integer"},
      {"TLS.sdkappid", " 1", "TLS.sdkappid is not an integer"},
      {"TLS.sdkappid", "+1", "TLS.sdkappid is not an integer"},
      {"TLS.sdkappid", json::array{}, "TLS.sdkappid is not an integer"},
      {"TLS.time", 1.5, "TLS.time is not an integer"},
      {"TLS.time", true, "TLS.time is not an integer"},
      {"TLS.time", 18446744073709551615ull, "TLS.time out of range"},
      {"TLS.time", "99999999999999999999", "TLS.time out of range"},
      {"TLS.expire", json::object{}, "TLS.expire is not an integer"},
      {"TLS.userbuf", 5, "TLS.userbuf is not a string"},
      {"TLS.userbuf", "not base64!", "TLS.userbuf is not base64"},
      {"TLS.userbuf", "AQ*D", "TLS.userbuf is not base64"},
      {"TLS.sig", 5, "TLS.sig is not a string"},
      {"TLS.sig", "", "TLS.sig is not a base64 HMAC-SHA256"},
      {"TLS.sig", "AAAA", "TLS.sig is not a base64 HMAC-SHA256"},
      {"TLS.sig", json::string(std::string(43, 'A') + "*"), "TLS.sig is not a base64 HMAC-SHA256"},
      {"TLS.sig", json::string(std::string(48, 'A')), "TLS.sig is not a base64 HMAC-SHA256"},
  };
  for (const auto& [field, value, message] : cases) {
    SCOPED_TRACE(field + " = " + json::serialize(value));
    json::object o = signed_fields();
    o[field] = value;
    expect_error(decode_usersig(token_of(json::serialize(o))), errc::usersig_invalid, message);
  }
}

TEST(usersig_hostile, duplicate_fields_are_refused) {
  // Parsers disagree on which duplicate wins; a token that could be read two ways is refused.
  const std::string one = json::serialize(signed_fields());
  for (const char* field : {"TLS.ver", "TLS.identifier", "TLS.sig", "TLS.time"}) {
    const std::string twice = one.substr(0, one.size() - 1) + ",\"" + field + "\":\"x\"}";
    expect_error(decode_usersig(token_of(twice)), errc::usersig_invalid,
                 std::string("usersig: ") + field + " given twice");
  }
  // Nested objects may repeat names freely: only the top level matters.
  json::object o = signed_fields();
  o["nested"] = json::object{{"TLS.sig", 1}, {"TLS.ver", json::array{"TLS.sig"}}};
  o["list"] = json::array{json::object{{"TLS.identifier", "mallory"}}, json::object{{"TLS.identifier", "eve"}}};
  const auto r = verify_usersig(token_of(json::serialize(o)), key, appid, "alice", t0);
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->identifier, "alice");
}

TEST(usersig_hostile, escaped_strings_are_unescaped) {
  // The identifier is compared and signed after JSON unescaping, whatever escapes the generator chose.
  json::object o = signed_fields();
  std::string text = ordered_json(o, npm_order);
  const std::string plain = "\"TLS.identifier\":\"alice\"";
  text.replace(text.find(plain), plain.size(), "\"TLS.identifier\":\"\\u0061l\\u0069ce\"");
  const auto r = verify_usersig(token_of(text), key, appid, "alice", t0);
  ASSERT_TRUE(r.has_value()) << r.error().message;
  // An escaped key names the same field.
  text = ordered_json(o, npm_order);
  text.replace(text.find("\"TLS.sig\""), 9, "\"TLS.\\u0073ig\"");
  EXPECT_TRUE(verify_usersig(token_of(text), key, appid, "alice", t0).has_value());
}

TEST(usersig_hostile, a_forged_signature_is_invalid) {
  json::object o = signed_fields();
  o["TLS.sig"] = base64_encode(std::string(32, '\0'));
  expect_error(verify_usersig(token_of(json::serialize(o)), key, appid, "alice", t0), errc::usersig_invalid,
               "signature mismatch");
  // Claims edited after signing.
  o = signed_fields();
  o["TLS.expire"] = 999999;
  expect_error(verify_usersig(token_of(json::serialize(o)), key, appid, "alice", t0), errc::usersig_invalid,
               "signature mismatch");
  o = signed_fields();
  o["TLS.identifier"] = "administrator";
  expect_error(verify_usersig(token_of(json::serialize(o)), key, appid, "administrator", t0), errc::usersig_invalid,
               "signature mismatch");
}

// ---- base64 ----------------------------------------------------------------------------------------------------

TEST(base64, rfc4648_vectors) {
  const std::vector<std::pair<std::string, std::string>> v = {{"", ""},
                                                              {"f", "Zg=="},
                                                              {"fo", "Zm8="},
                                                              {"foo", "Zm9v"},
                                                              {"foob", "Zm9vYg=="},
                                                              {"fooba", "Zm9vYmE="},
                                                              {"foobar", "Zm9vYmFy"}};
  for (const auto& [plain, encoded] : v) {
    EXPECT_EQ(base64_encode(plain), encoded);
    EXPECT_EQ(base64_decode(encoded), plain);
    std::string unpadded = encoded;
    while (!unpadded.empty() && unpadded.back() == '=') unpadded.pop_back();
    EXPECT_EQ(base64_decode(unpadded), plain);
  }
  EXPECT_EQ(base64_encode("\xfb\xff\xfe", base64_alphabet::standard), "+//+");
  EXPECT_EQ(base64_encode("\xfb\xff\xfe", base64_alphabet::usersig), "*--*");
  EXPECT_EQ(base64_encode("f", base64_alphabet::usersig), "Zg__");
  EXPECT_EQ(base64_decode("*--*", base64_alphabet::usersig), "\xfb\xff\xfe");
  EXPECT_EQ(base64_decode("Zg__", base64_alphabet::usersig), "f");
}

TEST(base64, refuses_malformed_text) {
  for (const char* bad : {"Z", "Zg=a", "Zg===", "=Zg=", "Zm9v YmFy", "Zm9v\n", "Zm9*", "Zg_="}) {
    EXPECT_FALSE(base64_decode(bad).has_value()) << bad;
  }
  EXPECT_FALSE(base64_decode("Zm9+", base64_alphabet::usersig).has_value());
  EXPECT_FALSE(base64_decode("Zm9/", base64_alphabet::usersig).has_value());
  EXPECT_FALSE(base64_decode("Zg==", base64_alphabet::usersig).has_value());
  unsigned char out[2];
  EXPECT_FALSE(base64_decode_into("Zm9v", base64_alphabet::standard, out, sizeof out).has_value());
}

TEST(base64, all_byte_values_round_trip) {
  std::string all;
  for (int i = 0; i < 256; ++i) all.push_back(static_cast<char>(i));
  for (std::size_t n = 0; n <= all.size(); n += 37) {
    const std::string part = all.substr(0, n);
    EXPECT_EQ(base64_decode(base64_encode(part)), part);
    EXPECT_EQ(base64_decode(base64_encode(part, base64_alphabet::usersig), base64_alphabet::usersig), part);
  }
}

// ---- the caching verifier --------------------------------------------------------------------------------------

void expect_same(const result<usersig_claims>& a, const result<usersig_claims>& b) {
  ASSERT_EQ(a.has_value(), b.has_value()) << (a ? b.error().message : a.error().message);
  if (a.has_value()) {
    EXPECT_EQ(*a, *b);
  } else {
    EXPECT_EQ(a.error().code, b.error().code);
    EXPECT_EQ(a.error().message, b.error().message);
  }
}

TEST(usersig_verifier, same_answers_as_the_uncached_path) {
  usersig_verifier verifier;
  for (int round = 0; round < 2; ++round) {  // the second round answers from the cache where it can
    for (const auto& t : npm_tokens()) {
      SCOPED_TRACE(t.identifier + " round " + std::to_string(round));
      const std::vector<std::int64_t> times = {t.time, t.time + t.expire, t.time + t.expire + 1, t.time - 100};
      for (const std::int64_t now : times) {
        expect_same(verifier.verify(t.token, t.key, t.sdkappid, t.identifier, now),
                    verify_usersig(t.token, t.key, t.sdkappid, t.identifier, now));
      }
      expect_same(verifier.verify(t.token, "wrong", t.sdkappid, t.identifier, t.time),
                  verify_usersig(t.token, "wrong", t.sdkappid, t.identifier, t.time));
      expect_same(verifier.verify(t.token, t.key, t.sdkappid, "other", t.time),
                  verify_usersig(t.token, t.key, t.sdkappid, "other", t.time));
      expect_same(verifier.verify(t.token, t.key, t.sdkappid ^ 1, t.identifier, t.time),
                  verify_usersig(t.token, t.key, t.sdkappid ^ 1, t.identifier, t.time));
      expect_same(verifier.verify(t.token.substr(0, 20), t.key, t.sdkappid, t.identifier, t.time),
                  verify_usersig(t.token.substr(0, 20), t.key, t.sdkappid, t.identifier, t.time));
    }
  }
  EXPECT_GT(verifier.hits(), 0u);
}

TEST(usersig_verifier, hit_rechecks_expiry) {
  usersig_verifier verifier;
  const std::string token = make_usersig(key, appid, "admin", t0, 100);
  ASSERT_TRUE(verifier.verify(token, key, appid, "admin", t0).has_value());
  EXPECT_EQ(verifier.size(), 1u);
  EXPECT_EQ(verifier.misses(), 1u);
  ASSERT_TRUE(verifier.verify(token, key, appid, "admin", t0 + 100).has_value());
  EXPECT_EQ(verifier.hits(), 1u);
  const auto expired = verifier.verify(token, key, appid, "admin", t0 + 101);
  expect_same(expired, verify_usersig(token, key, appid, "admin", t0 + 101));
  EXPECT_EQ(verifier.hits(), 2u);
}

TEST(usersig_verifier, failures_are_not_cached_and_keys_must_match) {
  usersig_verifier verifier;
  const std::string token = make_usersig(key, appid, "admin", t0, 100);
  EXPECT_FALSE(verifier.verify(token, "old-key", appid, "admin", t0).has_value());
  EXPECT_FALSE(verifier.verify(token, key, appid, "admin", t0 + 1000).has_value());
  EXPECT_FALSE(verifier.verify("garbage", key, appid, "admin", t0).has_value());
  EXPECT_EQ(verifier.size(), 0u);
  ASSERT_TRUE(verifier.verify(token, key, appid, "admin", t0).has_value());
  // After the app's key is rotated, the remembered success must not answer.
  EXPECT_FALSE(verifier.verify(token, "new-key", appid, "admin", t0).has_value());
  EXPECT_FALSE(verifier.verify(token, std::string(key.substr(0, 63)) + "f", appid, "admin", t0).has_value());
  EXPECT_TRUE(verifier.verify(token, key, appid, "admin", t0).has_value());
  verifier.clear();
  EXPECT_EQ(verifier.size(), 0u);
}

TEST(usersig_verifier, size_is_bounded) {
  usersig_verifier verifier(64);
  for (int i = 0; i < 1000; ++i) {
    const std::string id = "user" + std::to_string(i);
    ASSERT_TRUE(verifier.verify(make_usersig(key, appid, id, t0, 100), key, appid, id, t0).has_value());
  }
  EXPECT_LE(verifier.size(), 64u);
  EXPECT_GT(verifier.size(), 0u);
}

TEST(usersig_verifier, long_tokens_are_verified_but_not_kept) {
  usersig_verifier verifier;
  std::string noise(2000, '\0');  // incompressible, so the token is long
  std::uint32_t x = 12345;
  for (char& c : noise) c = static_cast<char>((x = x * 1103515245u + 12345u) >> 24);
  const std::string token = make_usersig(key, appid, "admin", t0, 100, noise);
  ASSERT_GT(token.size(), usersig_verifier::max_cached_token_size);
  EXPECT_TRUE(verifier.verify(token, key, appid, "admin", t0).has_value());
  EXPECT_EQ(verifier.size(), 0u);
}

TEST(usersig_verifier, concurrent_threads_agree) {
  usersig_verifier verifier(256);
  std::vector<std::string> tokens;
  for (int i = 0; i < 50; ++i) tokens.push_back(make_usersig(key, appid, "u" + std::to_string(i), t0, i));
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int th = 0; th < 4; ++th) {
    threads.emplace_back([&, th] {
      for (int n = 0; n < 2000; ++n) {
        const int i = (n * 7 + th) % 50;
        const std::int64_t now = t0 + (n % 60);
        const auto r = verifier.verify(tokens[i], key, appid, "u" + std::to_string(i), now);
        const bool should_pass = now <= t0 + i;
        if (r.has_value() != should_pass) ++wrong;
        if (!r.has_value() && r.error().code != errc::usersig_expired) ++wrong;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_GT(verifier.hits(), 0u);
}

}  // namespace
}  // namespace callrec::auth
