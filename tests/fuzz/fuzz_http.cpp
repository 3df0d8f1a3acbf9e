// Fuzzes the HTTP/1.1 request parser with the server's limits (pipelined requests included), and checks
// - that parse_plain_request, wherever it takes a request, reads it exactly as Beast's parser (request_reader)
//   does (differential);
// - that a request either parser takes has sound framing (RFC 9112): in its head, one Host field (HTTP/1.1;
//   at most one in HTTP/1.0), and no Transfer-Encoding but a single "chunked" in HTTP/1.1, so that what a
//   proxy reads as a body is never read here as a second request. The head is read independently of both
//   parsers, line by line.
#include <cstddef>
#include <algorithm>
#include <cstdint>
#include <string_view>

#include <boost/beast/core/string.hpp>

#include "http/request_parser.h"

namespace {

std::string_view trimmed(std::string_view v) {
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
  return v;
}

// Traps unless the head of a request that a parser accepted (`consumed` bytes of `bytes`) is sound.
void check_framing(std::string_view bytes, std::size_t consumed, int version) {
  const std::size_t head_end = bytes.find("\r\n\r\n");
  if (head_end == std::string_view::npos || head_end + 4 > consumed) __builtin_trap();
  std::string_view head = bytes.substr(0, head_end + 2);
  int hosts = 0, codings = 0;
  bool chunked_only = true;
  head.remove_prefix(std::min(head.size(), head.find("\r\n") + 2));  // the request line
  while (!head.empty()) {
    const std::size_t eol = head.find("\r\n");
    const std::string_view line = head.substr(0, eol);
    head.remove_prefix(eol + 2);
    const std::size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    const std::string_view name = line.substr(0, colon);
    if (boost::beast::iequals(name, "host")) ++hosts;
    if (boost::beast::iequals(name, "transfer-encoding")) {
      // A list (RFC 9110 5.6.1): empty elements do not count; "chunked," is one coding.
      std::string_view list = line.substr(colon + 1);
      for (std::size_t from = 0; from <= list.size();) {
        const std::size_t comma = std::min(list.find(',', from), list.size());
        const std::string_view item = trimmed(list.substr(from, comma - from));
        from = comma + 1;
        if (item.empty()) continue;
        ++codings;
        chunked_only = chunked_only && boost::beast::iequals(item, "chunked");
      }
    }
  }
  if (hosts > 1 || (version == 11 && hosts == 0)) __builtin_trap();
  if (codings > 1 || (codings == 1 && (!chunked_only || version == 10))) __builtin_trap();
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
  bool fast_keep = false;
  const auto beast = callrec::http::parse_with_beast(bytes, limits, slow);
  if (beast.done && !beast.error) check_framing(bytes, beast.consumed, slow.version);
  if (std::size_t n = callrec::http::parse_plain_request(bytes, limits, fast, fast_keep)) {
    check_framing(bytes, n, fast.version);
    const std::size_t m = beast.done && !beast.error ? beast.consumed : 0;
    if (m != n || fast.verb != slow.verb || fast.version != slow.version || fast.target != slow.target ||
        fast.body != slow.body || fast_keep != beast.keep_alive) {
      __builtin_trap();
    }
  }
  return 0;
}
