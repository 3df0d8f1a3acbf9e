// The call state machine (SPEC section 5): pure functions of (state, event, settings); time is a parameter,
// there is no I/O. The event-ingestion service and the stores build on it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "records/record.h"

namespace callrec::calls {

enum class event_kind : std::uint8_t {
  start_call,
  accept_call,
  reject_call,
  not_answer_call,
  call_busy,
  cancel_call,
  invite_user,
  join_in_group_call,
  hangup,
  call_interrupted,
  heartbeat,
};
std::string_view to_string(event_kind k) noexcept;
std::optional<event_kind> parse_event_kind(std::string_view s) noexcept;

// One reported event, already parsed and validated for shape by the API layer.
struct call_event {
  std::string call_id;
  event_kind kind = event_kind::heartbeat;
  std::string user_id;   // the acting user
  std::string event_id;  // client-chosen id; empty when absent
  std::int64_t ts_ms = 0;  // unix milliseconds (server clock, or the administrator's `ts`)
  // start_call (and callees with invite_user):
  std::vector<std::string> callees;
  std::optional<media_type> media;
  std::optional<call_type> type;
  std::string room_id;
  std::optional<std::int32_t> timeout_sec;
};

// Per-app settings that change how a call evolves.
struct call_settings {
  std::int32_t heartbeat_sec = 60;  // 0: heartbeats are not expected, nobody goes offline by silence
};

enum class member_status : std::uint8_t {
  ringing,       // invited, has not answered yet
  connected,     // in the call (the caller from the start, a callee after accept/join)
  rejected,
  busy,
  not_answered,  // let it ring out (event or ringing timeout)
  left,          // hung up after being connected
  interrupted,   // dropped abnormally
  offline,       // heartbeats stopped
  cancelled,     // the caller gave up before anyone accepted
};

struct member {
  std::string user_id;
  member_status status = member_status::ringing;
  std::int64_t ring_deadline_ms = 0;  // while ringing: when it becomes not_answered
  std::int64_t last_seen_ms = 0;      // while connected: the last event from this user
  bool invited = true;                // false for a user who joined without an invitation
  bool operator==(const member&) const = default;
};

// A client event id applied to a call, with the user who acted: idempotency is per call and acting user
// (SPEC 5), so one participant cannot make another's event a duplicate by sending its id first. An empty
// user_id matches every user: stores written before the scope changed (call state format 1) kept the ids
// of a call without their users, and a retry of such an event must stay a duplicate.
struct applied_event_id {
  std::string user_id;
  std::string event_id;
  bool operator==(const applied_event_id&) const = default;
};

// The live state of one call. members[0] is the caller; callees follow in invitation order.
struct call_state {
  std::string call_id;
  std::string caller;
  media_type media = media_type::audio;
  call_type type = call_type::single;
  std::string room_id;
  std::int32_t timeout_sec = 30;
  std::int64_t start_ms = 0;
  std::int64_t accept_ms = 0;  // 0 until the first accept
  std::int64_t end_ms = 0;     // 0 while the call is live
  std::optional<call_result> result;  // set when the call ended
  std::vector<member> members;
  std::vector<applied_event_id> event_ids;  // client event ids already applied, for duplicates
  // Added by the state machine (kept in encode/decode):
  std::int64_t clock_ms = 0;  // the latest time the call has seen (applied events, fired timers); never decreases
  std::uint32_t initial_callees = 0;  // members[1..initial_callees] came with start_call (duplicate detection)
  bool operator==(const call_state&) const = default;
};

// Limits that bound the size of one call's state (the field limits are records/fields.h).
inline constexpr std::size_t max_event_ids = 1000;      // remembered client event ids per call (the oldest are dropped)
inline constexpr std::int32_t max_timeout_sec = 3600;   // timeoutSec is 1..3600
inline constexpr std::int64_t max_event_ts_ms = 253402300799999;  // 9999-12-31T23:59:59.999Z; ts is 1..this

enum class event_status : std::uint8_t { applied, duplicate, late, refused };
std::string_view to_string(event_status s) noexcept;

struct event_outcome {
  event_status status = event_status::applied;
  errc code = errc::ok;  // invalid_param or not_admin when refused
  std::string message;   // why it was refused (without the event index; the caller adds that)
};

// Applies one event. `state` is empty when the call is unknown (only start_call creates one). When the
// reporter is a user (not an administrator), it must take part in the call (not_admin otherwise).
// Before applying, timers due at or before ev.ts_ms fire (advance_to). Deterministic.
// Timers can change `state` even when the event is then late or refused: persist the state whatever the outcome
// (a duplicate, and a refusal before the timers run, change nothing). See call_state.cpp for the decisions.
event_outcome apply_event(std::optional<call_state>& state, const call_event& ev, const call_settings& settings,
                          bool reported_by_admin);

// Fires every timer due at or before now_ms (ringing timeouts, heartbeat silence), in deadline order.
// Returns true if the state changed.
bool advance_to(call_state& state, std::int64_t now_ms, const call_settings& settings);

// The earliest pending timer, if any (none once the call ended).
std::optional<std::int64_t> next_deadline_ms(const call_state& state, const call_settings& settings);

inline bool ended(const call_state& s) noexcept { return s.result.has_value(); }

// The record of an ended call.
call_record to_record(const call_state& s, std::uint32_t sdkappid);

// Whether `user` is the caller or a callee (invited or joined) of the call.
bool takes_part(const call_state& s, std::string_view user) noexcept;

// Compact, versioned serialization for the stores.
std::string encode(const call_state& s);
result<call_state> decode(std::string_view bytes);

}  // namespace callrec::calls
