// Fuzzes the HTTP/1.1 request parser with the server's limits (pipelined requests included).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "http/request_parser.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  callrec::http_limits limits;
  limits.max_header_bytes = 4096;
  limits.max_body_bytes = 8192;
  auto r = callrec::http::parse_requests(std::string_view(reinterpret_cast<const char*>(data), size), limits);
  if (r.consumed > size) __builtin_trap();
  return 0;
}
