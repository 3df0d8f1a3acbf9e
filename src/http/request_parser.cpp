#include "http/request_parser.h"

#include <boost/asio/buffer.hpp>
#include <optional>

namespace callrec::http {

void configure_parser(request_parser& parser, const http_limits& limits) {
  parser.header_limit(limits.max_header_bytes);
  parser.body_limit(limits.max_body_bytes);
}

parsed_requests parse_requests(std::string_view bytes, const http_limits& limits) {
  parsed_requests out;
  while (out.consumed < bytes.size()) {
    request_parser parser;
    configure_parser(parser, limits);
    parser.eager(true);
    boost::system::error_code ec;
    while (!parser.is_done() && out.consumed < bytes.size()) {
      std::size_t n = parser.put(boost::asio::buffer(bytes.data() + out.consumed, bytes.size() - out.consumed), ec);
      if (ec == boost::beast::http::error::need_more) return out;
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
