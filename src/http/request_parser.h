// The HTTP/1.1 request parser as the server configures it (limits), usable on a byte string for tests
// and fuzzing: the server and the fuzz target exercise the same settings.
#pragma once

#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <cstddef>
#include <string_view>

#include "config/config.h"

namespace callrec::http {

using request_parser = boost::beast::http::request_parser<boost::beast::http::string_body>;

void configure_parser(request_parser& parser, const http_limits& limits);

struct parsed_requests {
  std::size_t complete = 0;       // requests fully parsed (pipelined requests count one each)
  bool error = false;             // the bytes are not a valid request stream (or broke a limit)
  std::size_t consumed = 0;       // bytes consumed
};

// Parses as many pipelined requests as `bytes` holds.
parsed_requests parse_requests(std::string_view bytes, const http_limits& limits);

}  // namespace callrec::http
