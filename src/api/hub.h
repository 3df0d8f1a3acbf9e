// The v1 REST hub (SPEC section 1): route table, check order, envelope, request ids, access log, and the
// operational endpoints. Transport-independent: HTTP/1.1 (and later HTTP/2) sessions call handle().
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
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
#include "records/wire.h"
#include "store/store.h"

namespace callrec::api {

class hub {
 public:
  hub(const server_config& cfg, store& st, obs::metrics& metrics, obs::access_log& log, const clock& clk);

  boost::asio::awaitable<http::reply> handle(const http::request& req);

  // Answers at once, with no coroutine, every request that needs no waiting: the operational endpoints, a
  // request refused before its API runs, and the record reads of a store that reads inline
  // (store::reads_inline). False leaves the request (a POST that waits for the store) to handle().
  bool answer_now(const http::request& req, http::reply& rep);

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
    const boost::json::object* body = nullptr;  // the request body, in the caller's parse buffer
    std::optional<std::string_view> call_id;     // else a plain {"callId":"..."} body, read without parsing
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
  using now_fn = outcome (hub::*)(call_ctx&);
  enum class rate_key : std::uint8_t { get_record, get_records, callback, events };
  struct route {
    std::string_view path;
    obs::api_id api;
    rate_key rate;
    bool needs_admin;
    handler_fn fn;
    now_fn now;  // the same API over a store that reads inline, without a coroutine; null: always fn
  };

 private:
  boost::asio::awaitable<outcome> get_record_by_call_id(call_ctx& ctx);
  boost::asio::awaitable<outcome> get_records_by_filter(call_ctx& ctx);
  boost::asio::awaitable<outcome> report_events(call_ctx& ctx);
  outcome get_record_now(call_ctx& ctx);
  outcome get_records_now(call_ctx& ctx);
  // The parts of the record APIs on either side of the store read.
  static std::optional<outcome> record_call_id(const call_ctx& ctx, std::string_view& id);
  static outcome record_not_found(std::string_view id);
  outcome record_answer(result<std::optional<call_record>> rec, std::string_view id,
                        std::chrono::steady_clock::time_point read_t0);
  outcome page_answer(const filter_request& req, result<record_page> found,
                      std::chrono::steady_clock::time_point read_t0);
  static outcome page_json(const filter_request& req, const record_page& page);

  static const route* find_route(std::string_view path);
  // The checks of SPEC 1 before an API runs, in their order: a refusal, or nullopt with `ctx` filled and the
  // body parsed into `body` (allocated from `sp`; ctx.body points into it).
  std::optional<outcome> prepare(const route& r, const http::request& req, std::string_view query,
                                 std::chrono::steady_clock::time_point deadline_at, std::uint32_t& sdkappid,
                                 boost::json::storage_ptr sp, std::optional<boost::json::value>& body, call_ctx& ctx);
  boost::asio::awaitable<outcome> run_api(const route& r, const http::request& req, std::string_view query,
                                          std::chrono::steady_clock::time_point deadline_at, std::uint32_t& sdkappid);
  // The envelope, the request metrics and the access log line of an answered API request.
  void finish(const http::request& req, obs::api_id api, std::uint32_t sdkappid, outcome out,
              std::chrono::steady_clock::time_point t0, http::reply& rep);
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
