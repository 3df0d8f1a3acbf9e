// The call state machine driven by a table of scenarios: each lists the reported events (who reports them,
// what outcome each must get), an optional final timer sweep, and the record that must come out.
// Every scenario is also run through encode/decode between every two steps, replayed for determinism, and,
// once ended, fed its own events again to show they change nothing.
#include <gtest/gtest.h>

#include <ostream>
#include <string>
#include <vector>

#include "calls/call_state.h"
#include "calls/call_state_support.h"

namespace callrec::calls {
namespace {

using namespace testing;
using enum event_kind;
using enum event_status;

struct scenario {
  std::string name;
  std::vector<step> steps;
  std::optional<std::int64_t> final_ms;  // advance_to at the end, with no further event
  std::int32_t heartbeat_sec = 60;
  bool exists = true;                 // false: no call was created
  std::optional<call_result> result;  // nullopt: the call is still live
  std::int64_t accept_ts = 0;         // record fields, unix seconds
  std::int64_t end_ts = 0;
  std::vector<std::string> callees;
};

void PrintTo(const scenario& sc, std::ostream* os) { *os << sc.name; }

std::vector<std::string> many_callees(std::size_t n) {
  std::vector<std::string> v;
  for (std::size_t i = 0; i < n; ++i) v.push_back("user" + std::to_string(i));
  return v;
}

const std::vector<scenario>& scenarios() {
  static const std::vector<scenario> all = {
      // ---- 1:1 calls that nobody accepted
      {"single_cancel_by_caller",
       {start("alice", {"bob"}, at(0)), ev(cancel_call, "alice", at(5))},
       {},
       60,
       true,
       call_result::cancel,
       0,
       ts(5),
       {"bob"}},
      {"single_caller_hangup_before_accept_is_cancel",
       {start("alice", {"bob"}, at(0)), ev(hangup, "alice", at(3))},
       {},
       60,
       true,
       call_result::cancel,
       0,
       ts(3),
       {"bob"}},
      {"single_caller_interrupted_before_accept_is_cancel",
       {start("alice", {"bob"}, at(0)), ev(call_interrupted, "alice", at(4))},
       {},
       60,
       true,
       call_result::cancel,
       0,
       ts(4),
       {"bob"}},
      {"single_reject",
       {start("alice", {"bob"}, at(0)), ev(reject_call, "bob", at(2))},
       {},
       60,
       true,
       call_result::reject,
       0,
       ts(2),
       {"bob"}},
      {"single_ringing_callee_hangup_counts_as_reject",
       {start("alice", {"bob"}, at(0)), ev(hangup, "bob", at(2))},
       {},
       60,
       true,
       call_result::reject,
       0,
       ts(2),
       {"bob"}},
      {"single_ringing_callee_interrupted_counts_as_not_answer",
       {start("alice", {"bob"}, at(0)), ev(call_interrupted, "bob", at(3))},
       {},
       60,
       true,
       call_result::not_answer,
       0,
       ts(3),
       {"bob"}},
      {"single_not_answer_by_event",
       {start("alice", {"bob"}, at(0)), ev(not_answer_call, "bob", at(29))},
       {},
       60,
       true,
       call_result::not_answer,
       0,
       ts(29),
       {"bob"}},
      {"single_not_answer_by_timeout_with_no_further_event",
       {start("alice", {"bob"}, at(0))},
       at(100),
       60,
       true,
       call_result::not_answer,
       0,
       ts(30),
       {"bob"}},
      {"single_not_answer_by_timeout_fired_by_a_later_event",
       {start("alice", {"bob"}, at(0)).timeout(5), ev(accept_call, "bob", at(6)).expect(late)},
       {},
       60,
       true,
       call_result::not_answer,
       0,
       ts(5),
       {"bob"}},
      {"single_accept_exactly_at_the_ring_deadline_is_late",
       {start("alice", {"bob"}, at(0)), ev(accept_call, "bob", at(30)).expect(late)},
       {},
       60,
       true,
       call_result::not_answer,
       0,
       ts(30),
       {"bob"}},
      {"single_accept_just_before_the_ring_deadline",
       {start("alice", {"bob"}, at(0)), ev(accept_call, "bob", at(30) - 1), ev(hangup, "bob", at(40))},
       {},
       60,
       true,
       call_result::normal_end,
       ts(29),
       ts(40),
       {"bob"}},
      {"single_busy",
       {start("alice", {"bob"}, at(0)), ev(call_busy, "bob", at(1))},
       {},
       60,
       true,
       call_result::call_busy,
       0,
       ts(1),
       {"bob"}},
      {"single_timer_sweep_before_the_deadline_changes_nothing",
       {start("alice", {"bob"}, at(0)), advance(at(29))},
       at(29),
       60,
       true,
       std::nullopt,
       0,
       0,
       {"bob"}},

      // ---- 1:1 calls that were accepted
      {"single_normal_end_callee_hangs_up",
       {start("alice", {"bob"}, at(0)).media(media_type::video), ev(accept_call, "bob", at(2)),
        ev(hangup, "bob", at(40))},
       {},
       60,
       true,
       call_result::normal_end,
       ts(2),
       ts(40),
       {"bob"}},
      {"single_normal_end_caller_hangs_up",
       {start("alice", {"bob"}, at(0)), ev(accept_call, "bob", at(2)), ev(hangup, "alice", at(20))},
       {},
       60,
       true,
       call_result::normal_end,
       ts(2),
       ts(20),
       {"bob"}},
      {"single_cancel_after_accept_is_a_hangup",
       {start("alice", {"bob"}, at(0)), ev(accept_call, "bob", at(2)), ev(cancel_call, "alice", at(10))},
       {},
       60,
       true,
       call_result::normal_end,
       ts(2),
       ts(10),
       {"bob"}},
      {"single_interrupt",
       {start("alice", {"bob"}, at(0)), ev(accept_call, "bob", at(2)), ev(call_interrupted, "bob", at(15))},
       {},
       60,
       true,
       call_result::interrupt,
       ts(2),
       ts(15),
       {"bob"}},
      {"single_offline_found_by_a_later_event",
       {start("alice", {"bob"}, at(0)), ev(accept_call, "bob", at(2)), ev(heartbeat, "alice", at(50)),
        ev(heartbeat, "alice", at(100)).expect(late)},
       {},
       60,
       true,
       call_result::offline,
       ts(2),
       ts(62),
       {"bob"}},
      {"single_offline_by_timer_sweep_only",
       {start("alice", {"bob"}, at(0)), ev(accept_call, "bob", at(2))},
       at(1000),
       60,
       true,
       call_result::offline,
       ts(2),
       ts(60),
       {"bob"}},
      {"single_offline_sweep_in_steps_gives_the_same_end",
       {start("alice", {"bob"}, at(0)), ev(accept_call, "bob", at(2)), ev(heartbeat, "alice", at(30)), advance(at(61)),
        advance(at(62) - 1)},
       at(5000),
       60,
       true,
       call_result::offline,
       ts(2),
       ts(62),
       {"bob"}},
      {"single_heartbeats_keep_the_call_alive",
       {start("alice", {"bob"}, at(0)), ev(accept_call, "bob", at(2)), ev(heartbeat, "alice", at(50)),
        ev(heartbeat, "bob", at(50)), ev(heartbeat, "alice", at(100)), ev(heartbeat, "bob", at(100)),
        ev(heartbeat, "alice", at(150)), ev(heartbeat, "bob", at(150)), ev(hangup, "alice", at(200))},
       {},
       60,
       true,
       call_result::normal_end,
       ts(2),
       ts(200),
       {"bob"}},
      {"single_heartbeat_sec_0_nobody_goes_offline",
       {start("alice", {"bob"}, at(0)), ev(accept_call, "bob", at(2))},
       at(100000),
       0,
       true,
       std::nullopt,
       ts(2),
       0,
       {"bob"}},
      {"single_heartbeat_sec_0_still_ends_by_hangup",
       {start("alice", {"bob"}, at(0)), ev(accept_call, "bob", at(2)), advance(at(4000)), ev(hangup, "bob", at(5000))},
       {},
       0,
       true,
       call_result::normal_end,
       ts(2),
       ts(5000),
       {"bob"}},
      {"single_heartbeat_sec_0_ringing_still_times_out",
       {start("alice", {"bob"}, at(0))},
       at(100),
       0,
       true,
       call_result::not_answer,
       0,
       ts(30),
       {"bob"}},
      {"caller_offline_before_accept_is_cancel",
       {start("alice", {"bob"}, at(0)).timeout(3600)},
       at(1000),
       60,
       true,
       call_result::cancel,
       0,
       ts(60),
       {"bob"}},
      {"repeated_accept_is_a_no_op",
       {start("alice", {"bob"}, at(0)), ev(accept_call, "bob", at(2)), ev(accept_call, "bob", at(3)),
        ev(hangup, "alice", at(10))},
       {},
       60,
       true,
       call_result::normal_end,
       ts(2),
       ts(10),
       {"bob"}},
      {"out_of_order_times_are_clamped_to_the_call_clock",
       {start("alice", {"bob"}, at(0)), ev(accept_call, "bob", at(10)).by_admin(), ev(hangup, "bob", at(5)).by_admin()},
       {},
       60,
       true,
       call_result::normal_end,
       ts(10),
       ts(10),
       {"bob"}},
      {"milliseconds_truncate_to_seconds_in_the_record",
       {start("alice", {"bob"}, at(0) + 999), ev(accept_call, "bob", at(1) + 500), ev(hangup, "bob", at(7) + 1)},
       {},
       60,
       true,
       call_result::normal_end,
       ts(1),
       ts(7),
       {"bob"}},

      // ---- group calls
      {"group_all_reject",
       {start("alice", {"bob", "carol"}, at(0)), ev(reject_call, "bob", at(1)), ev(reject_call, "carol", at(2))},
       {},
       60,
       true,
       call_result::reject,
       0,
       ts(2),
       {"bob", "carol"}},
      {"group_all_busy",
       {start("alice", {"bob", "carol"}, at(0)), ev(call_busy, "bob", at(1)), ev(call_busy, "carol", at(2))},
       {},
       60,
       true,
       call_result::call_busy,
       0,
       ts(2),
       {"bob", "carol"}},
      {"group_busy_and_reject_is_reject",
       {start("alice", {"bob", "carol"}, at(0)), ev(call_busy, "bob", at(1)), ev(reject_call, "carol", at(2))},
       {},
       60,
       true,
       call_result::reject,
       0,
       ts(2),
       {"bob", "carol"}},
      {"group_busy_and_timeout_is_not_answer",
       {start("alice", {"bob", "carol"}, at(0)), ev(call_busy, "bob", at(1))},
       at(100),
       60,
       true,
       call_result::not_answer,
       0,
       ts(30),
       {"bob", "carol"}},
      {"group_cancel_before_accept",
       {start("alice", {"bob", "carol"}, at(0)), ev(reject_call, "bob", at(1)), ev(cancel_call, "alice", at(2))},
       {},
       60,
       true,
       call_result::cancel,
       0,
       ts(2),
       {"bob", "carol"}},
      {"group_ends_when_the_last_two_leave",
       {start("alice", {"bob", "carol"}, at(0)), ev(accept_call, "bob", at(2)), ev(accept_call, "carol", at(3)),
        ev(hangup, "bob", at(10)), ev(hangup, "carol", at(20))},
       {},
       60,
       true,
       call_result::normal_end,
       ts(2),
       ts(20),
       {"bob", "carol"}},
      {"group_goes_on_after_the_caller_leaves",
       {start("alice", {"bob", "carol"}, at(0)), ev(accept_call, "bob", at(2)), ev(accept_call, "carol", at(3)),
        ev(hangup, "alice", at(5)), ev(cancel_call, "alice", at(6)), ev(heartbeat, "bob", at(30)),
        ev(heartbeat, "carol", at(30)), ev(hangup, "bob", at(40))},
       {},
       60,
       true,
       call_result::normal_end,
       ts(2),
       ts(40),
       {"bob", "carol"}},
      {"group_ends_when_one_accepted_and_the_caller_drops",
       {start("alice", {"bob", "carol"}, at(0)), ev(accept_call, "bob", at(2)), ev(reject_call, "carol", at(3)),
        ev(call_interrupted, "alice", at(10))},
       {},
       60,
       true,
       call_result::interrupt,
       ts(2),
       ts(10),
       {"bob", "carol"}},
      {"group_ends_when_only_the_caller_is_left",
       {start("alice", {"bob", "carol"}, at(0)), ev(accept_call, "bob", at(2)), ev(hangup, "bob", at(5))},
       {},
       60,
       true,
       call_result::normal_end,
       ts(2),
       ts(5),
       {"bob", "carol"}},
      {"group_offline_when_two_members_go_silent",
       {start("alice", {"bob", "carol"}, at(0)), ev(accept_call, "bob", at(1)), ev(accept_call, "carol", at(2)),
        ev(heartbeat, "alice", at(50))},
       at(1000),
       60,
       true,
       call_result::offline,
       ts(1),
       ts(62),
       {"bob", "carol"}},
      {"group_live_while_one_rings_out",
       {start("alice", {"bob", "carol"}, at(0)), ev(accept_call, "bob", at(1))},
       at(45),
       60,
       true,
       std::nullopt,
       ts(1),
       0,
       {"bob", "carol"}},
      {"group_invite_user",
       {start("alice", {"bob"}, at(0)).type(call_type::group), ev(accept_call, "bob", at(2)),
        ev(invite_user, "alice", at(10)).callees({"bob", "carol", "dave", "carol", "alice"}),
        ev(accept_call, "carol", at(12)), ev(heartbeat, "alice", at(45)),
        ev(accept_call, "dave", at(46)).refused(errc::invalid_param), ev(hangup, "bob", at(50)),
        ev(hangup, "carol", at(55))},
       {},
       60,
       true,
       call_result::normal_end,
       ts(2),
       ts(55),
       {"bob", "carol", "dave"}},
      {"group_invite_by_an_accepted_callee",
       {start("alice", {"bob", "carol"}, at(0)), ev(accept_call, "bob", at(1)),
        ev(invite_user, "bob", at(2)).callees({"dave"}), ev(accept_call, "dave", at(3)), ev(hangup, "alice", at(4)),
        ev(hangup, "bob", at(5)), ev(hangup, "dave", at(6)).expect(late)},
       {},
       60,
       true,
       call_result::normal_end,
       ts(1),
       ts(5),
       {"bob", "carol", "dave"}},
      {"group_invite_by_a_ringing_callee_is_refused",
       {start("alice", {"bob", "carol"}, at(0)),
        ev(invite_user, "bob", at(1)).callees({"dave"}).refused(errc::invalid_param),
        ev(invite_user, "alice", at(1)).refused(errc::invalid_param),
        ev(invite_user, "alice", at(1)).callees({"bad id"}).refused(errc::invalid_param),
        ev(invite_user, "alice", at(2)).callees(many_callees(99)).refused(errc::invalid_param),
        ev(invite_user, "alice", at(2)).callees(many_callees(98)), ev(cancel_call, "alice", at(3))},
       {},
       60,
       true,
       call_result::cancel,
       0,
       ts(3),
       [] {
         std::vector<std::string> v{"bob", "carol"};
         for (auto& u : many_callees(98)) v.push_back(u);
         return v;
       }()},
      {"group_invite_then_all_decline_is_reject",
       {start("alice", {"bob"}, at(0)).type(call_type::group), ev(invite_user, "alice", at(5)).callees({"carol"}),
        ev(reject_call, "bob", at(6)), ev(call_busy, "carol", at(7))},
       {},
       60,
       true,
       call_result::reject,
       0,
       ts(7),
       {"bob", "carol"}},
      {"group_join_by_a_user_who_was_not_invited",
       {start("alice", {"bob"}, at(0)).type(call_type::group), ev(join_in_group_call, "erin", at(5)),
        ev(join_in_group_call, "erin", at(6)), ev(hangup, "erin", at(50))},
       {},
       60,
       true,
       call_result::normal_end,
       ts(5),
       ts(50),
       {"bob", "erin"}},
      {"group_join_by_a_ringing_callee_is_an_accept",
       {start("alice", {"bob", "carol"}, at(0)), ev(join_in_group_call, "carol", at(4)), ev(reject_call, "bob", at(5)),
        ev(hangup, "alice", at(9))},
       {},
       60,
       true,
       call_result::normal_end,
       ts(4),
       ts(9),
       {"bob", "carol"}},
      {"group_rejoin_after_interrupt",
       {start("alice", {"bob", "carol"}, at(0)), ev(accept_call, "bob", at(1)), ev(accept_call, "carol", at(2)),
        ev(call_interrupted, "carol", at(3)), ev(accept_call, "carol", at(4)).refused(errc::invalid_param),
        ev(join_in_group_call, "carol", at(4)), ev(hangup, "bob", at(5)), ev(hangup, "carol", at(6))},
       {},
       60,
       true,
       call_result::normal_end,
       ts(1),
       ts(6),
       {"bob", "carol"}},
      {"join_in_a_single_call_is_refused",
       {start("alice", {"bob"}, at(0)), ev(join_in_group_call, "erin", at(5)).refused(errc::not_admin),
        ev(join_in_group_call, "erin", at(5)).by_admin().refused(errc::invalid_param),
        ev(join_in_group_call, "bob", at(5)).refused(errc::invalid_param), ev(reject_call, "bob", at(6))},
       {},
       60,
       true,
       call_result::reject,
       0,
       ts(6),
       {"bob"}},
      {"invite_in_a_single_call_is_refused",
       {start("alice", {"bob"}, at(0)), ev(invite_user, "alice", at(1)).callees({"carol"}).refused(errc::invalid_param),
        ev(cancel_call, "alice", at(2))},
       {},
       60,
       true,
       call_result::cancel,
       0,
       ts(2),
       {"bob"}},

      // ---- duplicates and late events
      {"duplicates_by_event_id",
       {start("alice", {"bob"}, at(0)).id("e1"), ev(accept_call, "bob", at(2)).id("e2"),
        ev(accept_call, "bob", at(3)).id("e2").expect(duplicate),
        ev(reject_call, "bob", at(3)).id("e2").expect(duplicate), ev(hangup, "bob", at(4)).id("e3"),
        ev(hangup, "bob", at(5)).id("e3").expect(duplicate), ev(heartbeat, "alice", at(6)).id("e4").expect(late)},
       {},
       60,
       true,
       call_result::normal_end,
       ts(2),
       ts(4),
       {"bob"}},
      {"start_call_repeated",
       {start("alice", {"bob"}, at(0)).id("e1"), start("alice", {"bob"}, at(1)).id("e1").expect(duplicate),
        start("alice", {"bob"}, at(1)).type(call_type::single).media(media_type::audio).expect(duplicate),
        ev(cancel_call, "alice", at(2)), start("alice", {"bob"}, at(9)).expect(duplicate)},
       {},
       60,
       true,
       call_result::cancel,
       0,
       ts(2),
       {"bob"}},
      {"late_events_after_the_end",
       {start("alice", {"bob"}, at(0)), ev(reject_call, "bob", at(2)), ev(accept_call, "bob", at(3)).expect(late),
        ev(hangup, "alice", at(4)).expect(late), ev(cancel_call, "alice", at(5)).expect(late),
        ev(heartbeat, "bob", at(6)).by_admin().expect(late)},
       {},
       60,
       true,
       call_result::reject,
       0,
       ts(2),
       {"bob"}},

      // ---- contradictions and authorization
      {"accept_by_a_stranger",
       {start("alice", {"bob"}, at(0)), ev(accept_call, "mallory", at(2)).by_admin().refused(errc::invalid_param),
        ev(accept_call, "mallory", at(2)).refused(errc::not_admin), ev(reject_call, "bob", at(3))},
       {},
       60,
       true,
       call_result::reject,
       0,
       ts(3),
       {"bob"}},
      {"second_start_call_with_other_data",
       {start("alice", {"bob"}, at(0)), start("alice", {"carol"}, at(1)).refused(errc::invalid_param),
        start("alice", {"bob"}, at(1)).media(media_type::video).refused(errc::invalid_param),
        start("alice", {"bob"}, at(1)).type(call_type::group).refused(errc::invalid_param),
        start("alice", {"bob"}, at(1)).room("42").refused(errc::invalid_param),
        start("mallory", {"bob"}, at(1)).refused(errc::invalid_param),
        start("alice", {"bob", "carol"}, at(1)).refused(errc::invalid_param),
        start("alice", {"bob"}, at(1)).timeout(5).expect(duplicate), ev(cancel_call, "alice", at(2))},
       {},
       60,
       true,
       call_result::cancel,
       0,
       ts(2),
       {"bob"}},
      {"single_call_with_two_callees_is_refused",
       {start("alice", {"bob", "carol"}, at(0)).type(call_type::single).refused(errc::invalid_param),
        ev(accept_call, "bob", at(2)).refused(errc::invalid_param)},
       {},
       60,
       false,
       std::nullopt,
       0,
       0,
       {}},
      {"event_on_an_unknown_call",
       {ev(hangup, "alice", at(0)).refused(errc::invalid_param),
        ev(join_in_group_call, "alice", at(0)).by_admin().refused(errc::invalid_param)},
       {},
       60,
       false,
       std::nullopt,
       0,
       0,
       {}},
      {"start_call_validation",
       {start("alice", {"bob"}, at(0)).timeout(0).refused(errc::invalid_param),
        start("alice", {"bob"}, at(0)).timeout(3601).refused(errc::invalid_param),
        start("alice", {"alice"}, at(0)).refused(errc::invalid_param),
        start("alice", {"bob", "bob"}, at(0)).refused(errc::invalid_param),
        start("alice", {"bad id"}, at(0)).refused(errc::invalid_param),
        start("alice", {std::string(33, 'x')}, at(0)).refused(errc::invalid_param),
        start("bad caller", {"bob"}, at(0)).refused(errc::invalid_param),
        start("alice", {}, at(0)).refused(errc::invalid_param),
        start("alice", many_callees(101), at(0)).refused(errc::invalid_param),
        start("alice", {"bob"}, at(0)).room(std::string(65, '1')).refused(errc::invalid_param),
        start("alice", {"bob"}, 0).refused(errc::invalid_param),
        start("alice", {"bob"}, -5).refused(errc::invalid_param),
        start("alice", {"bob"}, max_event_ts_ms + 1).refused(errc::invalid_param),
        start("alice", {"bob"}, at(0)).id(std::string(129, 'e')).refused(errc::invalid_param),
        start("alice", many_callees(100), at(0)).timeout(3600).room(std::string(64, '1')),
        ev(cancel_call, "alice", at(1))},
       {},
       60,
       true,
       call_result::cancel,
       0,
       ts(1),
       many_callees(100)},
      {"user_authorization_and_roles",
       {start("alice", {"bob"}, at(0)), ev(hangup, "mallory", at(1)).refused(errc::not_admin),
        ev(heartbeat, "mallory", at(1)).by_admin().refused(errc::invalid_param),
        ev(cancel_call, "bob", at(2)).refused(errc::invalid_param),
        ev(accept_call, "alice", at(2)).refused(errc::invalid_param),
        ev(reject_call, "alice", at(2)).refused(errc::invalid_param),
        ev(call_busy, "alice", at(2)).by_admin().refused(errc::invalid_param), ev(accept_call, "bob", at(3)).by_admin(),
        ev(hangup, "alice", at(4))},
       {},
       60,
       true,
       call_result::normal_end,
       ts(3),
       ts(4),
       {"bob"}},
      {"contradicting_answers_are_refused",
       {start("alice", {"bob", "carol"}, at(0)), ev(reject_call, "bob", at(1)),
        ev(accept_call, "bob", at(2)).refused(errc::invalid_param), ev(reject_call, "bob", at(3)),
        ev(call_busy, "bob", at(3)).refused(errc::invalid_param), ev(accept_call, "carol", at(4)),
        ev(reject_call, "carol", at(4)).refused(errc::invalid_param), ev(hangup, "carol", at(5))},
       {},
       60,
       true,
       call_result::normal_end,
       ts(4),
       ts(5),
       {"bob", "carol"}},
  };
  return all;
}

struct run_result {
  std::optional<call_state> state;
  std::vector<event_outcome> outcomes;
};

// Runs the steps; with `persist`, the state goes through encode/decode between every two steps, as a store
// would keep it.
run_result run(const scenario& sc, bool persist) {
  const call_settings settings{sc.heartbeat_sec};
  run_result r;
  for (std::size_t i = 0; i < sc.steps.size(); ++i) {
    SCOPED_TRACE("step " + std::to_string(i));
    const step& st = sc.steps[i];
    if (st.advance_ms) {
      if (r.state) advance_to(*r.state, *st.advance_ms, settings);
      r.outcomes.push_back({});
    } else {
      r.outcomes.push_back(apply_event(r.state, st.ev, settings, st.admin));
    }
    if (r.state) {
      expect_invariants(*r.state, settings);
      if (persist) {
        expect_round_trip(*r.state);
        auto back = decode(encode(*r.state));
        if (back) r.state = std::move(*back);
      }
    }
  }
  if (r.state && sc.final_ms) advance_to(*r.state, *sc.final_ms, settings);
  if (r.state) expect_invariants(*r.state, settings);
  return r;
}

class call_scenario : public ::testing::TestWithParam<scenario> {};

TEST_P(call_scenario, gives_the_expected_outcomes_and_record) {
  const scenario& sc = GetParam();
  const run_result r = run(sc, true);

  ASSERT_EQ(r.outcomes.size(), sc.steps.size());
  for (std::size_t i = 0; i < sc.steps.size(); ++i) {
    EXPECT_EQ(to_string(r.outcomes[i].status), to_string(sc.steps[i].want))
        << "step " << i << " (" << to_string(sc.steps[i].ev.kind) << "): " << r.outcomes[i].message;
    EXPECT_EQ(wire_code(r.outcomes[i].code), wire_code(sc.steps[i].code)) << "step " << i;
    if (r.outcomes[i].status == event_status::refused) {
      EXPECT_FALSE(r.outcomes[i].message.empty()) << "step " << i;
    }
  }

  ASSERT_EQ(r.state.has_value(), sc.exists);
  if (!sc.exists) return;
  const call_state& s = *r.state;
  ASSERT_EQ(s.result.has_value(), sc.result.has_value())
      << (s.result ? to_string(*s.result) : std::string_view{"live"});
  const call_record rec = to_record(s, 1400000001);
  if (sc.result) {
    EXPECT_EQ(to_string(rec.result), to_string(*sc.result));
  }
  EXPECT_EQ(rec.accept_ts, sc.accept_ts);
  EXPECT_EQ(rec.end_ts, sc.end_ts);
  EXPECT_EQ(rec.callees, sc.callees);
  EXPECT_EQ(rec.total_user_number(), 1 + sc.callees.size());
  EXPECT_EQ(rec.caller, s.caller);
  EXPECT_EQ(rec.start_ts, s.start_ms / 1000);
}

TEST_P(call_scenario, replays_deterministically) {
  const scenario& sc = GetParam();
  const run_result persisted = run(sc, true);
  const run_result direct = run(sc, false);
  const run_result again = run(sc, false);
  EXPECT_EQ(direct.state, again.state);
  EXPECT_EQ(direct.state, persisted.state) << "encode/decode between events changed the outcome";
  ASSERT_EQ(direct.outcomes.size(), persisted.outcomes.size());
  for (std::size_t i = 0; i < direct.outcomes.size(); ++i) {
    EXPECT_EQ(direct.outcomes[i].status, persisted.outcomes[i].status) << "step " << i;
    EXPECT_EQ(direct.outcomes[i].message, persisted.outcomes[i].message) << "step " << i;
  }
}

TEST_P(call_scenario, replaying_its_events_on_the_ended_call_changes_nothing) {
  const scenario& sc = GetParam();
  run_result r = run(sc, false);
  if (!r.state || !ended(*r.state)) GTEST_SKIP() << "the call did not end";
  const call_settings settings{sc.heartbeat_sec};
  const call_state before = *r.state;
  for (const step& st : sc.steps) {
    if (st.advance_ms) continue;
    const event_outcome o = apply_event(r.state, st.ev, settings, st.admin);
    EXPECT_NE(o.status, event_status::applied) << to_string(st.ev.kind) << " applied again";
  }
  EXPECT_EQ(*r.state, before);
}

INSTANTIATE_TEST_SUITE_P(table, call_scenario, ::testing::ValuesIn(scenarios()),
                         [](const ::testing::TestParamInfo<scenario>& info) { return info.param.name; });

}  // namespace
}  // namespace callrec::calls
