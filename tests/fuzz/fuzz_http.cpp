// Fuzzes the HTTP/1.1 request parser with the server's limits (pipelined requests included), and checks that
// parse_plain_request, wherever it takes a request, reads it exactly as Beast's parser (request_reader) does.
#include <boost/asio/buffer.hpp>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "http/request_parser.h"

namespace {

// Beast alone on `bytes`: the first request, and the bytes it took (0 if it did not finish without error).
std::size_t beast_parse(std::string_view bytes, const callrec::http_limits& limits,
                        callrec::http::incoming_request& req, bool& keep_alive) {
  callrec::http::request_reader parser(req, limits);
  std::size_t used = 0;
  boost::system::error_code ec;
  while (!parser.is_done() && used < bytes.size()) {
    std::size_t n = parser.put(boost::asio::buffer(bytes.data() + used, bytes.size() - used), ec);
    if (ec) return 0;
    if (n == 0) break;
    used += n;
  }
  // A request without a body is done once its head is; put() then took nothing more.
  if (!parser.is_done()) return 0;
  keep_alive = parser.keep_alive();
  return used;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  callrec::http_limits limits;
  limits.max_header_bytes = 4096;
  limits.max_body_bytes = 8192;
  limits.max_header_count = 20;
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  auto r = callrec::http::parse_requests(bytes, limits);
  if (r.consumed > size) __builtin_trap();

  callrec::http::incoming_request fast, slow;
  bool fast_keep = false, slow_keep = false;
  if (std::size_t n = callrec::http::parse_plain_request(bytes, limits, fast, fast_keep)) {
    std::size_t m = beast_parse(bytes, limits, slow, slow_keep);
    if (m != n || fast.verb != slow.verb || fast.version != slow.version || fast.target != slow.target ||
        fast.body != slow.body || fast_keep != slow_keep) {
      __builtin_trap();
    }
  }
  return 0;
}
