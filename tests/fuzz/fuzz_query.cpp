// Fuzzes the request line: target splitting, query-string parsing and percent-decoding.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "api/query.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  auto parts = callrec::api::split_target(in);
  auto r = callrec::api::parse_hub_query(parts.query);
  if (r) {
    // A valid answer holds only validated values.
    if (r->identifier.empty() || r->identifier.size() > 32 || r->usersig().empty()) __builtin_trap();
  }
  (void)callrec::api::percent_decode(in);
  return 0;
}
