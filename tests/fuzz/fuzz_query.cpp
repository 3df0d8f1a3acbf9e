// Fuzzes the request line: target splitting, query-string parsing and percent-decoding. A refusal's message
// must stay bounded and, written as JSON, parse back (whatever bytes the query held).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include <boost/json/parse.hpp>

#include "api/query.h"
#include "core/json_text.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  auto parts = callrec::api::split_target(in);
  auto r = callrec::api::parse_hub_query(parts.query);
  if (r) {
    // A valid answer holds only validated values.
    if (r->identifier.empty() || r->identifier.size() > 32 || r->usersig().empty()) __builtin_trap();
  } else {
    std::string out;
    callrec::append_json_string(out, r.error().message);
    boost::system::error_code ec;
    if (r.error().message.size() > 512 || !boost::json::parse(out, ec).is_string() || ec) __builtin_trap();
  }
  (void)callrec::api::percent_decode(in);
  return 0;
}
