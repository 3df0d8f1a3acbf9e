// A validated query over call records (SPEC section 4, get_records_by_filter and its extensions).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "records/record.h"

namespace callrec {

// Keyset position: the last record of a page, in (start_ts, call_id) order.
struct record_cursor {
  std::int64_t start_ts = 0;
  std::string call_id;
  bool operator==(const record_cursor&) const = default;
};

struct record_filter {
  std::uint32_t sdkappid = 0;
  std::int64_t start_ts = 0;  // inclusive, unix seconds (already clamped to retention)
  std::int64_t end_ts = 0;    // inclusive, unix seconds
  std::optional<call_result> result;
  std::optional<call_type> type;
  std::optional<media_type> media;
  std::optional<std::string> user_id;  // caller or callee
  std::optional<std::string> caller;
  std::optional<std::string> room_id;
  bool descending = false;
  std::uint32_t limit = 100;                 // numberPerPage, 1..1000
  std::uint64_t offset = 0;                  // (page - 1) * numberPerPage; unused with a cursor
  std::optional<record_cursor> after;        // keyset paging: records strictly after this one, in order
};

struct record_page {
  std::uint64_t total = 0;                 // every match of the filter, ignoring paging
  std::vector<call_record> records;        // this page, in order
  std::optional<record_cursor> next;       // present when more records follow this page
};

}  // namespace callrec
