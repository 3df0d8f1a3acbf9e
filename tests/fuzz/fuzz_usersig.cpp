// libFuzzer target for the UserSig codec (untrusted query parameter): decode and verify must answer a value for any
// bytes, and whatever decodes must survive a round trip through make_usersig.
// An input starting with '{' or '[' (never the first character of a token) is a JSON payload: the harness compresses
// and encodes it first, so the fuzzer reaches the field checks without having to discover zlib and base64.
#include <zlib.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "auth/base64.h"
#include "auth/usersig.h"
#include "auth/usersig_cache.h"

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace callrec::auth;
  std::string_view token(reinterpret_cast<const char*>(data), size);
  std::string made;
  if (size > 0 && (data[0] == '{' || data[0] == '[')) {
    uLongf bound = compressBound(static_cast<uLong>(size));
    std::string compressed(bound, '\0');
    check(compress2(reinterpret_cast<Bytef*>(compressed.data()), &bound, data, static_cast<uLong>(size), 6) == Z_OK);
    compressed.resize(bound);
    made = base64_encode(compressed, base64_alphabet::usersig);
    token = made;
  }
  constexpr std::string_view key = "5bd2850fff3ecb11d7c805251c51ee463a25727bddc2385f3fa8bfee1bb93b5e";
  constexpr std::uint32_t sdkappid = 1400000001;
  constexpr std::int64_t now = 1700000000;

  const auto decoded = decode_usersig(token);
  const auto verified = verify_usersig(token, key, sdkappid, "administrator", now);
  if (!decoded.has_value()) {
    check(!verified.has_value() && verified.error().code == decoded.error().code);
    check(decoded.error().message.size() < 200);
    return 0;
  }
  check(!verified.has_value() || verified.value() == decoded.value());

  // The cache answers as the uncached path does.
  static usersig_verifier verifier(1024);
  const auto cached = verifier.verify(token, key, sdkappid, "administrator", now);
  check(cached.has_value() == verified.has_value());

  // Re-issuing the decoded claims gives a token that decodes to the same claims and verifies with that key (unless
  // the re-issued payload grew past the size limits: padding is added, escapes may differ).
  const usersig_claims& c = decoded.value();
  const std::string again = make_usersig(key, c.sdkappid, c.identifier, c.time, c.expire, c.userbuf);
  const auto round = verify_usersig(again, key, c.sdkappid, c.identifier, c.time);
  if (round.has_value()) {
    check(c.expire >= 0 && round.value() == c);
  } else {
    const auto& e = round.error();
    check((e.code == callrec::errc::usersig_expired && c.expire < 0) ||
          e.message.find("larger than") != std::string::npos || e.message.find("too long") != std::string::npos);
  }
  return 0;
}
