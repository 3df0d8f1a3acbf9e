// The events of a v1 events/report body (SPEC 5), parsed one by one: one bad event is refused with its reason,
// the others go on. Pure; fuzzed (fuzz_body).
#pragma once

#include <boost/json/value.hpp>
#include <cstdint>
#include <string_view>

#include "ops/events.h"

namespace callrec::api {

// Parses events[i] of a report. `is_admin`: the reporter is an administrator (userId required, `ts`
// allowed); otherwise userId must be absent or equal to `identifier`. now_ms stamps events without ts.
ops::batch_entry parse_event(const boost::json::value& v, bool is_admin, std::string_view identifier,
                             std::int64_t now_ms);

}  // namespace callrec::api
