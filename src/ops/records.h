// The record reads (SPEC 4).
#pragma once

#include <string_view>

#include "ops/core.h"
#include "records/filter.h"
#include "records/record_doc.h"

namespace callrec::ops {

// get_record_by_callId: the record of a call of the caller's app that started inside its retention window;
// errc::not_found otherwise.
awaitable<result<stored_record>> get_record(const core& c, const caller& who, std::string_view call_id);

// get_records_by_filter: one page and the exact total. The filter is the caller's app's, its window already
// clamped to the retention window (records/wire.h parse_filter_request).
awaitable<result<record_page>> find_records(const core& c, const caller& who, const record_filter& filter);

}  // namespace callrec::ops
