// The route table of the v1 REST hub (SPEC 1 and 6), and the pure parse and render steps of its APIs.
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "api/route.h"
#include "ops/events.h"
#include "records/filter.h"
#include "records/record_doc.h"
#include "records/wire.h"

namespace callrec::api {

// The rows: the API routes first, in the order of their metrics ids, then the operational endpoints.
std::span<const route> v1_routes() noexcept;

// The names API requests are counted under (obs::metrics), by route index (the API routes).
std::vector<std::string> api_names(std::span<const route> routes);

// get_record_by_callId: the call id, from a plain body or the parsed one.
result<std::string_view> parse_call_id(const route_input& in);
answer render_record(const std::string_view& call_id, const stored_record& record);

// get_records_by_filter.
result<filter_request> parse_filter(const route_input& in);
answer render_page(const filter_request& req, const record_page& page);

// events/report: the batch, each event parsed on its own (api/events_v1.h).
struct report_request {
  std::vector<ops::batch_entry> entries;
  std::size_t cost() const noexcept { return entries.size(); }  // tokens of the events limit
};
result<report_request> parse_report(const route_input& in);
// The top-level errorCode is the first refused event's (SPEC 5 leaves it open; README), data lists them all.
answer render_report(const report_request& req, const std::vector<ops::batch_entry>& applied);

}  // namespace callrec::api
