#include "store/sqlite/schema.h"

#include <cstdio>
#include <string>

namespace callrec::sqlite {
namespace {

// The current schema, for a new store. Enumerations are stored as their record.h values (small integers); times as unix seconds, deadlines as
// unix milliseconds. Text compares bytewise (PostgreSQL: COLLATE "C"), matching the API's ordering.
constexpr const char* schema_current = R"sql(
-- Ended calls, clustered by the order every query reads them in.
CREATE TABLE records (
  sdkappid  INTEGER NOT NULL,
  start_ts  INTEGER NOT NULL,
  call_id   TEXT    NOT NULL,
  media     INTEGER NOT NULL,
  call_type INTEGER NOT NULL,
  result    INTEGER NOT NULL,
  room_id   TEXT    NOT NULL,
  accept_ts INTEGER NOT NULL,
  end_ts    INTEGER NOT NULL,
  caller    TEXT    NOT NULL,
  callees   TEXT    NOT NULL,  -- user ids in invitation order, separated by one space (ids hold no spaces)
  PRIMARY KEY (sdkappid, start_ts, call_id)
) WITHOUT ROWID;
-- The call id lookup (get_record_by_callId), covering: one b-tree descent answers it. Not UNIQUE (that would
-- have to span every column): the single writer inserts a record only where none has its call id.
CREATE INDEX records_by_call ON records (sdkappid, call_id, media, call_type, result, room_id, accept_ts, end_ts,
                                         caller, callees);
CREATE INDEX records_by_room ON records (sdkappid, room_id, start_ts, call_id);

-- One row per distinct user (caller or callee) of each record: the userId and caller filters (a separate
-- caller index would cost every insert one more randomly placed index entry).
CREATE TABLE participants (
  sdkappid  INTEGER NOT NULL,
  user_id   TEXT    NOT NULL,
  start_ts  INTEGER NOT NULL,
  call_id   TEXT    NOT NULL,
  is_caller INTEGER NOT NULL,  -- 1 for the caller, 0 for a callee
  PRIMARY KEY (sdkappid, user_id, start_ts, call_id)
) WITHOUT ROWID;

-- Record counts per time bucket (bucket = floor(start_ts / span_s); spans in store/time_buckets.h),
-- maintained in the transaction that inserts or deletes the records: exact totals without counting rows.
CREATE TABLE record_counts (
  sdkappid  INTEGER NOT NULL,
  span_s    INTEGER NOT NULL,
  bucket    INTEGER NOT NULL,
  result    INTEGER NOT NULL,
  call_type INTEGER NOT NULL,
  media     INTEGER NOT NULL,
  n         INTEGER NOT NULL,
  PRIMARY KEY (sdkappid, span_s, bucket, result, call_type, media)
) WITHOUT ROWID;

-- Calls in progress: the encoded calls::call_state and its next timer.
CREATE TABLE live_calls (
  sdkappid    INTEGER NOT NULL,
  call_id     TEXT    NOT NULL,
  state       BLOB    NOT NULL,
  deadline_ms INTEGER,
  PRIMARY KEY (sdkappid, call_id)
) WITHOUT ROWID;
CREATE INDEX live_calls_by_deadline ON live_calls (deadline_ms, sdkappid, call_id) WHERE deadline_ms IS NOT NULL;
)sql";

// Version 1 -> 2: records_by_call becomes the covering index above (it was UNIQUE on (sdkappid, call_id)),
// and records are also counted per 10 seconds (store/time_buckets.h; version 1 counted down to minutes).
constexpr const char* upgrade_v2 = R"sql(
DROP INDEX records_by_call;
CREATE INDEX records_by_call ON records (sdkappid, call_id, media, call_type, result, room_id, accept_ts, end_ts,
                                         caller, callees);
DELETE FROM record_counts WHERE span_s = 10;
INSERT INTO record_counts (sdkappid, span_s, bucket, result, call_type, media, n)
  SELECT sdkappid, 10, (start_ts - ((start_ts % 10) + 10) % 10) / 10, result, call_type, media, COUNT(*)
  FROM records GROUP BY 1, 3, 4, 5, 6;
)sql";

}  // namespace

result<void> ensure_schema(connection& db) {
  auto version = db.query_int("PRAGMA user_version");
  if (!version) return std::move(version).error();
  if (*version == schema_version) return {};
  if (*version > schema_version) {
    return make_error(errc::internal, "the store's schema version " + std::to_string(*version) +
                                          " is newer than this build supports (" + std::to_string(schema_version) +
                                          ")");
  }
  if (auto r = db.exec("BEGIN IMMEDIATE"); !r) return r;
  // Re-read inside the write lock: another process may have created the schema meanwhile.
  auto again = db.query_int("PRAGMA user_version");
  if (!again) {
    (void)db.exec("ROLLBACK");
    return std::move(again).error();
  }
  if (*again < schema_version) {
    // A new store gets the whole schema; an older one, the upgrades it lacks (in this transaction).
    const char* steps = *again == 0 ? schema_current : upgrade_v2;
    if (*again != 0) {
      // Rebuilds an index and recounts: seconds on a large store, so say what the wait is.
      std::fprintf(stderr, "callrec: store: upgrading the schema from version %lld to %d\n",
                   static_cast<long long>(*again), schema_version);
    }
    if (auto r = db.exec(steps); !r) {
      (void)db.exec("ROLLBACK");
      return r;
    }
    if (auto r = db.exec(("PRAGMA user_version = " + std::to_string(schema_version)).c_str()); !r) {
      (void)db.exec("ROLLBACK");
      return r;
    }
  }
  return db.exec("COMMIT");
}

}  // namespace callrec::sqlite
