// Test support: an HTTP/2 client connection on nghttp2 over a blocking socket, plain (h2c with prior
// knowledge) or TLS (ALPN "h2"), pumped by hand so a test decides when frames go out and when it reads.
// The one HTTP/2 client of the tests: `client` (test_server.h) speaks HTTP/2 through it, and the session
// tests (tests/http) use it directly for floods, resets and stalls.
#pragma once

#include <nghttp2/nghttp2.h>
#include <openssl/ssl.h>
#include <poll.h>

#include <algorithm>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace callrec::testing {

class h2_connection {
 public:
  struct stream_state {
    int status = 0;
    std::map<std::string, std::string> headers;  // names as received (lower case in HTTP/2)
    std::string body;
    bool closed = false;
    std::uint32_t close_code = 0;
  };

  struct options {
    std::uint32_t initial_window = 65535;
    bool auto_window_update = true;
    std::uint32_t peer_max_concurrent_streams = 100;
    bool huge_connection_window = false;
  };

  explicit h2_connection(std::uint16_t port) : h2_connection(port, options{}) {}
  // Over TLS when `tls` is set (the context decides what is trusted; the client offers ALPN "h2" only and
  // throws if the server does not select it); h2c with prior knowledge otherwise. Throws when refused.
  h2_connection(std::uint16_t port, options o, std::shared_ptr<boost::asio::ssl::context> tls = nullptr)
      : sock_(ioc_), tls_context_(std::move(tls)) {
    namespace asio = boost::asio;
    sock_.connect(asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
    sock_.set_option(asio::ip::tcp::no_delay(true));  // HEADERS and DATA leave in separate writes
    if (tls_context_) {
      tls_.emplace(sock_, *tls_context_);
      tls_->set_verify_callback(asio::ssl::host_name_verification("127.0.0.1"));
      static constexpr unsigned char alpn[] = "\x02h2";
      SSL_set_alpn_protos(tls_->native_handle(), alpn, sizeof alpn - 1);
      tls_->handshake(asio::ssl::stream_base::client);
      const unsigned char* p = nullptr;
      unsigned len = 0;
      SSL_get0_alpn_selected(tls_->native_handle(), &p, &len);
      if (std::string(reinterpret_cast<const char*>(p), len) != "h2") {
        throw std::runtime_error("the server did not select ALPN h2");
      }
    }
    nghttp2_session_callbacks* cbs = nullptr;
    nghttp2_session_callbacks_new(&cbs);
    nghttp2_session_callbacks_set_on_header_callback(cbs, &on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, &on_data);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, &on_close);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, &on_frame);
    nghttp2_option* opt = nullptr;
    nghttp2_option_new(&opt);
    nghttp2_option_set_no_auto_window_update(opt, o.auto_window_update ? 0 : 1);
    nghttp2_option_set_peer_max_concurrent_streams(opt, o.peer_max_concurrent_streams);
    nghttp2_session_client_new2(&session_, cbs, this, opt);
    nghttp2_session_callbacks_del(cbs);
    nghttp2_option_del(opt);
    nghttp2_settings_entry iv[] = {{NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, o.initial_window}};
    nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, iv, 1);
    if (o.huge_connection_window) {
      nghttp2_session_set_local_window_size(session_, NGHTTP2_FLAG_NONE, 0, NGHTTP2_MAX_WINDOW_SIZE);
    }
  }
  ~h2_connection() { nghttp2_session_del(session_); }
  h2_connection(const h2_connection&) = delete;
  h2_connection& operator=(const h2_connection&) = delete;

  // Queues a request; sent by the next flush/pump. Returns its stream id (negative if nghttp2 refused it).
  std::int32_t request(const std::string& method, const std::string& path, std::string body = {},
                       std::vector<std::pair<std::string, std::string>> extra = {}) {
    auto nv = [](const std::string& n, const std::string& v) {
      return nghttp2_nv{(std::uint8_t*)n.data(), (std::uint8_t*)v.data(), n.size(), v.size(), NGHTTP2_NV_FLAG_NONE};
    };
    static const std::string m = ":method", p = ":path", s = ":scheme", a = ":authority", http = "http",
                             https = "https", host = "127.0.0.1";
    std::vector<nghttp2_nv> nva{nv(m, method), nv(p, path), nv(s, tls_ ? https : http), nv(a, host)};
    for (auto& [n, v] : extra) nva.push_back(nv(n, v));
    auto src = std::make_unique<body_source>(body_source{std::move(body), 0});
    nghttp2_data_provider prd{};
    prd.source.ptr = src.get();
    prd.read_callback = &read_body;
    const bool has_body = !src->data.empty();
    const std::int32_t id =
        nghttp2_submit_request(session_, nullptr, nva.data(), nva.size(), has_body ? &prd : nullptr, this);
    sources_.push_back(std::move(src));
    return id;
  }

  // Queues a WINDOW_UPDATE of `bytes` for `stream` (0: the connection); sent by the next flush/pump.
  void window_update(std::int32_t stream, std::int32_t bytes) {
    nghttp2_submit_window_update(session_, NGHTTP2_FLAG_NONE, stream, bytes);
  }

  // Sends what nghttp2 has queued. False when the socket failed.
  bool flush() {
    for (;;) {
      const std::uint8_t* data = nullptr;
      const auto n = nghttp2_session_mem_send(session_, &data);
      if (n <= 0) return n == 0;
      boost::system::error_code ec;
      if (tls_) {
        boost::asio::write(*tls_, boost::asio::buffer(data, static_cast<std::size_t>(n)), ec);
      } else {
        boost::asio::write(sock_, boost::asio::buffer(data, static_cast<std::size_t>(n)), ec);
      }
      if (ec) return false;
    }
  }

  // Sends, then reads what arrives within `wait`. Returns false once the connection is over.
  bool pump(std::chrono::milliseconds wait = std::chrono::milliseconds(20)) {
    if (eof) return false;
    if (!flush()) {
      eof = true;
      return false;
    }
    char buf[65536];
    boost::system::error_code ec;
    const std::size_t n = read_within(boost::asio::buffer(buf), wait, ec);
    if (ec) {
      eof = true;
      end_reason = ec;
      return false;
    }
    if (n == 0) return true;
    if (nghttp2_session_mem_recv(session_, (const std::uint8_t*)buf, n) < 0) eof = true;
    return !eof;
  }

  // Pumps until `done` holds or the connection ends or `limit` passes; returns done().
  bool run_until(const std::function<bool()>& done, std::chrono::seconds limit = std::chrono::seconds(10)) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (!done() && std::chrono::steady_clock::now() < deadline) {
      if (!pump()) break;
    }
    return done();
  }

  // Reads the socket to its end (the server closed it) within `limit`; true if it ended.
  bool wait_closed(std::chrono::seconds limit = std::chrono::seconds(10)) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (!eof && std::chrono::steady_clock::now() < deadline) pump();
    return eof;
  }

  bool complete(std::int32_t id) const {
    auto it = streams.find(id);
    return it != streams.end() && it->second.closed;
  }

  nghttp2_session* session() { return session_; }
  // TLS only: the connection, for what was negotiated (null over plain TCP).
  SSL* tls_handle() { return tls_ ? tls_->native_handle() : nullptr; }

  std::map<std::int32_t, stream_state> streams;
  std::vector<std::int32_t> completion_order;
  bool goaway = false;
  std::uint32_t goaway_code = 0;
  bool eof = false;
  boost::system::error_code end_reason;  // how reading ended: eof is a clean close (TLS: with close_notify)
  int ping_acks = 0;

 private:
  struct body_source {
    std::string data;
    std::size_t sent;
  };

  static ssize_t read_body(nghttp2_session*, std::int32_t, std::uint8_t* buf, std::size_t len, std::uint32_t* flags,
                           nghttp2_data_source* source, void*) {
    auto& b = *static_cast<body_source*>(source->ptr);
    const std::size_t n = std::min(len, b.data.size() - b.sent);
    std::memcpy(buf, b.data.data() + b.sent, n);
    b.sent += n;
    if (b.sent == b.data.size()) *flags |= NGHTTP2_DATA_FLAG_EOF;
    return static_cast<ssize_t>(n);
  }
  static int on_header(nghttp2_session*, const nghttp2_frame* f, const std::uint8_t* name, std::size_t namelen,
                       const std::uint8_t* value, std::size_t valuelen, std::uint8_t, void* user) {
    auto& self = *static_cast<h2_connection*>(user);
    auto& st = self.streams[f->hd.stream_id];
    std::string n((const char*)name, namelen), v((const char*)value, valuelen);
    if (n == ":status") st.status = std::stoi(v);
    st.headers[n] = v;
    return 0;
  }
  static int on_data(nghttp2_session*, std::uint8_t, std::int32_t id, const std::uint8_t* data, std::size_t len,
                     void* user) {
    static_cast<h2_connection*>(user)->streams[id].body.append((const char*)data, len);
    return 0;
  }
  static int on_close(nghttp2_session*, std::int32_t id, std::uint32_t code, void* user) {
    auto& self = *static_cast<h2_connection*>(user);
    auto& st = self.streams[id];
    st.closed = true;
    st.close_code = code;
    self.completion_order.push_back(id);
    return 0;
  }
  static int on_frame(nghttp2_session*, const nghttp2_frame* f, void* user) {
    auto& self = *static_cast<h2_connection*>(user);
    if (f->hd.type == NGHTTP2_GOAWAY) {
      self.goaway = true;
      self.goaway_code = f->goaway.error_code;
    }
    if (f->hd.type == NGHTTP2_PING && (f->hd.flags & NGHTTP2_FLAG_ACK)) ++self.ping_acks;
    return 0;
  }

  // Reads what is available within `wait` (0 bytes when nothing came). Reads are non-blocking and poll waits:
  // Asio's TLS engine keeps received bytes that are not decrypted yet, which poll on the socket cannot see.
  std::size_t read_within(boost::asio::mutable_buffer buf, std::chrono::milliseconds wait,
                          boost::system::error_code& ec) {
    const auto deadline = std::chrono::steady_clock::now() + wait;
    sock_.non_blocking(true);
    std::size_t n = 0;
    for (;;) {
      ec.clear();
      n = tls_ ? tls_->read_some(buf, ec) : sock_.read_some(buf, ec);
      if (ec != boost::asio::error::would_block) break;
      ec.clear();
      n = 0;
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) break;
      pollfd p{sock_.native_handle(), POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
    }
    sock_.non_blocking(false);  // writes stay blocking
    return n;
  }

  boost::asio::io_context ioc_;
  boost::asio::ip::tcp::socket sock_;
  std::shared_ptr<boost::asio::ssl::context> tls_context_;
  std::optional<boost::asio::ssl::stream<boost::asio::ip::tcp::socket&>> tls_;
  nghttp2_session* session_ = nullptr;
  std::vector<std::unique_ptr<body_source>> sources_;
};

}  // namespace callrec::testing
