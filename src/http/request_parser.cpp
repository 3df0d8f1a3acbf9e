#include "http/request_parser.h"

#include <algorithm>
#include <array>
#include <boost/asio/buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/error.hpp>
#include <cstdint>
#include <cstring>

namespace callrec::http {

namespace bhttp = boost::beast::http;
using boost::beast::iequals;

request_reader::request_reader(incoming_request& into, const http_limits& limits)
    : into_(into), max_fields_(limits.max_header_count) {
  header_limit(limits.max_header_bytes);
  body_limit(limits.max_body_bytes);
}

void request_reader::on_request_impl(bhttp::verb method, string_view, string_view target, int version, error_code&) {
  into_.verb = method;
  into_.version = version;
  into_.target.assign(target.data(), target.size());
}

void request_reader::on_response_impl(int, string_view, int, error_code& ec) {
  ec = bhttp::error::bad_method;  // never called for a request parser
}

namespace {

// The fault of a Transfer-Encoding value, given whether the request already had one and is HTTP/1.0. Only a
// single "chunked" is implemented; Beast alone would take "gzip, chunked" as chunked and ignore any value
// whose last coding is not chunked (the body would then be read as the next request).
framing_fault transfer_encoding_fault(std::string_view value, bool repeated, int version) {
  if (version == 10) return framing_fault::te_in_http10;
  if (repeated) return framing_fault::te_not_chunked;  // "chunked" applied twice, or a coding after it
  std::size_t codings = 0, chunked = 0;
  std::string_view last;
  for (std::size_t from = 0; from <= value.size();) {
    const std::size_t comma = std::min(value.find(',', from), value.size());
    std::string_view item = value.substr(from, comma - from);
    from = comma + 1;
    while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) item.remove_prefix(1);
    while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) item.remove_suffix(1);
    if (item.empty()) continue;  // RFC 9110 5.6.1: empty list elements do not count
    ++codings;
    if (iequals(item, "chunked")) ++chunked;
    last = item;
  }
  // RFC 9112 6.3: chunked must be the final coding, and applied once (6.1).
  if (codings == 0 || !iequals(last, "chunked") || chunked > 1) return framing_fault::te_not_chunked;
  if (codings > 1) return framing_fault::te_unsupported;
  return framing_fault::none;
}

}  // namespace

framing_refusal_text framing_refusal(framing_fault f) noexcept {
  switch (f) {
    case framing_fault::none: break;
    case framing_fault::host_missing: return {400, "an HTTP/1.1 request needs a Host header field"};
    case framing_fault::host_repeated: return {400, "the request has more than one Host header field"};
    case framing_fault::te_not_chunked:
      return {400, "Transfer-Encoding must be chunked, once and last; send the body with Content-Length or chunked"};
    case framing_fault::te_unsupported:
      return {501, "Transfer-Encoding: only chunked is implemented; send the body uncompressed"};
    case framing_fault::te_in_http10: return {400, "Transfer-Encoding is not allowed in an HTTP/1.0 request"};
  }
  return {400, "malformed HTTP request"};
}

void request_reader::on_field_impl(bhttp::field name, string_view, string_view value, error_code& ec) {
  if (++into_.fields > max_fields_) {
    into_.too_many_fields = true;
    ec = bhttp::error::header_limit;  // answered 431, like a head over max_header_bytes
    return;
  }
  switch (name) {
    case bhttp::field::expect:
      if (iequals(value, "100-continue")) into_.expect_continue = true;
      break;
    case bhttp::field::host:
      if (++into_.hosts > 1) {
        into_.fault = framing_fault::host_repeated;
        ec = bhttp::error::bad_value;
      }
      break;
    case bhttp::field::transfer_encoding:
      into_.fault = transfer_encoding_fault(value, into_.transfer_encoding, into_.version);
      into_.transfer_encoding = true;
      if (into_.fault != framing_fault::none) ec = bhttp::error::bad_transfer_encoding;
      break;
    default:
      break;
  }
}

void request_reader::on_header_impl(error_code& ec) {
  if (into_.version >= 11 && into_.hosts == 0) {
    into_.fault = framing_fault::host_missing;
    ec = bhttp::error::bad_value;
  }
}

void request_reader::on_body_init_impl(const boost::optional<std::uint64_t>& content_length, error_code&) {
  // The parser has already refused a length over the body limit.
  if (content_length) into_.body.reserve(static_cast<std::size_t>(*content_length));
}

std::size_t request_reader::on_body_impl(string_view body, error_code&) {
  into_.body.append(body.data(), body.size());
  return body.size();
}

std::size_t request_reader::on_chunk_body_impl(std::uint64_t, string_view body, error_code&) {
  into_.body.append(body.data(), body.size());  // the parser enforces the body limit across chunks
  return body.size();
}

namespace {

// RFC 9110 tchar, as Beast's field-name table has it.
constexpr std::array<bool, 256> tchar_table = [] {
  std::array<bool, 256> t{};
  for (int c = '0'; c <= '9'; ++c) t[static_cast<std::size_t>(c)] = true;
  for (int c = 'a'; c <= 'z'; ++c) t[static_cast<std::size_t>(c)] = t[static_cast<std::size_t>(c - 'a' + 'A')] = true;
  for (char c : std::string_view("!#$%&'*+-.^_`|~")) t[static_cast<unsigned char>(c)] = true;
  return t;
}();
constexpr bool is_tchar(unsigned char c) noexcept { return tchar_table[c]; }

bool all_bytes_in(const char* first, const char* last, unsigned char lo, unsigned char hi, bool tab_too) noexcept {
  for (; first != last; ++first) {
    const auto c = static_cast<unsigned char>(*first);
    if ((c < lo || c > hi) && !(tab_too && c == '\t')) return false;
  }
  return true;
}

// Whether every byte of [first, last) is in lo..hi (lo <= 128, hi <= 127), or is a tab if tab_too. Eight
// bytes at a time: a request target is a few hundred bytes. A word with a byte out of the range (the "has
// less" and "has more" tests of Bit Twiddling Hacks, exact as a yes/no) is looked at byte by byte, for tabs.
bool all_of_range(const char* first, const char* last, unsigned char lo, unsigned char hi, bool tab_too) noexcept {
  constexpr std::uint64_t ones = 0x0101010101010101ULL, high = 0x8080808080808080ULL;
  for (; last - first >= 8; first += 8) {
    std::uint64_t x;
    std::memcpy(&x, first, 8);
    const std::uint64_t out = ((x - ones * lo) & ~x & high) | (((x + ones * (127u - hi)) | x) & high);
    if (out != 0 && !all_bytes_in(first, first + 8, lo, hi, tab_too)) return false;
  }
  return all_bytes_in(first, last, lo, hi, tab_too);
}

}  // namespace

std::size_t parse_plain_request(std::string_view bytes, const http_limits& limits, incoming_request& into,
                                bool& keep_alive) {
  const char* p = bytes.data();
  const char* const end = p + bytes.size();
  // The method.
  bhttp::verb verb;
  if (bytes.starts_with("POST ")) {
    verb = bhttp::verb::post;
    p += 5;
  } else if (bytes.starts_with("GET ")) {
    verb = bhttp::verb::get;
    p += 4;
  } else if (bytes.starts_with("HEAD ")) {
    verb = bhttp::verb::head;
    p += 5;
  } else {
    return 0;
  }
  // Beast refuses a head of max_header_bytes or more; staying well under it leaves every such case to Beast.
  if (limits.max_header_bytes < 64) return 0;
  const char* const head_limit = bytes.data() + std::min<std::size_t>(bytes.size(), limits.max_header_bytes - 16);
  // The target: visible ASCII up to one space (Beast also takes obs-text; that goes to Beast).
  const char* const target = p;
  p = static_cast<const char*>(std::memchr(p, ' ', static_cast<std::size_t>(head_limit - p)));
  if (p == nullptr || p == target || !all_of_range(target, p, 0x21, 0x7e, false)) return 0;
  const std::string_view target_text(target, static_cast<std::size_t>(p - target));
  ++p;
  // The version, then CRLF.
  if (head_limit - p < 10) return 0;
  const std::string_view version(p, 10);
  int minor;
  if (version == "HTTP/1.1\r\n") {
    minor = 1;
  } else if (version == "HTTP/1.0\r\n") {
    minor = 0;
  } else {
    return 0;
  }
  p += 10;
  // The fields.
  bool has_length = false, close = false, keep = false;
  std::uint64_t length = 0;
  std::uint32_t fields = 0, hosts = 0;
  for (;;) {
    if (head_limit - p < 2) return 0;
    if (p[0] == '\r') {
      if (p[1] != '\n') return 0;
      p += 2;
      break;
    }
    const char* const name = p;
    while (p < head_limit && is_tchar(static_cast<unsigned char>(*p))) ++p;
    if (p == name || p >= head_limit || *p != ':') return 0;
    const std::string_view name_text(name, static_cast<std::size_t>(p - name));
    ++p;
    while (p < head_limit && (*p == ' ' || *p == '\t')) ++p;
    const char* const value = p;
    p = static_cast<const char*>(std::memchr(p, '\r', static_cast<std::size_t>(head_limit - p)));
    // Visible ASCII, spaces and tabs, then CRLF, and no obs-fold after it.
    if (p == nullptr || head_limit - p < 3 || p[1] != '\n' || p[2] == ' ' || p[2] == '\t') return 0;
    if (!all_of_range(value, p, 0x20, 0x7e, true)) return 0;
    const char* value_end = p;
    while (value_end > value && (value_end[-1] == ' ' || value_end[-1] == '\t')) --value_end;
    const std::string_view value_text(value, static_cast<std::size_t>(value_end - value));
    p += 2;
    if (++fields >= limits.max_header_count) return 0;
    // The fields with a meaning to the parser, by length first (most fields then cost no comparison):
    // Content-Length and a plain Connection are read here, the others send the request to Beast.
    switch (name_text.size()) {
      case 4:
        if (iequals(name_text, "host")) ++hosts;
        break;
      case 6:
        if (iequals(name_text, "expect")) return 0;
        break;
      case 7:
        if (iequals(name_text, "upgrade")) return 0;
        break;
      case 10:
        if (iequals(name_text, "connection")) {
          if (iequals(value_text, "close")) {
            close = true;
          } else if (iequals(value_text, "keep-alive")) {
            keep = true;
          } else {
            return 0;
          }
        }
        break;
      case 14:
        if (iequals(name_text, "content-length")) {
          if (has_length || value_text.empty() || value_text.size() > 18) return 0;
          for (char c : value_text) {
            if (c < '0' || c > '9') return 0;
            length = length * 10 + static_cast<std::uint64_t>(c - '0');
          }
          has_length = true;
        }
        break;
      case 16:
        if (iequals(name_text, "proxy-connection")) return 0;
        break;
      case 17:
        if (iequals(name_text, "transfer-encoding")) return 0;
        break;
      default:
        break;
    }
  }
  // Host (RFC 9112 3.2): exactly one in HTTP/1.1, at most one in HTTP/1.0; Beast's reader refuses the rest.
  if (hosts > 1 || (minor == 1 && hosts == 0)) return 0;
  // The body.
  if (length > limits.max_body_bytes || static_cast<std::uint64_t>(end - p) < length) return 0;
  into.verb = verb;
  into.version = 10 + minor;
  into.target.assign(target_text.data(), target_text.size());
  into.body.assign(p, static_cast<std::size_t>(length));
  into.fields = fields;
  keep_alive = minor == 1 ? !close : keep;  // as Beast: HTTP/1.0 stays open on keep-alive, close or not
  return static_cast<std::size_t>(p - bytes.data()) + static_cast<std::size_t>(length);
}

beast_parse parse_with_beast(std::string_view bytes, const http_limits& limits, incoming_request& into) {
  beast_parse out;
  request_reader parser(into, limits);
  boost::system::error_code ec;
  while (!parser.is_done() && out.consumed < bytes.size()) {
    std::size_t n = parser.put(boost::asio::buffer(bytes.data() + out.consumed, bytes.size() - out.consumed), ec);
    if (ec) {
      out.error = ec != bhttp::error::need_more;
      return out;
    }
    if (n == 0) return out;
    out.consumed += n;
  }
  out.done = parser.is_done();
  if (out.done) out.keep_alive = parser.keep_alive();
  return out;
}

parsed_requests parse_requests(std::string_view bytes, const http_limits& limits) {
  parsed_requests out;
  incoming_request req;
  while (out.consumed < bytes.size()) {
    req.clear();
    bool keep_alive = false;
    if (std::size_t n = parse_plain_request(bytes.substr(out.consumed), limits, req, keep_alive)) {
      out.consumed += n;
      ++out.complete;
      continue;
    }
    const beast_parse r = parse_with_beast(bytes.substr(out.consumed), limits, req);
    out.consumed += r.consumed;
    out.error = r.error;
    if (!r.done) return out;
    ++out.complete;
  }
  return out;
}

}  // namespace callrec::http
