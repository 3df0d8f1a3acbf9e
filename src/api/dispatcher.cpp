#include "api/dispatcher.h"

#include <boost/json.hpp>
#include <memory>
#include <vector>

#include "api/envelope.h"
#include "api/query.h"
#include "core/json_text.h"
#include "ops/maintenance.h"
#include "records/wire.h"

namespace callrec::api {

namespace asio = boost::asio;
namespace json = boost::json;

namespace {

// Buffers for parsing request bodies, kept per thread and reused: a 4 KiB array in a coroutine frame would
// make every frame too large for Asio's per-thread frame recycling (a malloc and free each request). A frame
// may be destroyed on another thread (server shutdown); its buffer then joins that thread's list.
class parse_buffer {
 public:
  static constexpr std::size_t size = 4096;
  parse_buffer() {
    auto& pool = free_list();
    if (pool.empty()) {
      buf_ = std::make_unique<unsigned char[]>(size);
    } else {
      buf_ = std::move(pool.back());
      pool.pop_back();
    }
  }
  parse_buffer(const parse_buffer&) = delete;
  parse_buffer& operator=(const parse_buffer&) = delete;
  ~parse_buffer() {
    auto& pool = free_list();
    if (pool.size() < 64) pool.push_back(std::move(buf_));
  }
  unsigned char* data() { return buf_.get(); }

 private:
  static std::vector<std::unique_ptr<unsigned char[]>>& free_list() {
    thread_local std::vector<std::unique_ptr<unsigned char[]>> pool;
    return pool;
  }
  std::unique_ptr<unsigned char[]> buf_;
};

// Paths of the v1 API, with or without the version: an unknown one answers 70001 with HTTP 200.
bool api_path(std::string_view path) {
  return path.starts_with("/v1/") || path.starts_with("/records/") || path.starts_with("/events/") ||
         path.starts_with("/callback/");
}

// GET / and HEAD /: what this is and where to go (the seed's FAQ tests connectivity with `curl -I`).
constexpr std::string_view root_body =
    R"json({"service":"callrec","description":"call records over the TRTC Call REST API (v1)",)json"
    R"json("api":"POST /v1/records/get_record_by_callId, /v1/records/get_records_by_filter, /v1/events/report",)json"
    R"json("health":"/healthz","ready":"/readyz","metrics":"/metrics"})json"
    "\n";

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

dispatcher::dispatcher(const ops::core& core, std::span<const route> routes, obs::access_log& log,
                       std::chrono::milliseconds budget)
    : core_(core), routes_(routes), log_(log), budget_(budget) {
  for (const auto& r : routes_) {
    if (r.who == access::open) continue;
    unknown_path_hint_ += unknown_path_hint_.empty() ? "; expected " : ", ";
    unknown_path_hint_ += r.path;
  }
}

const route* dispatcher::find(std::string_view path) const noexcept {
  for (const auto& r : routes_) {
    // A path without a version is v1 (the seed's own sample request is POST /records/get_record_by_callId?...).
    if (r.path == path || (r.path.starts_with("/v1/") && r.path.substr(3) == path)) return &r;
  }
  return nullptr;
}

asio::awaitable<http::reply> dispatcher::handle(const http::request& req) {
  const auto t0 = std::chrono::steady_clock::now();
  auto [path, query] = split_target(req.target);
  http::reply rep;
  const bool get = req.verb == http::method::get || req.verb == http::method::head;
  if ((path == "/" || path == "/healthz" || path == "/readyz" || path == "/metrics") && get) {
    rep.content_type = "text/plain; charset=utf-8";
    if (path == "/") {
      rep.content_type = "application/json";
      rep.body = root_body;
    } else if (path == "/healthz") {
      rep.body = "ok\n";
    } else if (path == "/readyz") {
      auto ready = co_await ops::readiness(core_, core_.clk.steady_now() + budget_);
      rep.status = ready ? 200 : 503;
      rep.body = ready ? "ready\n" : "store unavailable\n";
    } else {
      auto text = co_await ops::metrics_text(core_);
      rep.content_type = "text/plain; version=0.0.4";
      rep.body = text ? std::move(*text) : std::string();
    }
    co_return rep;
  }

  const route* r = find(path);
  rep.request_id = new_request_id();
  std::uint32_t sdkappid = 0;
  answer out;
  std::size_t api = core_.metrics.unknown_api();
  if (!r) {
    if (!api_path(path)) rep.status = 404;
    out = failure(make_error(errc::invalid_param, "unknown API path " + clip(path, 128) + unknown_path_hint_));
  } else if (req.verb != http::method::post) {
    api = static_cast<std::size_t>(r - routes_.data());
    out = failure(make_error(errc::invalid_param, "method not allowed: the REST API takes POST only"));
  } else {
    api = static_cast<std::size_t>(r - routes_.data());
    ops::caller who;
    who.due = core_.clk.steady_now() + budget_;
    out = co_await run_api(*r, req, query, who, sdkappid);
  }
  finish(req, api, sdkappid, std::move(out), t0, rep);
  co_return rep;
}

asio::awaitable<answer> dispatcher::run_api(const route& r, const http::request& req, std::string_view query,
                                            ops::caller& who, std::uint32_t& sdkappid) {
  auto params = parse_hub_query(query);
  if (!params) co_return failure(params.error());
  sdkappid = params->sdkappid;
  const ops::app* app = core_.apps.find(params->sdkappid);
  if (!app) co_return failure(make_error(errc::usersig_invalid, "unknown sdkappid " + std::to_string(sdkappid)));
  who.app = app;
  who.identifier = params->identifier;
  who.now_ms = core_.clk.now_ms();
  auto claims = verifier_.verify(params->usersig(), app->cfg.secret_key, sdkappid, params->identifier,
                                 who.now_ms / 1000);
  if (!claims) co_return failure(claims.error());
  who.admin = app->is_admin(params->identifier);
  if (r.who == access::admin && !who.admin) {
    co_return failure(make_error(errc::not_admin, "identifier " + params->identifier + " is not an administrator of app " +
                                                      std::to_string(sdkappid)));
  }
  if (r.who == access::admin && !app->cfg.entitled) {
    co_return failure(make_error(errc::not_entitled, "app " + std::to_string(sdkappid) +
                                                         " is not entitled to call records (Group Call package)"));
  }
  if (r.limit) {
    // An event limit admits while a token is left; the batch is charged once read (route.h).
    const double cost = limits::table[*r.limit].counts == limits::unit::request ? 1 : 0;
    if (!co_await core_.limiter.admit(sdkappid, *r.limit, cost, who.now_ms)) {
      co_return failure(make_error(errc::rate_limited, "request rate over the limit of app " +
                                                           std::to_string(sdkappid) + " for " + std::string(r.api)));
    }
  }
  if (req.body.empty()) co_return failure(make_error(errc::bad_body, "request body is empty; send a JSON object, at least {}"));
  route_input in{who, nullptr, std::nullopt};
  if (r.plain_call_id_body) in.plain_call_id = plain_call_id_body(req.body);
  parse_buffer buf;
  json::monotonic_resource mr(buf.data(), parse_buffer::size);
  json::value body;
  if (!in.plain_call_id) {
    boost::system::error_code ec;
    json::parse_options popt;
    popt.max_depth = 32;
    body = json::parse(req.body, ec, &mr, popt);
    if (ec) co_return failure(make_error(errc::bad_body, "request body is not valid JSON: " + ec.message()));
    if (!body.is_object()) co_return failure(make_error(errc::bad_body, "request body must be a JSON object"));
    in.body = &body.get_object();
  }
  co_return co_await r.run(core_, r, in);
}

void dispatcher::finish(const http::request& req, std::size_t api, std::uint32_t sdkappid, answer out,
                        std::chrono::steady_clock::time_point t0, http::reply& rep) {
  rep.body = make_envelope(out.code, out.message, rep.request_id, std::move(out.data));
  const double secs = seconds_since(t0);
  core_.metrics.request(api, out.code, secs);
  if (log_.enabled()) {
    const std::string_view name = api < routes_.size() ? routes_[api].api : std::string_view("unknown");
    log_.write(obs::access_entry{rep.request_id, name, sdkappid, out.code, secs * 1000.0, rep.status, req.remote,
                                 out.detail});
  }
}

}  // namespace callrec::api
