#include "ops/events.h"

#include <map>
#include <memory>
#include <string_view>
#include <unordered_map>

namespace callrec::ops {

namespace {

// Sets a touched live call's outputs: its record if it ended, else its state with the next deadline.
// Returns whether it ended.
bool settle(call_slot& s, std::uint32_t sdkappid, const calls::call_settings& settings) {
  s.changed = true;
  if (calls::ended(*s.state)) {
    s.finished = calls::to_record(*s.state, sdkappid);
    return true;
  }
  s.deadline_ms = calls::next_deadline_ms(*s.state, settings);
  return false;
}

// The pure update of one batch (store.h update_fn): a function of the slots it is given. Each run rewrites
// every outcome and count it produces, so a store may run it again on fresh slots. Shared with the store,
// which may still run it after the request gave up at its deadline.
struct batch_update {
  std::vector<batch_entry> entries;
  calls::call_settings settings;
  std::uint32_t sdkappid = 0;
  bool admin = false;
  std::size_t records = 0;  // calls the last run ended

  void operator()(std::span<call_slot> slots) {
    records = 0;
    std::unordered_map<std::string_view, call_slot*> by_id;
    by_id.reserve(slots.size());
    for (auto& s : slots) by_id.emplace(s.call_id, &s);
    for (auto& e : entries) {
      if (!e.event) continue;  // refused when it was parsed
      call_slot& slot = *by_id.at(e.event->call_id);
      if (slot.ended) {
        e.outcome = calls::event_outcome{calls::event_status::late, errc::ok, {}};
        continue;
      }
      e.outcome = calls::apply_event(slot.state, *e.event, settings, admin);
    }
    for (auto& s : slots) {
      // Every touched live call is written: timers may have advanced it even when its events were refused.
      if (s.state && settle(s, sdkappid, settings)) ++records;
    }
  }
};

}  // namespace

awaitable<result<std::vector<batch_entry>>> report_events(const core& c, const caller& who,
                                                          std::vector<batch_entry> entries) {
  auto work = std::make_shared<batch_update>();
  work->entries = std::move(entries);
  work->settings = who.app->call_settings();
  work->sdkappid = who.app->id();
  work->admin = who.admin;
  // Exact retention (SPEC 4): an event whose time lies before the app's window is refused here, so nothing of
  // it reaches the store (a lone start_call of long ago would otherwise become a record when its timer fired).
  const std::int64_t oldest_ms = who.app->oldest_kept(who.now_ms / 1000) * 1000;
  std::vector<std::string> ids;
  ids.reserve(work->entries.size());
  for (auto& e : work->entries) {
    if (!e.event) continue;
    if (e.event->ts_ms < oldest_ms) {
      e.outcome = calls::event_outcome{calls::event_status::late, errc::invalid_param,
                                       "ts " + std::to_string(e.event->ts_ms) + " lies before the retention window of " +
                                           std::to_string(who.app->cfg.retention_days) + " days (oldest kept: " +
                                           std::to_string(oldest_ms) + " ms); nothing of the event is stored"};
      e.event.reset();
      continue;
    }
    ids.push_back(e.event->call_id);
  }
  if (!ids.empty()) {
    const auto queued = std::chrono::steady_clock::now();
    // The awaitable is made first, from named values: GCC 12 destroys temporaries of a co_await expression
    // twice.
    update_fn fn = [work](std::span<call_slot> slots) { (*work)(slots); };
    auto pending = c.storage.update_calls(work->sdkappid, std::move(ids), std::move(fn), who.due);
    auto committed = co_await std::move(pending);
    c.metrics.store_commit_seconds.observe(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - queued).count());
    if (!committed) {
      result<std::vector<batch_entry>> failed(std::move(committed).error());  // explicit: see above
      co_return failed;
    }
  }
  // Counted once the batch is durable, from the run that committed.
  std::uint64_t counts[4] = {0, 0, 0, 0};
  for (const auto& e : work->entries) ++counts[static_cast<int>(e.outcome.status)];
  c.metrics.events_applied.add(counts[static_cast<int>(calls::event_status::applied)]);
  c.metrics.events_duplicate.add(counts[static_cast<int>(calls::event_status::duplicate)]);
  c.metrics.events_late.add(counts[static_cast<int>(calls::event_status::late)]);
  c.metrics.events_refused.add(counts[static_cast<int>(calls::event_status::refused)]);
  c.metrics.records_written.add(work->records);
  result<std::vector<batch_entry>> done(std::move(work->entries));
  co_return done;
}

namespace {

// The pure update of the due calls of one app: each advanced to now_ms.
struct timer_update {
  calls::call_settings settings;
  std::uint32_t sdkappid = 0;
  std::int64_t now_ms = 0;
  std::size_t fired = 0, records = 0;  // by the last run

  void operator()(std::span<call_slot> slots) {
    fired = records = 0;
    for (auto& s : slots) {
      if (!s.state) continue;  // ended meanwhile
      if (calls::advance_to(*s.state, now_ms, settings)) ++fired;
      // Also rewrites a deadline that was stale in the store's index.
      if (settle(s, sdkappid, settings)) ++records;
    }
  }
};

constexpr std::size_t timers_per_pass = 2048;
// A claim outlives any pass; a node that dies holding one loses it after this, and another node fires the
// timers.
constexpr std::chrono::seconds timer_lease{30};
constexpr std::chrono::seconds timer_deadline{10};

}  // namespace

awaitable<result<std::size_t>> fire_due_timers(const core& c, std::int64_t now_ms) {
  auto due = co_await c.storage.claim_due_calls(now_ms, timers_per_pass, timer_lease);
  if (!due) co_return std::move(due).error();
  std::map<std::uint32_t, std::vector<std::string>> by_app;
  for (auto& d : *due) by_app[d.sdkappid].push_back(std::move(d.call_id));
  std::size_t fired = 0;
  std::optional<callrec::error> failure;
  for (auto& [sdkappid, ids] : by_app) {
    auto work = std::make_shared<timer_update>();
    const app* a = c.apps.find(sdkappid);
    work->settings = a ? a->call_settings() : calls::call_settings{};
    work->sdkappid = sdkappid;
    work->now_ms = now_ms;
    update_fn fn = [work](std::span<call_slot> slots) { (*work)(slots); };
    auto pending = c.storage.update_calls(sdkappid, std::move(ids), std::move(fn), c.clk.steady_now() + timer_deadline);
    auto committed = co_await std::move(pending);
    if (!committed) {
      failure = std::move(committed).error();  // the others still fire; this app's calls are claimed again later
      continue;
    }
    // A timer has fired once its outcome is committed (a record readable, a deadline moved), not before.
    c.metrics.timers_fired.add(work->fired);
    c.metrics.records_written.add(work->records);
    fired += work->fired;
  }
  if (failure && fired == 0) co_return std::move(*failure);
  co_return fired;
}

}  // namespace callrec::ops
