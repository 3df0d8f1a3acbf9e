// The SQLite store: the contract suite, plus what only this backend has (its url, schema, SQL failures).
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <filesystem>
#include <tuple>

#include "records/record_doc.h"
#include "store/sqlite/record_docs.h"
#include "store/sqlite/schema.h"
#include "store/sqlite/sqlite_store.h"
#include "store/store_contract.h"

namespace callrec::testing_store {
namespace {

using sqlite::schema_version;

std::unique_ptr<store> open_sqlite(const std::filesystem::path& dir) {
  store_settings o;
  o.url = "sqlite:" + (dir / "callrec.db").string();
  auto s = open_store(o);
  EXPECT_TRUE(s) << s.error().message;
  return s ? std::move(*s) : nullptr;
}

INSTANTIATE_TEST_SUITE_P(sqlite, store_contract, ::testing::Values(store_backend{"sqlite", open_sqlite}), backend_name);

class sqlite_store_test : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("callrec-sqlite-" + std::to_string(::getpid()) + "-" +
                                                     ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
  }
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  // Runs SQL on the database with a connection of its own.
  void exec(const std::filesystem::path& db, const char* sql) {
    sqlite3* h = nullptr;
    ASSERT_EQ(sqlite3_open(db.c_str(), &h), SQLITE_OK);
    char* err = nullptr;
    EXPECT_EQ(sqlite3_exec(h, sql, nullptr, nullptr, &err), SQLITE_OK) << (err ? err : "");
    sqlite3_free(err);
    sqlite3_close(h);
  }
  // The first row of `sql` on the database, with a connection of its own, each column as text.
  std::vector<std::string> row(const std::filesystem::path& db, const char* sql) {
    sqlite3* h = nullptr;
    EXPECT_EQ(sqlite3_open(db.c_str(), &h), SQLITE_OK);
    sqlite3_stmt* q = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(h, sql, -1, &q, nullptr), SQLITE_OK) << sqlite3_errmsg(h);
    std::vector<std::string> out;
    if (q && sqlite3_step(q) == SQLITE_ROW) {
      for (int i = 0; i < sqlite3_column_count(q); ++i) {
        const auto* t = sqlite3_column_text(q, i);
        out.emplace_back(t ? reinterpret_cast<const char*>(t) : "");
      }
    }
    sqlite3_finalize(q);
    sqlite3_close(h);
    return out;
  }
  // Records calls c0..c<n-1> of app 1 (alice calls bob), one a second from `first_ts`, one update each.
  void insert_calls(store& s, int n, std::int64_t first_ts) {
    done_latch latch;
    for (int i = 0; i < n; ++i) {
      call_record r;
      r.sdkappid = 1;
      r.call_id = "c" + std::to_string(i);
      r.caller = "alice";
      r.callees = {"bob"};
      r.start_ts = first_ts + i;
      io_.spawn<result<void>>(
          s.update_calls(1, {r.call_id}, [r](std::span<call_slot> slots) { slots[0].finished = r; }, far()),
          latch.make());
    }
    ASSERT_TRUE(latch.wait_for(static_cast<std::size_t>(n)));
    EXPECT_TRUE(latch.errors().empty());
  }
  result<std::optional<call_record>> get(store& s, std::uint32_t app, std::string_view id) {
    auto r = io_.run(s.get_record(app, id, 0, far()));
    if (!r) return std::move(r).error();
    if (!*r) return std::optional<call_record>();
    return std::optional<call_record>((*r)->to_record());
  }
  result<void> run(store& s, std::vector<std::string> ids, update_fn fn) {
    return io_.run(s.update_calls(1, std::move(ids), std::move(fn), far()));
  }
  std::filesystem::path dir_;
  testing::io_runner io_;
};

TEST_F(sqlite_store_test, url_creates_parent_directories) {
  const auto path = dir_ / "a" / "b" / "x.db";
  auto s = open_store(store_settings{"sqlite:" + path.string()});
  ASSERT_TRUE(s) << s.error().message;
  EXPECT_TRUE(std::filesystem::exists(path));
  EXPECT_TRUE(io_.run((*s)->ping(far())));
}

TEST_F(sqlite_store_test, bad_urls_say_what_is_wrong) {
  auto s = open_store(store_settings{"mysql://localhost/db"});
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().message.find("\"mysql\""), std::string::npos) << s.error().message;
  // A PostgreSQL url goes to the PostgreSQL store: nothing listens here, and the password is never repeated.
  store_settings pg{"postgres://u:secret@127.0.0.1:1/db"};
  pg.pg_connect_wait = std::chrono::seconds(0);
  s = open_store(pg);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().message, "cannot reach the database");
  EXPECT_EQ(s.error().message.find("secret"), std::string::npos);
  EXPECT_EQ(s.error().detail.find("secret"), std::string::npos) << s.error().detail;
  s = open_store(store_settings{"callrec.db"});
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().message.find("scheme"), std::string::npos);
  s = open_store(store_settings{"sqlite:"});
  ASSERT_FALSE(s);
  s = open_store(store_settings{"sqlite::memory:"});
  ASSERT_FALSE(s);
}

TEST_F(sqlite_store_test, fsync_each_commit_is_an_option) {
  store_settings o;
  o.url = "sqlite:" + (dir_ / "x.db").string();
  o.fsync_each_commit = true;
  auto s = open_store(o);
  ASSERT_TRUE(s) << s.error().message;
  call_record r;
  r.sdkappid = 1;
  r.call_id = "c";
  r.caller = "alice";
  r.callees = {"bob"};
  r.start_ts = 100;
  EXPECT_TRUE(run(**s, {"c"}, [&](std::span<call_slot> slots) { slots[0].finished = r; }));
  auto got = get(**s, 1, "c");
  ASSERT_TRUE(got);
  EXPECT_TRUE(got->has_value());
}

TEST_F(sqlite_store_test, small_max_group_still_commits_everything) {
  std::filesystem::create_directories(dir_);
  for (std::size_t max_group : {0, 1, 3}) {
    sqlite::sqlite_store_options o;
    o.path = (dir_ / ("g" + std::to_string(max_group) + ".db")).string();
    o.max_group = max_group;
    auto s = sqlite::open_sqlite_store(o);
    ASSERT_TRUE(s) << s.error().message;
    insert_calls(**s, 50, 100);
    auto st = io_.run((*s)->stats());
    ASSERT_TRUE(st);
    EXPECT_EQ(st->records, 50u);
  }
}

TEST_F(sqlite_store_test, a_read_past_its_deadline_is_interrupted_and_the_next_one_works) {
  store_settings o;
  o.url = "sqlite:" + (dir_ / "deadline.db").string();
  auto s = open_store(o);
  ASSERT_TRUE(s) << s.error().message;
  insert_calls(**s, 300, 1000);
  record_filter f;
  f.sdkappid = 1;
  f.start_ts = 1003;  // edges inside 10 s buckets: rows are counted, more than 1000 steps
  f.end_ts = 1297;
  f.limit = 200;
  // A deadline already past: every read longer than 1000 VM steps is interrupted.
  auto page = io_.run((*s)->find_records(f, std::chrono::steady_clock::now()));
  ASSERT_FALSE(page);
  EXPECT_EQ(page.error().code, errc::timeout);  // 101001 on the wire: retry
  EXPECT_EQ(wire_code(page.error().code), 101001);
  EXPECT_NE(page.error().message.find("deadline"), std::string::npos) << page.error().message;
  EXPECT_EQ(page.error().message.find("sqlite"), std::string::npos) << "no database text for the client";
  EXPECT_NE(page.error().detail.find("interrupt"), std::string::npos) << page.error().detail;
  // A short read still answers on the same pooled connection.
  auto one = get(**s, 1, "c7");
  ASSERT_TRUE(one) << one.error().message;
  ASSERT_TRUE(one->has_value());
  EXPECT_EQ((*one)->start_ts, 1007);
}

TEST_F(sqlite_store_test, refuses_a_newer_schema) {
  std::filesystem::create_directories(dir_);
  exec(dir_ / "x.db", "PRAGMA user_version = 99");
  auto s = open_store(store_settings{"sqlite:" + (dir_ / "x.db").string()});
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().message.find("newer"), std::string::npos) << s.error().message;
}

// The tables that versions 1 to 3 had alike.
constexpr const char* schema_v1_v3 = R"sql(
    CREATE TABLE records (sdkappid INTEGER NOT NULL, start_ts INTEGER NOT NULL, call_id TEXT NOT NULL,
      media INTEGER NOT NULL, call_type INTEGER NOT NULL, result INTEGER NOT NULL, room_id TEXT NOT NULL,
      accept_ts INTEGER NOT NULL, end_ts INTEGER NOT NULL, caller TEXT NOT NULL, callees TEXT NOT NULL,
      PRIMARY KEY (sdkappid, start_ts, call_id)) WITHOUT ROWID;
    CREATE INDEX records_by_room ON records (sdkappid, room_id, start_ts, call_id);
    CREATE TABLE participants (sdkappid INTEGER NOT NULL, user_id TEXT NOT NULL, start_ts INTEGER NOT NULL,
      call_id TEXT NOT NULL, is_caller INTEGER NOT NULL, PRIMARY KEY (sdkappid, user_id, start_ts, call_id))
      WITHOUT ROWID;
    CREATE TABLE record_counts (sdkappid INTEGER NOT NULL, span_s INTEGER NOT NULL, bucket INTEGER NOT NULL,
      result INTEGER NOT NULL, call_type INTEGER NOT NULL, media INTEGER NOT NULL, n INTEGER NOT NULL,
      PRIMARY KEY (sdkappid, span_s, bucket, result, call_type, media)) WITHOUT ROWID;
    CREATE TABLE live_calls (sdkappid INTEGER NOT NULL, call_id TEXT NOT NULL, state BLOB NOT NULL,
      deadline_ms INTEGER, PRIMARY KEY (sdkappid, call_id)) WITHOUT ROWID;
    CREATE INDEX live_calls_by_deadline ON live_calls (deadline_ms, sdkappid, call_id) WHERE deadline_ms IS NOT NULL;
)sql";

TEST_F(sqlite_store_test, upgrades_a_version_1_store_in_place) {
  // A store as version 1 left it: records_by_call was UNIQUE on (sdkappid, call_id) only.
  std::filesystem::create_directories(dir_);
  const auto db = dir_ / "v1.db";
  exec(db, (std::string(schema_v1_v3) + R"sql(
    CREATE UNIQUE INDEX records_by_call ON records (sdkappid, call_id);
    INSERT INTO records VALUES (1400000001, 1700000000, 'old-call', 1, 0, 1, 'room', 1700000005, 1700000060,
                                'alice', 'bob carol');
    INSERT INTO record_counts VALUES (1400000001, 86400, 19675, 1, 0, 1, 1), (1400000001, 3600, 472222, 1, 0, 1, 1),
                                     (1400000001, 600, 2833333, 1, 0, 1, 1), (1400000001, 60, 28333333, 1, 0, 1, 1);
    PRAGMA user_version = 1;
  )sql").c_str());
  {
    auto s = open_store(store_settings{"sqlite:" + db.string()});
    ASSERT_TRUE(s) << s.error().message;
    auto got = get(**s, 1400000001, "old-call");
    ASSERT_TRUE(got);
    ASSERT_TRUE(got->has_value());
    EXPECT_EQ((*got)->caller, "alice");
    EXPECT_EQ((*got)->callees, (std::vector<std::string>{"bob", "carol"}));
    EXPECT_EQ((*got)->end_ts, 1700000060);
    // Totals over windows that end inside the record's minute and 10 seconds (counted again at upgrade).
    for (auto [lo, hi, n] : {std::tuple{1699990000, 1700010000, 1}, {1699999990, 1700000003, 1},
                             {1700000001, 1700000059, 0}, {1699999000, 1699999999, 0}}) {
      record_filter f;
      f.sdkappid = 1400000001;
      f.start_ts = lo;
      f.end_ts = hi;
      f.limit = 10;
      auto p = io_.run((*s)->find_records(f, far()));
      ASSERT_TRUE(p) << p.error().message;
      EXPECT_EQ(p->total, static_cast<std::uint64_t>(n)) << lo << ".." << hi;
      EXPECT_EQ(p->records.size(), static_cast<std::size_t>(n));
    }
  }
  // The call id lookup now reads the record's document (version 3), and the covering index is gone.
  {
    auto s = open_store(store_settings{"sqlite:" + db.string()});
    ASSERT_TRUE(s) << s.error().message;
    auto found = io_.run((*s)->get_record(1400000001, "old-call", 0, far()));
    ASSERT_TRUE(found) << found.error().message;
    ASSERT_TRUE(*found);
    std::string json;
    append_record_json(json, (*found)->fields());
    auto doc = boost::json::parse(json).as_object();
    EXPECT_EQ(doc.at("callId"), "old-call");
    EXPECT_EQ(doc.at("callees"), (boost::json::array{"bob", "carol"}));
    EXPECT_EQ(doc.at("totalUserNumber"), 3);
  }
  EXPECT_EQ(row(db, "SELECT (SELECT user_version FROM pragma_user_version), "
                    "(SELECT COUNT(*) FROM sqlite_master WHERE name = 'records_by_call'), "
                    "(SELECT COUNT(*) FROM record_docs)"),
            (std::vector<std::string>{std::to_string(schema_version), "0", "1"}));
}

// The schema as version 3 created it.
const std::string schema_v3 = std::string(schema_v1_v3) + R"sql(
    CREATE TABLE record_docs (key INTEGER PRIMARY KEY, start_ts INTEGER NOT NULL, doc BLOB NOT NULL);
    PRAGMA user_version = 3;
  )sql";

// Version 3 (records_by_room, participants keyed by user) -> 4 (participants and rooms keyed by hour first):
// the records of a store as version 3 wrote it are found by every filter, on both sides of midnight UTC.
TEST_F(sqlite_store_test, upgrades_a_version_3_store_in_place) {
  std::filesystem::create_directories(dir_);
  const auto db = dir_ / "v3.db";
  exec(db, schema_v3.c_str());
  // Three calls of alice (caller) and bob: one a second before midnight UTC (1700006400), two after it.
  const std::int64_t midnight = 1700006400;
  const std::vector<std::pair<std::string, std::int64_t>> calls{
      {"before", midnight - 1}, {"at", midnight}, {"after", midnight + 100}};
  {
    sqlite3* h = nullptr;
    ASSERT_EQ(sqlite3_open(db.c_str(), &h), SQLITE_OK);
    for (const auto& [id, ts] : calls) {
      const std::string t = std::to_string(ts);
      const std::string sql =
          "INSERT INTO records VALUES (1, " + t + ", '" + id + "', 1, 0, 1, 'r1', " + t + ", " + t + ", 'alice', 'bob');" +
          "INSERT INTO participants VALUES (1, 'alice', " + t + ", '" + id + "', 1), (1, 'bob', " + t + ", '" + id + "', 0);";
      ASSERT_EQ(sqlite3_exec(h, sql.c_str(), nullptr, nullptr, nullptr), SQLITE_OK);
      std::string doc;
      encode_doc(doc, record_fields{id, 1, media_type::video, "r1", ts, ts, ts, "alice", "bob", call_type::single,
                                    call_result::normal_end});
      sqlite3_stmt* q = nullptr;
      ASSERT_EQ(sqlite3_prepare_v2(h, "INSERT INTO record_docs VALUES (?, ?, ?)", -1, &q, nullptr), SQLITE_OK);
      sqlite3_bind_int64(q, 1, sqlite::doc_bucket(1, id));
      sqlite3_bind_int64(q, 2, ts);
      sqlite3_bind_blob(q, 3, doc.data(), static_cast<int>(doc.size()), SQLITE_TRANSIENT);
      ASSERT_EQ(sqlite3_step(q), SQLITE_DONE);
      sqlite3_finalize(q);
    }
    sqlite3_close(h);
  }
  auto s = open_store(store_settings{"sqlite:" + db.string()});
  ASSERT_TRUE(s) << s.error().message;
  auto page = [&](auto set) {
    record_filter f;
    f.sdkappid = 1;
    f.start_ts = midnight - 86400;
    f.end_ts = midnight + 86400;
    set(f);
    auto p = io_.run((*s)->find_records(f, far()));
    EXPECT_TRUE(p) << p.error().message;
    std::vector<std::string> ids;
    if (p) {
      for (const auto& r : p->records) ids.push_back(r.call_id);
      EXPECT_EQ(p->total, 3u);
    }
    return ids;
  };
  const std::vector<std::string> in_order{"before", "at", "after"};
  EXPECT_EQ(page([](record_filter& f) { f.user_id = "bob"; }), in_order);
  EXPECT_EQ(page([](record_filter& f) { f.caller = "alice"; }), in_order);
  EXPECT_EQ(page([](record_filter& f) { f.room_id = "r1"; }), in_order);
  EXPECT_EQ(page([](record_filter& f) {
              f.user_id = "alice";
              f.descending = true;
            }),
            (std::vector<std::string>{"after", "at", "before"}));
  EXPECT_EQ(page([](record_filter& f) {
              f.room_id = "r1";
              f.limit = 1;
              f.offset = 1;
            }),
            (std::vector<std::string>{"at"}));
  auto one = get(**s, 1, "before");
  ASSERT_TRUE(one && one->has_value());
  EXPECT_EQ((*one)->start_ts, midnight - 1);
  (*s)->close();
  EXPECT_EQ(row(db, "SELECT (SELECT user_version FROM pragma_user_version), "
                    "(SELECT COUNT(*) FROM sqlite_master WHERE name = 'records_by_room'), "
                    "(SELECT group_concat(hour || ':' || user_id, ' ') FROM participants), "
                    "(SELECT COUNT(*) FROM rooms)"),
            (std::vector<std::string>{std::to_string(schema_version), "0",
                                      "472223:alice 472223:bob 472224:alice 472224:alice 472224:bob 472224:bob", "3"}));
}

// A process killed in the middle of the upgrade to version 4 leaves the store as version 3 left it (the upgrade
// is one transaction); the next start upgrades it and every record is found, by call id and by user.
TEST_F(sqlite_store_test, a_crash_during_the_upgrade_loses_nothing) {
  std::filesystem::create_directories(dir_);
  const auto db = dir_ / "v3big.db";
  exec(db, schema_v3.c_str());
  constexpr int n = 60000;
  {
    sqlite3* h = nullptr;
    ASSERT_EQ(sqlite3_open(db.c_str(), &h), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(h, "BEGIN", nullptr, nullptr, nullptr), SQLITE_OK);
    sqlite3_stmt *rec = nullptr, *part = nullptr, *doc = nullptr;
    ASSERT_EQ(sqlite3_prepare_v2(h, "INSERT INTO records VALUES (1, ?, ?, 0, 0, 1, 'r', ?, ?, ?, 'bob')", -1, &rec,
                                 nullptr),
              SQLITE_OK);
    ASSERT_EQ(sqlite3_prepare_v2(h, "INSERT INTO participants VALUES (1, ?, ?, ?, ?)", -1, &part, nullptr), SQLITE_OK);
    ASSERT_EQ(sqlite3_prepare_v2(h, "INSERT INTO record_docs VALUES (?, ?, ?)", -1, &doc, nullptr), SQLITE_OK);
    for (int i = 0; i < n; ++i) {
      const std::string id = "up-" + std::to_string(i), caller = "u" + std::to_string(i % 100);
      const std::int64_t ts = 1700000000 + i;
      sqlite3_bind_int64(rec, 1, ts);
      sqlite3_bind_text(rec, 2, id.c_str(), -1, SQLITE_TRANSIENT);
      sqlite3_bind_int64(rec, 3, ts);
      sqlite3_bind_int64(rec, 4, ts);
      sqlite3_bind_text(rec, 5, caller.c_str(), -1, SQLITE_TRANSIENT);
      ASSERT_EQ(sqlite3_step(rec), SQLITE_DONE);
      sqlite3_reset(rec);
      for (const auto& [user, is_caller] : {std::pair{caller, 1}, std::pair{std::string("bob"), 0}}) {
        sqlite3_bind_text(part, 1, user.c_str(), -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(part, 2, ts);
        sqlite3_bind_text(part, 3, id.c_str(), -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(part, 4, is_caller);
        ASSERT_EQ(sqlite3_step(part), SQLITE_DONE);
        sqlite3_reset(part);
      }
      std::string d;
      encode_doc(d, record_fields{id, 1, media_type::audio, "r", ts, ts, ts, caller, "bob", call_type::single,
                                  call_result::normal_end});
      sqlite3_bind_int64(doc, 1, sqlite::doc_bucket(1, id));
      sqlite3_bind_int64(doc, 2, ts);
      sqlite3_bind_blob(doc, 3, d.data(), static_cast<int>(d.size()), SQLITE_TRANSIENT);
      ASSERT_EQ(sqlite3_step(doc), SQLITE_DONE);
      sqlite3_reset(doc);
    }
    sqlite3_finalize(rec);
    sqlite3_finalize(part);
    sqlite3_finalize(doc);
    ASSERT_EQ(sqlite3_exec(h, "COMMIT", nullptr, nullptr, nullptr), SQLITE_OK);
    sqlite3_close(h);
  }
  // The child upgrades with its stderr on a pipe; the parent kills it once the upgrade says it is rebuilding
  // participants (the step runs after the line).
  int out[2];
  ASSERT_EQ(::pipe(out), 0);
  io_.stop();  // no threads of ours while forking
  const pid_t child = ::fork();
  ASSERT_NE(child, -1);
  if (child == 0) {
    ::dup2(out[1], 2);
    ::close(out[0]);
    auto s = open_store(store_settings{"sqlite:" + db.string()});
    std::_Exit(s ? 0 : 2);
  }
  ::close(out[1]);
  std::string seen;
  char buf[256];
  bool killed = false;
  for (;;) {
    const auto got = ::read(out[0], buf, sizeof buf);
    if (got <= 0) break;
    seen.append(buf, static_cast<std::size_t>(got));
    if (seen.find("participants keyed by hour") != std::string::npos) {
      ::kill(child, SIGKILL);
      killed = true;
      break;
    }
  }
  ::close(out[0]);
  int status = 0;
  ::waitpid(child, &status, 0);
  io_.start();
  ASSERT_TRUE(killed) << seen;
  ASSERT_TRUE(WIFSIGNALED(status)) << "the upgrade finished before the kill: " << seen;
  auto s = open_store(store_settings{"sqlite:" + db.string()});
  ASSERT_TRUE(s) << s.error().message;
  record_filter f;
  f.sdkappid = 1;
  f.start_ts = 1700000000;
  f.end_ts = 1700000000 + n;
  f.user_id = "bob";
  f.limit = 10;
  auto p = io_.run((*s)->find_records(f, far()));
  ASSERT_TRUE(p) << p.error().message;
  EXPECT_EQ(p->total, static_cast<std::uint64_t>(n));
  f.user_id = "u42";
  p = io_.run((*s)->find_records(f, far()));
  ASSERT_TRUE(p) << p.error().message;
  EXPECT_EQ(p->total, static_cast<std::uint64_t>(n / 100));
  for (int i : {0, 1, n / 2, n - 1}) {
    auto one = get(**s, 1, "up-" + std::to_string(i));
    ASSERT_TRUE(one && one->has_value()) << i;
  }
}

// Index rows move to participants and rooms in batches: when index_batch rows have gathered, and before a read
// that needs them; nothing is found twice or missed either way, and what is still queued survives a restart.
TEST_F(sqlite_store_test, index_rows_move_in_batches_and_survive_a_restart) {
  std::filesystem::create_directories(dir_);
  const auto db = dir_ / "batch.db";
  auto count_rows = [&](const char* sql) { return std::stoi(row(db, sql).at(0)); };
  auto by_user = [&](store& st, const char* user) {
    record_filter f;
    f.sdkappid = 1;
    f.start_ts = 0;
    f.end_ts = 1 << 30;
    f.user_id = user;
    f.limit = 1000;
    auto p = io_.run(st.find_records(f, far()));
    EXPECT_TRUE(p) << p.error().message;
    return p ? p->total : 0;
  };
  {
    sqlite::sqlite_store_options o;
    o.path = db.string();
    o.index_batch = 25;  // 3 rows a call (alice, bob, the room): a batch moves every 9th call
    auto s = sqlite::open_sqlite_store(o);
    ASSERT_TRUE(s) << s.error().message;
    for (int i = 0; i < 20; ++i) {  // one call a transaction, across a midnight
      call_record r;
      r.sdkappid = 1;
      r.call_id = "c" + std::to_string(i);
      r.caller = "alice";
      r.callees = {"bob"};
      r.start_ts = 86400 - 10 + i;
      ASSERT_TRUE(run(**s, {r.call_id}, [r](std::span<call_slot> slots) { slots[0].finished = r; }));
    }
    const int queued = count_rows("SELECT COUNT(*) FROM index_queue");
    EXPECT_EQ(queued, 6) << "a batch moved after the 9th and the 18th call";
    EXPECT_EQ(count_rows("SELECT COUNT(*) FROM participants") + count_rows("SELECT COUNT(*) FROM rooms") + queued, 60);
    (*s)->close();
  }
  // Reopened with a large batch: what was queued is still there, and a read by user moves it first.
  auto s = open_store(store_settings{"sqlite:" + db.string()});
  ASSERT_TRUE(s) << s.error().message;
  EXPECT_GT(count_rows("SELECT COUNT(*) FROM index_queue"), 0);
  EXPECT_EQ(by_user(**s, "bob"), 20u);
  EXPECT_EQ(by_user(**s, "alice"), 20u);
  EXPECT_EQ(count_rows("SELECT COUNT(*) FROM index_queue"), 0);
  EXPECT_EQ(count_rows("SELECT COUNT(*) FROM participants"), 40);
  insert_calls(**s, 5, 200000);  // c0..c4 again: the first record of a call stays, nothing is queued twice
  EXPECT_EQ(by_user(**s, "bob"), 20u);
}

TEST_F(sqlite_store_test, a_failed_commit_fails_the_group_and_restores_live_state) {
  const auto db = dir_ / "x.db";
  auto opened = open_store(store_settings{"sqlite:" + db.string()});
  ASSERT_TRUE(opened) << opened.error().message;
  auto& s = **opened;
  auto run = [&](std::vector<std::string> ids, update_fn fn) { return this->run(s, std::move(ids), std::move(fn)); };
  auto state = [](std::string id, std::string caller) {
    calls::call_state st;
    st.call_id = std::move(id);
    st.caller = caller;
    st.start_ms = 1000;
    st.members.push_back(calls::member{caller, calls::member_status::connected, 0, 1000, false});
    return st;
  };
  ASSERT_TRUE(run({"x"}, [&](std::span<call_slot> slots) {
    slots[0].state = state("x", "alice");
    slots[0].changed = true;
  }));
  // Another connection makes every write of call "poison" fail inside the writer's transaction.
  exec(db,
       "CREATE TRIGGER poison BEFORE INSERT ON live_calls WHEN NEW.call_id = 'poison' "
       "BEGIN SELECT RAISE(ABORT, 'poisoned'); END");
  auto r = run({"x", "poison"}, [&](std::span<call_slot> slots) {
    slots[0].state = state("x", "bob");
    slots[0].changed = true;
    slots[1].state = state("poison", "carol");
    slots[1].changed = true;
  });
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, errc::unavailable);
  EXPECT_EQ(r.error().message.find("poisoned"), std::string::npos) << "the database's text stays in the detail";
  EXPECT_NE(r.error().detail.find("poisoned"), std::string::npos) << r.error().detail;
  ASSERT_TRUE(run({"x", "poison"}, [&](std::span<call_slot> slots) {
    ASSERT_TRUE(slots[0].state);
    EXPECT_EQ(slots[0].state->caller, "alice");
    EXPECT_FALSE(slots[1].state);
  }));
  auto st = io_.run(s.stats());
  ASSERT_TRUE(st);
  EXPECT_EQ(st->live_calls, 1u);
}

}  // namespace
}  // namespace callrec::testing_store
