#include "http/request_parser.h"

#include <boost/asio/buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/error.hpp>

namespace callrec::http {

namespace bhttp = boost::beast::http;

request_reader::request_reader(incoming_request& into, const http_limits& limits)
    : into_(into), max_fields_(limits.max_header_count) {
  header_limit(limits.max_header_bytes);
  body_limit(limits.max_body_bytes);
}

void request_reader::on_request_impl(bhttp::verb method, string_view, string_view target, int version,
                                     error_code&) {
  into_.verb = method;
  into_.version = version;
  into_.target.assign(target.data(), target.size());
}

void request_reader::on_response_impl(int, string_view, int, error_code& ec) {
  ec = bhttp::error::bad_method;  // never called for a request parser
}

void request_reader::on_field_impl(bhttp::field name, string_view, string_view value, error_code& ec) {
  if (++into_.fields > max_fields_) {
    into_.too_many_fields = true;
    ec = bhttp::error::header_limit;  // answered 431, like a head over max_header_bytes
    return;
  }
  if (name == bhttp::field::expect && boost::beast::iequals(value, "100-continue")) into_.expect_continue = true;
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

parsed_requests parse_requests(std::string_view bytes, const http_limits& limits) {
  parsed_requests out;
  incoming_request req;
  while (out.consumed < bytes.size()) {
    req.clear();
    request_reader parser(req, limits);
    boost::system::error_code ec;
    while (!parser.is_done() && out.consumed < bytes.size()) {
      std::size_t n = parser.put(boost::asio::buffer(bytes.data() + out.consumed, bytes.size() - out.consumed), ec);
      if (ec == bhttp::error::need_more) return out;
      if (ec) {
        out.error = true;
        return out;
      }
      if (n == 0) return out;
      out.consumed += n;
    }
    if (!parser.is_done()) return out;
    ++out.complete;
  }
  return out;
}

}  // namespace callrec::http
