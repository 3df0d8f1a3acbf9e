// The wire side of records (SPEC section 4): the record's JSON, and the get_records_by_filter body as a
// validated record_filter. Pure functions; time is a parameter.
#pragma once

#include <algorithm>
#include <boost/json/object.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/error.h"
#include "records/filter.h"
#include "records/record.h"

namespace callrec {

// Appends the record as a JSON object, fields in the order of TRTC's own answers.
void append_record_json(std::string& out, const call_record& r);

// A record's fields as views into storage owned elsewhere (a store's row), its callees in invitation order
// separated by one space (user ids hold none).
struct record_fields {
  std::string_view call_id;
  std::uint32_t sdkappid = 0;
  media_type media = media_type::audio;
  std::string_view room_id;
  std::int64_t start_ts = 0, accept_ts = 0, end_ts = 0;
  std::string_view caller;
  std::string_view callees;
  call_type type = call_type::single;
  call_result result = call_result::not_answer;
};
// The same JSON object as above, written straight from the views.
void append_record_json(std::string& out, const record_fields& r);

// The record the fields describe, with copies of their texts.
call_record to_record(const record_fields& f);

// The callees of a space-joined list (record_fields::callees): how many, and each in order.
inline std::size_t callee_count(std::string_view joined) noexcept {
  return joined.empty() ? 0 : static_cast<std::size_t>(std::count(joined.begin(), joined.end(), ' ')) + 1;
}
template <class Fn>
void for_each_callee(std::string_view joined, Fn&& fn) {
  for (std::size_t from = 0; from < joined.size();) {
    const std::size_t sp = std::min(joined.find(' ', from), joined.size());
    fn(joined.substr(from, sp - from));
    from = sp + 1;
  }
}

struct filter_request {
  record_filter filter;
  std::uint64_t page = 1;
  bool empty_window = false;  // the window lies entirely before the retention window: nothing can match
};

// Validates a get_records_by_filter body: a missing mandatory field or a value out of range is
// invalid_param (70001), a field of the wrong JSON type is bad_body (70009). startTimestamp earlier than
// the retention window is clamped to it.
result<filter_request> parse_filter_request(const boost::json::object& body, std::uint32_t sdkappid,
                                            std::int32_t retention_days, std::int64_t now_s);

// The call id of a get_record_by_callId body that is exactly {"callId":"..."} (JSON whitespace allowed, the id
// printable ASCII without escapes): read without a JSON parser, and the same string a parser would give.
// nullopt for any other body, which then goes through the parser.
std::optional<std::string_view> plain_call_id_body(std::string_view body) noexcept;

std::string encode_cursor(const record_cursor& c);
std::optional<record_cursor> decode_cursor(std::string_view s);

// A roomId as a request gives it (SPEC 4): a string of TRTC's string-room alphabet, or a number 1..4294967294
// kept as its decimal text. Wrong JSON type: bad_body; out of the rule: invalid_param, with the rule's words.
result<std::string> parse_room_id(const boost::json::value& v);

// Reads an integral JSON number (int64, uint64 or a double with an integral value).
std::optional<std::int64_t> json_integer(const boost::json::value& v);

}  // namespace callrec
