#include "api/routes.h"

#include <boost/json.hpp>

#include "api/envelope.h"
#include "api/events_v1.h"
#include "core/json_text.h"
#include "ops/maintenance.h"
#include "ops/records.h"

namespace callrec::api {

namespace json = boost::json;

namespace {

// The operations of the routes whose request needs unpacking first.
awaitable<result<record_page>> find_page(const ops::core& c, const ops::caller& who, filter_request& req) {
  if (req.empty_window) co_return record_page{};  // the window lies before the retention window
  co_return co_await ops::find_records(c, who, req.filter);
}

awaitable<result<std::vector<ops::batch_entry>>> report(const ops::core& c, const ops::caller& who,
                                                        report_request& req) {
  // The awaitable is made first: GCC 12 destroys by-value arguments built inside a co_await expression twice.
  auto pending = ops::report_events(c, who, std::move(req.entries));
  co_return co_await std::move(pending);
}

// The operational endpoints (SPEC 6), answered as they are: not counted per API, not in the access log.
answer plain(unsigned status, std::string_view content_type, std::string body) {
  answer a;
  a.status = status;
  a.content_type = content_type;
  a.data = std::move(body);
  return a;
}
answer render_root(const result<void>&) {
  // GET / and HEAD /: what this is and where to go (the seed's FAQ tests connectivity with `curl -I`).
  return plain(200, "application/json",
               R"json({"service":"callrec","description":"call records over the TRTC Call REST API (v1)",)json"
               R"json("api":"POST /v1/records/get_record_by_callId, /v1/records/get_records_by_filter, )json"
               R"json(/v1/events/report","health":"/healthz","ready":"/readyz","metrics":"/metrics"})json"
               "\n");
}
answer render_health(const result<void>&) { return plain(200, "text/plain; charset=utf-8", "ok\n"); }
answer render_ready(const result<void>& ready) {
  return ready ? plain(200, "text/plain; charset=utf-8", "ready\n")
               : plain(503, "text/plain; charset=utf-8", "store unavailable\n");
}
answer render_metrics(const result<std::string>& text) {
  return plain(text ? 200 : 503, "text/plain; version=0.0.4", text ? *text : std::string());
}

// The table: the API routes first (their index is their metrics id), then the operational ones. Paths are
// matched exactly; an API path also without its /v1 prefix.
constexpr route routes[] = {
    {"/v1/records/get_record_by_callId", "records/get_record_by_callId", access::admin,
     limits::id("get_record_by_callId"), &bind_api<parse_call_id, ops::get_record, render_record>, true},
    {"/v1/records/get_records_by_filter", "records/get_records_by_filter", access::admin,
     limits::id("get_records_by_filter"), &bind_api<parse_filter, find_page, render_page>},
    {"/v1/events/report", "events/report", access::user, limits::id("events"),
     &bind_api<parse_report, report, render_report>},
    {"/", "root", access::open, std::nullopt, &bind_open<ops::liveness, render_root>},
    {"/healthz", "healthz", access::open, std::nullopt, &bind_open<ops::liveness, render_health>},
    {"/readyz", "readyz", access::open, std::nullopt, &bind_open<ops::readiness, render_ready>},
    {"/metrics", "metrics", access::open, std::nullopt, &bind_open<ops::metrics_text, render_metrics>},
};

constexpr bool api_routes_first() {
  bool open_seen = false;
  for (const auto& r : routes) {
    if (r.who == access::open) open_seen = true;
    else if (open_seen) return false;
  }
  return true;
}
static_assert(api_routes_first(), "API routes come first: their index is their metrics id");

}  // namespace

std::span<const route> v1_routes() noexcept { return routes; }

std::vector<std::string> api_names(std::span<const route> table) {
  std::vector<std::string> out;
  for (const auto& r : table) {
    if (r.who != access::open) out.emplace_back(r.api);
  }
  return out;
}

result<std::string_view> parse_call_id(const route_input& in) {
  std::string_view id;
  if (in.plain_call_id) {
    id = *in.plain_call_id;  // printable ASCII already (plain_call_id_body): only its length to check
    if (id.empty() || id.size() > max_call_id_bytes) {
      return make_error(errc::invalid_param, must_be("callId", rule::call_id));
    }
    return id;
  } else {
    auto it = in.body->find("callId");
    if (it == in.body->end() || it->value().is_null()) return make_error(errc::invalid_param, "callId is required");
    if (!it->value().is_string()) return make_error(errc::bad_body, "callId must be a string");
    id = it->value().get_string();
  }
  if (!valid_call_id(id)) return make_error(errc::invalid_param, must_be("callId", rule::call_id));
  return id;
}

answer render_record(const std::string_view&, const stored_record& record) {
  answer out;
  out.data.reserve(512 + envelope_room);  // one record; growing from empty would reallocate five times
  append_record_json(out.data, record.fields());
  return out;
}

result<filter_request> parse_filter(const route_input& in) {
  const ops::app& app = *in.who.app;
  return parse_filter_request(*in.body, app.id(), app.cfg.retention_days, in.who.now_ms / 1000);
}

answer render_page(const filter_request& req, const record_page& page) {
  answer out;
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

result<report_request> parse_report(const route_input& in) {
  auto it = in.body->find("events");
  if (it == in.body->end() || it->value().is_null()) return make_error(errc::invalid_param, "events is required");
  const json::array* arr = it->value().if_array();
  if (!arr) return make_error(errc::bad_body, "events must be an array of event objects");
  if (arr->empty() || arr->size() > 500) return make_error(errc::invalid_param, "events must hold 1 to 500 events");
  report_request req;
  req.entries.reserve(arr->size());
  for (const auto& v : *arr) req.entries.push_back(parse_event(v, in.who.admin, in.who.identifier, in.who.now_ms));
  return req;
}

answer render_report(const report_request&, const std::vector<ops::batch_entry>& applied) {
  answer out;
  std::uint64_t counts[4] = {0, 0, 0, 0};
  std::string results;
  results.reserve(applied.size() * 32);
  std::size_t first_refused = applied.size(), with_code = 0;
  for (std::size_t i = 0; i < applied.size(); ++i) {
    const auto& o = applied[i].outcome;
    ++counts[static_cast<int>(o.status)];
    if (i) results += ',';
    results += "{\"index\":";
    results += std::to_string(i);
    results += ",\"status\":\"";
    results += calls::to_string(o.status);
    results += '"';
    // Refused events, and late ones refused for retention, carry a code; an event late for an ended call
    // does not.
    if (o.code != errc::ok) {
      if (first_refused == applied.size()) first_refused = i;
      ++with_code;
      results += ",\"errorCode\":";
      results += std::to_string(wire_code(o.code));
      results += ",\"errorMessage\":";
      append_json_string(results, "events[" + std::to_string(i) + "]: " + o.message);
    }
    results += '}';
  }
  out.data = "{\"applied\":" + std::to_string(counts[0]) + ",\"duplicates\":" + std::to_string(counts[1]) +
             ",\"late\":" + std::to_string(counts[2]) + ",\"refused\":" + std::to_string(counts[3]) +
             ",\"results\":[" + results + "]}";
  if (first_refused < applied.size()) {
    const auto& o = applied[first_refused].outcome;
    out.code = wire_code(o.code);
    out.message = "events[" + std::to_string(first_refused) + "] refused: " + o.message;
    if (with_code > 1) out.message += " (" + std::to_string(with_code) + " events refused in all; see data.results)";
  }
  return out;
}

}  // namespace callrec::api
