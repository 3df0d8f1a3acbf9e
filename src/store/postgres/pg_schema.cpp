#include "store/postgres/pg_schema.h"

#include <chrono>
#include <cstdio>
#include <vector>

#include "store/time_buckets.h"

namespace callrec::pg {

namespace {

struct migration {
  int version;
  const char* what;  // for the progress line
  std::vector<const char*> statements;
};

// Text keys compare as bytes (COLLATE "C"): the order of call ids is the same in every store and database.
const std::vector<migration>& migrations() {
  static const std::vector<migration> all{
      {1,
       "records, participants and rooms partitioned by day; counts; live calls",
       {
           "CREATE TABLE records (sdkappid bigint NOT NULL, start_ts bigint NOT NULL, "
           "call_id text COLLATE \"C\" NOT NULL, result smallint NOT NULL, call_type smallint NOT NULL, "
           "media smallint NOT NULL, doc bytea NOT NULL, PRIMARY KEY (sdkappid, start_ts, call_id)) "
           "PARTITION BY RANGE (start_ts)",
           "CREATE INDEX records_by_call ON records (sdkappid, call_id)",
           "CREATE TABLE participants (sdkappid bigint NOT NULL, user_id text COLLATE \"C\" NOT NULL, "
           "start_ts bigint NOT NULL, call_id text COLLATE \"C\" NOT NULL, is_caller boolean NOT NULL, "
           "PRIMARY KEY (sdkappid, user_id, start_ts, call_id)) PARTITION BY RANGE (start_ts)",
           "CREATE TABLE rooms (sdkappid bigint NOT NULL, room_id text COLLATE \"C\" NOT NULL, "
           "start_ts bigint NOT NULL, call_id text COLLATE \"C\" NOT NULL, "
           "PRIMARY KEY (sdkappid, room_id, start_ts, call_id)) PARTITION BY RANGE (start_ts)",
           "CREATE TABLE record_counts (sdkappid bigint NOT NULL, span_s integer NOT NULL, bucket bigint NOT NULL, "
           "result smallint NOT NULL, call_type smallint NOT NULL, media smallint NOT NULL, n bigint NOT NULL, "
           "PRIMARY KEY (sdkappid, span_s, bucket, result, call_type, media))",
           "CREATE TABLE live_calls (sdkappid bigint NOT NULL, call_id text COLLATE \"C\" NOT NULL, "
           "state bytea NOT NULL, deadline_ms bigint, PRIMARY KEY (sdkappid, call_id))",
       }},
      {2,
       "timer leases shared by the nodes",
       {
           "ALTER TABLE live_calls ADD COLUMN lease_ms bigint",
           "CREATE INDEX live_calls_due ON live_calls (sdkappid, deadline_ms) WHERE deadline_ms IS NOT NULL",
       }},
      // Whether a call has a record, in one lookup: asking every day partition of records made each group of
      // updates slower as the week filled (1M calls over 7 days: 65k events/s in the first days, 41k at the
      // end; 65k throughout without that question).
      {3,
       "which calls have a record, in one index",
       {
           "CREATE TABLE ended_calls (sdkappid bigint NOT NULL, call_id text COLLATE \"C\" NOT NULL, "
           "start_ts bigint NOT NULL, PRIMARY KEY (sdkappid, call_id))",
           "CREATE INDEX ended_calls_by_start ON ended_calls (sdkappid, start_ts)",
           "INSERT INTO ended_calls (sdkappid, call_id, start_ts) SELECT sdkappid, call_id, start_ts FROM records "
           "ON CONFLICT DO NOTHING",
       }},
      // ended_calls gives a call's start_ts, and with it the one partition and primary key that hold its record:
      // the per-partition (sdkappid, call_id) indexes only cost each record one more random insert, and a
      // lookup through them probed every day of the window.
      {4,
       "records found by call through ended_calls",
       {
           "DROP INDEX IF EXISTS records_by_call",
       }},
  };
  return all;
}

// The advisory lock of the schema's migrations (the two-key form: apart from the per-call locks).
constexpr const char* lock_sql = "SELECT pg_advisory_lock(hashtext(current_schema()), 1)";
constexpr const char* unlock_sql = "SELECT pg_advisory_unlock(hashtext(current_schema()), 1)";

}  // namespace

awaitable<result<int>> migrate(connection& c, int target, deadline due) {
  {
    const std::vector<statement> lock{statement(lock_sql, false)};
    auto r = co_await c.run(lock, due);
    if (!r) co_return std::move(r).error();
  }
  int found = 0;
  auto migrate_locked = [&]() -> awaitable<result<void>> {
    const std::vector<statement> look{
        statement("CREATE TABLE IF NOT EXISTS callrec_schema (version integer NOT NULL)", false),
        statement("SELECT version FROM callrec_schema", false),
    };
    auto r = co_await c.run(look, due);
    if (!r) co_return std::move(r).error();
    const auto& v = (*r)[1];
    found = v.size() > 0 ? static_cast<int>(v.i64(0, 0)) : 0;
    if (found > target) {
      co_return make_error(errc::unavailable,
                           "the database's schema is version " + std::to_string(found) +
                               ", newer than this build's " + std::to_string(target) + ": run a newer callrec");
    }
    for (const auto& m : migrations()) {
      if (m.version <= found || m.version > target) continue;
      std::fprintf(stderr, "callrec: store: PostgreSQL schema version %d: %s\n", m.version, m.what);
      std::vector<statement> step;
      step.emplace_back("BEGIN", false);
      for (const char* s : m.statements) step.emplace_back(s, false);
      step.emplace_back("DELETE FROM callrec_schema", false);
      step.emplace_back("INSERT INTO callrec_schema (version) VALUES ($1)", false).i32(m.version);
      step.emplace_back("COMMIT", false);
      auto applied = co_await c.run(step, due);
      if (!applied) co_return std::move(applied).error();
    }
    co_return result<void>{};
  };
  auto outcome = co_await migrate_locked();
  const std::vector<statement> unlock{statement(unlock_sql, false)};
  auto u = co_await c.run(unlock, due);
  if (!outcome) co_return outcome.error();
  if (!u) co_return std::move(u).error();
  co_return found;
}

std::int64_t day_of(std::int64_t ts) { return buckets::floor_div(ts, 86400); }

std::string day_name(std::int64_t day) {
  const std::chrono::year_month_day ymd{std::chrono::sys_days{std::chrono::days{day}}};
  char buf[16];
  std::snprintf(buf, sizeof buf, "%04d%02u%02u", static_cast<int>(ymd.year()), static_cast<unsigned>(ymd.month()),
                static_cast<unsigned>(ymd.day()));
  return buf;
}

namespace {

// The day of a partition's name ("records_p20261206"), or nullopt.
std::optional<std::int64_t> parse_day(std::string_view name) {
  constexpr std::string_view prefix = "records_p";
  if (name.size() != prefix.size() + 8 || name.substr(0, prefix.size()) != prefix) return std::nullopt;
  int y = 0;
  unsigned m = 0, d = 0;
  const std::string digits(name.substr(prefix.size()));
  if (std::sscanf(digits.c_str(), "%4d%2u%2u", &y, &m, &d) != 3) return std::nullopt;
  const std::chrono::year_month_day ymd{std::chrono::year{y}, std::chrono::month{m}, std::chrono::day{d}};
  if (!ymd.ok()) return std::nullopt;
  return std::chrono::sys_days{ymd}.time_since_epoch().count();
}

}  // namespace

awaitable<result<std::set<std::int64_t>>> partition_days(connection& c, deadline due) {
  const std::vector<statement> q{statement(
      "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
      "WHERE i.inhparent = 'records'::regclass")};
  auto r = co_await c.run(q, due);
  if (!r) co_return std::move(r).error();
  std::set<std::int64_t> days;
  const auto& rows = (*r)[0];
  for (int i = 0; i < rows.size(); ++i) {
    if (auto d = parse_day(rows.bytes(i, 0))) days.insert(*d);
  }
  co_return days;
}

awaitable<result<void>> create_partitions(connection& c, const std::set<std::int64_t>& days, deadline due) {
  std::vector<statement> batch;
  batch.emplace_back("BEGIN", false);
  batch.emplace_back("SELECT pg_advisory_xact_lock(hashtext(current_schema()), 2)", false);
  for (const auto day : days) {
    const std::string name = day_name(day);
    const std::string range =
        " FOR VALUES FROM (" + std::to_string(day * 86400) + ") TO (" + std::to_string((day + 1) * 86400) + ")";
    for (const char* table : {"records", "participants", "rooms"}) {
      batch.emplace_back(std::string("CREATE TABLE IF NOT EXISTS ") + table + "_p" + name + " PARTITION OF " + table +
                             range,
                         false);
    }
  }
  batch.emplace_back("COMMIT", false);
  auto r = co_await c.run(batch, due);
  if (!r) co_return std::move(r).error();
  co_return result<void>{};
}

}  // namespace callrec::pg
