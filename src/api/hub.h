// The v1 REST hub (SPEC section 1): route table, check order, envelope, request ids, access log, and the
// operational endpoints. Transport-independent: HTTP/1.1 (and later HTTP/2) sessions call handle().
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/json/object.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "api/ingest.h"
#include "api/query.h"
#include "api/rate_limiter.h"
#include "auth/usersig_cache.h"
#include "config/config.h"
#include "core/clock.h"
#include "http/server.h"
#include "obs/access_log.h"
#include "obs/metrics.h"
#include "store/store.h"

namespace callrec::api {

class hub {
 public:
  hub(const server_config& cfg, store& st, obs::metrics& metrics, obs::access_log& log, const clock& clk);

  boost::asio::awaitable<http::reply> handle(const http::request& req);

  // Settings of an app for the call state machine (defaults for unknown apps).
  calls::call_settings settings_of(std::uint32_t sdkappid) const;

  // The request deadline (SPEC: 3 s).
  std::chrono::milliseconds deadline{3000};

  struct app_state {
    app_config cfg;
    token_bucket get_record, get_records, callback, events;
  };
  struct call_ctx {
    app_state* app = nullptr;
    hub_params params;
    bool is_admin = false;
    const boost::json::object* body = nullptr;  // the request body, in run_api's parse buffer
    std::int64_t now_ms = 0;
    std::chrono::steady_clock::time_point deadline_at;  // the request answers 101001 past it
  };
  // What a handler produced: an error code (0 for success), its message, and `data` (may be empty).
  struct outcome {
    int code = 0;
    std::string message = "Success";
    std::string data;
  };
  using handler_fn = boost::asio::awaitable<outcome> (hub::*)(call_ctx&);
  enum class rate_key : std::uint8_t { get_record, get_records, callback, events };
  struct route {
    std::string_view path;
    obs::api_id api;
    rate_key rate;
    bool needs_admin;
    handler_fn fn;
  };

 private:
  boost::asio::awaitable<outcome> get_record_by_call_id(call_ctx& ctx);
  boost::asio::awaitable<outcome> get_records_by_filter(call_ctx& ctx);
  boost::asio::awaitable<outcome> report_events(call_ctx& ctx);

  boost::asio::awaitable<outcome> run_api(const route& r, const http::request& req, std::string_view query,
                                          std::chrono::steady_clock::time_point deadline_at, std::uint32_t& sdkappid);
  http::reply ops(std::string_view path);

  static const route routes_[];
  store& store_;
  obs::metrics& metrics_;
  obs::access_log& log_;
  const clock& clock_;
  auth::usersig_verifier verifier_;
  ingest ingest_;
  std::unordered_map<std::uint32_t, std::unique_ptr<app_state>> apps_;

 public:
  ingest& events() { return ingest_; }
};

}  // namespace callrec::api
