// The store contract (store/store.h), for every backend instantiated with the suite.
#include "store/store_contract.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <random>
#include <set>
#include <thread>

#include "records/wire.h"

namespace callrec::testing_store {

void store_contract::SetUp() {
  if (const auto why = GetParam().unavailable(); !why.empty()) GTEST_SKIP() << why;
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string name = std::string(info->test_suite_name()) + "." + info->name();
  std::replace_if(
      name.begin(), name.end(), [](char c) { return !std::isalnum(static_cast<unsigned char>(c)); }, '_');
  static std::atomic<int> seq{0};
  dir_ = std::filesystem::temp_directory_path() /
         ("callrec-store-" + std::to_string(::getpid()) + "-" + std::to_string(seq++) + "-" + name);
  std::filesystem::remove_all(dir_);
  std::filesystem::create_directories(dir_);
  store_ = open();
  ASSERT_TRUE(store_);
}

void store_contract::TearDown() {
  store_.reset();
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

result<std::optional<call_record>> store_contract::get(std::uint32_t sdkappid, std::string_view call_id,
                                                       std::int64_t oldest_ts) {
  auto r = io_.run(store_->get_record(sdkappid, call_id, oldest_ts, far()));
  if (!r) return std::move(r).error();
  if (!*r) return std::optional<call_record>();
  return std::optional<call_record>((*r)->to_record());
}

result<record_page> store_contract::find(const record_filter& f) { return io_.run(store_->find_records(f, far())); }

result<void> store_contract::update(std::uint32_t sdkappid, std::vector<std::string> call_ids, update_fn fn) {
  return io_.run(store_->update_calls(sdkappid, std::move(call_ids), std::move(fn), far()));
}

void store_contract::update_then(std::uint32_t sdkappid, std::vector<std::string> call_ids, update_fn fn,
                                 completion<void> done) {
  io_.spawn<result<void>>(store_->update_calls(sdkappid, std::move(call_ids), std::move(fn), far()), std::move(done));
}

result<std::vector<due_call>> store_contract::due_now(std::int64_t now_ms, std::size_t limit) {
  return claim(now_ms, limit, std::chrono::milliseconds(0));
}

result<std::vector<due_call>> store_contract::claim(std::int64_t now_ms, std::size_t limit,
                                                    std::chrono::milliseconds lease) {
  return io_.run(store_->claim_due_calls(now_ms, limit, lease));
}

result<store_stats> store_contract::stats() { return io_.run(store_->stats()); }
result<void> store_contract::ping() { return io_.run(store_->ping(far())); }
result<retention_report> store_contract::retain(const retention_policy& policy) {
  return io_.run(store_->apply_retention(policy, far()));
}

void store_contract::insert(const std::vector<call_record>& records, std::size_t per_update) {
  done_latch latch;
  std::size_t updates = 0;
  for (std::size_t i = 0; i < records.size();) {
    std::vector<call_record> chunk;
    const std::uint32_t app = records[i].sdkappid;
    while (i < records.size() && chunk.size() < per_update && records[i].sdkappid == app) chunk.push_back(records[i++]);
    std::vector<std::string> ids;
    for (const auto& r : chunk) ids.push_back(r.call_id);
    update_then(
        app, ids,
        [chunk](std::span<call_slot> slots) {
          for (auto& slot : slots) {
            for (const auto& r : chunk) {
              if (r.call_id == slot.call_id) slot.finished = r;
            }
          }
        },
        latch.make());
    ++updates;
  }
  ASSERT_TRUE(latch.wait_for(updates));
  for (const auto& e : latch.errors()) ADD_FAILURE() << "update failed: " << e.message << " " << e.detail;
}

namespace {

constexpr std::uint32_t app1 = 1400000001;
constexpr std::uint32_t app2 = 1400000002;
// 80000 s into a UTC day: a few hours of records cross a day boundary, and no bucket is aligned with it.
constexpr std::int64_t t0 = 1700000000;

call_record make_record(std::uint32_t app, std::string id, std::int64_t start_ts, std::string caller,
                        std::vector<std::string> callees, call_result result = call_result::normal_end,
                        call_type type = call_type::single, media_type media = media_type::audio,
                        std::string room = "room-1") {
  call_record r;
  r.sdkappid = app;
  r.call_id = std::move(id);
  r.start_ts = start_ts;
  r.accept_ts = result == call_result::normal_end ? start_ts + 3 : 0;
  r.end_ts = start_ts + 60;
  r.caller = std::move(caller);
  r.callees = std::move(callees);
  r.result = result;
  r.type = type;
  r.media = media;
  r.room_id = std::move(room);
  return r;
}

calls::call_state make_state(std::string call_id, std::string caller, std::vector<std::string> callees,
                             std::int64_t start_ms) {
  calls::call_state s;
  s.call_id = std::move(call_id);
  s.caller = caller;
  s.room_id = "r1";
  s.start_ms = start_ms;
  s.clock_ms = start_ms;
  s.members.push_back(calls::member{caller, calls::member_status::connected, 0, start_ms, false});
  for (auto& c : callees)
    s.members.push_back(calls::member{std::move(c), calls::member_status::ringing, start_ms + 30000, 0, true});
  s.initial_callees = static_cast<std::uint32_t>(s.members.size() - 1);
  return s;
}

// The reference answer: what find_records must return, computed by brute force.
bool matches(const call_record& r, const record_filter& f) {
  if (r.sdkappid != f.sdkappid || r.start_ts < f.start_ts || r.start_ts > f.end_ts) return false;
  if (f.result && r.result != *f.result) return false;
  if (f.type && r.type != *f.type) return false;
  if (f.media && r.media != *f.media) return false;
  if (f.caller && r.caller != *f.caller) return false;
  if (f.room_id && r.room_id != *f.room_id) return false;
  if (f.user_id && r.caller != *f.user_id &&
      std::find(r.callees.begin(), r.callees.end(), *f.user_id) == r.callees.end()) {
    return false;
  }
  return true;
}

bool before(const call_record& a, const call_record& b) {
  return std::tie(a.start_ts, a.call_id) < std::tie(b.start_ts, b.call_id);
}

record_page expected_page(const std::vector<call_record>& all, const record_filter& f) {
  std::vector<call_record> m;
  for (const auto& r : all) {
    if (matches(r, f)) m.push_back(r);
  }
  std::sort(m.begin(), m.end(), before);
  if (f.descending) std::reverse(m.begin(), m.end());
  record_page page;
  page.total = m.size();
  std::size_t from = 0;
  if (f.after) {
    while (from < m.size()) {
      const auto key = std::tie(m[from].start_ts, m[from].call_id);
      const auto cur = std::tie(f.after->start_ts, f.after->call_id);
      if (f.descending ? key < cur : key > cur) break;
      ++from;
    }
  } else {
    from = static_cast<std::size_t>(std::min<std::uint64_t>(f.offset, m.size()));
  }
  const std::size_t to = std::min<std::size_t>(m.size(), from + f.limit);
  page.records.assign(m.begin() + static_cast<std::ptrdiff_t>(from), m.begin() + static_cast<std::ptrdiff_t>(to));
  if (to < m.size() && to > from) page.next = record_cursor{m[to - 1].start_ts, m[to - 1].call_id};
  return page;
}

std::string describe(const record_filter& f) {
  std::string s = "window [" + std::to_string(f.start_ts) + ", " + std::to_string(f.end_ts) + "]";
  if (f.result) s += " result=" + std::string(to_string(*f.result));
  if (f.type) s += " type=" + std::string(to_string(*f.type));
  if (f.media) s += " media=" + std::string(to_string(*f.media));
  if (f.user_id) s += " user=" + *f.user_id;
  if (f.caller) s += " caller=" + *f.caller;
  if (f.room_id) s += " room=" + *f.room_id;
  s += f.descending ? " desc" : " asc";
  s += " limit=" + std::to_string(f.limit) + " offset=" + std::to_string(f.offset);
  if (f.after) s += " after=(" + std::to_string(f.after->start_ts) + "," + f.after->call_id + ")";
  return s;
}

std::vector<std::string> ids_of(const std::vector<call_record>& rs) {
  std::vector<std::string> out;
  for (const auto& r : rs) out.push_back(r.call_id);
  return out;
}

void expect_page(const std::function<result<record_page>(const record_filter&)>& find,
                 const std::vector<call_record>& all, const record_filter& f) {
  auto got = find(f);
  ASSERT_TRUE(got) << got.error().message;
  auto want = expected_page(all, f);
  EXPECT_EQ(got->total, want.total) << describe(f);
  EXPECT_EQ(ids_of(got->records), ids_of(want.records)) << describe(f);
  EXPECT_EQ(got->records, want.records) << describe(f);
  EXPECT_EQ(got->next, want.next) << describe(f);
}

// A few thousand records over ~30 hours of two apps, with bursts in one second and a realistic mix.
std::vector<call_record> random_records(std::mt19937_64& rng, std::size_t n) {
  std::vector<std::string> users, rooms;
  for (int i = 0; i < 25; ++i) users.push_back("user" + std::to_string(i));
  for (int i = 0; i < 15; ++i) rooms.push_back(std::to_string(900 + i));
  std::vector<call_record> out;
  std::uniform_int_distribution<std::int64_t> when(0, 30 * 3600);
  auto pick = [&](const std::vector<std::string>& v) { return v[rng() % v.size()]; };
  std::int64_t burst = t0;
  for (std::size_t i = 0; i < n; ++i) {
    std::int64_t ts = (rng() % 10 == 0) ? burst : t0 + when(rng);
    if (rng() % 50 == 0) burst = t0 + when(rng);
    const std::uint32_t app = (rng() % 8 == 0) ? app2 : app1;
    std::string caller = pick(users);
    std::vector<std::string> callees;
    const bool group = rng() % 4 == 0;
    const std::size_t k = group ? 2 + rng() % 4 : 1;
    while (callees.size() < k) {
      auto u = pick(users);
      if (u != caller && std::find(callees.begin(), callees.end(), u) == callees.end()) callees.push_back(u);
    }
    if (rng() % 200 == 0) callees.push_back(caller);  // odd but possible: counted once for userId
    static constexpr call_result results[] = {call_result::normal_end, call_result::normal_end, call_result::normal_end,
                                              call_result::not_answer, call_result::reject,     call_result::cancel,
                                              call_result::call_busy,  call_result::interrupt,  call_result::offline};
    auto r = make_record(app, "c" + std::to_string(rng() % 1000000000) + "-" + std::to_string(i), ts, caller, callees,
                         results[rng() % std::size(results)], group ? call_type::group : call_type::single,
                         rng() % 3 == 0 ? media_type::video : media_type::audio, pick(rooms));
    out.push_back(std::move(r));
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.sdkappid < b.sdkappid; });
  return out;
}

record_filter window(std::uint32_t app, std::int64_t from, std::int64_t to) {
  record_filter f;
  f.sdkappid = app;
  f.start_ts = from;
  f.end_ts = to;
  return f;
}

// ---------------------------------------------------------------------------------------------------------

TEST_P(store_contract, inserted_record_is_found_by_call_id) {
  auto r = make_record(app1, "call-1", t0, "alice", {"bob", "carol"}, call_result::reject, call_type::group,
                       media_type::video, "");
  r.accept_ts = 0;
  insert({r});
  auto got = get(app1, "call-1");
  ASSERT_TRUE(got) << got.error().message;
  ASSERT_TRUE(got->has_value());
  EXPECT_EQ(**got, r);
}

TEST_P(store_contract, missing_record_is_not_found) {
  insert({make_record(app1, "call-1", t0, "alice", {"bob"})});
  auto got = get(app1, "call-2");
  ASSERT_TRUE(got);
  EXPECT_FALSE(got->has_value());
  got = get(app2, "call-1");  // another app's call of the same id
  ASSERT_TRUE(got);
  EXPECT_FALSE(got->has_value());
}

// get_record_by_callId's answer is written from the stored record: the same bytes as the record rendered, for
// every record, and nothing for a call without one (in this app).
TEST_P(store_contract, stored_record_renders_as_the_record) {
  std::mt19937_64 rng(11);
  auto all = random_records(rng, 500);
  insert(all);
  for (const auto& r : all) {
    auto found = io_.run(store_->get_record(r.sdkappid, r.call_id, 0, far()));
    ASSERT_TRUE(found) << found.error().message;
    ASSERT_TRUE(*found) << r.call_id;
    std::string json, expected;
    append_record_json(json, (*found)->fields());
    append_record_json(expected, r);
    EXPECT_EQ(json, expected);
  }
  auto missing = io_.run(store_->get_record(app1, "no-such-call", 0, far()));
  ASSERT_TRUE(missing);
  EXPECT_FALSE(*missing);
}

// Retention is exact at read time (SPEC 4): a record that started before the window is not served, one that
// started at its first second is.
TEST_P(store_contract, get_record_serves_nothing_older_than_the_window) {
  insert({make_record(app1, "edge", t0, "alice", {"bob"})});
  auto got = get(app1, "edge", t0);
  ASSERT_TRUE(got);
  EXPECT_TRUE(got->has_value());
  got = get(app1, "edge", t0 + 1);
  ASSERT_TRUE(got);
  EXPECT_FALSE(got->has_value());
}

TEST_P(store_contract, each_filter_selects_its_records) {
  std::vector<call_record> all = {
      make_record(app1, "a", t0 + 1, "alice", {"bob"}, call_result::normal_end, call_type::single, media_type::audio,
                  "r1"),
      make_record(app1, "b", t0 + 2, "bob", {"carol", "dave"}, call_result::reject, call_type::group, media_type::video,
                  "r2"),
      make_record(app1, "c", t0 + 3, "carol", {"alice"}, call_result::not_answer, call_type::single, media_type::video,
                  "r1"),
      make_record(app1, "d", t0 + 4, "dave", {"erin"}, call_result::cancel, call_type::single, media_type::audio, "r3"),
      make_record(app2, "e", t0 + 5, "alice", {"bob"}, call_result::reject, call_type::single, media_type::audio, "r1"),
  };
  insert(all);
  auto ids = [&](record_filter f) {
    auto p = find(f);
    EXPECT_TRUE(p) << p.error().message;
    if (!p) return std::vector<std::string>{"<error>"};
    EXPECT_EQ(p->total, p->records.size());
    return ids_of(p->records);
  };
  using v = std::vector<std::string>;
  auto f = window(app1, t0, t0 + 10);
  EXPECT_EQ(ids(f), (v{"a", "b", "c", "d"}));
  f.result = call_result::reject;
  EXPECT_EQ(ids(f), (v{"b"}));
  f = window(app1, t0, t0 + 10);
  f.type = call_type::single;
  EXPECT_EQ(ids(f), (v{"a", "c", "d"}));
  f = window(app1, t0, t0 + 10);
  f.media = media_type::video;
  EXPECT_EQ(ids(f), (v{"b", "c"}));
  f = window(app1, t0, t0 + 10);
  f.user_id = "alice";  // caller of a, callee of c
  EXPECT_EQ(ids(f), (v{"a", "c"}));
  f.user_id = "dave";  // callee of b (second callee), caller of d
  EXPECT_EQ(ids(f), (v{"b", "d"}));
  f = window(app1, t0, t0 + 10);
  f.caller = "carol";
  EXPECT_EQ(ids(f), (v{"c"}));
  f = window(app1, t0, t0 + 10);
  f.room_id = "r1";
  EXPECT_EQ(ids(f), (v{"a", "c"}));
  f.media = media_type::video;
  EXPECT_EQ(ids(f), (v{"c"}));
  f = window(app1, t0, t0 + 10);
  f.user_id = "bob";
  f.caller = "alice";
  EXPECT_EQ(ids(f), (v{"a"}));
  f = window(app1, t0, t0 + 10);
  f.user_id = "nobody";
  EXPECT_EQ(ids(f), v{});
}

TEST_P(store_contract, window_edges_are_inclusive) {
  std::vector<call_record> all;
  for (int i = 0; i < 5; ++i) all.push_back(make_record(app1, "e" + std::to_string(i), t0 + 10 * i, "alice", {"bob"}));
  insert(all);
  auto p = find(window(app1, t0 + 10, t0 + 30));
  ASSERT_TRUE(p);
  EXPECT_EQ(p->total, 3u);
  EXPECT_EQ(ids_of(p->records), (std::vector<std::string>{"e1", "e2", "e3"}));
  p = find(window(app1, t0 + 20, t0 + 20));
  ASSERT_TRUE(p);
  EXPECT_EQ(ids_of(p->records), (std::vector<std::string>{"e2"}));
  p = find(window(app1, t0 + 11, t0 + 19));
  ASSERT_TRUE(p);
  EXPECT_EQ(p->total, 0u);
  EXPECT_TRUE(p->records.empty());
  p = find(window(app1, t0 + 30, t0 + 20));  // an empty window
  ASSERT_TRUE(p);
  EXPECT_EQ(p->total, 0u);
}

TEST_P(store_contract, orders_by_start_then_call_id_both_ways) {
  std::vector<call_record> all = {make_record(app1, "b", t0, "u1", {"u2"}), make_record(app1, "a", t0, "u1", {"u2"}),
                                  make_record(app1, "c", t0 - 1, "u1", {"u2"}),
                                  make_record(app1, "aa", t0, "u1", {"u2"}),
                                  make_record(app1, "0", t0 + 1, "u1", {"u2"})};
  insert(all);
  auto f = window(app1, t0 - 100, t0 + 100);
  auto p = find(f);
  ASSERT_TRUE(p);
  EXPECT_EQ(ids_of(p->records), (std::vector<std::string>{"c", "a", "aa", "b", "0"}));
  EXPECT_FALSE(p->next);
  f.descending = true;
  p = find(f);
  ASSERT_TRUE(p);
  EXPECT_EQ(ids_of(p->records), (std::vector<std::string>{"0", "b", "aa", "a", "c"}));
}

TEST_P(store_contract, offset_pages_cover_everything_once_and_past_the_end_is_empty) {
  std::mt19937_64 rng(7);
  auto all = random_records(rng, 1500);
  insert(all);
  for (bool desc : {false, true}) {
    auto f = window(app1, t0, t0 + 30 * 3600);
    f.descending = desc;
    f.limit = 97;
    std::vector<call_record> walked;
    for (f.offset = 0;; f.offset += f.limit) {
      auto p = find(f);
      ASSERT_TRUE(p) << p.error().message;
      EXPECT_EQ(p->total, expected_page(all, f).total);
      if (p->records.empty()) break;
      EXPECT_EQ(p->next.has_value(), f.offset + p->records.size() < p->total);
      walked.insert(walked.end(), p->records.begin(), p->records.end());
    }
    auto whole = f;
    whole.offset = 0;
    whole.limit = 100000;
    EXPECT_EQ(walked, expected_page(all, whole).records);
    f.offset = walked.size() + 1000;
    auto past = find(f);
    ASSERT_TRUE(past);
    EXPECT_EQ(past->total, walked.size());
    EXPECT_TRUE(past->records.empty());
    EXPECT_FALSE(past->next);
  }
}

TEST_P(store_contract, keyset_pages_walk_the_full_ordered_list) {
  std::mt19937_64 rng(11);
  auto all = random_records(rng, 1500);
  insert(all);
  for (int variant = 0; variant < 6; ++variant) {
    auto f = window(app1, t0 + 100, t0 + 29 * 3600);
    f.descending = variant % 2 == 1;
    if (variant / 2 == 1) f.result = call_result::normal_end;
    if (variant / 2 == 2) f.user_id = "user3";
    f.limit = 50;
    auto whole = f;
    whole.limit = 100000;
    const auto want = expected_page(all, whole);
    std::vector<call_record> walked;
    std::size_t pages = 0;
    for (;;) {
      auto p = find(f);
      ASSERT_TRUE(p) << p.error().message;
      EXPECT_EQ(p->total, want.total) << describe(f);
      walked.insert(walked.end(), p->records.begin(), p->records.end());
      ASSERT_LT(++pages, 1000u);
      if (!p->next) break;
      EXPECT_EQ(p->next->call_id, p->records.back().call_id);
      f.after = p->next;
    }
    EXPECT_EQ(walked, want.records) << describe(f);
  }
}

TEST_P(store_contract, totals_and_pages_match_brute_force) {
  std::mt19937_64 rng(20240601);
  auto all = random_records(rng, 4000);
  insert(all);
  std::vector<std::string> users, rooms;
  for (int i = 0; i < 27; ++i) users.push_back("user" + std::to_string(i));
  for (int i = 0; i < 16; ++i) rooms.push_back(std::to_string(900 + i));
  std::uniform_int_distribution<std::int64_t> when(-4000, 31 * 3600);
  for (int q = 0; q < 600; ++q) {
    std::int64_t a = t0 + when(rng), b = t0 + when(rng);
    switch (q % 5) {
      case 0:  // snapped to hours and minutes: whole buckets at both ends
        a = a / 3600 * 3600;
        b = b / 60 * 60 - 1;
        break;
      case 1:  // short windows: only edge counting
        b = a + static_cast<std::int64_t>(rng() % 700);
        break;
      default:
        break;
    }
    if (a > b) std::swap(a, b);
    auto f = window(rng() % 6 == 0 ? app2 : app1, a, b);
    if (rng() % 3 == 0) f.result = static_cast<call_result>(rng() % call_result_count);
    if (rng() % 4 == 0) f.type = static_cast<call_type>(rng() % 2);
    if (rng() % 4 == 0) f.media = static_cast<media_type>(rng() % 2);
    if (rng() % 6 == 0) f.user_id = users[rng() % users.size()];
    if (rng() % 8 == 0) f.caller = users[rng() % users.size()];
    if (rng() % 8 == 0) f.room_id = rooms[rng() % rooms.size()];
    f.descending = rng() % 2 == 0;
    f.limit = static_cast<std::uint32_t>(1 + rng() % 150);
    const auto total = expected_page(all, f).total;
    switch (rng() % 4) {
      case 0:
        f.offset = 0;
        break;
      case 1:  // deep, past the seek threshold when the window is big enough
        f.offset = total > 0 ? rng() % (total + 5) : rng() % 1000;
        break;
      case 2:
        f.offset = rng() % 200;
        break;
      default: {  // keyset from a random record of the window (or any record)
        const auto& r = all[rng() % all.size()];
        f.after = record_cursor{r.start_ts, r.call_id};
        if (rng() % 3 == 0) f.after->call_id += "x";  // a cursor between records
        break;
      }
    }
    expect_page([this](const record_filter& q) { return find(q); }, all, f);
    if (::testing::Test::HasFailure()) break;
  }
}

TEST_P(store_contract, live_state_survives_reopen_and_is_due_by_deadline) {
  auto s1 = make_state("live-1", "alice", {"bob"}, t0 * 1000);
  auto s2 = make_state("live-2", "carol", {"dave", "erin"}, t0 * 1000 + 5);
  auto s3 = make_state("live-3", "frank", {"gina"}, t0 * 1000 + 9);
  auto r = update(app1, {"live-1", "live-2", "live-3"}, [&](std::span<call_slot> slots) {
    ASSERT_EQ(slots.size(), 3u);
    for (auto& slot : slots) {
      EXPECT_FALSE(slot.state);
      EXPECT_FALSE(slot.ended);
      slot.changed = true;
    }
    slots[0].state = s1;
    slots[0].deadline_ms = 5000;
    slots[1].state = s2;
    slots[1].deadline_ms = 3000;
    slots[2].state = s3;  // no timer
  });
  ASSERT_TRUE(r) << r.error().message;
  auto st = stats();
  ASSERT_TRUE(st);
  EXPECT_EQ(st->live_calls, 3u);

  reopen();
  auto due = due_now(10000, 10);
  ASSERT_TRUE(due);
  ASSERT_EQ(due->size(), 2u);
  EXPECT_EQ((*due)[0].call_id, "live-2");
  EXPECT_EQ((*due)[0].deadline_ms, 3000);
  EXPECT_EQ((*due)[0].sdkappid, app1);
  EXPECT_EQ((*due)[1].call_id, "live-1");
  due = due_now(4000, 10);
  ASSERT_TRUE(due);
  ASSERT_EQ(due->size(), 1u);
  due = due_now(10000, 1);
  ASSERT_TRUE(due);
  EXPECT_EQ(due->size(), 1u);
  st = stats();
  ASSERT_TRUE(st);
  EXPECT_EQ(st->live_calls, 3u);

  r = update(app1, {"live-2", "live-1", "live-3"}, [&](std::span<call_slot> slots) {
    ASSERT_EQ(slots.size(), 3u);
    ASSERT_TRUE(slots[0].state);
    EXPECT_EQ(*slots[0].state, s2);
    EXPECT_EQ(slots[0].deadline_ms, 3000);
    ASSERT_TRUE(slots[1].state);
    EXPECT_EQ(*slots[1].state, s1);
    ASSERT_TRUE(slots[2].state);
    EXPECT_EQ(*slots[2].state, s3);
    EXPECT_FALSE(slots[2].deadline_ms);
    // live-2's timer moves later; live-1 is unchanged.
    slots[0].changed = true;
    slots[0].deadline_ms = 7000;
    slots[0].state->members[1].status = calls::member_status::connected;
  });
  ASSERT_TRUE(r) << r.error().message;
  due = due_now(10000, 10);
  ASSERT_TRUE(due);
  ASSERT_EQ(due->size(), 2u);
  EXPECT_EQ((*due)[0].call_id, "live-1");
  EXPECT_EQ((*due)[1].call_id, "live-2");
  EXPECT_EQ((*due)[1].deadline_ms, 7000);
  reopen();
  r = update(app1, {"live-2"}, [&](std::span<call_slot> slots) {
    ASSERT_TRUE(slots[0].state);
    EXPECT_EQ(slots[0].state->members[1].status, calls::member_status::connected);
  });
  ASSERT_TRUE(r);
}

// Timers fire once in a cluster: a claimed call is not claimed again while its lease runs, unless an update
// wrote it (its new deadline is claimed afresh); a lease that runs out (a node died) frees it.
TEST_P(store_contract, a_claimed_call_is_not_claimed_again_until_its_lease_ends_or_it_is_written) {
  ASSERT_TRUE(update(app1, {"k1", "k2", "k3"}, [&](std::span<call_slot> slots) {
    for (std::size_t i = 0; i < slots.size(); ++i) {
      slots[i].state = make_state(slots[i].call_id, "alice", {"bob"}, t0 * 1000);
      slots[i].changed = true;
      slots[i].deadline_ms = 1000 * static_cast<std::int64_t>(i + 1);
    }
  }));
  using namespace std::chrono_literals;
  auto ids = [](const result<std::vector<due_call>>& r) {
    std::vector<std::string> out;
    if (r) {
      for (const auto& d : *r) out.push_back(d.call_id);
    }
    return out;
  };
  using v = std::vector<std::string>;
  EXPECT_EQ(ids(claim(2500, 10, 30s)), (v{"k1", "k2"}));
  EXPECT_EQ(ids(claim(2600, 10, 30s)), v{}) << "both are under a lease";
  EXPECT_EQ(ids(claim(3000, 10, 30s)), (v{"k3"})) << "k3 became due; the others are still leased";
  // k1 is written (its timer fired): it is free to be claimed at its new deadline.
  ASSERT_TRUE(update(app1, {"k1"}, [&](std::span<call_slot> slots) {
    slots[0].changed = true;
    slots[0].deadline_ms = 4000;
  }));
  EXPECT_EQ(ids(claim(4000, 10, 30s)), (v{"k1"}));
  // Every lease has run out by 40 s: whatever is still due is claimed again.
  EXPECT_EQ(ids(claim(40000, 1, 30s)), (v{"k2"})) << "earliest first, up to the limit";
  EXPECT_EQ(ids(claim(40000, 10, 30s)), (v{"k3", "k1"}));
}

TEST_P(store_contract, finishing_a_call_drops_its_live_state_and_marks_it_ended) {
  auto s = make_state("fin-1", "alice", {"bob"}, t0 * 1000);
  ASSERT_TRUE(update(app1, {"fin-1"}, [&](std::span<call_slot> slots) {
    slots[0].state = s;
    slots[0].changed = true;
    slots[0].deadline_ms = 100;
  }));
  const auto rec = make_record(app1, "fin-1", t0, "alice", {"bob"});
  ASSERT_TRUE(update(app1, {"fin-1"}, [&](std::span<call_slot> slots) {
    ASSERT_TRUE(slots[0].state);
    EXPECT_FALSE(slots[0].ended);
    slots[0].finished = rec;
  }));
  auto got = get(app1, "fin-1");
  ASSERT_TRUE(got);
  ASSERT_TRUE(got->has_value());
  EXPECT_EQ(**got, rec);
  auto due = due_now(1000, 10);
  ASSERT_TRUE(due);
  EXPECT_TRUE(due->empty());
  auto check_ended = [&] {
    ASSERT_TRUE(update(app1, {"fin-1", "other"}, [&](std::span<call_slot> slots) {
      EXPECT_TRUE(slots[0].ended);
      EXPECT_FALSE(slots[0].state);
      EXPECT_FALSE(slots[1].ended);
    }));
  };
  check_ended();
  reopen();
  check_ended();
  auto st = stats();
  ASSERT_TRUE(st);
  EXPECT_EQ(st->live_calls, 0u);
  EXPECT_EQ(st->records, 1u);
  // The same app's other call of another app is not ended.
  ASSERT_TRUE(update(app2, {"fin-1"}, [&](std::span<call_slot> slots) { EXPECT_FALSE(slots[0].ended); }));
}

TEST_P(store_contract, changed_without_state_drops_the_live_call) {
  ASSERT_TRUE(update(app1, {"x"}, [&](std::span<call_slot> slots) {
    slots[0].state = make_state("x", "alice", {"bob"}, t0 * 1000);
    slots[0].changed = true;
    slots[0].deadline_ms = 1;
  }));
  ASSERT_TRUE(update(app1, {"x"}, [&](std::span<call_slot> slots) {
    slots[0].state.reset();
    slots[0].changed = true;
  }));
  auto due = due_now(1000, 10);
  ASSERT_TRUE(due);
  EXPECT_TRUE(due->empty());
  reopen();
  ASSERT_TRUE(update(app1, {"x"}, [&](std::span<call_slot> slots) {
    EXPECT_FALSE(slots[0].state);
    EXPECT_FALSE(slots[0].ended);
  }));
}

TEST_P(store_contract, unchanged_slots_are_not_persisted) {
  ASSERT_TRUE(update(app1, {"y"}, [&](std::span<call_slot> slots) {
    slots[0].state = make_state("y", "alice", {"bob"}, t0 * 1000);  // changed stays false
  }));
  ASSERT_TRUE(update(app1, {"y"}, [&](std::span<call_slot> slots) { EXPECT_FALSE(slots[0].state); }));
}

TEST_P(store_contract, duplicate_call_ids_in_one_update_collapse_in_first_seen_order) {
  ASSERT_TRUE(update(app1, {"b", "a", "b", "c", "a"}, [&](std::span<call_slot> slots) {
    ASSERT_EQ(slots.size(), 3u);
    EXPECT_EQ(slots[0].call_id, "b");
    EXPECT_EQ(slots[1].call_id, "a");
    EXPECT_EQ(slots[2].call_id, "c");
    slots[0].finished = make_record(app1, "b", t0, "alice", {"bob"});
  }));
  auto p = find(window(app1, t0, t0));
  ASSERT_TRUE(p);
  EXPECT_EQ(p->total, 1u);
  // A long list takes the other deduplication path.
  std::vector<std::string> ids;
  for (int i = 0; i < 100; ++i) ids.push_back("k" + std::to_string(i % 40));
  ASSERT_TRUE(update(app1, ids, [&](std::span<call_slot> slots) {
    ASSERT_EQ(slots.size(), 40u);
    for (int i = 0; i < 40; ++i) EXPECT_EQ(slots[static_cast<std::size_t>(i)].call_id, "k" + std::to_string(i));
  }));
}

TEST_P(store_contract, a_second_record_for_a_call_keeps_the_first_and_counts_once) {
  const auto first = make_record(app1, "dup", t0, "alice", {"bob"}, call_result::normal_end);
  auto second = make_record(app1, "dup", t0 + 500, "carol", {"dave"}, call_result::reject);
  insert({first});
  insert({second});
  auto got = get(app1, "dup");
  ASSERT_TRUE(got);
  ASSERT_TRUE(got->has_value());
  EXPECT_EQ(**got, first);
  auto p = find(window(app1, t0 - 3600, t0 + 3600));
  ASSERT_TRUE(p);
  EXPECT_EQ(p->total, 1u);
  auto f = window(app1, t0 - 3600, t0 + 3600);
  f.user_id = "carol";
  p = find(f);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->total, 0u);
  auto st = stats();
  ASSERT_TRUE(st);
  EXPECT_EQ(st->records, 1u);
}

TEST_P(store_contract, updates_of_one_call_apply_in_order) {
  // Queued without waiting, so several land in one group: each sees the previous one's state.
  done_latch latch;
  ASSERT_TRUE(update(app1, {"seq"}, [&](std::span<call_slot> slots) {
    slots[0].state = make_state("seq", "alice", {"bob"}, t0 * 1000);
    slots[0].changed = true;
  }));
  constexpr int n = 300;
  for (int i = 0; i < n; ++i) {
    update_then(
        app1, {"seq"},
        [i](std::span<call_slot> slots) {
          if (!slots[0].state) return;
          if (slots[0].state->event_ids.size() != static_cast<std::size_t>(i)) return;  // out of order: no change
          slots[0].state->event_ids.push_back({"alice", "e" + std::to_string(i)});
          slots[0].changed = true;
        },
        latch.make());
  }
  ASSERT_TRUE(latch.wait_for(n));
  EXPECT_TRUE(latch.errors().empty());
  reopen();
  ASSERT_TRUE(update(app1, {"seq"}, [&](std::span<call_slot> slots) {
    ASSERT_TRUE(slots[0].state);
    ASSERT_EQ(slots[0].state->event_ids.size(), static_cast<std::size_t>(n));
    EXPECT_EQ(slots[0].state->event_ids.back().event_id, "e" + std::to_string(n - 1));
  }));
}

TEST_P(store_contract, grouped_commits_from_many_threads_are_all_durable) {
  constexpr int threads = 8, per_thread = 200;
  done_latch latch;
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      for (int i = 0; i < per_thread; ++i) {
        const std::string live = "t" + std::to_string(t) + "-live-" + std::to_string(i);
        const std::string done = "t" + std::to_string(t) + "-done-" + std::to_string(i);
        const auto rec = make_record(app1, done, t0 + t * 1000 + i, "u" + std::to_string(t), {"v" + std::to_string(i)});
        update_then(
            app1, {live, done},
            [live, rec](std::span<call_slot> slots) {
              slots[0].state = make_state(live, "alice", {"bob"}, t0 * 1000);
              slots[0].changed = true;
              slots[0].deadline_ms = t0 * 1000 + 1;
              slots[1].finished = rec;
            },
            latch.make());
      }
    });
  }
  for (auto& th : pool) th.join();
  ASSERT_TRUE(latch.wait_for(threads * per_thread));
  EXPECT_TRUE(latch.errors().empty());
  reopen();
  auto st = stats();
  ASSERT_TRUE(st);
  EXPECT_EQ(st->records, static_cast<std::uint64_t>(threads * per_thread));
  EXPECT_EQ(st->live_calls, static_cast<std::uint64_t>(threads * per_thread));
  auto p = find(window(app1, t0, t0 + 10 * 1000));
  ASSERT_TRUE(p);
  EXPECT_EQ(p->total, static_cast<std::uint64_t>(threads * per_thread));
  auto due = due_now(t0 * 1000 + 1, 100000);
  ASSERT_TRUE(due);
  EXPECT_EQ(due->size(), static_cast<std::size_t>(threads * per_thread));
  for (int t = 0; t < threads; ++t) {
    auto got = get(app1, "t" + std::to_string(t) + "-done-" + std::to_string(per_thread - 1));
    ASSERT_TRUE(got);
    EXPECT_TRUE(got->has_value());
  }
}

TEST_P(store_contract, close_drains_queued_updates) {
  done_latch latch;
  std::vector<call_record> recs;
  for (int i = 0; i < 500; ++i) recs.push_back(make_record(app1, "q" + std::to_string(i), t0 + i, "alice", {"bob"}));
  for (const auto& r : recs) {
    update_then(
        app1, {r.call_id}, [r](std::span<call_slot> slots) { slots[0].finished = r; }, latch.make());
  }
  io_.flush();  // every update queued in the store
  store_->close();
  ASSERT_TRUE(latch.wait_for(recs.size()));
  EXPECT_EQ(latch.calls(), recs.size());
  EXPECT_TRUE(latch.errors().empty());
  reopen();
  auto p = find(window(app1, t0, t0 + 1000));
  ASSERT_TRUE(p);
  EXPECT_EQ(p->total, recs.size());
}

TEST_P(store_contract, update_and_purge_after_close_fail) {
  store_->close();
  done_latch latch;
  bool ran = false;
  update_then(
      app1, {"late"}, [&](std::span<call_slot>) { ran = true; }, latch.make());
  ASSERT_TRUE(latch.wait_for(1));
  EXPECT_FALSE(ran);
  ASSERT_EQ(latch.errors().size(), 1u);
  EXPECT_EQ(latch.errors()[0].code, errc::unavailable);
  retention_policy policy;
  policy.apps.push_back({app1, t0});
  auto purged = retain(policy);
  EXPECT_FALSE(purged);
  EXPECT_FALSE(ping());
  store_->close();  // twice is fine
}

TEST_P(store_contract, a_throwing_update_fails_alone_and_changes_nothing) {
  ASSERT_TRUE(update(app1, {"t"}, [&](std::span<call_slot> slots) {
    slots[0].state = make_state("t", "alice", {"bob"}, t0 * 1000);
    slots[0].changed = true;
  }));
  done_latch latch;
  update_then(
      app1, {"t"},
      [](std::span<call_slot> slots) {
        slots[0].state.reset();
        slots[0].changed = true;
        throw std::runtime_error("bug");
      },
      latch.make());
  const auto rec = make_record(app1, "ok", t0, "alice", {"bob"});
  update_then(
      app1, {"ok"}, [&](std::span<call_slot> slots) { slots[0].finished = rec; }, latch.make());
  ASSERT_TRUE(latch.wait_for(2));
  ASSERT_EQ(latch.errors().size(), 1u);
  EXPECT_EQ(latch.errors()[0].code, errc::internal);
  ASSERT_TRUE(update(app1, {"t"}, [&](std::span<call_slot> slots) { EXPECT_TRUE(slots[0].state); }));
  auto got = get(app1, "ok");
  ASSERT_TRUE(got);
  EXPECT_TRUE(got->has_value());
}

TEST_P(store_contract, a_record_naming_another_call_is_refused) {
  auto r = update(app1, {"p"}, [&](std::span<call_slot> slots) {
    slots[0].finished = make_record(app1, "q", t0, "alice", {"bob"});
  });
  EXPECT_FALSE(r);
  auto got = get(app1, "q");
  ASSERT_TRUE(got);
  EXPECT_FALSE(got->has_value());
}

TEST_P(store_contract, purge_removes_old_records_and_their_counts) {
  std::mt19937_64 rng(3);
  auto all = random_records(rng, 2000);
  insert(all);
  const std::int64_t cut = t0 + 12 * 3600 + 17;
  std::size_t old1 = 0, old2 = 0;
  for (const auto& r : all) {
    if (r.start_ts < cut) ++(r.sdkappid == app1 ? old1 : old2);
  }
  ASSERT_GT(old1, 300u);
  std::uint64_t removed = 0;
  retention_policy policy;
  policy.apps.push_back({app1, cut});  // app2 keeps everything
  for (int round = 0; round < 1000; ++round) {
    auto n = retain(policy);
    ASSERT_TRUE(n) << n.error().message;
    removed += n->records_removed;
    if (n->complete) break;
  }
  EXPECT_EQ(removed, old1);
  std::vector<call_record> left;
  for (const auto& r : all) {
    if (r.sdkappid != app1 || r.start_ts >= cut) left.push_back(r);
  }
  for (const auto& f : {window(app1, t0 - 10, t0 + 31 * 3600), window(app1, t0 + 3600, cut + 3600),
                        window(app2, t0 - 10, t0 + 31 * 3600)}) {
    expect_page([this](const record_filter& q) { return find(q); }, left, f);
    auto g = f;
    g.user_id = "user4";
    expect_page([this](const record_filter& q) { return find(q); }, left, g);
    g = f;
    g.result = call_result::normal_end;
    g.offset = 600;
    expect_page([this](const record_filter& q) { return find(q); }, left, g);
  }
  auto st = stats();
  ASSERT_TRUE(st);
  EXPECT_EQ(st->records, all.size() - old1);
  const auto& gone =
      *std::find_if(all.begin(), all.end(), [&](const auto& r) { return r.sdkappid == app1 && r.start_ts < cut; });
  auto got = get(app1, gone.call_id);
  ASSERT_TRUE(got);
  EXPECT_FALSE(got->has_value());
  reopen();
  st = stats();
  ASSERT_TRUE(st);
  EXPECT_EQ(st->records, all.size() - old1);
}

// Stores partition by time (the SQLite store keys its user and room lookups by hour; PostgreSQL will partition
// by day): calls a second either side of midnight UTC, a call that lasts across it, one call a day for 8 days,
// found by every filter in both orders, page by page and by cursor.
TEST_P(store_contract, partition_boundaries_do_not_show) {
  constexpr std::int64_t midnight = 1700006400;  // 2023-11-15T00:00:00Z
  std::vector<call_record> all{
      make_record(app1, "before", midnight - 1, "walker", {"bob"}, call_result::normal_end, call_type::single,
                  media_type::audio, "77"),
      make_record(app1, "at", midnight, "bob", {"walker"}, call_result::reject, call_type::single, media_type::video,
                  "77"),
      make_record(app1, "after", midnight + 1, "walker", {"carol", "bob"}, call_result::normal_end, call_type::group,
                  media_type::audio, "78"),
  };
  all[0].end_ts = midnight + 7200;  // lasts across midnight and two hour boundaries
  for (int d = 0; d < 8; ++d) {
    all.push_back(make_record(app1, "day-" + std::to_string(d), midnight + d * 86400 + 43200 + d, "walker", {"dora"},
                              call_result::normal_end, call_type::single, media_type::audio, "77"));
  }
  insert(all, 1);
  auto check = [&](std::int64_t from, std::int64_t to) {
    std::vector<record_filter> fs;
    auto f = window(app1, from, to);
    fs.push_back(f);
    f.user_id = "walker";
    fs.push_back(f);
    f = window(app1, from, to);
    f.caller = "walker";
    fs.push_back(f);
    f = window(app1, from, to);
    f.room_id = "77";
    fs.push_back(f);
    for (auto g : fs) {
      for (const bool desc : {false, true}) {
        g.descending = desc;
        g.limit = 100;
        g.offset = 0;
        g.after.reset();
        expect_page([this](const record_filter& q) { return find(q); }, all, g);
        g.limit = 2;  // page by page, then by cursor, across the boundaries
        for (g.offset = 0; g.offset < 12; g.offset += 2) expect_page([this](const record_filter& q) { return find(q); }, all, g);
        g.offset = 0;
        auto first = find(g);
        ASSERT_TRUE(first);
        if (first->next) {
          g.after = first->next;
          expect_page([this](const record_filter& q) { return find(q); }, all, g);
        }
        g.after.reset();
      }
    }
  };
  check(midnight - 1, midnight);       // the two seconds around midnight
  check(midnight, midnight);           // midnight alone
  check(midnight - 86400, midnight - 1);  // the day before: "before" only
  check(midnight - 10, midnight + 8 * 86400);  // 8 days: 9 partitions
  for (const auto& r : all) {
    auto got = get(app1, r.call_id);
    ASSERT_TRUE(got && got->has_value()) << r.call_id;
    EXPECT_EQ(**got, r);
  }
}

// Retention drops a whole day while readers of the next day run: they never miss a record or see a total
// change, and the dropped day is gone from every filter.
TEST_P(store_contract, dropping_a_day_while_reads_run) {
  constexpr std::int64_t day1 = 1700006400, day2 = day1 + 86400;
  std::vector<call_record> old_day, new_day;
  for (int i = 0; i < 3000; ++i) {
    old_day.push_back(make_record(app1, "old-" + std::to_string(i), day1 + i * 28, "u" + std::to_string(i % 40),
                                  {"v" + std::to_string(i % 30)}, call_result::normal_end, call_type::single,
                                  media_type::audio, std::to_string(100 + i % 9)));
  }
  for (int i = 0; i < 500; ++i) {
    new_day.push_back(make_record(app1, "new-" + std::to_string(i), day2 + i * 170, "u" + std::to_string(i % 40),
                                  {"v" + std::to_string(i % 30)}, call_result::normal_end, call_type::single,
                                  media_type::audio, std::to_string(100 + i % 9)));
  }
  insert(old_day, 50);
  insert(new_day, 50);
  std::atomic<bool> stop{false};
  std::atomic<int> wrong{0}, reads{0};
  std::vector<std::thread> readers;
  for (int k = 0; k < 2; ++k) {
    readers.emplace_back([&, k] {
      std::size_t i = static_cast<std::size_t>(k);
      while (!stop.load()) {
        auto f = window(app1, day2, day2 + 86399);
        if (k == 1) f.user_id = "u7";
        auto p = find(f);
        const std::uint64_t want = k == 1 ? 13 : new_day.size();  // u7 is the caller of new-7, new-47, ...
        if (!p || p->total != want) ++wrong;
        auto got = get(app1, new_day[i % new_day.size()].call_id);
        if (!got || !got->has_value()) ++wrong;
        i += 7;
        ++reads;
      }
    });
  }
  retention_policy policy;
  policy.apps.push_back({app1, day2});
  std::uint64_t removed = 0;
  for (int round = 0; round < 1000; ++round) {
    auto n = retain(policy);
    if (!n) {
      ADD_FAILURE() << n.error().message << " / " << n.error().detail;  // the readers are joined first
      break;
    }
    removed += n->records_removed;
    if (n->complete) break;
  }
  stop = true;
  for (auto& t : readers) t.join();
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_GT(reads.load(), 0);
  EXPECT_EQ(removed, old_day.size());
  for (const char* user : {"u7", "v3"}) {
    auto f = window(app1, day1 - 10, day2 + 86400);
    f.user_id = user;
    expect_page([this](const record_filter& q) { return find(q); }, new_day, f);
    f.user_id.reset();
    f.room_id = "104";
    expect_page([this](const record_filter& q) { return find(q); }, new_day, f);
  }
  auto gone = get(app1, "old-5");
  ASSERT_TRUE(gone);
  EXPECT_FALSE(gone->has_value());
}

// A process killed while retention drops a day leaves a store whose lookups agree with its records: each old
// record is either gone from every read or found by every one, and nothing newer is touched.
TEST_P(store_contract, a_crash_while_a_day_is_dropped_loses_nothing_else) {
  constexpr std::int64_t day1 = 1700006400, day2 = day1 + 86400;
  std::vector<call_record> old_day, new_day;
  for (int i = 0; i < 12000; ++i) {  // more than one retention slice of the SQLite store (5000)
    old_day.push_back(make_record(app1, "old-" + std::to_string(i), day1 + i * 7, "u" + std::to_string(i % 40),
                                  {"v" + std::to_string(i % 30)}));
  }
  for (int i = 0; i < 300; ++i) {
    new_day.push_back(make_record(app1, "new-" + std::to_string(i), day2 + i * 200, "u" + std::to_string(i % 40),
                                  {"v" + std::to_string(i % 30)}));
  }
  insert(old_day, 200);
  insert(new_day, 100);
  store_.reset();  // no store threads while forking
  io_.stop();
  EXPECT_EXIT(
      {
        auto s = open();
        testing::io_runner io;
        retention_policy policy;
        policy.apps.push_back({app1, day2});
        // Dies abruptly after the first slice was removed, while the next one runs.
        auto first = io.run(s->apply_retention(policy, far()));
        if (!first) std::_Exit(2);
        io.spawn<result<retention_report>>(s->apply_retention(policy, far()), [](result<retention_report>) {});
        std::_Exit(0);
      },
      ::testing::ExitedWithCode(0), "");
  io_.start();
  reopen();
  std::vector<call_record> left = new_day;
  for (const auto& r : old_day) {
    auto got = get(app1, r.call_id);
    ASSERT_TRUE(got);
    if (got->has_value()) left.push_back(r);
  }
  EXPECT_LT(left.size(), old_day.size() + new_day.size()) << "the first slice was removed";
  std::sort(left.begin(), left.end(), [](const auto& a, const auto& b) { return a.start_ts < b.start_ts; });
  for (const char* user : {"u7", "v3"}) {
    auto f = window(app1, day1 - 10, day2 + 86400);
    f.user_id = user;
    f.limit = 1000;
    expect_page([this](const record_filter& q) { return find(q); }, left, f);
  }
  expect_page([this](const record_filter& q) { return find(q); }, left, window(app1, day1 - 10, day2 + 86400));
  auto st = stats();
  ASSERT_TRUE(st);
  EXPECT_EQ(st->records, left.size());
}

TEST_P(store_contract, acknowledged_updates_survive_a_crash) {
  // The child process queues updates and dies abruptly (no close) inside the `done` of update `crash_at`,
  // while later updates may still be in flight. Every update acknowledged before must be there.
  constexpr int n = 600, crash_at = 400;
  store_.reset();  // no store threads while forking
  io_.stop();
  EXPECT_EXIT(
      {
        auto s = open();
        testing::io_runner io;
        for (int i = 0; i < n; ++i) {
          const auto rec = make_record(app1, "crash-" + std::to_string(i), t0 + i, "alice", {"bob"});
          io.spawn<result<void>>(
              s->update_calls(app1, {rec.call_id}, [rec](std::span<call_slot> slots) { slots[0].finished = rec; },
                              far()),
              [i](result<void> r) {
                if (!r) std::_Exit(2);
                if (i == crash_at) std::_Exit(0);
              });
        }
        io.flush();
        s->close();
        io.flush();
        std::_Exit(3);  // not reached: update crash_at is acknowledged before close returns
      },
      ::testing::ExitedWithCode(0), "");
  io_.start();
  reopen();
  for (int i = 0; i <= crash_at; ++i) {
    auto got = get(app1, "crash-" + std::to_string(i));
    ASSERT_TRUE(got);
    ASSERT_TRUE(got->has_value()) << "acknowledged record crash-" << i << " was lost";
  }
  auto p = find(window(app1, t0, t0 + n));
  ASSERT_TRUE(p);
  EXPECT_GE(p->total, static_cast<std::uint64_t>(crash_at + 1));
  auto st = stats();
  ASSERT_TRUE(st);
  EXPECT_EQ(st->records, p->total);
}

TEST_P(store_contract, reads_succeed_while_updates_commit) {
  std::atomic<bool> stop{false};
  std::atomic<int> read_errors{0}, reads{0};
  std::vector<std::thread> readers;
  for (int k = 0; k < 2; ++k) {
    readers.emplace_back([&, k] {
      std::uint64_t last_total = 0;
      while (!stop.load()) {
        auto f = window(app1, t0, t0 + 100000);
        f.descending = k == 1;
        auto p = find(f);
        if (!p) {
          ++read_errors;
          continue;
        }
        // Snapshots only move forward, and a page agrees with its total.
        if (p->total < last_total || p->records.size() != std::min<std::uint64_t>(p->total, f.limit)) ++read_errors;
        last_total = p->total;
        if (!get(app1, "rw-0")) ++read_errors;
        ++reads;
      }
    });
  }
  std::vector<call_record> recs;
  for (int i = 0; i < 3000; ++i) {
    recs.push_back(make_record(app1, "rw-" + std::to_string(i), t0 + (i * 7919) % 100000, "u" + std::to_string(i % 50),
                               {"v" + std::to_string(i % 70)}));
  }
  insert(recs, 10);
  stop = true;
  for (auto& t : readers) t.join();
  EXPECT_EQ(read_errors.load(), 0);
  EXPECT_GT(reads.load(), 0);
  auto p = find(window(app1, t0, t0 + 100000));
  ASSERT_TRUE(p);
  EXPECT_EQ(p->total, recs.size());
}

TEST_P(store_contract, ping_and_stats_answer) {
  EXPECT_TRUE(ping());
  auto st = stats();
  ASSERT_TRUE(st);
  EXPECT_EQ(st->records, 0u);
  EXPECT_EQ(st->live_calls, 0u);
}

}  // namespace
}  // namespace callrec::testing_store
