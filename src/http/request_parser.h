// The HTTP/1.1 request parser as the server runs it: Beast's basic_parser, with a derived class that keeps
// only what the server uses (method, target, body, Expect) in buffers the connection reuses, so a request
// costs no allocation once a connection has warmed up. Usable on a byte string for tests and fuzzing: the
// server and the fuzz target exercise the same code and the same limits.
#pragma once

#include <boost/beast/http/basic_parser.hpp>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "config/config.h"

namespace callrec::http {

// A head that Beast's parser reads but RFC 9112 refuses (message framing and Host): the server answers it
// with framing_refusal's status and closes the connection, so a proxy in front that reads the head another
// way cannot smuggle a second request in the body.
enum class framing_fault : std::uint8_t {
  none,
  host_missing,      // an HTTP/1.1 request without Host (RFC 9112 3.2): 400
  host_repeated,     // more than one Host field: 400
  te_not_chunked,    // a Transfer-Encoding whose last coding is not chunked, or chunked twice (6.3): 400
  te_unsupported,    // a coding before chunked that the server does not implement (gzip, chunked): 501
  te_in_http10,      // Transfer-Encoding in an HTTP/1.0 request (6.1): the framing is faulty, 400
};
struct framing_refusal_text {
  unsigned status;
  std::string_view message;
};
framing_refusal_text framing_refusal(framing_fault f) noexcept;

// One parsed request; the connection clears and refills it for every request it reads.
struct incoming_request {
  boost::beast::http::verb verb = boost::beast::http::verb::unknown;
  std::string target;
  std::string body;
  int version = 11;              // 10 for HTTP/1.0
  bool expect_continue = false;  // "Expect: 100-continue"
  std::uint32_t fields = 0;      // header fields read so far
  bool too_many_fields = false;  // over http_limits::max_header_count (the parser stops with header_limit)
  std::uint8_t hosts = 0;        // Host fields read so far
  bool transfer_encoding = false;  // a Transfer-Encoding field was read
  framing_fault fault = framing_fault::none;  // set when the parser stopped for it

  void clear() {
    verb = boost::beast::http::verb::unknown;
    target.clear();
    body.clear();
    version = 11;
    expect_continue = false;
    fields = 0;
    too_many_fields = false;
    hosts = 0;
    transfer_encoding = false;
    fault = framing_fault::none;
  }
};

class request_reader final : public boost::beast::http::basic_parser<true> {
 public:
  // Applies the header and body limits; `into` must outlive the reader.
  request_reader(incoming_request& into, const http_limits& limits);

 private:
  using error_code = boost::beast::error_code;
  using string_view = boost::beast::string_view;
  void on_request_impl(boost::beast::http::verb method, string_view method_str, string_view target, int version,
                       error_code& ec) override;
  void on_response_impl(int, string_view, int, error_code& ec) override;
  void on_field_impl(boost::beast::http::field name, string_view name_str, string_view value, error_code& ec) override;
  void on_header_impl(error_code& ec) override;
  void on_body_init_impl(const boost::optional<std::uint64_t>& content_length, error_code& ec) override;
  std::size_t on_body_impl(string_view body, error_code& ec) override;
  void on_chunk_header_impl(std::uint64_t, string_view, error_code&) override {}
  std::size_t on_chunk_body_impl(std::uint64_t, string_view body, error_code& ec) override;
  void on_finish_impl(error_code&) override {}

  incoming_request& into_;
  std::uint32_t max_fields_;
};

// The common request, parsed without Beast: GET, HEAD or POST, HTTP/1.1 or 1.0, a target of visible ASCII,
// plain header fields with one Host (HTTP/1.0: at most one), no body or a Content-Length one, and all of it
// already in `bytes`. Returns the bytes
// the request took, or 0 for anything else (incomplete, chunked, Expect, Upgrade, a Connection other than
// close or keep-alive, Transfer-Encoding, no Host or two, near a limit, malformed): the caller then runs request_reader on the same bytes, which
// decides. Where it answers, it answers as request_reader would; the HTTP fuzz target checks that on every
// input. About a third of Beast's cost for such a request: one pass over the bytes, no field-name lookup.
std::size_t parse_plain_request(std::string_view bytes, const http_limits& limits, incoming_request& into,
                                bool& keep_alive);

// Beast's parser (request_reader) alone on the first request of `bytes`, as far as they go.
struct beast_parse {
  std::size_t consumed = 0;  // bytes the parser took
  bool done = false;         // the request is complete
  bool error = false;        // the bytes are not a valid request (or broke a limit); not set for "need more"
  bool keep_alive = false;   // when done: the connection stays open after it
};
beast_parse parse_with_beast(std::string_view bytes, const http_limits& limits, incoming_request& into);

struct parsed_requests {
  std::size_t complete = 0;  // requests fully parsed (pipelined requests count one each)
  bool error = false;        // the bytes are not a valid request stream (or broke a limit)
  std::size_t consumed = 0;  // bytes consumed
};

// Parses as many pipelined requests as `bytes` holds, as the server does: parse_plain_request first, else
// request_reader.
parsed_requests parse_requests(std::string_view bytes, const http_limits& limits);

}  // namespace callrec::http
