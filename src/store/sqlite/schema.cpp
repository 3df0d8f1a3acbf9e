#include "store/sqlite/schema.h"

#include <cstdio>
#include <string>

#include "records/wire.h"
#include "store/sqlite/record_docs.h"

namespace callrec::sqlite {
namespace {

// Part of the current schema, created separately because the upgrade to version 3 creates it too.
constexpr const char* record_docs_table = R"sql(
-- The call id lookup (get_record_by_callId; store/sqlite/record_docs.h): each record as one compact document,
-- keyed in order of arrival, with the record's start (its place in records). An index in memory leads from a
-- hash of (sdkappid, call_id) to the key. The single writer inserts a record only where its call has none.
CREATE TABLE record_docs (
  key      INTEGER PRIMARY KEY,
  start_ts INTEGER NOT NULL,
  doc      BLOB    NOT NULL
);
)sql";

// Part of the current schema, created separately because the upgrade to version 4 creates it too.
constexpr const char* index_tables = R"sql(
-- One row per distinct user (caller or callee) of each record: the userId and caller filters (a separate
-- caller index would cost every insert one more randomly placed index entry). Keys lead with the hour of the
-- call's start (hour = floor(start_ts / 3600)), so rows of one hour sit together: the sorted batches that
-- index_queue hands over land in the pages of the hours they cover, not all over a tree as large as the
-- store. A read seeks each hour of its window (168 for a week).
CREATE TABLE participants (
  sdkappid  INTEGER NOT NULL,
  hour      INTEGER NOT NULL,
  user_id   TEXT    NOT NULL,
  start_ts  INTEGER NOT NULL,
  call_id   TEXT    NOT NULL,
  is_caller INTEGER NOT NULL,  -- 1 for the caller, 0 for a callee
  PRIMARY KEY (sdkappid, hour, user_id, start_ts, call_id)
) WITHOUT ROWID;

-- The roomId filter, keyed by hour like participants.
CREATE TABLE rooms (
  sdkappid INTEGER NOT NULL,
  hour     INTEGER NOT NULL,
  room_id  TEXT    NOT NULL,
  start_ts INTEGER NOT NULL,
  call_id  TEXT    NOT NULL,
  PRIMARY KEY (sdkappid, hour, room_id, start_ts, call_id)
) WITHOUT ROWID;

-- Rows of participants (kind 0: key = user id) and rooms (kind 1: key = room id) not yet in those tables.
-- A record's transaction appends its rows here (an append costs a page or two per commit, where inserts
-- keyed by user or room cost a page each); the writer moves them over in sorted batches, before any read
-- that needs them. seq is the order of arrival.
CREATE TABLE index_queue (
  seq       INTEGER PRIMARY KEY,
  kind      INTEGER NOT NULL,
  sdkappid  INTEGER NOT NULL,
  hour      INTEGER NOT NULL,
  key       TEXT    NOT NULL,
  start_ts  INTEGER NOT NULL,
  call_id   TEXT    NOT NULL,
  is_caller INTEGER NOT NULL
);
)sql";

// The current schema, for a new store (with record_docs_table). Enumerations are stored as their record.h
// values (small integers); times as unix seconds, deadlines as unix milliseconds. Text compares bytewise
// (PostgreSQL: COLLATE "C"), matching the API's ordering.
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

// Version 1 -> 2: records_by_call becomes a covering index (it was UNIQUE on (sdkappid, call_id); version 3
// drops it), and records are also counted per 10 seconds (store/time_buckets.h; version 1 counted down to
// minutes).
constexpr const char* upgrade_v2 = R"sql(
DROP INDEX records_by_call;
CREATE INDEX records_by_call ON records (sdkappid, call_id, media, call_type, result, room_id, accept_ts, end_ts,
                                         caller, callees);
DELETE FROM record_counts WHERE span_s = 10;
INSERT INTO record_counts (sdkappid, span_s, bucket, result, call_type, media, n)
  SELECT sdkappid, 10, (start_ts - ((start_ts % 10) + 10) % 10) / 10, result, call_type, media, COUNT(*)
  FROM records GROUP BY 1, 3, 4, 5, 6;
)sql";

// Version 2 -> 3: the call id lookup moves from the covering index records_by_call to record_docs, which
// needs each record encoded (fill_record_docs).
constexpr const char* upgrade_v3_finish = "DROP INDEX records_by_call;";

// Version 3 -> 4: participants and the room lookup are keyed by hour first (rooms replaces records_by_room),
// and rows reach them through index_queue. Each step is one sorted pass; callrec prints each step.
constexpr const char* floor_hour = "(start_ts - ((start_ts % 3600) + 3600) % 3600) / 3600";
constexpr const char* upgrade_v4_steps[][2] = {
    {"participants keyed by hour",
     "INSERT INTO participants SELECT sdkappid, @HOUR, user_id, start_ts, call_id, is_caller FROM participants_v3 "
     "ORDER BY 1, 2, 3, 4, 5;"
     "DROP TABLE participants_v3;"},
    {"rooms keyed by hour",
     "INSERT INTO rooms SELECT sdkappid, @HOUR, room_id, start_ts, call_id FROM records ORDER BY 1, 2, 3, 4, 5;"
     "DROP INDEX records_by_room;"},
};

result<void> upgrade_v4(connection& db) {
  // The old participants make way for the new tables (index_tables), then fill them.
  if (auto r = db.exec("ALTER TABLE participants RENAME TO participants_v3;"); !r) return r;
  if (auto r = db.exec(index_tables); !r) return r;
  for (const auto& [what, sql] : upgrade_v4_steps) {
    std::fprintf(stderr, "callrec: store: version 4: %s\n", what);
    std::string text = sql;
    for (auto at = text.find("@HOUR"); at != std::string::npos; at = text.find("@HOUR")) text.replace(at, 5, floor_hour);
    if (auto r = db.exec(text.c_str()); !r) return r;
  }
  return {};
}

result<void> fill_record_docs(connection& db) {
  sqlite3_stmt* s = db.cached("SELECT " + std::string(record_columns) + " FROM records r ORDER BY r.start_ts");
  sqlite3_stmt* put = db.cached_static("INSERT INTO record_docs (start_ts, doc) VALUES (?, ?)");
  if (!s || !put) return db.last_error("prepare");
  stmt_use q(s);
  std::string doc;
  std::uint64_t n = 0;
  int rc;
  while ((rc = q.step()) == SQLITE_ROW) {
    record_fields f;
    if (!read_fields(q, f)) return corrupt_record();
    doc.clear();
    encode_doc(doc, f);
    stmt_use ins(put);
    ins.bind(1, f.start_ts);
    ins.bind_blob(2, doc);
    if (ins.step() != SQLITE_DONE) return db.last_error("upgrade");
    if (++n % 200000 == 0) {
      std::fprintf(stderr, "callrec: store: %llu records indexed\n", static_cast<unsigned long long>(n));
    }
  }
  if (rc != SQLITE_DONE) return db.last_error("upgrade");
  return {};
}

// Version 3 -> 4, documents: keyed by hash in version 3, in order of arrival (here: of start) from 4.
constexpr const char* upgrade_v4_docs =
    "CREATE TABLE record_docs_v4 (key INTEGER PRIMARY KEY, start_ts INTEGER NOT NULL, doc BLOB NOT NULL);"
    "INSERT INTO record_docs_v4 (start_ts, doc) SELECT start_ts, doc FROM record_docs ORDER BY start_ts;"
    "DROP TABLE record_docs; ALTER TABLE record_docs_v4 RENAME TO record_docs;";

// Brings a store of version `from` (1, 2 or 3) to the current one, inside the caller's transaction.
result<void> upgrade(connection& db, std::int64_t from) {
  if (from < 2) {
    if (auto r = db.exec(upgrade_v2); !r) return r;
  }
  if (from < 3) {
    if (auto r = db.exec(record_docs_table); !r) return r;
    if (auto r = fill_record_docs(db); !r) return r;
    if (auto r = db.exec(upgrade_v3_finish); !r) return r;
  } else {
    std::fprintf(stderr, "callrec: store: version 4: record documents in order\n");
    if (auto r = db.exec(upgrade_v4_docs); !r) return r;
  }
  return upgrade_v4(db);
}

}  // namespace

callrec::error corrupt_record() {
  return make_error(errc::internal, "internal error: a stored record cannot be read", "sqlite: a stored record is corrupt");
}

bool read_fields(const stmt_use& q, record_fields& f) {
  const auto media = q.int64(2), type = q.int64(9), res = q.int64(10);
  if (media < 0 || media > 1 || type < 0 || type > 1 || res < 0 || res >= call_result_count) return false;
  f.call_id = q.text(0);
  f.sdkappid = static_cast<std::uint32_t>(q.int64(1));
  f.media = static_cast<media_type>(media);
  f.room_id = q.text(3);
  f.start_ts = q.int64(4);
  f.accept_ts = q.int64(5);
  f.end_ts = q.int64(6);
  f.caller = q.text(7);
  f.callees = q.text(8);
  f.type = static_cast<call_type>(type);
  f.result = static_cast<call_result>(res);
  return true;
}

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
    if (*again != 0) {
      // Rebuilds the lookup (and, from version 1, recounts): seconds on a large store, so say what the wait is.
      std::fprintf(stderr, "callrec: store: upgrading the schema from version %lld to %d\n",
                   static_cast<long long>(*again), schema_version);
    }
    auto created = [&]() -> result<void> {
      if (auto r = db.exec(schema_current); !r) return r;
      if (auto r = db.exec(index_tables); !r) return r;
      return db.exec(record_docs_table);
    };
    if (auto r = *again == 0 ? created() : upgrade(db, *again); !r) {
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
