// Integration-test support: the real service on port 0 over real sockets (HTTP/1.1 or HTTP/2, plain or TLS), a
// real SQLite file in a fresh temporary directory, an injected clock; and a small keep-alive client for each.
#pragma once

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/json.hpp>
#include <cctype>
#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <ostream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "node/node.h"
#include "auth/usersig.h"
#include "core/clock.h"
#include "support/h2_client.h"
#include "support/pg_test_db.h"
#include "support/test_cert.h"

namespace callrec::testing {

// The transports the API is served over; integration suites are instantiated over all of them.
//   plain: HTTP/1.1 over TCP   tls: HTTP/1.1 over TLS (ALPN http/1.1)
//   h2c:   HTTP/2 over TCP (prior knowledge)   h2: HTTP/2 over TLS (ALPN h2)
enum class transport { plain, tls, h2c, h2 };
inline constexpr transport all_transports[] = {transport::plain, transport::tls, transport::h2c, transport::h2};
inline std::string to_string(transport t) {
  switch (t) {
    case transport::plain: return "plain";
    case transport::tls: return "tls";
    case transport::h2c: return "h2c";
    case transport::h2: return "h2";
  }
  return "?";
}
inline bool uses_tls(transport t) { return t == transport::tls || t == transport::h2; }
inline bool uses_http2(transport t) { return t == transport::h2c || t == transport::h2; }
inline void PrintTo(transport t, std::ostream* os) { *os << to_string(t); }

// The stores the API is served from: the integration suites that exercise it are instantiated over both
// (PostgreSQL only where the test command started one: tests/support/pg_test_db.h).
enum class store_kind { sqlite, postgres };
inline std::string to_string(store_kind k) { return k == store_kind::sqlite ? "sqlite" : "postgres"; }
inline std::vector<store_kind> test_stores() {
  std::vector<store_kind> out{store_kind::sqlite};
  if (pg_unavailable().empty()) out.push_back(store_kind::postgres);
  return out;
}
// Points `cfg` at a store of the kind: PostgreSQL gets a schema of its own, named after the data directory.
inline void use_store(server_config& cfg, store_kind k) {
  if (k == store_kind::postgres) cfg.store = pg_schema_url(pg_schema_name(cfg.data_dir));
}

// A transport and a store: what the API suites are parameterised over.
struct api_setup {
  transport t = transport::plain;
  store_kind store = store_kind::sqlite;
};
inline std::vector<api_setup> api_setups(std::vector<transport> transports) {
  std::vector<api_setup> out;
  for (auto k : test_stores()) {
    for (auto t : transports) out.push_back(api_setup{t, k});
  }
  return out;
}
inline std::string setup_name(const ::testing::TestParamInfo<api_setup>& p) {
  return to_string(p.param.t) + "_" + to_string(p.param.store);
}
inline void PrintTo(const api_setup& s, std::ostream* os) { *os << to_string(s.t) << "/" << to_string(s.store); }

inline constexpr std::uint32_t app_id = 1400000001;         // entitled, admins administrator + ops
inline constexpr std::uint32_t unentitled_app_id = 1400000002;
inline constexpr std::uint32_t limited_app_id = 1400000003;  // 2 requests/s on every API
inline constexpr const char* app_key = "5bd2850fff3ecb11d7c805251c51ee463a25727bddc2385f3fa8bfee1bb93b5e";
inline constexpr const char* other_key = "0000000000000000000000000000000000000000000000000000000000000001";
inline constexpr std::int64_t t0_ms = 1700000000000;  // the injected clock starts here

inline std::filesystem::path fresh_dir(const std::string& tag) {
  std::random_device rd;
  auto dir = std::filesystem::temp_directory_path() /
             ("callrec-test-" + tag + "-" + std::to_string(rd()) + std::to_string(rd()));
  std::filesystem::create_directories(dir);
  return dir;
}

inline server_config test_config(const std::filesystem::path& dir) {
  server_config cfg;
  cfg.listen_host = "127.0.0.1";
  cfg.listen_port = 0;
  cfg.threads = 2;
  cfg.data_dir = dir.string();
  cfg.access_log = (dir / "access.log").string();
  app_config a;
  a.sdkappid = app_id;
  a.secret_key = app_key;
  a.admins = {"administrator", "ops"};
  a.limits = limits::rates{1e6, 1e6, 1e6, 1e7};  // limits::table order: get, filter, callback, events
  cfg.apps.push_back(a);
  app_config b = a;
  b.sdkappid = unentitled_app_id;
  b.entitled = false;
  cfg.apps.push_back(b);
  app_config c = a;
  c.sdkappid = limited_app_id;
  c.limits = limits::rates{2, 2, 2, 2};
  cfg.apps.push_back(c);
  return cfg;
}

// A running service. Restartable on the same data directory. Over TLS it serves a certificate made for the
// test (cert.pem and key.pem in its directory; replace_cert() writes a new pair there).
class test_server {
 public:
  explicit test_server(std::function<void(server_config&)> tweak = {}, std::string tag = "srv")
      : test_server(transport::plain, std::move(tweak), std::move(tag)) {}
  // `prepare` runs on each service before it starts (to wrap its store, shorten its deadline).
  // The same over the store of `s`.
  explicit test_server(api_setup s, std::function<void(server_config&)> tweak = {}, std::string tag = "srv",
                       std::function<void(callrec::node&)> prepare = {})
      : test_server(
            s.t,
            [k = s.store, tweak = std::move(tweak)](server_config& c) {
              use_store(c, k);
              if (tweak) tweak(c);
            },
            std::move(tag), std::move(prepare)) {}
  explicit test_server(transport t, std::function<void(server_config&)> tweak = {}, std::string tag = "srv",
                       std::function<void(callrec::node&)> prepare = {})
      : dir_(fresh_dir(tag)), clock_(t0_ms), cfg_(test_config(dir_)), transport_(t), prepare_(std::move(prepare)) {
    if (uses_tls(t)) {
      replace_cert(make_test_cert("callrec-test"));
      cfg_.tls = tls_config{(dir_ / "cert.pem").string(), (dir_ / "key.pem").string()};
    }
    if (tweak) tweak(cfg_);
    start();
  }
  ~test_server() {
    stop();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  void start() {
    svc_ = std::make_unique<callrec::node>(cfg_, clock_);
    if (prepare_) prepare_(*svc_);
    auto r = svc_->start();
    if (!r) throw std::runtime_error("service did not start: " + r.error().message);
  }
  void stop() {
    if (svc_) svc_->stop();
    svc_.reset();
  }
  void restart() {
    stop();
    start();
  }

  // Writes a new certificate and key where [tls] points (the server reads them at start and on reload_tls()).
  void replace_cert(const test_cert& c) {
    write_file(dir_ / "cert.pem", c.cert_pem);
    write_file(dir_ / "key.pem", c.key_pem);
    cert_ = c;
  }
  const test_cert& cert() const { return cert_; }
  transport transport_kind() const { return transport_; }
  // A client context that trusts this server's current certificate (null over plain HTTP).
  std::shared_ptr<boost::asio::ssl::context> client_tls() const {
    return uses_tls(transport_) ? client_tls_context(cert_.cert_pem) : nullptr;
  }

  std::uint16_t port() const { return svc_->port(); }
  manual_clock& clock() { return clock_; }
  callrec::node& node() { return *svc_; }
  server_config& config() { return cfg_; }
  const std::filesystem::path& dir() const { return dir_; }

 private:
  std::filesystem::path dir_;
  manual_clock clock_;
  server_config cfg_;
  transport transport_;
  std::function<void(callrec::node&)> prepare_;
  test_cert cert_;
  std::unique_ptr<callrec::node> svc_;
};

struct http_answer {
  unsigned status = 0;
  std::string body;
  std::string request_id_header;
  std::string content_type;
  std::map<std::string, std::string> headers;  // response headers, names in lower case
  boost::json::value json;  // null when the body is not JSON

  int code() const { return static_cast<int>(json.at("errorCode").as_int64()); }
  std::string message() const { return std::string(json.at("errorMessage").as_string()); }
  const boost::json::value& data() const { return json.at("data"); }
};

// A keep-alive client over one connection (reconnects when the server closes it): HTTP/1.1 over TCP or TLS,
// or HTTP/2 over TCP (h2c, prior knowledge) or TLS (ALPN h2), one request at a time either way.
class client {
 public:
  explicit client(std::uint16_t port) : port_(port), stream_(ioc_) {}
  // Over TLS, `tls` is the client context (it decides what the client trusts and offers); null: plain HTTP.
  client(std::uint16_t port, std::shared_ptr<boost::asio::ssl::context> tls, bool http2 = false)
      : port_(port), stream_(ioc_), tls_context_(std::move(tls)), http2_(http2) {}
  // Speaks the server's transport and trusts its certificate.
  explicit client(const test_server& srv)
      : client(srv.port(), srv.client_tls(), uses_http2(srv.transport_kind())) {}

  http_answer request(boost::beast::http::verb verb, const std::string& target, const std::string& body) {
    namespace bhttp = boost::beast::http;
    if (http2_) return request_h2(std::string(bhttp::to_string(verb)), target, body);
    for (int attempt = 0; attempt < 2; ++attempt) {
      if (!connected_) connect();
      bhttp::request<bhttp::string_body> req{verb, target, 11};
      req.set(bhttp::field::host, "127.0.0.1");
      req.set(bhttp::field::content_type, "application/json");
      req.body() = body;
      req.prepare_payload();
      boost::system::error_code ec;
      stream_.expires_after(std::chrono::seconds(30));
      bhttp::response_parser<bhttp::string_body> parser;
      parser.body_limit(64 * 1024 * 1024);
      parser.skip(verb == bhttp::verb::head);  // the answer to HEAD has a Content-Length but no body
      auto exchange = [&](auto& s) {
        bhttp::write(s, req, ec);
        if (!ec) bhttp::read(s, buffer_, parser, ec);
      };
      if (tls_) {
        tls_->next_layer().expires_after(std::chrono::seconds(30));
        exchange(*tls_);
      } else {
        exchange(stream_);
      }
      if (ec) {
        disconnect();
        continue;
      }
      auto& res = parser.get();
      if (!res.keep_alive()) disconnect();
      http_answer a;
      a.status = res.result_int();
      a.body = res.body();
      for (const auto& field : res) {
        std::string name(field.name_string());
        for (auto& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        a.headers[name] = std::string(field.value());
      }
      return finish(std::move(a));
    }
    throw std::runtime_error("request failed twice: " + target);
  }

  http_answer post(const std::string& target, const std::string& body) {
    return request(boost::beast::http::verb::post, target, body);
  }
  http_answer get(const std::string& target) { return request(boost::beast::http::verb::get, target, ""); }

  // TLS only: the live connection (null when not connected), for what was negotiated.
  SSL* tls_handle() {
    if (http2_) return h2_ ? h2_->tls_handle() : nullptr;
    return connected_ && tls_ ? tls_->native_handle() : nullptr;
  }
  // TLS only: offers `session` (from another client's tls_session()) on the next connect, to resume it.
  void resume(SSL_SESSION* session) { resume_.reset(session); }
  // TLS only: the current connection's session, owned by the caller (SSL_SESSION_free).
  SSL_SESSION* tls_session() { return tls_handle() ? SSL_get1_session(tls_handle()) : nullptr; }
  // Connections made so far (a keep-alive client that keeps working makes one).
  int connects() const { return connects_; }

 private:
  static http_answer finish(http_answer a) {
    if (auto it = a.headers.find("x-request-id"); it != a.headers.end()) a.request_id_header = it->second;
    if (auto it = a.headers.find("content-type"); it != a.headers.end()) a.content_type = it->second;
    boost::system::error_code jec;
    a.json = boost::json::parse(a.body, jec);
    if (jec) a.json = nullptr;
    return a;
  }

  // One request on the HTTP/2 connection, opened (again) when there is none or the server ended it (GOAWAY,
  // close); a stream the server refused or dropped unanswered is retried once on a fresh connection.
  http_answer request_h2(const std::string& method, const std::string& target, const std::string& body) {
    for (int attempt = 0; attempt < 2; ++attempt) {
      if (!h2_ || h2_->eof || h2_->goaway) {
        h2_.reset();
        ++connects_;
        h2_ = std::make_unique<h2_connection>(port_, h2_connection::options{}, tls_context_);
      }
      std::vector<std::pair<std::string, std::string>> extra{{"content-type", "application/json"}};
      if (!body.empty()) extra.emplace_back("content-length", std::to_string(body.size()));
      const auto id = h2_->request(method, target, body, extra);
      if (id < 0) throw std::runtime_error("nghttp2 refused the request: " + target);
      h2_->run_until([&] { return h2_->complete(id); }, std::chrono::seconds(30));
      const auto& st = h2_->streams[id];
      if (!st.closed || st.status == 0) {
        h2_.reset();
        continue;
      }
      http_answer a;
      a.status = static_cast<unsigned>(st.status);
      a.body = st.body;
      for (const auto& [name, value] : st.headers) {
        if (!name.starts_with(':')) a.headers[name] = value;
      }
      h2_->streams.erase(id);
      return finish(std::move(a));
    }
    throw std::runtime_error("HTTP/2 request failed twice: " + target);
  }

  void connect() {
    boost::asio::ip::tcp::endpoint ep(boost::asio::ip::make_address("127.0.0.1"), port_);
    buffer_.clear();
    ++connects_;
    if (!tls_context_) {
      stream_.expires_after(std::chrono::seconds(10));
      stream_.connect(ep);
      connected_ = true;
      return;
    }
    tls_.emplace(ioc_, *tls_context_);
    tls_->set_verify_callback(boost::asio::ssl::host_name_verification("127.0.0.1"));
    static constexpr unsigned char alpn[] = "\x08http/1.1";  // an HTTP/1.1 client (as curl --http1.1)
    SSL_set_alpn_protos(tls_->native_handle(), alpn, sizeof alpn - 1);
    if (resume_) SSL_set_session(tls_->native_handle(), resume_.get());
    tls_->next_layer().expires_after(std::chrono::seconds(10));
    tls_->next_layer().connect(ep);
    tls_->handshake(boost::asio::ssl::stream_base::client);  // throws when refused
    connected_ = true;
  }
  void disconnect() {
    connected_ = false;
    buffer_.clear();
    if (tls_) {
      tls_->next_layer().close();
      tls_.reset();
    } else {
      stream_.close();
    }
  }
  std::uint16_t port_;
  boost::asio::io_context ioc_;
  boost::beast::tcp_stream stream_;
  std::shared_ptr<boost::asio::ssl::context> tls_context_;
  std::optional<boost::asio::ssl::stream<boost::beast::tcp_stream>> tls_;
  std::unique_ptr<SSL_SESSION, decltype(&SSL_SESSION_free)> resume_{nullptr, SSL_SESSION_free};
  boost::beast::flat_buffer buffer_;
  bool connected_ = false;
  int connects_ = 0;
  bool http2_ = false;
  std::unique_ptr<h2_connection> h2_;
};

inline std::string usersig_for(const std::string& identifier, std::int64_t now_s = t0_ms / 1000,
                               std::uint32_t sdkappid = app_id, const char* key = app_key,
                               std::int64_t expire = 86400) {
  return auth::make_usersig(key, sdkappid, identifier, now_s, expire);
}

// The v1 target for an API with a valid query for `identifier`.
// One event of an events/report body: `user` acting in `call`, with any other fields in `extra`.
inline boost::json::object event_of(std::string call, std::string name, std::string user,
                                    boost::json::object extra = {}) {
  boost::json::object o = std::move(extra);
  o["callId"] = std::move(call);
  o["event"] = std::move(name);
  o["userId"] = std::move(user);
  return o;
}

inline std::string api_target(const std::string& api, const std::string& identifier = "administrator",
                              std::uint32_t sdkappid = app_id) {
  return "/v1/" + api + "?sdkappid=" + std::to_string(sdkappid) + "&identifier=" + identifier +
         "&usersig=" + usersig_for(identifier, t0_ms / 1000, sdkappid) + "&random=99999999&contenttype=json";
}

// Polls `cond` until it holds or `timeout` passes (a condition with a deadline, never a fixed sleep).
inline bool eventually(const std::function<bool()>& cond, std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (cond()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return cond();
}

}  // namespace callrec::testing
