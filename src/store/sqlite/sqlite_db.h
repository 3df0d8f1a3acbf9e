// Thin RAII over the SQLite C API: a connection with a cache of prepared statements, and one use of a
// statement that resets it when done. A connection is used by one thread at a time (opened NOMUTEX).
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/error.h"

namespace callrec::sqlite {

struct stmt_deleter {
  void operator()(sqlite3_stmt* s) const noexcept { sqlite3_finalize(s); }
};
using stmt_ptr = std::unique_ptr<sqlite3_stmt, stmt_deleter>;

// One execution of a prepared statement. Text and blobs are bound without copying: they must outlive it.
class stmt_use {
 public:
  explicit stmt_use(sqlite3_stmt* s) noexcept : s_(s) {}
  stmt_use(const stmt_use&) = delete;
  stmt_use& operator=(const stmt_use&) = delete;
  ~stmt_use() { sqlite3_reset(s_); }

  void bind(int i, std::int64_t v) noexcept { sqlite3_bind_int64(s_, i, v); }
  void bind(int i, std::string_view v) noexcept {
    // A null pointer would bind SQL NULL; an empty string must stay a string.
    sqlite3_bind_text(s_, i, v.data() ? v.data() : "", static_cast<int>(v.size()), SQLITE_STATIC);
  }
  void bind_blob(int i, std::string_view v) noexcept {
    sqlite3_bind_blob(s_, i, v.data() ? v.data() : "", static_cast<int>(v.size()), SQLITE_STATIC);
  }
  void bind_null(int i) noexcept { sqlite3_bind_null(s_, i); }

  // SQLITE_ROW, SQLITE_DONE or an error code.
  int step() noexcept { return sqlite3_step(s_); }

  std::int64_t int64(int col) const noexcept { return sqlite3_column_int64(s_, col); }
  bool is_null(int col) const noexcept { return sqlite3_column_type(s_, col) == SQLITE_NULL; }
  std::string_view text(int col) const noexcept {
    const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(s_, col));
    return p ? std::string_view(p, static_cast<std::size_t>(sqlite3_column_bytes(s_, col))) : std::string_view();
  }
  std::string_view blob(int col) const noexcept {
    const auto* p = static_cast<const char*>(sqlite3_column_blob(s_, col));
    return p ? std::string_view(p, static_cast<std::size_t>(sqlite3_column_bytes(s_, col))) : std::string_view();
  }

 private:
  sqlite3_stmt* s_;
};

class connection {
 public:
  // flags: SQLITE_OPEN_READONLY or SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE; NOMUTEX is added. `vfs`: the
  // name of a registered VFS, or null for the default (tests put a faulty one under the store).
  static result<std::unique_ptr<connection>> open(const std::string& path, int flags, const char* vfs = nullptr);

  connection(const connection&) = delete;
  connection& operator=(const connection&) = delete;
  ~connection();

  sqlite3* handle() const noexcept { return db_; }

  // Runs one or more statements that return no rows.
  result<void> exec(const char* sql);
  // A prepared statement from this connection's cache (prepared on first use); nullptr on failure,
  // then last_error() says why.
  sqlite3_stmt* cached(std::string_view sql);
  // The same for SQL text with static storage duration (a literal or a constant), found by its address:
  // no hashing of the text on the hot paths.
  sqlite3_stmt* cached_static(const char* sql);
  // The error of the last failed call on this connection: errc::timeout for a read interrupted at its
  // deadline, else errc::unavailable; SQLite's own text goes to the error's detail, never to its message.
  callrec::error last_error(std::string_view what) const;
  // Runs a query returning one integer (0 when no row).
  result<std::int64_t> query_int(const char* sql);

 private:
  explicit connection(sqlite3* db) noexcept : db_(db) {}
  sqlite3* db_;
  struct text_hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
  };
  std::unordered_map<std::string, stmt_ptr, text_hash, std::equal_to<>> cache_;
  std::vector<std::pair<const char*, sqlite3_stmt*>> by_address_;  // statements owned by cache_
};

}  // namespace callrec::sqlite
