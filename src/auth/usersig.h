// UserSig (Tencent TLSSigAPIv2) codec, SPEC section 2: pure functions of their inputs; time is a parameter.
//
// A token is usersig-base64 (`*` `-` `_` for `+` `/` `=`) of a zlib stream of a JSON object:
//   {"TLS.ver":"2.0","TLS.identifier":..,"TLS.sdkappid":..,"TLS.time":..,"TLS.expire":..,["TLS.userbuf":..,]"TLS.sig":..}
// TLS.sig is standard base64 of HMAC-SHA256(secret key as text, content), content being
//   "TLS.identifier:" id "\n" "TLS.sdkappid:" appid "\n" "TLS.time:" time "\n" "TLS.expire:" expire "\n"
//   ["TLS.userbuf:" base64(userbuf) "\n"]
// All functions are thread-safe (per-thread zlib and HMAC state) and use about 32 KiB of stack (fixed buffers instead
// of heap allocations).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/error.h"

namespace callrec::auth {

struct usersig_claims {
  std::string identifier;
  std::uint32_t sdkappid = 0;
  std::int64_t time = 0;               // unix seconds when issued
  std::int64_t expire = 0;             // seconds of validity after `time`
  std::optional<std::string> userbuf;  // raw bytes (base64-decoded TLS.userbuf), when present

  friend bool operator==(const usersig_claims&, const usersig_claims&) = default;
};

// Limits against hostile tokens: longer tokens, or payloads inflating past the cap, are refused as invalid.
inline constexpr std::size_t max_usersig_token_size = 16 * 1024;
inline constexpr std::size_t max_usersig_payload_size = 8 * 1024;

// Unix second after which the token is expired (`time + expire`, saturated instead of overflowing).
std::int64_t usersig_expires_at(const usersig_claims& claims) noexcept;

// Decodes without checking the signature or the expiry. Fails with errc::usersig_invalid and a message naming what
// is wrong ("usersig: not base64", "usersig: TLS.sig missing", ...); never echoes the token. Lenient where generators
// differ (key order, numbers as numeric strings, missing base64 padding, unknown keys ignored), strict where a token
// could be read two ways (a TLS.* key given twice, data after the zlib stream).
result<usersig_claims> decode_usersig(std::string_view token);

// Standard base64 of the HMAC-SHA256 of the claims' content (see above), as TLS.sig carries it.
std::string usersig_signature(std::string_view key, const usersig_claims& claims);

// Full check for a request of `identifier` in app `sdkappid` whose secret is `key`, at `now_s` (unix seconds).
// Order: undecodable, bad signature, other identifier or app -> usersig_invalid; then `now_s > time + expire`
// -> usersig_expired. The signature is compared in constant time and over the exact text the signer signed.
result<usersig_claims> verify_usersig(std::string_view token, std::string_view key, std::uint32_t sdkappid,
                                      std::string_view identifier, std::int64_t now_s);

// Makes a token the way the official generators do (field order of the npm package, default zlib level), issued at
// `now_s` (unix seconds) and valid for `expire_s` seconds. `userbuf` is raw bytes. `identifier` must be UTF-8 (it
// goes into JSON text; decode refuses invalid UTF-8).
std::string make_usersig(std::string_view key, std::uint32_t sdkappid, std::string_view identifier, std::int64_t now_s,
                         std::int64_t expire_s, std::optional<std::string> userbuf = {});

}  // namespace callrec::auth
