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

// Paths of the v1 API, with or without the version: an unknown one answers 70001 with HTTP 200.
bool api_path(std::string_view path) {
  return path.starts_with("/v1/") || path.starts_with("/records/") || path.starts_with("/events/") ||
         path.starts_with("/callback/");
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
  const auto t0 = core_.clk.steady_now();
  auto [path, query] = split_target(req.target);
  http::reply rep;
  const route* r = find(path);
  if (r && r->who == access::open) {
    if (req.verb == http::method::get || req.verb == http::method::head) {
      co_await serve_open(*r, t0, rep);
      co_return rep;
    }
    r = nullptr;  // an operational path takes GET and HEAD; anything else is an unknown path
  }
  // Everything that is not a wait happens in plain functions, and answers are written in place: what stays
  // in this frame is what must outlive a co_await (Asio recycles frames up to 1 KiB; a larger one costs a
  // malloc and a free per request).
  rep.request_id = new_request_id();
  request_checks call;
  answer out;
  bool refused = !check(req, path, query, r, t0, rep, call, out);
  route_input in{call.who, nullptr, std::nullopt};
  if (!refused && r->plain_call_id_body) {
    in.plain_call_id = plain_call_id_body(req.body);
    // The store may start fetching what the lookup needs while the rate limit and the route run.
    if (in.plain_call_id) core_.storage.prefetch_record(call.sdkappid, *in.plain_call_id);
  }
  if (!refused && r->limit) {
    // An event limit admits while a token is left; the batch is charged once read (route.h).
    const double cost = limits::table[*r->limit].counts == limits::unit::request ? 1 : 0;
    std::optional<bool> admitted = core_.limiter.admit_now(call.sdkappid, *r->limit, cost, call.who.now_ms);
    if (!admitted) admitted = co_await core_.limiter.admit(call.sdkappid, *r->limit, cost, call.who.now_ms);
    refused = !*admitted && refuse_rate(*r, call.sdkappid, out);
  }
  if (!refused && req.body.empty()) refused = refuse_empty_body(out);
  if (!refused) {
    std::optional<parsed_body> body;  // only for a body that needs the JSON parser
    if (!in.plain_call_id) in.body = body.emplace().parse(req.body, out);
    if (in.plain_call_id || in.body) co_await r->run(core_, *r, in, out);
  }
  finish(req, call.api, call.sdkappid, std::move(out), t0, rep);
  co_return rep;
}

asio::awaitable<void> dispatcher::serve_open(const route& r, deadline t0, http::reply& rep) {
  ops::caller who;
  who.now_ms = core_.clk.now_ms();
  who.due = t0 + budget_;
  answer out;
  co_await r.run(core_, r, route_input{who, nullptr, std::nullopt}, out);
  rep.status = out.status;
  rep.content_type = out.content_type;
  rep.body = std::move(out.data);
}

bool dispatcher::refuse_rate(const route& r, std::uint32_t sdkappid, answer& out) {
  out = failure(make_error(errc::rate_limited, "request rate over the limit of app " + std::to_string(sdkappid) +
                                                   " for " + std::string(r.api)));
  return true;
}

bool dispatcher::refuse_empty_body(answer& out) {
  out = failure(make_error(errc::bad_body, "request body is empty; send a JSON object, at least {}"));
  return true;
}

bool dispatcher::check(const http::request& req, std::string_view path, std::string_view query, const route* r,
                       deadline t0, http::reply& rep, request_checks& call, answer& out) {
  auto refuse = [&](errc code, std::string message) {
    out = failure(make_error(code, std::move(message)));
    return false;
  };
  call.api = r ? static_cast<std::size_t>(r - routes_.data()) : core_.metrics.unknown_api();
  if (!r) {
    if (!api_path(path)) rep.status = 404;
    return refuse(errc::invalid_param, "unknown API path " + clip(path, 128) + unknown_path_hint_);
  }
  if (req.verb != http::method::post) return refuse(errc::invalid_param, "method not allowed: the REST API takes POST only");
  if (auto parsed = parse_hub_query(query, call.params); !parsed) {
    out = failure(parsed.error());
    return false;
  }
  const hub_params& p = call.params;
  call.sdkappid = p.sdkappid;
  const ops::app* app = core_.apps.find(p.sdkappid);
  if (!app) return refuse(errc::usersig_invalid, "unknown sdkappid " + std::to_string(p.sdkappid));
  ops::caller& who = call.who;
  who.app = app;
  who.identifier = p.identifier;
  who.now_ms = core_.clk.now_ms();
  who.due = t0 + budget_;
  who.admin = app->is_admin(p.identifier);
  auto claims = verifier_.verify(p.usersig(), app->cfg.secret_key, p.sdkappid, p.identifier, who.now_ms / 1000);
  if (!claims) {
    out = failure(claims.error());
    return false;
  }
  if (r->who == access::admin && !who.admin) {
    return refuse(errc::not_admin,
                  "identifier " + p.identifier + " is not an administrator of app " + std::to_string(p.sdkappid));
  }
  if (r->who == access::admin && !app->cfg.entitled) {
    return refuse(errc::not_entitled,
                  "app " + std::to_string(p.sdkappid) + " is not entitled to call records (Group Call package)");
  }
  return true;
}

const json::object* dispatcher::parsed_body::parse(std::string_view text, answer& out) {
  boost::system::error_code ec;
  json::parse_options popt;
  popt.max_depth = 32;
  value = json::parse(text, ec, &resource, popt);
  if (ec) {
    out = failure(make_error(errc::bad_body, "request body is not valid JSON: " + ec.message()));
    return nullptr;
  }
  if (!value.is_object()) {
    out = failure(make_error(errc::bad_body, "request body must be a JSON object"));
    return nullptr;
  }
  return &value.get_object();
}

void dispatcher::finish(const http::request& req, std::size_t api, std::uint32_t sdkappid, answer out,
                        std::chrono::steady_clock::time_point t0, http::reply& rep) {
  rep.body = make_envelope(out.code, out.message, rep.request_id, std::move(out.data));
  const double secs = std::chrono::duration<double>(core_.clk.steady_now() - t0).count();
  core_.metrics.request(api, out.code, secs);
  if (log_.enabled()) {
    const std::string_view name = api < routes_.size() ? routes_[api].api : std::string_view("unknown");
    log_.write(obs::access_entry{rep.request_id, name, sdkappid, out.code, secs * 1000.0, rep.status, req.remote,
                                 out.detail});
  }
}

}  // namespace callrec::api
