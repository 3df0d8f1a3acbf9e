#include "store/sqlite/sqlite_db.h"

#include <utility>

namespace callrec::sqlite {

result<std::unique_ptr<connection>> connection::open(const std::string& path, int flags, const char* vfs) {
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &db, flags | SQLITE_OPEN_NOMUTEX, vfs);
  if (rc != SQLITE_OK) {
    std::string msg = "cannot open the SQLite store " + path + ": " + (db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
    sqlite3_close(db);
    return make_error(errc::unavailable, std::move(msg));
  }
  sqlite3_extended_result_codes(db, 1);
  return std::unique_ptr<connection>(new connection(db));
}

connection::~connection() {
  by_address_.clear();
  cache_.clear();  // statements must be finalized before the connection closes
  sqlite3_close(db_);
}

result<void> connection::exec(const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string detail = std::string("sqlite: ") + (err ? err : sqlite3_errmsg(db_));
    sqlite3_free(err);
    return make_error(errc::unavailable, "the store is unavailable; retry", std::move(detail));
  }
  return {};
}

sqlite3_stmt* connection::cached(std::string_view sql) {
  if (auto it = cache_.find(sql); it != cache_.end()) return it->second.get();
  std::string key(sql);
  sqlite3_stmt* s = nullptr;
  if (sqlite3_prepare_v3(db_, key.data(), static_cast<int>(key.size()), SQLITE_PREPARE_PERSISTENT, &s, nullptr) !=
      SQLITE_OK) {
    sqlite3_finalize(s);
    return nullptr;
  }
  cache_.emplace(std::move(key), stmt_ptr(s));
  return s;
}

sqlite3_stmt* connection::cached_static(const char* sql) {
  for (const auto& [text, stmt] : by_address_) {
    if (text == sql) return stmt;
  }
  sqlite3_stmt* s = cached(std::string_view(sql));
  // Bounded: were a compiler to give one literal several addresses, the list would not grow without end.
  if (s && by_address_.size() < 64) by_address_.emplace_back(sql, s);
  return s;
}

callrec::error connection::last_error(std::string_view what) const {
  const int code = sqlite3_extended_errcode(db_);
  std::string detail = "sqlite (" + std::string(what) + "): " + sqlite3_errmsg(db_) + " [" +
                       sqlite3_errstr(code) + ", " + std::to_string(code) + "]";
  if ((code & 0xff) == SQLITE_INTERRUPT) {
    return make_error(errc::timeout, "the store did not answer within the deadline; retry, or narrow the query",
                      std::move(detail));
  }
  return make_error(errc::unavailable, "the store is unavailable; retry", std::move(detail));
}

result<std::int64_t> connection::query_int(const char* sql) {
  sqlite3_stmt* s = cached_static(sql);
  if (!s) return last_error("prepare");
  stmt_use q(s);
  int rc = q.step();
  if (rc == SQLITE_ROW) return q.int64(0);
  if (rc == SQLITE_DONE) return std::int64_t{0};
  return last_error("query");
}

}  // namespace callrec::sqlite
