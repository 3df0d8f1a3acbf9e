// The SQLite schema (versioned with PRAGMA user_version) and its creation. Plain tables and indexes that a
// PostgreSQL schema mirrors one to one; only WITHOUT ROWID (a clustered primary key) is SQLite-specific,
// and PostgreSQL expresses the same keys with ordinary primary keys.
#pragma once

#include <string_view>

#include "core/error.h"
#include "records/wire.h"
#include "store/sqlite/sqlite_db.h"

namespace callrec::sqlite {

inline constexpr int schema_version = 4;

// Creates the schema in an empty database, upgrades an older version in place, refuses a newer one.
result<void> ensure_schema(connection& db);

// The columns of a record in the records table (aliased r), in the order read_fields reads them.
inline constexpr std::string_view record_columns =
    "r.call_id, r.sdkappid, r.media, r.room_id, r.start_ts, r.accept_ts, r.end_ts, r.caller, r.callees, "
    "r.call_type, r.result";
// Reads the columns of `record_columns` as views, valid until the statement moves on; false when an
// enumeration is out of range (a corrupt row).
bool read_fields(const stmt_use& q, record_fields& f);
// The error of a stored record that cannot be read back.
callrec::error corrupt_record();

}  // namespace callrec::sqlite
