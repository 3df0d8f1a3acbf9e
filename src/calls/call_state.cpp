// The call state machine (SPEC section 5). Pure: the only time is the events' and the caller's.
//
// Decisions beyond the spec (the contract is in call_state.h):
// - Order of checks in apply_event: ts range and eventId length (refused 70001) -> unknown call (only
//   start_call creates one) -> wrong call id -> duplicate eventId (nothing changes, not even timers; a retried
//   event of an ended call is a duplicate, not late) -> start_call on an existing call, ended or not
//   (duplicate if same caller/callees/media/type/room, else refused; timeoutSec is not compared) ->
//   authorization of a user reporter (70004) -> timers due by the event's time fire -> ended call: late ->
//   role and state checks (70001) -> applied. Timers that fire stay fired even if the event is then late or
//   refused: they are facts of time.
// - Time never goes backwards within a call: an event counts at max(ts, clock_ms), clock_ms being the latest
//   applied event or fired timer, so out-of-order reports (several nodes, a clock step, an unsorted import)
//   still give startCallTs <= acceptTs <= endTs. A fired timer happens at its deadline, never at `now`.
// - ts must be 1..max_event_ts_ms, and an event whose clamped time would pass it is refused. This bounds
//   every stored time, so no arithmetic on (even decoded) states can overflow. heartbeat_sec < 0 means 0.
// - Idempotent repeats are applied as no-ops (refreshing last_seen): accept while connected, the same
//   answer twice (reject after reject), hangup / call_interrupted / heartbeat by a member who is no
//   longer connected, cancel_call by a caller who already left a group call, join while connected.
//   A contradicting answer (reject after accept, accept after reject or after leaving) is refused 70001.
// - A ringing callee's call_interrupted counts as not_answered (it did not decline); its hangup counts as
//   reject (brief).
// - The caller leaving before anyone accepted ends the call as `cancel` whatever the way: cancel_call and
//   hangup (caller status cancelled), call_interrupted (interrupted), heartbeat silence (offline).
// - invite_user: the actor must be connected; callees already in the call (in any status, the caller
//   included) and repeats in the list are ignored; one invalid user id refuses the whole event.
// - join_in_group_call by a member who is not connected (ringing, rejected, left, offline, ...) connects
//   them again: it is how a dropped participant comes back. A ringing callee's join counts as an accept.
// - At most max_callees (100) callees per call, invited and joined together; at most max_event_ids (1000)
//   remembered event ids per call, the oldest dropped first (a retry older than that applies again). An
//   event id is a duplicate only for the user who sent it first (applied_event_id).
// - When the call ends, callees still ringing become cancelled and the members still connected become
//   left, so an ended state has no pending timer and tells each member's last status.
// - Timers due at the same deadline fire in member order (caller first), so replays are deterministic.
#include "calls/call_state.h"

#include <algorithm>
#include <array>

namespace callrec::calls {
namespace {

constexpr std::array<std::string_view, 11> event_kind_names{
    "start_call",  "accept_call",        "reject_call", "not_answer_call",  "call_busy", "cancel_call",
    "invite_user", "join_in_group_call", "hangup",      "call_interrupted", "heartbeat"};
constexpr std::array<std::string_view, 4> event_status_names{"applied", "duplicate", "late", "refused"};
constexpr std::array<std::string_view, 9> member_status_names{
    "ringing", "connected", "rejected", "busy", "not_answered", "left", "interrupted", "offline", "cancelled"};

constexpr std::int32_t default_timeout_sec = 30;

// How a connected member stopped being connected: decides the callResult of an accepted call.
enum class departure : std::uint8_t { hangup, interrupted, offline };

std::string_view name_of(member_status s) noexcept { return member_status_names[static_cast<std::size_t>(s)]; }

std::string str(std::string_view s) { return std::string(s); }

event_outcome applied() { return {}; }
event_outcome refused(errc code, std::string message) { return {event_status::refused, code, std::move(message)}; }
event_outcome invalid(std::string message) { return refused(errc::invalid_param, std::move(message)); }

std::optional<std::size_t> index_of(const call_state& s, std::string_view user) noexcept {
  for (std::size_t i = 0; i < s.members.size(); ++i) {
    if (s.members[i].user_id == user) return i;
  }
  return std::nullopt;
}

std::int64_t heartbeat_ms(const call_settings& settings) noexcept {
  return settings.heartbeat_sec > 0 ? std::int64_t{settings.heartbeat_sec} * 1000 : 0;
}

// Ends the call at t: callees still ringing are cancelled, members still connected have left.
void finish(call_state& s, std::int64_t t, call_result r) {
  for (member& m : s.members) {
    if (m.status == member_status::ringing) m.status = member_status::cancelled;
    if (m.status == member_status::connected) m.status = member_status::left;
  }
  s.end_ms = t;
  s.clock_ms = std::max(s.clock_ms, t);
  s.result = r;
}

// The result of a call that nobody accepted and that ended without the caller giving up.
call_result unanswered_result(const call_state& s) noexcept {
  bool all_busy = s.members.size() > 1;
  bool all_declined = all_busy;
  for (std::size_t i = 1; i < s.members.size(); ++i) {
    const member_status st = s.members[i].status;
    all_busy = all_busy && st == member_status::busy;
    all_declined = all_declined && (st == member_status::busy || st == member_status::rejected);
  }
  if (all_busy) return call_result::call_busy;
  if (all_declined) return call_result::reject;
  return call_result::not_answer;
}

// The end rule, evaluated after every change at time t; `cause` is how the last member departed.
void end_if_over(call_state& s, std::int64_t t, departure cause) {
  if (ended(s)) return;
  if (s.accept_ms != 0) {
    const auto connected = std::count_if(s.members.begin(), s.members.end(),
                                         [](const member& m) { return m.status == member_status::connected; });
    if (connected >= 2) return;
    switch (cause) {
      case departure::hangup:
        return finish(s, t, call_result::normal_end);
      case departure::interrupted:
        return finish(s, t, call_result::interrupt);
      case departure::offline:
        return finish(s, t, call_result::offline);
    }
    return;
  }
  for (std::size_t i = 1; i < s.members.size(); ++i) {
    if (s.members[i].status == member_status::ringing) return;  // someone may still accept
  }
  finish(s, t, unanswered_result(s));
}

// The caller left before anyone accepted: the call ends as cancel.
void caller_gave_up(call_state& s, std::int64_t t, member_status how) {
  s.members[0].status = how;
  finish(s, t, call_result::cancel);
}

// A member leaves (hangup, call_interrupted, heartbeat silence). No-op unless connected.
void depart(call_state& s, std::size_t i, std::int64_t t, member_status how, departure cause) {
  member& m = s.members[i];
  if (m.status != member_status::connected) return;
  if (i == 0 && s.accept_ms == 0) return caller_gave_up(s, t, how);
  m.status = how;
  end_if_over(s, t, cause);
}

struct due_timer {
  std::int64_t deadline = 0;
  std::size_t member = 0;
};

std::optional<due_timer> earliest_timer(const call_state& s, const call_settings& settings) {
  if (ended(s)) return std::nullopt;
  const std::int64_t heartbeat = heartbeat_ms(settings);
  std::optional<due_timer> best;
  for (std::size_t i = 0; i < s.members.size(); ++i) {
    const member& m = s.members[i];
    std::optional<std::int64_t> deadline;
    if (m.status == member_status::ringing) deadline = m.ring_deadline_ms;
    if (m.status == member_status::connected && heartbeat > 0) deadline = m.last_seen_ms + heartbeat;
    if (deadline && (!best || *deadline < best->deadline)) best = due_timer{*deadline, i};
  }
  return best;
}

void fire(call_state& s, const due_timer& timer) {
  const std::int64_t t = std::max(timer.deadline, s.clock_ms);
  s.clock_ms = t;
  member& m = s.members[timer.member];
  if (m.status == member_status::ringing) {
    m.status = member_status::not_answered;
    end_if_over(s, t, departure::hangup);
  } else {
    depart(s, timer.member, t, member_status::offline, departure::offline);
  }
}

void remember_event_id(call_state& s, const call_event& ev) {
  if (ev.event_id.empty()) return;
  s.event_ids.push_back(applied_event_id{ev.user_id, ev.event_id});
  if (s.event_ids.size() > max_event_ids) s.event_ids.erase(s.event_ids.begin());
}

bool already_applied(const call_state& s, const call_event& ev) {
  return std::any_of(s.event_ids.begin(), s.event_ids.end(), [&](const applied_event_id& e) {
    return e.event_id == ev.event_id && (e.user_id.empty() || e.user_id == ev.user_id);
  });
}

std::string too_many_callees(std::string_view what, std::size_t n) {
  return std::string(what) + " " + std::to_string(n) + " callees; " + std::string(rule::callees);
}

// Validates a start_call and builds the call it creates (also used to compare a repeated start_call).
result<call_state> start(const call_event& ev) {
  if (!valid_call_id(ev.call_id)) return make_error(errc::invalid_param, must_be("callId", rule::call_id));
  if (!valid_user_id(ev.user_id)) return make_error(errc::invalid_param, must_be("userId", rule::user_id));
  if (ev.callees.empty()) return make_error(errc::invalid_param, "start_call needs callees (at least one)");
  if (ev.callees.size() > max_callees) {
    return make_error(errc::invalid_param, too_many_callees("start_call lists", ev.callees.size()));
  }
  for (std::size_t k = 0; k < ev.callees.size(); ++k) {
    const std::string& c = ev.callees[k];
    const std::string field = "callees[" + std::to_string(k) + "]";
    if (!valid_user_id(c)) return make_error(errc::invalid_param, must_be(field, rule::user_id));
    if (c == ev.user_id) return make_error(errc::invalid_param, field + " '" + c + "' is the caller");
    if (std::find(ev.callees.begin(), ev.callees.begin() + static_cast<std::ptrdiff_t>(k), c) !=
        ev.callees.begin() + static_cast<std::ptrdiff_t>(k)) {
      return make_error(errc::invalid_param, field + " '" + c + "' is listed twice");
    }
  }
  const call_type type = ev.type.value_or(ev.callees.size() == 1 ? call_type::single : call_type::group);
  if (type == call_type::single && ev.callees.size() > 1) {
    return make_error(errc::invalid_param,
                      "a single call has exactly one callee, got " + std::to_string(ev.callees.size()));
  }
  const std::int32_t timeout = ev.timeout_sec.value_or(default_timeout_sec);
  if (timeout < 1 || timeout > max_timeout_sec) {
    return make_error(errc::invalid_param,
                      "timeoutSec must be 1.." + std::to_string(max_timeout_sec) + ", got " + std::to_string(timeout));
  }
  if (!ev.room_id.empty() && !valid_room_id(ev.room_id)) {
    return make_error(errc::invalid_param, must_be("roomId", rule::room_id));
  }

  call_state s;
  s.call_id = ev.call_id;
  s.caller = ev.user_id;
  s.media = ev.media.value_or(media_type::audio);
  s.type = type;
  s.room_id = ev.room_id;
  s.timeout_sec = timeout;
  s.start_ms = ev.ts_ms;
  s.clock_ms = ev.ts_ms;
  s.initial_callees = static_cast<std::uint32_t>(ev.callees.size());
  s.members.reserve(1 + ev.callees.size());
  s.members.push_back(member{ev.user_id, member_status::connected, 0, ev.ts_ms, true});
  const std::int64_t deadline = ev.ts_ms + std::int64_t{timeout} * 1000;
  for (const std::string& c : ev.callees) s.members.push_back(member{c, member_status::ringing, deadline, 0, true});
  return s;
}

bool same_start(const call_state& s, const call_state& again) {
  if (s.caller != again.caller || s.media != again.media || s.type != again.type || s.room_id != again.room_id) {
    return false;
  }
  if (s.initial_callees != again.initial_callees || s.members.size() < 1 + std::size_t{s.initial_callees}) {
    return false;
  }
  for (std::size_t i = 1; i <= s.initial_callees; ++i) {
    if (s.members[i].user_id != again.members[i].user_id) return false;
  }
  return true;
}

std::string not_in_call(const call_event& ev) { return "user " + ev.user_id + " is not in call " + ev.call_id; }

// reject_call, not_answer_call, call_busy: a ringing callee answers without joining.
event_outcome answer(call_state& s, const call_event& ev, std::int64_t t, member_status answer_status) {
  const auto i = index_of(s, ev.user_id);
  if (!i) return invalid(not_in_call(ev));
  if (*i == 0) return invalid("the caller " + ev.user_id + " cannot " + str(to_string(ev.kind)));
  member& m = s.members[*i];
  if (m.status == answer_status) return applied();
  if (m.status != member_status::ringing) {
    return invalid("callee " + ev.user_id + " already answered call " + ev.call_id + " (" + str(name_of(m.status)) +
                   ")");
  }
  m.status = answer_status;
  end_if_over(s, t, departure::hangup);
  return applied();
}

event_outcome accept(call_state& s, const call_event& ev, std::int64_t t) {
  const auto i = index_of(s, ev.user_id);
  if (!i) return invalid("user " + ev.user_id + " was never invited to call " + ev.call_id);
  if (*i == 0) return invalid("the caller " + ev.user_id + " cannot accept call " + ev.call_id);
  member& m = s.members[*i];
  if (m.status == member_status::connected) return applied();
  if (m.status != member_status::ringing) {
    return invalid("callee " + ev.user_id + " already answered call " + ev.call_id + " (" + str(name_of(m.status)) +
                   ")");
  }
  m.status = member_status::connected;
  m.last_seen_ms = t;
  if (s.accept_ms == 0) s.accept_ms = t;
  return applied();
}

event_outcome cancel(call_state& s, const call_event& ev, std::int64_t t) {
  if (s.caller != ev.user_id) return invalid("only the caller can cancel call " + ev.call_id);
  if (s.accept_ms == 0) {
    caller_gave_up(s, t, member_status::cancelled);
  } else {
    depart(s, 0, t, member_status::left, departure::hangup);
  }
  return applied();
}

event_outcome invite(call_state& s, const call_event& ev, std::int64_t t) {
  if (s.type != call_type::group) return invalid("invite_user is for group calls; call " + ev.call_id + " is single");
  const auto i = index_of(s, ev.user_id);
  if (!i) return invalid(not_in_call(ev));
  if (s.members[*i].status != member_status::connected) {
    return invalid("user " + ev.user_id + " is not connected to call " + ev.call_id + " and cannot invite");
  }
  if (ev.callees.empty()) return invalid("invite_user needs callees");
  std::vector<const std::string*> added;
  for (std::size_t k = 0; k < ev.callees.size(); ++k) {
    const std::string& c = ev.callees[k];
    if (!valid_user_id(c)) return invalid(must_be("callees[" + std::to_string(k) + "]", rule::user_id));
    if (index_of(s, c)) continue;
    if (std::any_of(added.begin(), added.end(), [&](const std::string* a) { return *a == c; })) continue;
    added.push_back(&c);
  }
  if (s.members.size() - 1 + added.size() > max_callees) {
    return invalid(too_many_callees("invite_user would give call " + ev.call_id, s.members.size() - 1 + added.size()));
  }
  const std::int64_t deadline = t + std::int64_t{s.timeout_sec} * 1000;
  for (const std::string* c : added) s.members.push_back(member{*c, member_status::ringing, deadline, 0, true});
  return applied();
}

event_outcome join(call_state& s, const call_event& ev, std::int64_t t) {
  if (s.type != call_type::group) {
    return invalid("join_in_group_call is for group calls; call " + ev.call_id + " is single");
  }
  const auto i = index_of(s, ev.user_id);
  if (!i) {
    if (!valid_user_id(ev.user_id)) return invalid(must_be("userId", rule::user_id));
    if (s.members.size() - 1 >= max_callees) {
      return invalid(too_many_callees("join_in_group_call would give call " + ev.call_id, s.members.size()));
    }
    s.members.push_back(member{ev.user_id, member_status::connected, 0, t, false});
    if (s.accept_ms == 0) s.accept_ms = t;
    return applied();
  }
  member& m = s.members[*i];
  if (m.status == member_status::connected) return applied();
  m.status = member_status::connected;
  m.last_seen_ms = t;
  if (*i != 0 && s.accept_ms == 0) s.accept_ms = t;
  return applied();
}

// hangup and call_interrupted.
event_outcome leave(call_state& s, const call_event& ev, std::int64_t t, member_status how, departure cause,
                    member_status ringing_becomes) {
  const auto i = index_of(s, ev.user_id);
  if (!i) return invalid(not_in_call(ev));
  member& m = s.members[*i];
  if (m.status == member_status::ringing) {
    m.status = ringing_becomes;
    end_if_over(s, t, cause);
  } else {
    depart(s, *i, t, how, cause);
  }
  return applied();
}

// The event on a live call, at time t (already clamped to the call's clock).
event_outcome apply_live(call_state& s, const call_event& ev, std::int64_t t) {
  switch (ev.kind) {
    case event_kind::start_call:
      break;  // handled before
    case event_kind::accept_call:
      return accept(s, ev, t);
    case event_kind::reject_call:
      return answer(s, ev, t, member_status::rejected);
    case event_kind::not_answer_call:
      return answer(s, ev, t, member_status::not_answered);
    case event_kind::call_busy:
      return answer(s, ev, t, member_status::busy);
    case event_kind::cancel_call:
      return cancel(s, ev, t);
    case event_kind::invite_user:
      return invite(s, ev, t);
    case event_kind::join_in_group_call:
      return join(s, ev, t);
    case event_kind::hangup:
      return leave(s, ev, t, member_status::left, departure::hangup, member_status::rejected);
    case event_kind::call_interrupted:
      return leave(s, ev, t, member_status::interrupted, departure::interrupted, member_status::not_answered);
    case event_kind::heartbeat:
      if (!index_of(s, ev.user_id)) return invalid(not_in_call(ev));
      return applied();  // last_seen is refreshed by the caller, like for every event of a connected member
  }
  return invalid("unknown event kind");
}

}  // namespace

std::string_view to_string(event_kind k) noexcept {
  const auto i = static_cast<std::size_t>(k);
  return i < event_kind_names.size() ? event_kind_names[i] : std::string_view{"unknown"};
}

std::optional<event_kind> parse_event_kind(std::string_view s) noexcept {
  for (std::size_t i = 0; i < event_kind_names.size(); ++i) {
    if (event_kind_names[i] == s) return static_cast<event_kind>(i);
  }
  return std::nullopt;
}

std::string_view to_string(event_status s) noexcept {
  const auto i = static_cast<std::size_t>(s);
  return i < event_status_names.size() ? event_status_names[i] : std::string_view{"unknown"};
}

bool takes_part(const call_state& s, std::string_view user) noexcept { return index_of(s, user).has_value(); }

event_outcome apply_event(std::optional<call_state>& state, const call_event& ev, const call_settings& settings,
                          bool reported_by_admin) {
  if (ev.ts_ms < 1 || ev.ts_ms > max_event_ts_ms) {
    return invalid("ts " + std::to_string(ev.ts_ms) + " is out of range (1.." + std::to_string(max_event_ts_ms) +
                   " unix milliseconds)");
  }
  if (!ev.event_id.empty() && !valid_event_id(ev.event_id)) return invalid(must_be("eventId", rule::event_id));
  if (!state) {
    if (ev.kind != event_kind::start_call) return invalid("call " + ev.call_id + " is not known");
    auto created = start(ev);
    if (!created) return refused(created.error().code, created.error().message);
    state = std::move(created).value();
    remember_event_id(*state, ev);
    return applied();
  }

  call_state& s = *state;
  if (ev.call_id != s.call_id) return invalid("event for call " + ev.call_id + " given the state of another call");
  if (!ev.event_id.empty() && already_applied(s, ev)) {
    return {event_status::duplicate, errc::ok, "eventId " + ev.event_id + " of user " + ev.user_id + " was already applied"};
  }
  if (ev.kind == event_kind::start_call) {
    auto again = start(ev);
    if (!again) return refused(again.error().code, again.error().message);
    if (same_start(s, *again)) return {event_status::duplicate, errc::ok, "start_call repeated with the same data"};
    return invalid("second start_call for call " + ev.call_id + " with other data");
  }
  if (!reported_by_admin && !takes_part(s, ev.user_id) &&
      !(ev.kind == event_kind::join_in_group_call && s.type == call_type::group)) {
    return refused(errc::not_admin, "user " + ev.user_id + " does not take part in call " + ev.call_id);
  }

  advance_to(s, std::max(ev.ts_ms, s.clock_ms), settings);
  if (ended(s)) return {event_status::late, errc::ok, "call " + ev.call_id + " already ended"};
  const std::int64_t t = std::max(ev.ts_ms, s.clock_ms);
  if (t > max_event_ts_ms) return invalid("call " + ev.call_id + " is past the last supported time");

  event_outcome outcome = apply_live(s, ev, t);
  if (outcome.status != event_status::applied) return outcome;
  s.clock_ms = t;
  if (const auto i = index_of(s, ev.user_id); i && s.members[*i].status == member_status::connected) {
    s.members[*i].last_seen_ms = std::max(s.members[*i].last_seen_ms, t);
  }
  remember_event_id(s, ev);
  return outcome;
}

bool advance_to(call_state& state, std::int64_t now_ms, const call_settings& settings) {
  bool changed = false;
  // Each firing takes one member out of ringing or connected, so the loop ends.
  while (const auto timer = earliest_timer(state, settings)) {
    if (timer->deadline > now_ms) break;
    fire(state, *timer);
    changed = true;
  }
  return changed;
}

std::optional<std::int64_t> next_deadline_ms(const call_state& state, const call_settings& settings) {
  const auto timer = earliest_timer(state, settings);
  if (!timer) return std::nullopt;
  return timer->deadline;
}

call_record to_record(const call_state& s, std::uint32_t sdkappid) {
  call_record r;
  r.call_id = s.call_id;
  r.sdkappid = sdkappid;
  r.media = s.media;
  r.room_id = s.room_id;
  r.start_ts = s.start_ms / 1000;
  r.accept_ts = s.accept_ms / 1000;
  r.end_ts = s.end_ms / 1000;
  r.caller = s.caller;
  r.callees.reserve(s.members.empty() ? 0 : s.members.size() - 1);
  for (std::size_t i = 1; i < s.members.size(); ++i) r.callees.push_back(s.members[i].user_id);
  r.type = s.type;
  r.result = s.result.value_or(call_result::not_answer);
  return r;
}

}  // namespace callrec::calls
