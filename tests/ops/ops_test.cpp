// The application core without any transport: operations over a real SQLite store and an injected clock.
// Update functions that a store re-runs, metrics counted only after a commit, timers fired once by two nodes
// that claim them, retention.
#include <gtest/gtest.h>

#include <filesystem>
#include <random>

#include "limits/local_rate_limiter.h"
#include "ops/events.h"
#include "ops/maintenance.h"
#include "ops/records.h"
#include "records/wire.h"
#include "support/io_runner.h"

namespace callrec::ops {
namespace {

constexpr std::uint32_t app_id = 1400000001;
constexpr std::int64_t t0_ms = 1700000000000;

// Passes everything to the store behind, except what a test changes.
class forwarding_store : public store {
 public:
  explicit forwarding_store(store& inner) : inner_(inner) {}
  awaitable<result<std::optional<stored_record>>> get_record(std::uint32_t a, std::string_view id, std::int64_t o,
                                                             deadline d) override {
    co_return co_await inner_.get_record(a, id, o, d);
  }
  awaitable<result<record_page>> find_records(const record_filter& f, deadline d) override {
    co_return co_await inner_.find_records(f, d);
  }
  awaitable<result<void>> update_calls(std::uint32_t a, std::vector<std::string> ids, update_fn fn,
                                       deadline d) override {
    auto pending = inner_.update_calls(a, std::move(ids), std::move(fn), d);  // made first: see retrying_store
    co_return co_await std::move(pending);
  }
  awaitable<result<std::vector<due_call>>> claim_due_calls(std::int64_t now, std::size_t limit,
                                                          std::chrono::milliseconds lease) override {
    co_return co_await inner_.claim_due_calls(now, limit, lease);
  }
  awaitable<result<void>> ping(deadline d) override { co_return co_await inner_.ping(d); }
  awaitable<result<store_stats>> stats() override { co_return co_await inner_.stats(); }
  awaitable<result<retention_report>> apply_retention(const retention_policy& p, deadline d) override {
    co_return co_await inner_.apply_retention(p, d);
  }
  void close() override {}

 protected:
  store& inner_;
};

// Runs every update function twice: first on a copy of the slots, as a store whose first transaction was
// rolled back after a conflict, then on the slots it commits.
class retrying_store final : public forwarding_store {
 public:
  using forwarding_store::forwarding_store;
  awaitable<result<void>> update_calls(std::uint32_t a, std::vector<std::string> ids, update_fn fn,
                                       deadline d) override {
    // Arguments and the awaitable are made first: GCC 12 destroys temporaries built inside a co_await
    // expression twice.
    update_fn twice = [fn](std::span<call_slot> slots) {
      std::vector<call_slot> first(slots.begin(), slots.end());
      fn(first);
      fn(slots);
    };
    auto pending = inner_.update_calls(a, std::move(ids), std::move(twice), d);
    co_return co_await std::move(pending);
  }
};

// Runs the update function, then fails the commit: nothing is written.
class failing_commit_store final : public forwarding_store {
 public:
  using forwarding_store::forwarding_store;
  awaitable<result<void>> update_calls(std::uint32_t, std::vector<std::string> ids, update_fn fn, deadline) override {
    std::vector<call_slot> slots(ids.size());
    for (std::size_t i = 0; i < ids.size(); ++i) slots[i].call_id = ids[i];
    fn(slots);
    co_return make_error(errc::unavailable, "the store is unavailable; retry", "test: commit refused");
  }
};

class ops_test : public ::testing::Test {
 protected:
  void SetUp() override {
    std::random_device rd;
    dir_ = std::filesystem::temp_directory_path() / ("callrec-ops-" + std::to_string(rd()));
    auto opened = open_store(store_settings{"sqlite:" + (dir_ / "db").string()});
    ASSERT_TRUE(opened) << opened.error().message;
    store_ = std::move(*opened);
    app_config a;
    a.sdkappid = app_id;
    a.secret_key = "k";
    a.retention_days = 1;
    apps_ = std::make_unique<app_registry>(std::vector<app_config>{a});
    limiter_ = std::make_unique<limits::local_rate_limiter>(
        std::vector<std::pair<std::uint32_t, limits::rates>>{{app_id, a.limits}});
  }
  void TearDown() override {
    store_->close();
    std::filesystem::remove_all(dir_);
  }
  core core_over(store& st, obs::metrics& m) { return core{st, *limiter_, clock_, *apps_, m}; }
  caller admin() {
    caller who;
    who.app = apps_->find(app_id);
    who.identifier = "administrator";
    who.admin = true;
    who.now_ms = clock_.now_ms();
    who.due = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    return who;
  }
  static batch_entry event(std::string call, calls::event_kind kind, std::string user, std::int64_t ts_ms,
                           std::vector<std::string> callees = {}) {
    batch_entry e;
    calls::call_event ev;
    ev.call_id = std::move(call);
    ev.kind = kind;
    ev.user_id = std::move(user);
    ev.ts_ms = ts_ms;
    ev.callees = std::move(callees);
    e.event = std::move(ev);
    return e;
  }
  std::vector<batch_entry> whole_call(const std::string& id) {
    using enum calls::event_kind;
    return {event(id, start_call, "alice", t0_ms - 5000, {"bob"}), event(id, accept_call, "bob", t0_ms - 4000),
            event(id, hangup, "bob", t0_ms - 1000)};
  }

  std::filesystem::path dir_;
  manual_clock clock_{t0_ms};
  std::unique_ptr<store> store_;
  std::unique_ptr<app_registry> apps_;
  std::unique_ptr<limits::local_rate_limiter> limiter_;
  testing::io_runner io_;
};

// store.h: update functions are pure and may be re-run; only the run that committed counts, once.
TEST_F(ops_test, an_update_run_again_by_the_store_gives_the_same_outcome_and_counts_once) {
  retrying_store retrying(*store_);
  obs::metrics m;
  const core c = core_over(retrying, m);
  auto entries = whole_call("r1");
  entries.push_back(event("r1", calls::event_kind::hangup, "mallory", t0_ms));  // late: the call ended
  auto done = io_.run(report_events(c, admin(), entries));
  ASSERT_TRUE(done) << done.error().message;
  using calls::event_status;
  std::vector<event_status> got;
  for (const auto& e : *done) got.push_back(e.outcome.status);
  EXPECT_EQ(got, (std::vector<event_status>{event_status::applied, event_status::applied, event_status::applied,
                                            event_status::late}));
  EXPECT_EQ(m.events_applied.value(), 3u);
  EXPECT_EQ(m.events_late.value(), 1u);
  EXPECT_EQ(m.records_written.value(), 1u);
  auto rec = io_.run(get_record(c, admin(), "r1"));
  ASSERT_TRUE(rec) << rec.error().message;
  EXPECT_EQ(rec->fields().result, call_result::normal_end);
  EXPECT_EQ(rec->fields().start_ts, (t0_ms - 5000) / 1000);
}

TEST_F(ops_test, metrics_are_counted_after_the_commit_not_before) {
  failing_commit_store failing(*store_);
  obs::metrics m;
  auto refused = io_.run(report_events(core_over(failing, m), admin(), whole_call("f1")));
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, errc::unavailable);
  EXPECT_EQ(m.events_applied.value(), 0u) << "the update ran but nothing was committed";
  EXPECT_EQ(m.records_written.value(), 0u);
  EXPECT_EQ(io_.run(get_record(core_over(*store_, m), admin(), "f1")).error().code, errc::not_found);
}

// Two nodes over one store fire each due timer once: each claims what it fires.
TEST_F(ops_test, two_nodes_fire_each_timer_once) {
  obs::metrics m1, m2;
  const core n1 = core_over(*store_, m1), n2 = core_over(*store_, m2);
  constexpr int calls_n = 50;
  for (int i = 0; i < calls_n; ++i) {
    using enum calls::event_kind;
    auto r = io_.run(report_events(n1, admin(), {event("t" + std::to_string(i), start_call, "alice", t0_ms, {"bob"})}));
    ASSERT_TRUE(r);
  }
  clock_.advance_ms(31000);  // every ringing timer (30 s) is due
  testing::io_runner other;  // the second node runs on a thread of its own
  auto f1 = std::async(std::launch::async, [&] { return io_.run(fire_due_timers(n1, clock_.now_ms())); });
  auto f2 = std::async(std::launch::async, [&] { return other.run(fire_due_timers(n2, clock_.now_ms())); });
  auto a = f1.get(), b = f2.get();
  ASSERT_TRUE(a) << a.error().message;
  ASSERT_TRUE(b) << b.error().message;
  EXPECT_EQ(*a + *b, static_cast<std::size_t>(calls_n)) << *a << " + " << *b;
  EXPECT_EQ(m1.records_written.value() + m2.records_written.value(), static_cast<std::uint64_t>(calls_n));
  for (int i = 0; i < calls_n; ++i) {
    auto rec = io_.run(get_record(n1, admin(), "t" + std::to_string(i)));
    ASSERT_TRUE(rec) << i;
    EXPECT_EQ(rec->fields().result, call_result::not_answer);
  }
  EXPECT_EQ(*io_.run(fire_due_timers(n1, clock_.now_ms() + 1000)), 0u) << "nothing is left to fire";
}

TEST_F(ops_test, retention_removes_what_left_the_window_and_reads_never_serve_it) {
  obs::metrics m;
  const core c = core_over(*store_, m);
  ASSERT_TRUE(io_.run(report_events(c, admin(), whole_call("old"))));
  clock_.advance_ms(86400 * 1000 + 10000);  // the call started more than a day (retention_days = 1) ago
  auto stale = io_.run(get_record(c, admin(), "old"));
  ASSERT_FALSE(stale);
  EXPECT_EQ(stale.error().code, errc::not_found) << "not served once outside the window, before any removal";
  auto removed = io_.run(apply_retention(c, clock_.now_ms()));
  ASSERT_TRUE(removed) << removed.error().message;
  EXPECT_EQ(*removed, 1u);
  EXPECT_EQ(m.records_purged.value(), 1u);
  auto stats = io_.run(store_->stats());
  ASSERT_TRUE(stats);
  EXPECT_EQ(stats->records, 0u);
}

// SPEC 4, exact retention: from the second a record's start leaves the window neither API serves it, and an
// event whose time lies before the window is refused (late, 70001) with nothing of it stored.
TEST_F(ops_test, retention_is_exact_at_the_edge_of_the_window_for_both_apis_and_for_events) {
  obs::metrics m;
  const core c = core_over(*store_, m);
  using enum calls::event_kind;
  const std::int64_t now_s = t0_ms / 1000;
  const std::int64_t window_s = 86400;  // retention_days = 1
  // Two calls started 2 s apart, both inside the window when reported.
  auto call = [&](const std::string& id, std::int64_t start_s) {
    return std::vector<batch_entry>{event(id, start_call, "alice", start_s * 1000, {"bob"}),
                                    event(id, accept_call, "bob", start_s * 1000 + 100),
                                    event(id, hangup, "bob", start_s * 1000 + 200)};
  };
  ASSERT_TRUE(io_.run(report_events(c, admin(), call("inside", now_s - 100))));
  ASSERT_TRUE(io_.run(report_events(c, admin(), call("outside", now_s - 102))));
  // One second later than the moment "outside" left the window: it started 1 s before it, "inside" 1 s after.
  clock_.advance_ms((window_s - 101) * 1000);
  const std::int64_t later_s = clock_.now_ms() / 1000;
  ASSERT_EQ(apps_->find(app_id)->oldest_kept(later_s), now_s - 101);
  EXPECT_TRUE(io_.run(get_record(c, admin(), "inside")));
  auto gone = io_.run(get_record(c, admin(), "outside"));
  ASSERT_FALSE(gone);
  EXPECT_EQ(gone.error().code, errc::not_found);

  boost::json::object body{{"startTimestamp", 0}};
  auto req = parse_filter_request(body, app_id, 1, later_s);
  ASSERT_TRUE(req) << req.error().message;
  EXPECT_EQ(req->filter.start_ts, now_s - 101) << "startTimestamp 0 is clamped to the window";
  auto page = io_.run(find_records(c, admin(), req->filter));
  ASSERT_TRUE(page) << page.error().message;
  EXPECT_EQ(page->total, 1u);
  ASSERT_EQ(page->records.size(), 1u);
  EXPECT_EQ(page->records[0].call_id, "inside");

  // Events: one millisecond before the window is late and stored nowhere; the window's first millisecond is
  // applied.
  const std::int64_t edge_ms = (later_s - window_s) * 1000;
  auto done = io_.run(report_events(c, admin(), {event("too-old", start_call, "alice", edge_ms - 1, {"bob"}),
                                                 event("just-in", start_call, "alice", edge_ms, {"bob"})}));
  ASSERT_TRUE(done) << done.error().message;
  EXPECT_EQ((*done)[0].outcome.status, calls::event_status::late);
  EXPECT_EQ((*done)[0].outcome.code, errc::invalid_param);
  EXPECT_NE((*done)[0].outcome.message.find("retention window of 1 days"), std::string::npos)
      << (*done)[0].outcome.message;
  EXPECT_EQ((*done)[1].outcome.status, calls::event_status::applied);
  EXPECT_EQ(m.events_late.value(), 1u);
  auto stats = io_.run(store_->stats());
  ASSERT_TRUE(stats);
  EXPECT_EQ(stats->live_calls, 1u) << "only the call inside the window is live";
  // The lone start_call of long ago never becomes a record, even once every timer has fired.
  clock_.advance_ms(60000);
  ASSERT_TRUE(io_.run(fire_due_timers(c, clock_.now_ms())));
  EXPECT_EQ(io_.run(get_record(c, admin(), "too-old")).error().code, errc::not_found);
  EXPECT_EQ(io_.run(get_record(c, admin(), "just-in")).error().code, errc::not_found)
      << "it rang out, but it started outside the window by now";
}

}  // namespace
}  // namespace callrec::ops
