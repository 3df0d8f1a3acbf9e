// Integration-test support: the real service on port 0 over real sockets, a real SQLite file in a fresh
// temporary directory, an injected clock; and a small keep-alive HTTP client.
#pragma once

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <thread>

#include "api/service.h"
#include "auth/usersig.h"
#include "core/clock.h"

namespace callrec::testing {

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
  a.limits = rate_limits{1e6, 1e6, 1e6, 1e7};
  cfg.apps.push_back(a);
  app_config b = a;
  b.sdkappid = unentitled_app_id;
  b.entitled = false;
  cfg.apps.push_back(b);
  app_config c = a;
  c.sdkappid = limited_app_id;
  c.limits = rate_limits{2, 2, 2, 2};
  cfg.apps.push_back(c);
  return cfg;
}

// A running service. Restartable on the same data directory.
class test_server {
 public:
  explicit test_server(std::function<void(server_config&)> tweak = {}, std::string tag = "srv")
      : dir_(fresh_dir(tag)), clock_(t0_ms), cfg_(test_config(dir_)) {
    if (tweak) tweak(cfg_);
    start();
  }
  ~test_server() {
    stop();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  void start() {
    svc_ = std::make_unique<api::service>(cfg_, clock_);
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

  std::uint16_t port() const { return svc_->port(); }
  manual_clock& clock() { return clock_; }
  api::service& service() { return *svc_; }
  server_config& config() { return cfg_; }
  const std::filesystem::path& dir() const { return dir_; }

 private:
  std::filesystem::path dir_;
  manual_clock clock_;
  server_config cfg_;
  std::unique_ptr<api::service> svc_;
};

struct http_answer {
  unsigned status = 0;
  std::string body;
  std::string request_id_header;
  boost::json::value json;  // null when the body is not JSON

  int code() const { return static_cast<int>(json.at("errorCode").as_int64()); }
  std::string message() const { return std::string(json.at("errorMessage").as_string()); }
  const boost::json::value& data() const { return json.at("data"); }
};

// A keep-alive HTTP/1.1 client over one TCP connection (reconnects when the server closes it).
class client {
 public:
  explicit client(std::uint16_t port) : port_(port), stream_(ioc_) {}

  http_answer request(boost::beast::http::verb verb, const std::string& target, const std::string& body) {
    namespace bhttp = boost::beast::http;
    for (int attempt = 0; attempt < 2; ++attempt) {
      if (!connected_) connect();
      bhttp::request<bhttp::string_body> req{verb, target, 11};
      req.set(bhttp::field::host, "127.0.0.1");
      req.set(bhttp::field::content_type, "application/json");
      req.body() = body;
      req.prepare_payload();
      boost::system::error_code ec;
      stream_.expires_after(std::chrono::seconds(30));
      bhttp::write(stream_, req, ec);
      bhttp::response<bhttp::string_body> res;
      if (!ec) bhttp::read(stream_, buffer_, res, ec);
      if (ec) {
        connected_ = false;
        stream_.close();
        buffer_.clear();
        continue;
      }
      if (!res.keep_alive()) {
        connected_ = false;
        stream_.close();
      }
      http_answer a;
      a.status = res.result_int();
      a.body = res.body();
      a.request_id_header = std::string(res["X-Request-Id"]);
      boost::system::error_code jec;
      a.json = boost::json::parse(a.body, jec);
      if (jec) a.json = nullptr;
      return a;
    }
    throw std::runtime_error("request failed twice: " + target);
  }

  http_answer post(const std::string& target, const std::string& body) {
    return request(boost::beast::http::verb::post, target, body);
  }
  http_answer get(const std::string& target) { return request(boost::beast::http::verb::get, target, ""); }

 private:
  void connect() {
    boost::asio::ip::tcp::endpoint ep(boost::asio::ip::make_address("127.0.0.1"), port_);
    stream_.expires_after(std::chrono::seconds(10));
    stream_.connect(ep);
    connected_ = true;
  }
  std::uint16_t port_;
  boost::asio::io_context ioc_;
  boost::beast::tcp_stream stream_;
  boost::beast::flat_buffer buffer_;
  bool connected_ = false;
};

inline std::string usersig_for(const std::string& identifier, std::int64_t now_s = t0_ms / 1000,
                               std::uint32_t sdkappid = app_id, const char* key = app_key,
                               std::int64_t expire = 86400) {
  return auth::make_usersig(key, sdkappid, identifier, now_s, expire);
}

// The v1 target for an API with a valid query for `identifier`.
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
