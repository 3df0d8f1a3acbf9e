#include "api/hub.h"

#include <boost/json.hpp>
#include <chrono>

#include "api/envelope.h"
#include "api/store_read.h"
#include "core/json_text.h"
#include "records/wire.h"

namespace callrec::api {

namespace asio = boost::asio;
namespace json = boost::json;

const hub::route hub::routes_[] = {
    {"/v1/records/get_record_by_callId", obs::api_id::get_record, rate_key::get_record, true,
     &hub::get_record_by_call_id, &hub::get_record_now},
    {"/v1/records/get_records_by_filter", obs::api_id::get_records, rate_key::get_records, true,
     &hub::get_records_by_filter, &hub::get_records_now},
    {"/v1/events/report", obs::api_id::events_report, rate_key::events, false, &hub::report_events, nullptr},
};

hub::hub(const server_config& cfg, store& st, obs::metrics& metrics, obs::access_log& log, const clock& clk)
    : store_(st), metrics_(metrics), log_(log), clock_(clk), ingest_(st, metrics) {
  for (const auto& a : cfg.apps) {
    auto s = std::make_unique<app_state>();
    s->cfg = a;
    s->get_record.reset(a.limits.get_record_by_call_id);
    s->get_records.reset(a.limits.get_records_by_filter);
    s->callback.reset(a.limits.callback);
    s->events.reset(a.limits.events);
    apps_.emplace(a.sdkappid, std::move(s));
  }
}

calls::call_settings hub::settings_of(std::uint32_t sdkappid) const {
  calls::call_settings s;
  if (auto it = apps_.find(sdkappid); it != apps_.end()) s.heartbeat_sec = it->second->cfg.heartbeat_sec;
  return s;
}

namespace {

hub::outcome fail(errc code, std::string message) { return {wire_code(code), std::move(message), {}}; }
hub::outcome fail(const error& e) { return {wire_code(e.code), e.message, {}}; }

// Buffers for parsing request bodies, kept per thread and reused. In run_api's coroutine frame, a 4 KiB array
// made every request a 4.9 KB frame: past the size Asio recycles per thread, so a malloc and free each time.
// A frame may be destroyed on another thread (server shutdown); its buffer then joins that thread's list.
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

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

namespace {

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

}  // namespace

http::reply hub::ops(std::string_view path) {
  http::reply rep;
  rep.content_type = "text/plain; charset=utf-8";
  if (path == "/") {
    rep.content_type = "application/json";
    rep.body = root_body;
  } else if (path == "/healthz") {
    rep.body = "ok\n";
  } else if (path == "/readyz") {
    auto r = store_.ping();
    rep.status = r ? 200 : 503;
    rep.body = r ? "ready\n" : "store unavailable\n";
  } else {
    rep.content_type = "text/plain; version=0.0.4";
    rep.body = metrics_.render();
  }
  return rep;
}

// A path without a version is v1 (the seed's own sample request is POST /records/get_record_by_callId?...).
const hub::route* hub::find_route(std::string_view path) {
  for (const auto& r : routes_) {
    if (r.path == path || r.path.substr(3) == path) return &r;
  }
  return nullptr;
}


bool hub::answer_now(const http::request& req, http::reply& rep) {
  auto [path, query] = split_target(req.target);
  if ((path == "/" || path == "/healthz" || path == "/readyz" || path == "/metrics") &&
      (req.verb == http::method::get || req.verb == http::method::head)) {
    rep = ops(path);
    return true;
  }
  const route* found = find_route(path);
  const bool runs = found && req.verb == http::method::post;
  if (runs && !(found->now && store_.reads_inline())) return false;  // the API waits for the store: handle()

  const auto t0 = std::chrono::steady_clock::now();
  rep.request_id = new_request_id();
  std::uint32_t sdkappid = 0;
  outcome out;
  if (!found) {
    if (!api_path(path)) rep.status = 404;
    out = fail(errc::invalid_param, "unknown API path " + clip(path, 128) +
                                        "; expected /v1/records/get_record_by_callId, "
                                        "/v1/records/get_records_by_filter or /v1/events/report");
  } else if (!runs) {
    out = fail(errc::invalid_param, "method not allowed: the REST API takes POST only");
  } else {
    parse_buffer buf;
    json::monotonic_resource mr(buf.data(), parse_buffer::size);
    std::optional<json::value> body;
    call_ctx ctx;
    if (auto refused = prepare(*found, req, query, t0 + deadline, sdkappid, &mr, body, ctx)) {
      out = std::move(*refused);
    } else {
      out = (this->*found->now)(ctx);
    }
  }
  finish(req, found ? found->api : obs::api_id::not_found, sdkappid, std::move(out), t0, rep);
  return true;
}

asio::awaitable<http::reply> hub::handle(const http::request& req) {
  http::reply rep;
  if (answer_now(req, rep)) co_return rep;
  // A POST to an API that waits for the store.
  const auto t0 = std::chrono::steady_clock::now();
  auto [path, query] = split_target(req.target);
  const route& r = *find_route(path);
  rep.request_id = new_request_id();
  std::uint32_t sdkappid = 0;
  outcome out = co_await run_api(r, req, query, t0 + deadline, sdkappid);
  finish(req, r.api, sdkappid, std::move(out), t0, rep);
  co_return rep;
}

void hub::finish(const http::request& req, obs::api_id api, std::uint32_t sdkappid, outcome out,
                 std::chrono::steady_clock::time_point t0, http::reply& rep) {
  rep.body = make_envelope(out.code, out.message, rep.request_id, std::move(out.data));
  const double secs = seconds_since(t0);
  metrics_.request(api, out.code, secs);
  if (log_.enabled()) {
    log_.write(obs::access_entry{rep.request_id, obs::to_string(api), sdkappid, out.code, secs * 1000.0, rep.status,
                                 req.remote});
  }
}

std::optional<hub::outcome> hub::prepare(const route& r, const http::request& req, std::string_view query,
                                         std::chrono::steady_clock::time_point deadline_at, std::uint32_t& sdkappid,
                                         json::storage_ptr sp, std::optional<json::value>& body, call_ctx& ctx) {
  auto params = parse_hub_query(query);
  if (!params) return fail(params.error());
  sdkappid = params->sdkappid;
  auto it = apps_.find(params->sdkappid);
  if (it == apps_.end()) {
    return fail(errc::usersig_invalid, "unknown sdkappid " + std::to_string(params->sdkappid));
  }
  app_state& app = *it->second;
  ctx.now_ms = clock_.now_ms();
  ctx.deadline_at = deadline_at;
  auto claims = verifier_.verify(params->usersig(), app.cfg.secret_key, params->sdkappid, params->identifier,
                                 ctx.now_ms / 1000);
  if (!claims) return fail(claims.error());
  for (const auto& a : app.cfg.admins) ctx.is_admin = ctx.is_admin || a == params->identifier;
  if (r.needs_admin && !ctx.is_admin) {
    return fail(errc::not_admin, "identifier " + params->identifier + " is not an administrator of app " +
                                     std::to_string(params->sdkappid));
  }
  if (r.needs_admin && !app.cfg.entitled) {
    return fail(errc::not_entitled, "app " + std::to_string(params->sdkappid) +
                                        " is not entitled to call records (Group Call package)");
  }
  token_bucket* bucket = nullptr;
  switch (r.rate) {
    case rate_key::get_record: bucket = &app.get_record; break;
    case rate_key::get_records: bucket = &app.get_records; break;
    case rate_key::callback: bucket = &app.callback; break;
    case rate_key::events: bucket = &app.events; break;
  }
  if (!bucket->admit(ctx.now_ms, r.rate == rate_key::events ? 0 : 1)) {
    return fail(errc::rate_limited, "request rate over the limit of app " + std::to_string(params->sdkappid) +
                                        " for " + std::string(obs::to_string(r.api)));
  }
  if (req.body.empty()) return fail(errc::bad_body, "request body is empty; send a JSON object, at least {}");
  ctx.app = &app;
  ctx.params = std::move(*params);
  if (r.api == obs::api_id::get_record) {
    ctx.call_id = plain_call_id_body(req.body);  // the usual lookup body needs no JSON parser
    if (ctx.call_id) return std::nullopt;
  }
  boost::system::error_code ec;
  json::parse_options popt;
  popt.max_depth = 32;
  body.emplace(json::parse(req.body, ec, std::move(sp), popt));  // moved in whole: it keeps its storage
  if (ec) return fail(errc::bad_body, "request body is not valid JSON: " + ec.message());
  if (!body->is_object()) return fail(errc::bad_body, "request body must be a JSON object");
  ctx.body = &body->get_object();  // a view into the caller's parse buffer
  return std::nullopt;
}

asio::awaitable<hub::outcome> hub::run_api(const route& r, const http::request& req, std::string_view query,
                                           std::chrono::steady_clock::time_point deadline_at,
                                           std::uint32_t& sdkappid) {
  parse_buffer buf;
  json::monotonic_resource mr(buf.data(), parse_buffer::size);
  std::optional<json::value> body;
  call_ctx ctx;
  if (auto refused = prepare(r, req, query, deadline_at, sdkappid, &mr, body, ctx)) co_return std::move(*refused);
  co_return co_await (this->*r.fn)(ctx);
}

std::optional<hub::outcome> hub::record_call_id(const call_ctx& ctx, std::string_view& id) {
  if (ctx.call_id) {
    id = *ctx.call_id;
  } else {
    auto it = ctx.body->find("callId");
    if (it == ctx.body->end() || it->value().is_null()) return fail(errc::invalid_param, "callId is required");
    if (!it->value().is_string()) return fail(errc::bad_body, "callId must be a string");
    id = it->value().get_string();
  }
  if (!valid_call_id(id)) return fail(errc::invalid_param, must_be("callId", rule::call_id));
  return std::nullopt;
}

hub::outcome hub::record_answer(result<std::optional<call_record>> rec, std::string_view id,
                                std::chrono::steady_clock::time_point read_t0) {
  metrics_.store_read_seconds.observe(seconds_since(read_t0));
  if (!rec) return fail(rec.error());
  if (!*rec) return record_not_found(id);
  outcome out;
  out.data.reserve(512 + envelope_room);  // one record; growing from empty would reallocate five times
  append_record_json(out.data, **rec);
  return out;
}

hub::outcome hub::record_not_found(std::string_view id) {
  return fail(errc::not_found, "no record of call " + std::string(id) + " (or older than the retention window)");
}

hub::outcome hub::get_record_now(call_ctx& ctx) {
  std::string_view id;
  if (auto refused = record_call_id(ctx, id)) return std::move(*refused);
  const auto t0 = std::chrono::steady_clock::now();
  outcome out;
  out.data.reserve(512 + envelope_room);
  auto found = store_.get_record_json(ctx.app->cfg.sdkappid, id, out.data);  // the JSON straight from the row
  metrics_.store_read_seconds.observe(seconds_since(t0));
  if (!found) return fail(found.error());
  if (!*found) return record_not_found(id);
  return out;
}

asio::awaitable<hub::outcome> hub::get_record_by_call_id(call_ctx& ctx) {
  std::string_view id;
  if (auto refused = record_call_id(ctx, id)) co_return std::move(*refused);
  const auto t0 = std::chrono::steady_clock::now();
  const std::uint32_t app = ctx.app->cfg.sdkappid;
  store_read<std::optional<call_record>> read(
      [&](read_done<std::optional<call_record>> done) { store_.async_get_record(app, id, std::move(done)); });
  if (!read.ready()) co_await read.wait(ctx.deadline_at);
  co_return record_answer(read.take(), id, t0);
}

hub::outcome hub::page_answer(const filter_request& req, result<record_page> found,
                              std::chrono::steady_clock::time_point read_t0) {
  metrics_.store_read_seconds.observe(seconds_since(read_t0));
  if (!found) return fail(found.error());
  return page_json(req, *found);
}

hub::outcome hub::page_json(const filter_request& req, const record_page& page) {
  outcome out;
  out.data.reserve(256 + page.records.size() * 300 + envelope_room);
  out.data += "{\"totalNum\":";
  out.data += std::to_string(page.total);
  out.data += ",\"page\":";
  out.data += std::to_string(req.filter.after ? 1 : req.page);
  out.data += ",\"callRecordList\":[";
  for (std::size_t i = 0; i < page.records.size(); ++i) {
    if (i) out.data += ',';
    append_record_json(out.data, page.records[i]);
  }
  out.data += ']';
  if (page.next) {
    out.data += ",\"nextCursor\":\"";
    out.data += encode_cursor(*page.next);
    out.data += '"';
  }
  out.data += '}';
  return out;
}

hub::outcome hub::get_records_now(call_ctx& ctx) {
  auto req = parse_filter_request(*ctx.body, ctx.app->cfg.sdkappid, ctx.app->cfg.retention_days, ctx.now_ms / 1000);
  if (!req) return fail(req.error());
  if (req->empty_window) return page_json(*req, {});
  const auto t0 = std::chrono::steady_clock::now();
  return page_answer(*req, store_.find_records(req->filter), t0);
}

asio::awaitable<hub::outcome> hub::get_records_by_filter(call_ctx& ctx) {
  auto req = parse_filter_request(*ctx.body, ctx.app->cfg.sdkappid, ctx.app->cfg.retention_days, ctx.now_ms / 1000);
  if (!req) co_return fail(req.error());
  if (req->empty_window) co_return page_json(*req, {});
  const auto t0 = std::chrono::steady_clock::now();
  const record_filter& filter = req->filter;
  store_read<record_page> read(
      [&](read_done<record_page> done) { store_.async_find_records(filter, std::move(done)); });
  if (!read.ready()) co_await read.wait(ctx.deadline_at);
  co_return page_answer(*req, read.take(), t0);
}

asio::awaitable<hub::outcome> hub::report_events(call_ctx& ctx) {
  auto it = ctx.body->find("events");
  if (it == ctx.body->end() || it->value().is_null()) co_return fail(errc::invalid_param, "events is required");
  const json::array* arr = it->value().if_array();
  if (!arr) co_return fail(errc::bad_body, "events must be an array of event objects");
  if (arr->empty() || arr->size() > 500) co_return fail(errc::invalid_param, "events must hold 1 to 500 events");
  ctx.app->events.charge(ctx.now_ms, static_cast<double>(arr->size()));

  std::vector<batch_entry> entries;
  entries.reserve(arr->size());
  for (const auto& v : *arr) entries.push_back(parse_event(v, ctx.is_admin, ctx.params.identifier, ctx.now_ms));
  // The awaitable is made first: GCC 12 destroys by-value coroutine arguments built inside a co_await
  // expression twice.
  auto pending = ingest_.report(ctx.app->cfg.sdkappid, settings_of(ctx.app->cfg.sdkappid), ctx.is_admin,
                                std::move(entries), std::chrono::duration_cast<std::chrono::milliseconds>(
                                                        ctx.deadline_at - std::chrono::steady_clock::now()));
  auto applied = co_await std::move(pending);
  if (!applied) co_return fail(applied.error());

  outcome out;
  std::uint64_t counts[4] = {0, 0, 0, 0};
  std::string results;
  results.reserve(applied->size() * 32);
  std::size_t first_refused = applied->size();
  for (std::size_t i = 0; i < applied->size(); ++i) {
    const auto& o = (*applied)[i].outcome;
    ++counts[static_cast<int>(o.status)];
    if (i) results += ',';
    results += "{\"index\":";
    results += std::to_string(i);
    results += ",\"status\":\"";
    results += calls::to_string(o.status);
    results += '"';
    if (o.status == calls::event_status::refused) {
      if (first_refused == applied->size()) first_refused = i;
      results += ",\"errorCode\":";
      results += std::to_string(wire_code(o.code));
      results += ",\"errorMessage\":";
      obs::append_json_string(results, "events[" + std::to_string(i) + "]: " + o.message);
    }
    results += '}';
  }
  out.data = "{\"applied\":" + std::to_string(counts[0]) + ",\"duplicates\":" + std::to_string(counts[1]) +
             ",\"late\":" + std::to_string(counts[2]) + ",\"refused\":" + std::to_string(counts[3]) +
             ",\"results\":[" + results + "]}";
  if (first_refused < applied->size()) {
    const auto& o = (*applied)[first_refused].outcome;
    out.code = wire_code(o.code);
    out.message = "events[" + std::to_string(first_refused) + "] refused: " + o.message;
    if (counts[3] > 1) out.message += " (" + std::to_string(counts[3]) + " events refused in all; see data.results)";
  }
  co_return out;
}

}  // namespace callrec::api
