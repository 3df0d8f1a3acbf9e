// The SQLite schema (versioned with PRAGMA user_version) and its creation. Plain tables and indexes that a
// PostgreSQL schema mirrors one to one; only WITHOUT ROWID (a clustered primary key) is SQLite-specific,
// and PostgreSQL expresses the same keys with ordinary primary keys.
#pragma once

#include "core/error.h"
#include "store/sqlite/sqlite_db.h"

namespace callrec::sqlite {

inline constexpr int schema_version = 2;

// Creates the schema in an empty database, upgrades an older version in place, refuses a newer one.
result<void> ensure_schema(connection& db);

}  // namespace callrec::sqlite
