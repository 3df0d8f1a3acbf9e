// The PostgreSQL store: the contract suite over a real PostgreSQL, plus what only this backend has (its
// migrations, concurrent starts). The server comes from scripts/services (tests/support/pg_test_db.h).
#include <boost/asio/this_coro.hpp>
#include <filesystem>
#include <thread>

#include "calls/call_state.h"
#include "records/record_doc.h"
#include "store/postgres/pg_conn.h"
#include "store/postgres/pg_schema.h"
#include "store/store_contract.h"
#include "support/pg_test_db.h"

namespace callrec::testing_store {
namespace {

std::string url_of_dir(const std::filesystem::path& dir) {
  return testing::pg_schema_url(testing::pg_schema_name(dir.string()));
}

std::unique_ptr<store> open_pg(const std::filesystem::path& dir) {
  store_settings o;
  o.url = url_of_dir(dir);
  auto s = open_store(o);
  EXPECT_TRUE(s) << s.error().message << " (" << s.error().detail << ")";
  return s ? std::move(*s) : nullptr;
}

INSTANTIATE_TEST_SUITE_P(postgres, store_contract,
                         ::testing::Values(store_backend{"postgres", open_pg, testing::pg_unavailable}), backend_name);

class pg_store_test : public ::testing::Test {
 protected:
  void SetUp() override {
    if (const auto why = testing::pg_unavailable(); !why.empty()) GTEST_SKIP() << why;
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    schema_ = testing::pg_schema_name(std::string("pg_store_test.") + info->name() + std::to_string(::getpid()));
    ASSERT_EQ(testing::pg_exec(testing::pg_base_url(), "DROP SCHEMA IF EXISTS " + schema_ + " CASCADE"), "");
    url_ = testing::pg_schema_url(schema_);
  }

  std::unique_ptr<store> open() {
    store_settings o;
    o.url = url_;
    auto s = open_store(o);
    EXPECT_TRUE(s) << s.error().message << " (" << s.error().detail << ")";
    return s ? std::move(*s) : nullptr;
  }

  // A one-row, one-column answer of `sql` in the test's schema, as text.
  std::string scalar(const std::string& sql) {
    std::unique_ptr<PGconn, decltype(&PQfinish)> c(PQconnectdb(url_.c_str()), &PQfinish);
    std::unique_ptr<PGresult, decltype(&PQclear)> r(PQexec(c.get(), sql.c_str()), &PQclear);
    if (PQresultStatus(r.get()) != PGRES_TUPLES_OK || PQntuples(r.get()) != 1) {
      return std::string("error: ") + PQresultErrorMessage(r.get());
    }
    return PQgetvalue(r.get(), 0, 0);
  }

  // Applies the migrations up to `version` only, as an older build would have.
  void migrate_to(int version) {
    testing::io_runner io;
    auto r = io.run([](std::string url, int v) -> boost::asio::awaitable<result<int>> {
      const auto due = std::chrono::steady_clock::now() + std::chrono::seconds(30);
      auto ex = co_await boost::asio::this_coro::executor;
      auto opening = pg::connection::open(ex, url, due);
      auto c = co_await std::move(opening);
      if (!c) co_return std::move(c).error();
      co_return co_await pg::migrate(**c, v, due);
    }(url_, version));
    ASSERT_TRUE(r) << r.error().message << " " << r.error().detail;
  }

  std::string schema_, url_;
  testing::io_runner io_;
};

// Bytes as a PostgreSQL bytea literal ('\x...').
std::string bytea_literal(std::string_view bytes) {
  static const char* digits = "0123456789abcdef";
  std::string out = "'\\x";
  for (unsigned char ch : bytes) {
    out += digits[ch >> 4];
    out += digits[ch & 15];
  }
  return out + "'";
}

// SQL that inserts the record of a call of app 1400000001 started at 1700010000 by alice, as an older build or a
// person at psql would (no ended_calls row).
std::string insert_by_hand(const std::string& call_id) {
  record_fields rec;
  rec.sdkappid = 1400000001;
  rec.call_id = call_id;
  rec.start_ts = 1700010000;
  rec.caller = "alice";
  std::string doc;
  encode_doc(doc, rec);
  return "INSERT INTO records (sdkappid, start_ts, call_id, result, call_type, media, doc) VALUES (1400000001, "
         "1700010000, '" + call_id + "', 0, 0, 0, " + bytea_literal(doc) + ")";
}

TEST_F(pg_store_test, an_empty_database_gets_the_current_schema) {
  auto s = open();
  ASSERT_TRUE(s);
  EXPECT_EQ(scalar("SELECT version FROM callrec_schema"), std::to_string(pg::schema_version));
  EXPECT_EQ(scalar("SELECT count(*) FROM callrec_schema"), "1");
  // Every table's key leads with sdkappid (distribution by app, README: Citus).
  EXPECT_EQ(scalar("SELECT count(*) FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid "
                   "JOIN pg_namespace n ON n.oid = t.relnamespace JOIN pg_attribute a ON a.attrelid = t.oid "
                   "AND a.attnum = i.indkey[0] WHERE n.nspname = current_schema() AND t.relname <> 'callrec_schema' "
                   "AND a.attname <> 'sdkappid'"),
            "0");
  s->close();
  // Opening again applies nothing.
  s = open();
  ASSERT_TRUE(s);
  EXPECT_EQ(scalar("SELECT version FROM callrec_schema"), std::to_string(pg::schema_version));
}

TEST_F(pg_store_test, the_previous_version_is_upgraded_and_keeps_its_live_calls) {
  migrate_to(1);
  ASSERT_EQ(scalar("SELECT version FROM callrec_schema"), "1");
  calls::call_state st;
  st.call_id = "kept";
  st.caller = "alice";
  st.start_ms = 1'700'000'000'000;
  const std::string bytes = calls::encode(st);
  ASSERT_EQ(testing::pg_exec(url_, "INSERT INTO live_calls (sdkappid, call_id, state, deadline_ms) VALUES "
                                   "(1400000001, 'kept', " + bytea_literal(bytes) + ", 1700000030000)"),
            "");
  auto s = open();
  ASSERT_TRUE(s);
  EXPECT_EQ(scalar("SELECT version FROM callrec_schema"), std::to_string(pg::schema_version));
  auto due = io_.run(s->claim_due_calls(1'700'000'031'000, 10, std::chrono::milliseconds(0)));
  ASSERT_TRUE(due);
  ASSERT_EQ(due->size(), 1u);
  EXPECT_EQ((*due)[0].call_id, "kept");
  EXPECT_EQ((*due)[0].deadline_ms, 1'700'000'030'000);
}

TEST_F(pg_store_test, version_2_records_are_known_as_ended_after_the_upgrade) {
  migrate_to(2);
  ASSERT_EQ(testing::pg_exec(url_, "CREATE TABLE records_p20231115 PARTITION OF records FOR VALUES FROM (1700006400) "
                                   "TO (1700092800)"),
            "");
  ASSERT_EQ(testing::pg_exec(url_, "INSERT INTO records (sdkappid, start_ts, call_id, result, call_type, media, doc) "
                                   "VALUES (1400000001, 1700010000, 'old-call', 0, 0, 0, '\\x00')"),
            "");
  auto s = open();
  ASSERT_TRUE(s);
  EXPECT_EQ(scalar("SELECT count(*) FROM ended_calls WHERE call_id = 'old-call' AND start_ts = 1700010000"), "1");
  // An event for that call finds it ended (late), as it would have before the upgrade.
  bool ended = false;
  auto r = io_.run(s->update_calls(
      1400000001, {"old-call"}, [&ended](std::span<call_slot> slots) { ended = slots[0].ended; },
      std::chrono::steady_clock::now() + std::chrono::seconds(30)));
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_TRUE(ended);
}

TEST_F(pg_store_test, version_3_records_are_found_by_call_after_the_upgrade) {
  migrate_to(3);
  ASSERT_EQ(testing::pg_exec(url_, "CREATE TABLE records_p20231115 PARTITION OF records FOR VALUES FROM (1700006400) "
                                   "TO (1700092800)"),
            "");
  ASSERT_EQ(testing::pg_exec(url_, insert_by_hand("v3-call") +
                                       "; INSERT INTO ended_calls VALUES (1400000001, 'v3-call', 1700010000)"),
            "");
  auto s = open();
  ASSERT_TRUE(s);
  EXPECT_EQ(scalar("SELECT version FROM callrec_schema"), std::to_string(pg::schema_version));
  EXPECT_EQ(scalar("SELECT count(*) FROM pg_indexes WHERE schemaname = current_schema() AND tablename LIKE 'records%' "
                   "AND indexdef LIKE '%(sdkappid, call_id)'"), "0")
      << "the (sdkappid, call_id) indexes of records are gone";
  auto found = io_.run(s->get_record(1400000001, "v3-call", 1700000000, std::chrono::steady_clock::now() + std::chrono::seconds(30)));
  ASSERT_TRUE(found) << found.error().message;
  ASSERT_TRUE(found->has_value());
  EXPECT_EQ((*found)->fields().caller, "alice");
  // Outside the window asked for, it is not served.
  found = io_.run(s->get_record(1400000001, "v3-call", 1700010001, std::chrono::steady_clock::now() + std::chrono::seconds(30)));
  ASSERT_TRUE(found);
  EXPECT_FALSE(found->has_value());
}

// Records go in with plain INSERTs (the call's lock and ended_calls say they are new). A database changed by hand
// may hold a record that ended_calls does not know: the group then runs again with ON CONFLICT, and succeeds.
TEST_F(pg_store_test, a_record_that_ended_calls_does_not_know_does_not_fail_the_update) {
  auto s = open();
  ASSERT_TRUE(s);
  call_record other;  // the store makes the day's partitions for it
  other.call_id = "other";
  other.sdkappid = 1400000001;
  other.start_ts = other.end_ts = 1700010000;
  other.caller = "carol";
  auto made = io_.run(s->update_calls(
      1400000001, {"other"}, [&other](std::span<call_slot> slots) { slots[0].finished = other; },
      std::chrono::steady_clock::now() + std::chrono::seconds(30)));
  ASSERT_TRUE(made) << made.error().message;
  ASSERT_EQ(testing::pg_exec(url_, insert_by_hand("by-hand") +
                                       "; INSERT INTO participants VALUES (1400000001, 'alice', 1700010000, 'by-hand', true)"),
            "");
  call_record rec;
  rec.call_id = "by-hand";
  rec.sdkappid = 1400000001;
  rec.start_ts = 1700010000;
  rec.end_ts = 1700010060;
  rec.caller = "alice";
  rec.callees = {"bob", "alice", "bob"};  // a caller named as a callee, a callee named twice: one row a user
  rec.result = call_result::normal_end;
  auto r = io_.run(s->update_calls(
      1400000001, {"by-hand"}, [&rec](std::span<call_slot> slots) { slots[0].finished = rec; },
      std::chrono::steady_clock::now() + std::chrono::seconds(30)));
  ASSERT_TRUE(r) << r.error().message << " (" << r.error().detail << ")";
  EXPECT_EQ(scalar("SELECT count(*) FROM ended_calls WHERE call_id = 'by-hand'"), "1");
  EXPECT_EQ(scalar("SELECT count(*) FROM records WHERE call_id = 'by-hand'"), "1");
  EXPECT_EQ(scalar("SELECT string_agg(user_id || ':' || is_caller, ',' ORDER BY user_id) FROM participants "
                   "WHERE call_id = 'by-hand'"),
            "alice:true,bob:false");
  auto found = io_.run(s->get_record(1400000001, "by-hand", 0, std::chrono::steady_clock::now() + std::chrono::seconds(30)));
  ASSERT_TRUE(found) << found.error().message;
  ASSERT_TRUE(found->has_value());
  EXPECT_EQ((*found)->fields().end_ts, 0) << "the record that was there first stays";
}

TEST_F(pg_store_test, a_retention_pass_creates_todays_and_tomorrows_partitions_ahead) {
  auto s = open();
  ASSERT_TRUE(s);
  const auto today =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count() /
      86400;
  auto tables = [&] {
    return scalar("SELECT count(*) FROM pg_tables WHERE schemaname = current_schema() AND tablename IN ('records_p" +
                  pg::day_name(today) + "', 'records_p" + pg::day_name(today + 1) + "', 'participants_p" +
                  pg::day_name(today + 1) + "', 'rooms_p" + pg::day_name(today + 1) + "')");
  };
  ASSERT_EQ(tables(), "0") << "an empty database has no partitions";
  retention_policy policy;
  policy.apps.push_back({1400000001, 0});
  auto r = io_.run(s->apply_retention(policy, std::chrono::steady_clock::now() + std::chrono::seconds(30)));
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(tables(), "4") << "before their first call";
}

TEST_F(pg_store_test, nodes_starting_at_once_apply_each_migration_once) {
  constexpr int nodes = 4;
  std::vector<std::unique_ptr<store>> stores(nodes);
  std::vector<std::thread> threads;
  for (int i = 0; i < nodes; ++i) {
    threads.emplace_back([&, i] {
      store_settings o;
      o.url = url_;
      auto s = open_store(o);
      if (s) stores[i] = std::move(*s);
    });
  }
  for (auto& t : threads) t.join();
  for (int i = 0; i < nodes; ++i) EXPECT_TRUE(stores[i]) << "node " << i << " did not start";
  EXPECT_EQ(scalar("SELECT version FROM callrec_schema"), std::to_string(pg::schema_version));
  EXPECT_EQ(scalar("SELECT count(*) FROM callrec_schema"), "1");
}

TEST_F(pg_store_test, a_newer_schema_is_refused_with_its_version) {
  migrate_to(pg::schema_version);
  ASSERT_EQ(testing::pg_exec(url_, "UPDATE callrec_schema SET version = 99"), "");
  store_settings o;
  o.url = url_;
  auto s = open_store(o);
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().message.find("version 99"), std::string::npos) << s.error().message;
}

TEST_F(pg_store_test, an_unreachable_database_fails_the_open_with_its_reason) {
  store_settings o;
  o.url = "postgresql://postgres@127.0.0.1:1/callrec";
  o.pg_connect_wait = std::chrono::seconds(1);
  auto s = open_store(o);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, errc::unavailable);
  EXPECT_NE(s.error().detail.find("refused"), std::string::npos) << s.error().detail;
}

// A batch stops at its first failure, and the server skips what follows, prepares included: a statement first
// seen in such a batch was never prepared, and must be prepared again when it next runs.
TEST_F(pg_store_test, a_prepare_skipped_by_a_failed_batch_is_prepared_again) {
  auto r = io_.run([](std::string url) -> boost::asio::awaitable<result<int>> {
    const auto due = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    auto ex = co_await boost::asio::this_coro::executor;
    auto opening = pg::connection::open(ex, url, due);
    auto c = co_await std::move(opening);
    if (!c) co_return std::move(c).error();
    const std::vector<pg::statement> failing{pg::statement("SELECT 1 / 0"), pg::statement("SELECT 2::int8")};
    auto first = co_await (*c)->run(failing, due);
    if (first) co_return make_error(errc::internal, "a division by zero succeeded");
    int sum = 0;
    for (const char* sql : {"SELECT 2::int8", "SELECT 3::int8", "SELECT 4::int8"}) {
      const std::vector<pg::statement> one{pg::statement(sql)};
      auto again = co_await (*c)->run(one, due);
      if (!again) co_return std::move(again).error();
      sum += static_cast<int>((*again)[0].i64(0, 0));
    }
    co_return sum;
  }(url_));
  ASSERT_TRUE(r) << r.error().message << " (" << r.error().detail << ")";
  EXPECT_EQ(*r, 9);
}

// Host names are looked up by Asio's resolver, not inside libpq on the connecting thread: a name works (every address
// of it tried in turn: "localhost" may answer ::1 first, where the test server does not listen), and one that does
// not resolve fails the open with the name and the reason.
TEST_F(pg_store_test, a_host_name_is_resolved_and_one_that_does_not_resolve_says_so) {
  const auto at = url_.find("@127.0.0.1:");
  ASSERT_NE(at, std::string::npos) << url_;
  store_settings o;
  o.url = url_.substr(0, at) + "@localhost:" + url_.substr(at + std::string("@127.0.0.1:").size());
  auto s = open_store(o);
  ASSERT_TRUE(s) << s.error().message << " (" << s.error().detail << ")";
  record_filter f;
  f.sdkappid = 1400000001;
  f.end_ts = 1700000000;
  auto page = io_.run((*s)->find_records(f, std::chrono::steady_clock::now() + std::chrono::seconds(30)));
  ASSERT_TRUE(page) << page.error().message;
  (*s)->close();

  o.url = "postgresql://postgres@no-such-host.invalid:5432/callrec";
  o.pg_connect_wait = std::chrono::seconds(1);
  s = open_store(o);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, errc::unavailable);
  EXPECT_NE(s.error().detail.find("cannot resolve no-such-host.invalid"), std::string::npos) << s.error().detail;
}

}  // namespace
}  // namespace callrec::testing_store
