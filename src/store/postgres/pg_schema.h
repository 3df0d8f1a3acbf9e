// The PostgreSQL store's schema: versioned migrations, applied at start, and the day partitions.
//
// The layout is the embedded store's, mapped onto declarative partitioning (docs/ARCHITECTURE.md):
//   records       (sdkappid, start_ts, call_id) + the filter columns and the record's document; one partition
//                 per UTC day of start_ts; an index (sdkappid, call_id) in each for get_record_by_callId
//   participants  (sdkappid, user_id, start_ts, call_id, is_caller), partitioned by day like records
//   rooms         (sdkappid, room_id, start_ts, call_id), partitioned by day
//   record_counts the counts per time bucket (store/time_buckets.h), for exact totals
//   live_calls    (sdkappid, call_id) -> the live state, its next timer and the timer's lease
//   ended_calls   (sdkappid, call_id) -> start_ts of the call's record: whether a call has a record, in one
//                 lookup (records' own index by call is one per day partition); retention deletes its rows
// Every key and index leads with sdkappid, so the schema distributes by it (README: Citus).
#pragma once

#include <cstdint>
#include <set>
#include <string>

#include "store/postgres/pg_conn.h"

namespace callrec::pg {

// The version this build writes. Migrations run in order from the version a database has.
inline constexpr int schema_version = 4;

// Brings the schema of the connection's current schema (search_path) to `target`, each version in its own
// transaction, with a line on stderr for each. A session advisory lock keyed by the schema's name makes
// concurrent starts wait for each other, so each migration is applied once. Returns the version found.
awaitable<result<int>> migrate(connection& c, int target, deadline due);

// A UTC day number (unix seconds / 86400, floored) and its partitions' suffix (YYYYMMDD).
std::int64_t day_of(std::int64_t ts);
std::string day_name(std::int64_t day);

// The days that have partitions.
awaitable<result<std::set<std::int64_t>>> partition_days(connection& c, deadline due);

// Creates the partitions of `days` that are missing (records, participants and rooms), under a transaction
// advisory lock so that nodes creating the same day at once do not collide.
awaitable<result<void>> create_partitions(connection& c, const std::set<std::int64_t>& days, deadline due);

}  // namespace callrec::pg
