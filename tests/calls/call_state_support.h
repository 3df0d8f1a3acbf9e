// Helpers shared by the call-state tests: terse event builders and the invariants every state must keep.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "calls/call_state.h"

namespace callrec::calls::testing {

inline constexpr std::int64_t t0_sec = 1'700'000'000;  // 2023-11-14, unix seconds
inline constexpr std::int64_t t0_ms = t0_sec * 1000;
inline constexpr const char* call_id = "call-1";

// Unix milliseconds `sec` seconds after t0, and the unix seconds a record shows for it.
constexpr std::int64_t at(std::int64_t sec) { return t0_ms + sec * 1000; }
constexpr std::int64_t ts(std::int64_t sec) { return t0_sec + sec; }

// One line of a scenario: an event (with who reports it and the expected outcome) or a timer sweep.
struct step {
  call_event ev;
  bool admin = false;
  std::optional<std::int64_t> advance_ms;  // set: advance_to(advance_ms) instead of an event
  event_status want = event_status::applied;
  errc code = errc::ok;

  step& id(std::string v) {
    ev.event_id = std::move(v);
    return *this;
  }
  step& by_admin() {
    admin = true;
    return *this;
  }
  step& expect(event_status s) {
    want = s;
    return *this;
  }
  step& refused(errc c) {
    want = event_status::refused;
    code = c;
    return *this;
  }
  step& callees(std::vector<std::string> v) {
    ev.callees = std::move(v);
    return *this;
  }
  step& type(call_type t) {
    ev.type = t;
    return *this;
  }
  step& media(media_type m) {
    ev.media = m;
    return *this;
  }
  step& room(std::string r) {
    ev.room_id = std::move(r);
    return *this;
  }
  step& timeout(std::int32_t s) {
    ev.timeout_sec = s;
    return *this;
  }
};

inline step ev(event_kind kind, std::string user, std::int64_t ts_ms) {
  step s;
  s.ev.call_id = call_id;
  s.ev.kind = kind;
  s.ev.user_id = std::move(user);
  s.ev.ts_ms = ts_ms;
  return s;
}

inline step start(std::string caller, std::vector<std::string> callees, std::int64_t ts_ms) {
  return ev(event_kind::start_call, std::move(caller), ts_ms).callees(std::move(callees));
}

inline step advance(std::int64_t ms) {
  step s;
  s.advance_ms = ms;
  return s;
}

// Checks what must hold of every state the machine produces (and of every state decode accepts and the
// machine then evolves). Reports with ADD_FAILURE so a scenario shows every broken rule.
inline void expect_invariants(const call_state& s, const call_settings& settings) {
  ASSERT_GE(s.members.size(), 2u);
  EXPECT_EQ(s.members[0].user_id, s.caller);
  EXPECT_LE(s.members.size() - 1, max_callees);
  EXPECT_LE(s.event_ids.size(), max_event_ids);
  std::vector<std::pair<std::string, std::string>> ids;
  for (const auto& e : s.event_ids) ids.emplace_back(e.user_id, e.event_id);
  std::sort(ids.begin(), ids.end());
  EXPECT_EQ(std::adjacent_find(ids.begin(), ids.end()), ids.end()) << "an event id is remembered twice for a user";
  EXPECT_GE(s.clock_ms, s.start_ms);
  if (s.accept_ms != 0) {
    EXPECT_GE(s.accept_ms, s.start_ms);
    EXPECT_LE(s.accept_ms, s.clock_ms);
  }
  const auto count = [&](member_status st, std::size_t from) {
    return std::count_if(s.members.begin() + static_cast<std::ptrdiff_t>(from), s.members.end(),
                         [&](const member& m) { return m.status == st; });
  };
  if (ended(s)) {
    EXPECT_GE(s.end_ms, s.start_ms);
    EXPECT_GE(s.end_ms, s.accept_ms);
    EXPECT_EQ(s.end_ms, s.clock_ms);
    EXPECT_EQ(count(member_status::ringing, 0), 0);
    EXPECT_EQ(count(member_status::connected, 0), 0);
    EXPECT_FALSE(next_deadline_ms(s, settings).has_value());
    const call_result r = *s.result;
    if (s.accept_ms != 0) {
      EXPECT_TRUE(r == call_result::normal_end || r == call_result::interrupt || r == call_result::offline)
          << to_string(r);
    } else {
      EXPECT_TRUE(r == call_result::cancel || r == call_result::reject || r == call_result::not_answer ||
                  r == call_result::call_busy)
          << to_string(r);
    }
  } else {
    EXPECT_EQ(s.end_ms, 0);
    if (s.accept_ms != 0) {
      EXPECT_GE(count(member_status::connected, 0), 2) << "an accepted live call has two connected members";
    } else {
      EXPECT_EQ(s.members[0].status, member_status::connected);
      EXPECT_EQ(count(member_status::connected, 1), 0);
      EXPECT_GE(count(member_status::ringing, 1), 1) << "an unanswered live call has someone ringing";
    }
    if (const auto next = next_deadline_ms(s, settings)) {
      EXPECT_GT(*next, s.clock_ms);
    }
  }
}

// decode(encode(s)) gives s back, and encoding is stable.
inline void expect_round_trip(const call_state& s) {
  const std::string bytes = encode(s);
  const auto back = decode(bytes);
  ASSERT_TRUE(back.has_value()) << back.error().message << "\n" << bytes;
  EXPECT_EQ(*back, s) << bytes;
  EXPECT_EQ(encode(*back), bytes);
}

}  // namespace callrec::calls::testing
