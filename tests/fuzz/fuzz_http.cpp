// Fuzzes the HTTP/1.1 request parser with the server's limits (pipelined requests included), and checks that
// parse_plain_request, wherever it takes a request, reads it exactly as Beast's parser (request_reader) does.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "http/request_parser.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  callrec::http_limits limits;
  limits.max_header_bytes = 4096;
  limits.max_body_bytes = 8192;
  limits.max_header_count = 20;
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  auto r = callrec::http::parse_requests(bytes, limits);
  if (r.consumed > size) __builtin_trap();

  callrec::http::incoming_request fast, slow;
  bool fast_keep = false;
  if (std::size_t n = callrec::http::parse_plain_request(bytes, limits, fast, fast_keep)) {
    const auto beast = callrec::http::parse_with_beast(bytes, limits, slow);
    const std::size_t m = beast.done && !beast.error ? beast.consumed : 0;
    if (m != n || fast.verb != slow.verb || fast.version != slow.version || fast.target != slow.target ||
        fast.body != slow.body || fast_keep != beast.keep_alive) {
      __builtin_trap();
    }
  }
  return 0;
}
