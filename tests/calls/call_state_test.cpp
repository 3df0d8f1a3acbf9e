// Unit tests of the call state machine beyond the scenario table: names, timers, limits, the record, the
// codec against corrupt bytes, and random event sequences checked against the invariants.
#include "calls/call_state.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <boost/json.hpp>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "calls/call_state_support.h"

namespace callrec::calls {
namespace {

using namespace testing;
using enum event_kind;

const call_settings every_minute{60};

call_state started(std::vector<std::string> callees, std::optional<call_type> type = std::nullopt) {
  std::optional<call_state> s;
  step st = start("alice", std::move(callees), at(0));
  st.ev.type = type;
  const auto o = apply_event(s, st.ev, every_minute, false);
  EXPECT_EQ(o.status, event_status::applied) << o.message;
  return *s;
}

event_outcome apply(call_state& s, const step& st, const call_settings& settings = every_minute) {
  std::optional<call_state> holder = std::move(s);
  const auto o = apply_event(holder, st.ev, settings, st.admin);
  s = std::move(*holder);
  return o;
}

TEST(call_state_names, event_kinds_round_trip) {
  for (int k = 0; k <= static_cast<int>(heartbeat); ++k) {
    const auto kind = static_cast<event_kind>(k);
    EXPECT_EQ(parse_event_kind(to_string(kind)), kind);
  }
  EXPECT_EQ(to_string(join_in_group_call), "join_in_group_call");
  EXPECT_FALSE(parse_event_kind("Hangup").has_value());
  EXPECT_FALSE(parse_event_kind("").has_value());
  EXPECT_EQ(to_string(event_status::applied), "applied");
  EXPECT_EQ(to_string(event_status::duplicate), "duplicate");
  EXPECT_EQ(to_string(event_status::late), "late");
  EXPECT_EQ(to_string(event_status::refused), "refused");
}

TEST(call_state_start, defaults) {
  const call_state s = started({"bob"});
  EXPECT_EQ(s.call_id, call_id);
  EXPECT_EQ(s.caller, "alice");
  EXPECT_EQ(s.media, media_type::audio);
  EXPECT_EQ(s.type, call_type::single);
  EXPECT_EQ(s.room_id, "");
  EXPECT_EQ(s.timeout_sec, 30);
  EXPECT_EQ(s.start_ms, at(0));
  ASSERT_EQ(s.members.size(), 2u);
  EXPECT_EQ(s.members[0], (member{"alice", member_status::connected, 0, at(0), true}));
  EXPECT_EQ(s.members[1], (member{"bob", member_status::ringing, at(30), 0, true}));
  EXPECT_EQ(started({"bob", "carol"}).type, call_type::group);
  EXPECT_EQ(started({"bob"}, call_type::group).type, call_type::group);
}

TEST(call_state_timers, next_deadline_follows_ringing_and_heartbeats) {
  call_state s = started({"bob"});
  EXPECT_EQ(next_deadline_ms(s, every_minute), at(30));  // ringing before the caller's heartbeat window
  EXPECT_EQ(next_deadline_ms(s, call_settings{10}), at(10));
  EXPECT_EQ(next_deadline_ms(s, call_settings{0}), at(30));
  ASSERT_EQ(apply(s, ev(accept_call, "bob", at(5))).status, event_status::applied);
  EXPECT_EQ(next_deadline_ms(s, every_minute), at(60));  // alice, last seen at 0
  EXPECT_FALSE(next_deadline_ms(s, call_settings{0}).has_value());
  ASSERT_EQ(apply(s, ev(heartbeat, "alice", at(20))).status, event_status::applied);
  EXPECT_EQ(next_deadline_ms(s, every_minute), at(65));  // bob, last seen at 5
  ASSERT_EQ(apply(s, ev(hangup, "bob", at(21))).status, event_status::applied);
  EXPECT_TRUE(ended(s));
  EXPECT_FALSE(next_deadline_ms(s, every_minute).has_value());
}

TEST(call_state_timers, advance_to_reports_whether_anything_fired) {
  call_state s = started({"bob", "carol"});
  EXPECT_FALSE(advance_to(s, at(30) - 1, every_minute));
  EXPECT_FALSE(advance_to(s, at(-100), every_minute));  // the past: nothing
  EXPECT_TRUE(advance_to(s, at(30), every_minute));     // deadline reached: fires
  EXPECT_TRUE(ended(s));
  EXPECT_EQ(s.result, call_result::not_answer);
  EXPECT_EQ(s.end_ms, at(30));
  EXPECT_FALSE(advance_to(s, at(10000), every_minute));
}

TEST(call_state_timers, a_negative_heartbeat_window_means_off) {
  call_state s = started({"bob"});
  ASSERT_EQ(apply(s, ev(accept_call, "bob", at(1))).status, event_status::applied);
  EXPECT_FALSE(advance_to(s, at(1'000'000), call_settings{-5}));
  EXPECT_FALSE(next_deadline_ms(s, call_settings{-5}).has_value());
}

TEST(call_state_end, member_statuses_after_a_cancel) {
  call_state s = started({"bob", "carol", "dave"});
  ASSERT_EQ(apply(s, ev(reject_call, "bob", at(1))).status, event_status::applied);
  ASSERT_EQ(apply(s, ev(call_busy, "carol", at(2))).status, event_status::applied);
  ASSERT_EQ(apply(s, ev(cancel_call, "alice", at(3))).status, event_status::applied);
  EXPECT_EQ(s.result, call_result::cancel);
  EXPECT_EQ(s.members[0].status, member_status::cancelled);
  EXPECT_EQ(s.members[1].status, member_status::rejected);
  EXPECT_EQ(s.members[2].status, member_status::busy);
  EXPECT_EQ(s.members[3].status, member_status::cancelled);
}

TEST(call_state_end, members_still_there_when_an_accepted_call_ends) {
  call_state s = started({"bob", "carol"});
  ASSERT_EQ(apply(s, ev(accept_call, "bob", at(1))).status, event_status::applied);
  ASSERT_EQ(apply(s, ev(call_interrupted, "bob", at(2))).status, event_status::applied);
  EXPECT_EQ(s.result, call_result::interrupt);
  EXPECT_EQ(s.members[0].status, member_status::left);
  EXPECT_EQ(s.members[1].status, member_status::interrupted);
  EXPECT_EQ(s.members[2].status, member_status::cancelled);  // was still ringing
}

TEST(call_state_end, an_interrupted_caller_before_accept_is_kept_as_interrupted) {
  call_state s = started({"bob"});
  ASSERT_EQ(apply(s, ev(call_interrupted, "alice", at(1))).status, event_status::applied);
  EXPECT_EQ(s.result, call_result::cancel);
  EXPECT_EQ(s.members[0].status, member_status::interrupted);
}

TEST(call_state_events, every_event_of_a_connected_member_refreshes_last_seen) {
  call_state s = started({"bob", "carol"});
  ASSERT_EQ(apply(s, ev(accept_call, "bob", at(1))).status, event_status::applied);
  ASSERT_EQ(apply(s, ev(invite_user, "alice", at(7)).callees({"dave"})).status, event_status::applied);
  EXPECT_EQ(s.members[0].last_seen_ms, at(7));
  EXPECT_EQ(s.members[3], (member{"dave", member_status::ringing, at(37), 0, true}));
  ASSERT_EQ(apply(s, ev(accept_call, "bob", at(9))).status, event_status::applied);  // repeated: no-op
  EXPECT_EQ(s.members[1].last_seen_ms, at(9));
  ASSERT_EQ(apply(s, ev(heartbeat, "carol", at(10))).status, event_status::applied);  // ringing: nothing
  EXPECT_EQ(s.members[2].last_seen_ms, 0);
}

TEST(call_state_events, event_ids_are_capped_and_the_oldest_forgotten) {
  call_state s = started({"bob"});
  ASSERT_EQ(apply(s, ev(accept_call, "bob", at(1))).status, event_status::applied);
  const call_settings no_heartbeat{0};
  const std::size_t n = max_event_ids + 100;
  for (std::size_t i = 0; i < n; ++i) {
    const auto o = apply(s, ev(heartbeat, "alice", at(2) + static_cast<std::int64_t>(i)).id("h" + std::to_string(i)),
                         no_heartbeat);
    ASSERT_EQ(o.status, event_status::applied) << i;
  }
  ASSERT_EQ(s.event_ids.size(), max_event_ids);
  EXPECT_EQ(s.event_ids.front(), (applied_event_id{"alice", "h100"}));
  EXPECT_EQ(s.event_ids.back(), (applied_event_id{"alice", "h" + std::to_string(n - 1)}));
  EXPECT_EQ(apply(s, ev(heartbeat, "alice", at(5000)).id("h" + std::to_string(n - 1)), no_heartbeat).status,
            event_status::duplicate);
  EXPECT_EQ(apply(s, ev(heartbeat, "alice", at(5000)).id("h0"), no_heartbeat).status, event_status::applied);
  expect_round_trip(s);
}

TEST(call_state_events, refused_events_are_not_remembered) {
  call_state s = started({"bob"});
  EXPECT_EQ(apply(s, ev(accept_call, "mallory", at(1)).by_admin().id("x")).status, event_status::refused);
  EXPECT_TRUE(s.event_ids.empty());
  EXPECT_EQ(apply(s, ev(accept_call, "bob", at(1)).id("x")).status, event_status::applied);
  EXPECT_EQ(s.event_ids, (std::vector<applied_event_id>{{"bob", "x"}}));
}

// SPEC 5: an eventId is a duplicate for the call and the acting user. Another participant who sends the same
// id first does not make this user's event a duplicate.
TEST(call_state_events, an_event_id_is_scoped_to_the_acting_user) {
  call_state s = started({"bob", "carol"});
  ASSERT_EQ(apply(s, ev(accept_call, "bob", at(1)).id("e1")).status, event_status::applied);
  EXPECT_EQ(apply(s, ev(accept_call, "carol", at(2)).id("e1")).status, event_status::applied);
  EXPECT_EQ(s.members[2].status, member_status::connected) << "carol's accept was applied, not a duplicate";
  EXPECT_EQ(apply(s, ev(hangup, "carol", at(3)).id("e1")).status, event_status::duplicate) << "carol's retry";
  EXPECT_EQ(apply(s, ev(hangup, "bob", at(3)).id("e1")).status, event_status::duplicate) << "bob's retry";
  EXPECT_EQ(s.event_ids, (std::vector<applied_event_id>{{"bob", "e1"}, {"carol", "e1"}}));
  expect_round_trip(s);
}

// A call state written before the scope changed (format 1) kept its ids without users: they still match any
// user, so a retry of such an event stays a duplicate, and the state is written back with them unchanged.
TEST(call_state_codec, reads_format_1_event_ids_as_any_users) {
  call_state s = started({"bob"});
  ASSERT_EQ(apply(s, ev(accept_call, "bob", at(1))).status, event_status::applied);
  std::string v1 = encode(s);
  const auto version = v1.find("\"v\":2");
  ASSERT_NE(version, std::string::npos);
  v1.replace(version, 5, "\"v\":1");
  const auto eids = v1.find("\"eids\":[]");
  ASSERT_NE(eids, std::string::npos);
  v1.replace(eids, 9, "\"eids\":[\"old-1\",\"" + std::string(128, 'x') + "\"]");
  auto decoded = decode(v1);
  ASSERT_TRUE(decoded.has_value()) << decoded.error().message;
  call_state old = *decoded;
  EXPECT_EQ(old.event_ids, (std::vector<applied_event_id>{{"", "old-1"}, {"", std::string(128, 'x')}}));
  EXPECT_EQ(apply(old, ev(hangup, "alice", at(2)).id("old-1")).status, event_status::duplicate);
  EXPECT_EQ(apply(old, ev(hangup, "bob", at(2)).id("old-1")).status, event_status::duplicate);
  expect_round_trip(old);
  ASSERT_EQ(apply(old, ev(heartbeat, "bob", at(3)).id("new-1")).status, event_status::applied);
  auto again = decode(encode(old));
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(again->event_ids.back(), (applied_event_id{"bob", "new-1"}));
  // A format 1 state with a format 2 entry is corrupt.
  std::string mixed = v1;
  mixed.replace(mixed.find("\"old-1\""), 7, "[\"bob\",\"old-1\"]");
  EXPECT_FALSE(decode(mixed).has_value());
}

TEST(call_state_events, an_event_for_another_call_is_refused) {
  call_state s = started({"bob"});
  step st = ev(accept_call, "bob", at(1));
  st.ev.call_id = "other";
  const auto o = apply(s, st);
  EXPECT_EQ(o.status, event_status::refused);
  EXPECT_EQ(o.code, errc::invalid_param);
  EXPECT_EQ(s, started({"bob"}));
}

TEST(call_state_events, refusal_messages_name_the_problem) {
  call_state s = started({"bob"});
  EXPECT_EQ(apply(s, ev(hangup, "mallory", at(1))).message, "user mallory does not take part in call call-1");
  EXPECT_EQ(apply(s, ev(accept_call, "mallory", at(1)).by_admin()).message,
            "user mallory was never invited to call call-1");
  std::optional<call_state> none;
  EXPECT_EQ(apply_event(none, ev(hangup, "alice", at(1)).ev, every_minute, true).message, "call call-1 is not known");
  EXPECT_EQ(apply(s, start("alice", {"carol"}, at(1))).message, "second start_call for call call-1 with other data");
  EXPECT_EQ(apply(s, start("alice", {"bob", "carol"}, at(1)).type(call_type::single)).message,
            "a single call has exactly one callee, got 2");
}

TEST(call_state_record, carries_every_field) {
  call_state s = started({"bob", "carol"});
  s.media = media_type::video;
  s.room_id = "12345";
  ASSERT_EQ(apply(s, ev(accept_call, "carol", at(3) + 700)).status, event_status::applied);
  ASSERT_EQ(apply(s, ev(join_in_group_call, "erin", at(4))).status, event_status::applied);
  ASSERT_EQ(apply(s, ev(hangup, "carol", at(8))).status, event_status::applied);
  ASSERT_EQ(apply(s, ev(hangup, "erin", at(9) + 999)).status, event_status::applied);
  const call_record r = to_record(s, 1400000001);
  EXPECT_EQ(r, (call_record{call_id,
                            1400000001,
                            media_type::video,
                            "12345",
                            ts(0),
                            ts(3),
                            ts(9),
                            "alice",
                            {"bob", "carol", "erin"},
                            call_type::group,
                            call_result::normal_end}));
  EXPECT_EQ(r.total_user_number(), 4u);
}

TEST(call_state_record, takes_part) {
  call_state s = started({"bob"}, call_type::group);
  EXPECT_TRUE(takes_part(s, "alice"));
  EXPECT_TRUE(takes_part(s, "bob"));
  EXPECT_FALSE(takes_part(s, "erin"));
  ASSERT_EQ(apply(s, ev(join_in_group_call, "erin", at(1))).status, event_status::applied);
  EXPECT_TRUE(takes_part(s, "erin"));
  EXPECT_FALSE(s.members.back().invited);
}

// ---- codec

std::string valid_encoding() {
  call_state s = started({"bob", "carol"});
  EXPECT_EQ(apply(s, ev(accept_call, "bob", at(1)).id("e1")).status, event_status::applied);
  return encode(s);
}

std::string replaced(std::string s, std::string_view from, std::string_view to) {
  const auto at = s.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  if (at != std::string::npos) s.replace(at, from.size(), to);
  return s;
}

namespace json = boost::json;

// The encoding with one field replaced by `v`.
std::string with(const std::string& bytes, std::string_view key, json::value v) {
  json::value doc = json::parse(bytes);
  doc.as_object()[key] = std::move(v);
  return json::serialize(doc);
}

TEST(call_state_codec, a_patched_field_that_stays_valid_decodes) {
  const std::string good = valid_encoding();
  EXPECT_TRUE(decode(with(good, "room", json::value("42"))).has_value());
  EXPECT_TRUE(decode(with(good, "accept", json::value(max_event_ts_ms))).has_value());
  EXPECT_TRUE(decode(with(good, "init", json::value(std::uint64_t{1}))).has_value());
}

TEST(call_state_codec, encoding_is_compact_and_versioned) {
  const std::string bytes = valid_encoding();
  EXPECT_EQ(bytes.rfind("{\"v\":2,", 0), 0u) << bytes;
  EXPECT_EQ(bytes.find(' '), std::string::npos);
  EXPECT_TRUE(decode(bytes).has_value());
}

TEST(call_state_codec, keeps_arbitrary_bytes_in_ids_and_rooms) {
  call_state s = started({"bob"});
  s.call_id = "caf\xc3\xa9-\xff\xfe";  // valid_call_id allows any byte but controls
  s.room_id = std::string("r\0\n\"\\\x80", 6);
  expect_round_trip(s);
}

TEST(call_state_codec, refuses_garbage) {
  const std::string good = valid_encoding();
  const std::vector<std::string> bad = {
      "",
      "{",
      "null",
      "[]",
      "{}",
      "\"text\"",
      "\xff\xfe\x00",
      good.substr(0, good.size() - 1),
      good + "x",
      replaced(good, "\"v\":2", "\"v\":3"),
      replaced(good, "\"v\":2", "\"v\":0"),
      replaced(good, "\"v\":2", "\"v\":\"2\""),
      replaced(good, "\"v\":2", "\"w\":2"),
      replaced(good, "\"media\":0", "\"media\":2"),
      replaced(good, "\"media\":0", "\"media\":-1"),
      replaced(good, "\"type\":1", "\"type\":7"),
      replaced(good, "\"timeout\":30", "\"timeout\":0"),
      replaced(good, "\"timeout\":30", "\"timeout\":3601"),
      replaced(good, "\"timeout\":30", "\"timeout\":30.0"),
      replaced(good, "\"result\":null", "\"result\":7"),
      replaced(good, "\"result\":null", "\"result\":3"),  // live call with a result
      replaced(good, "\"result\":null", "\"result\":true"),
      replaced(good, "\"end\":0", "\"end\":5"),  // end without a result
      replaced(good, "\"start\":", "\"start\":-"),
      replaced(good, "\"init\":2", "\"init\":3"),
      replaced(good, "\"init\":2", "\"init\":0"),
      replaced(good, "\"caller\":\"alice\"", "\"caller\":\"bob\""),
      replaced(good, "\"caller\":\"alice\"", "\"caller\":\"\""),
      replaced(good, "\"id\":\"call-1\"", "\"id\":\"\""),
      replaced(good, "\"id\":\"call-1\"", "\"id\":\"a\\nb\""),
      replaced(good, "\"id\":\"call-1\"", "\"id\":7"),
      replaced(good, "[\"bob\",1,", "[\"bob\",9,"),
      replaced(good, "[\"bob\",1,", "[\"carol\",1,"),
      replaced(good, "[\"bob\",1,", "[\"b b\",1,"),
      replaced(good, "[\"bob\",1,", "[\"bob\",-1,"),
      replaced(good, "[\"bob\",1,", "[\"bob\",1,1,"),
      replaced(good, "[\"bob\",1,", "[\"bob\",1.5,"),
      replaced(good, ",true]", ",1]"),
      replaced(good, "\"members\":[", "\"members\":[1,"),
      replaced(good, "\"members\":[", "\"members\":{},\"y\":["),
      replaced(good, "\"eids\":[[\"bob\",\"e1\"]]", "\"eids\":[\"\"]"),
      replaced(good, "\"eids\":[[\"bob\",\"e1\"]]", "\"eids\":[1]"),
      replaced(good, "\"eids\":[[\"bob\",\"e1\"]]", "\"eids\":\"e1\""),
      replaced(good, "\"eids\":[[\"bob\",\"e1\"]]", "\"eids\":[[\"bob\",\"e1\"]],\"extra\":1"),
      replaced(good, "\"eids\":[[\"bob\",\"e1\"]]", "\"eids\":[[\"bob\",\"\"]]"),
      replaced(good, "\"eids\":[[\"bob\",\"e1\"]]", "\"eids\":[[\"\",\"e1\"]]"),
      replaced(good, "\"eids\":[[\"bob\",\"e1\"]]", "\"eids\":[[\"b b\",\"e1\"]]"),
      replaced(good, "\"eids\":[[\"bob\",\"e1\"]]", "\"eids\":[[\"bob\",\"e1\",1]]"),
      replaced(good, "\"eids\":[[\"bob\",\"e1\"]]", "\"eids\":[[\"bob\"]]"),
      replaced(good, "\"eids\":[[\"bob\",\"e1\"]]", "\"eids\":[[\"bob\",\"" + std::string(65, 'x') + "\"]]"),
      replaced(good, "\"eids\":[[\"bob\",\"e1\"]]", "\"eids\":[\"" + std::string(129, 'x') + "\"]"),
      std::string(100000, '['),
      with(good, "start", json::value(0)),
      with(good, "start", json::value(-1)),
      with(good, "start", json::value(1e3)),
      with(good, "start", json::value(std::uint64_t{18446744073709551615u})),
      with(good, "start", json::parse("99999999999999999999")),
      with(good, "accept", json::value(max_event_ts_ms + 1)),
      with(good, "clock", json::value(1)),  // before start
      with(good, "clock", json::value(std::numeric_limits<std::int64_t>::max())),
      with(good, "end", json::value(std::numeric_limits<std::int64_t>::max())),
      with(good, "members", json::parse(R"([["alice",1,0,253402300800000,true],["bob",0,0,0,true]])")),
      with(good, "members", json::parse(R"([["alice",1,0,0,true],["bob",0,253402304400000,0,true]])")),
      with(good, "members", json::parse(R"([["alice",1,0,0,true]])")),
      with(good, "room", json::value(std::string(65, 'r'))),
      with(good, "caller", json::value(nullptr)),
  };
  for (std::size_t i = 0; i < bad.size(); ++i) {
    const auto r = decode(bad[i]);
    EXPECT_FALSE(r.has_value()) << "case " << i << ": " << bad[i].substr(0, 200);
    if (!r) {
      EXPECT_EQ(r.error().code, errc::internal);
      EXPECT_FALSE(r.error().message.empty());
    }
  }
}

TEST(call_state_codec, refuses_too_many_members_and_event_ids) {
  call_state s = started({"bob"});
  for (std::size_t i = 0; i < max_callees; ++i) s.members.push_back(member{"u" + std::to_string(i)});
  EXPECT_FALSE(decode(encode(s)).has_value());
  s = started({"bob"});
  for (std::size_t i = 0; i <= max_event_ids; ++i) s.event_ids.push_back({"alice", "e" + std::to_string(i)});
  EXPECT_FALSE(decode(encode(s)).has_value());
  s.event_ids.pop_back();
  EXPECT_TRUE(decode(encode(s)).has_value());
}

// Whatever decode accepts must encode again to bytes that decode to the same state.
void expect_stable_if_accepted(std::string_view bytes) {
  const auto r = decode(bytes);
  if (!r) return;
  const std::string again = encode(*r);
  const auto back = decode(again);
  ASSERT_TRUE(back.has_value()) << back.error().message;
  EXPECT_EQ(*back, *r);
  EXPECT_EQ(encode(*back), again);
}

TEST(call_state_codec, every_truncation_and_byte_flip_is_handled) {
  const std::string good = valid_encoding();
  for (std::size_t n = 0; n < good.size(); ++n) {
    EXPECT_FALSE(decode(std::string_view(good).substr(0, n)).has_value()) << n;
  }
  std::mt19937 rng(12345);
  for (int round = 0; round < 5000; ++round) {
    std::string bytes = good;
    const int flips = 1 + static_cast<int>(rng() % 3);
    for (int f = 0; f < flips; ++f) bytes[rng() % bytes.size()] = static_cast<char>(rng() % 256);
    expect_stable_if_accepted(bytes);
  }
}

// ---- random sequences: no event sequence breaks an invariant or the codec.

// A random but plausible event: mostly by people in the call, mostly a few seconds apart, sometimes wrong.
class random_reporter {
 public:
  explicit random_reporter(std::uint32_t seed) : rng_(seed) {}

  std::size_t pick(std::size_t n) { return static_cast<std::size_t>(rng_() % n); }

  step next(const std::optional<call_state>& s, std::int64_t& now) {
    const std::size_t jump = pick(10);
    now += jump == 0   ? static_cast<std::int64_t>(pick(120'000))
           : jump == 1 ? -static_cast<std::int64_t>(pick(5'000))
                       : static_cast<std::int64_t>(pick(8'000));
    if (!s || pick(30) == 0) return start_event(now);
    std::string user = users[pick(users.size())];
    if (pick(5) != 0) user = s->members[pick(s->members.size())].user_id;
    constexpr std::array<event_kind, 16> weighted = {accept_call,        accept_call, accept_call, reject_call,
                                                     not_answer_call,    call_busy,   cancel_call, invite_user,
                                                     join_in_group_call, hangup,      hangup,      hangup,
                                                     call_interrupted,   heartbeat,   heartbeat,   heartbeat};
    step st = ev(weighted[pick(weighted.size())], user, now);
    if (st.ev.kind == invite_user) {
      for (std::size_t k = 0, n = pick(3); k < n; ++k) st.ev.callees.push_back(users[pick(users.size())]);
    }
    decorate(st);
    return st;
  }

  const std::vector<std::string> users = {"alice", "bob", "carol", "dave", "erin", "mallory"};

 private:
  step start_event(std::int64_t now) {
    std::vector<std::string> pool = users;
    std::shuffle(pool.begin(), pool.end(), rng_);
    const std::size_t callees = 1 + pick(3);
    step st = start(pool[0], std::vector<std::string>(pool.begin() + 1, pool.begin() + 1 + callees), now);
    if (pick(8) == 0) st.ev.callees.push_back(pool[pick(pool.size())]);  // maybe a repeat or the caller
    if (pick(3) == 0) st.ev.type = static_cast<call_type>(pick(2));
    if (pick(3) == 0) st.ev.timeout_sec = static_cast<std::int32_t>(pick(40));
    decorate(st);
    return st;
  }

  void decorate(step& st) {
    if (pick(3) == 0) st.ev.event_id = "e" + std::to_string(pick(12));
    st.admin = pick(3) == 0;
  }

  std::mt19937 rng_;
};

TEST(call_state_random, event_sequences_keep_the_invariants) {
  random_reporter reporter(20240601);
  std::array<int, call_result_count> results{};
  std::array<int, 4> statuses{};
  for (int round = 0; round < 3000; ++round) {
    const call_settings settings{static_cast<std::int32_t>(reporter.pick(3)) * 30};  // 0, 30 or 60 s
    std::optional<call_state> s;
    std::int64_t now = at(0);
    const std::size_t length = 1 + reporter.pick(30);
    for (std::size_t i = 0; i < length; ++i) {
      const step st = reporter.next(s, now);
      if (reporter.pick(6) == 0 && s) advance_to(*s, now, settings);
      const event_outcome o = apply_event(s, st.ev, settings, st.admin);
      ++statuses[static_cast<std::size_t>(o.status)];
      if (s) {
        expect_invariants(*s, settings);
        expect_round_trip(*s);
      }
      if (::testing::Test::HasFailure()) {
        FAIL() << "round " << round << ", event " << i << " (" << to_string(st.ev.kind) << " by " << st.ev.user_id
               << "): " << (s ? encode(*s) : "no call");
      }
    }
    if (s) {
      advance_to(*s, now + 10'000'000, settings);
      expect_invariants(*s, settings);
      if (settings.heartbeat_sec > 0) {
        EXPECT_TRUE(ended(*s)) << "every call ends once heartbeats stop";
      }
      if (s->result) ++results[static_cast<std::size_t>(*s->result)];
    }
  }
  // The generator must reach every result and every outcome, or it tests little.
  for (int r = 0; r < call_result_count; ++r) {
    EXPECT_GE(results[static_cast<std::size_t>(r)], 20) << to_string(static_cast<call_result>(r));
  }
  for (std::size_t k = 0; k < statuses.size(); ++k) {
    EXPECT_GE(statuses[k], 100) << to_string(static_cast<event_status>(k));
  }
}

}  // namespace
}  // namespace callrec::calls
