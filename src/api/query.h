// The v1 request line: path and the five query parameters (SPEC section 1). Pure; fuzzed.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/error.h"

namespace callrec::api {

struct target_parts {
  std::string_view path;
  std::string_view query;  // without '?'
};
target_parts split_target(std::string_view target) noexcept;

struct hub_params {
  std::uint32_t sdkappid = 0;
  std::string identifier;
  std::uint32_t random = 0;
  // The usersig (about 200 bytes) is not copied when it needs no decoding: it stays a view into the query.
  std::string_view usersig_in_query;
  std::string usersig_decoded;  // when it held a %-escape
  std::string_view usersig() const noexcept {
    return usersig_decoded.empty() ? usersig_in_query : std::string_view(usersig_decoded);
  }
};

// Validates the query string: every parameter present once, percent-decoded, in range. Unknown
// parameters are ignored (Tencent's clients add none, proxies sometimes do). The result may view `query`.
result<hub_params> parse_hub_query(std::string_view query);
// The same into `out` (no moves of the parameters through a result): the dispatcher's form.
result<void> parse_hub_query(std::string_view query, hub_params& out);

// Percent-decodes a query component; nullopt on a malformed escape.
std::optional<std::string> percent_decode(std::string_view s);

}  // namespace callrec::api
