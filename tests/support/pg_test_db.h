// A PostgreSQL for tests: the server scripts/services started (CALLREC_PG_URL, exported by scripts/test), and a
// fresh schema per test inside its database, so tests never see each other's tables.
//
// Without CALLREC_PG_URL the PostgreSQL tests skip, saying why; scripts/test also sets CALLREC_REQUIRE_PG=1,
// and then a missing server fails them instead.
#pragma once

#include <libpq-fe.h>

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>

namespace callrec::testing {

inline std::string pg_base_url() {
  const char* url = std::getenv("CALLREC_PG_URL");
  return url ? url : "";
}

// "" when PostgreSQL tests can run; else why not (they skip), unless CALLREC_REQUIRE_PG=1 (they fail).
inline std::string pg_unavailable() {
  if (!pg_base_url().empty()) return "";
  const char* required = std::getenv("CALLREC_REQUIRE_PG");
  if (required && std::string(required) == "1") return "";
  return "CALLREC_PG_URL is not set: run the tests through scripts/test, which starts a PostgreSQL";
}

// Runs `sql` on `url` synchronously (setup only); "" on success, else the server's message.
inline std::string pg_exec(const std::string& url, const std::string& sql) {
  std::unique_ptr<PGconn, decltype(&PQfinish)> c(PQconnectdb(url.c_str()), &PQfinish);
  if (PQstatus(c.get()) != CONNECTION_OK) return std::string("connect: ") + PQerrorMessage(c.get());
  PQsetNoticeProcessor(c.get(), [](void*, const char*) {}, nullptr);
  std::unique_ptr<PGresult, decltype(&PQclear)> r(PQexec(c.get(), sql.c_str()), &PQclear);
  const auto st = PQresultStatus(r.get());
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) return PQresultErrorMessage(r.get());
  return "";
}

// The URL of the schema `name` (created if missing) of the test database: every table a store makes there.
inline std::string pg_schema_url(const std::string& name) {
  const std::string base = pg_base_url();
  (void)pg_exec(base, "CREATE SCHEMA IF NOT EXISTS " + name);
  return base + (base.find('?') == std::string::npos ? "?" : "&") + "options=-csearch_path%3D" + name;
}

// A schema name for a key (a test's directory, say): "t_" and 16 hex digits of its hash.
inline std::string pg_schema_name(const std::string& key) {
  std::uint64_t h = 1469598103934665603ull;
  for (unsigned char ch : key) {
    h ^= ch;
    h *= 1099511628211ull;
  }
  static const char* hex = "0123456789abcdef";
  std::string name = "t_";
  for (int i = 60; i >= 0; i -= 4) name += hex[(h >> i) & 15];
  return name;
}

}  // namespace callrec::testing
