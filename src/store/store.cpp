#include "store/store.h"

#include <filesystem>
#include <system_error>

#include "store/postgres/pg_store.h"
#include "store/sqlite/sqlite_store.h"

namespace callrec {

result<std::unique_ptr<store>> open_store(const store_settings& options) {
  const std::string_view url = options.url;
  const auto colon = url.find(':');
  if (colon == std::string_view::npos || colon == 0) {
    return make_error(errc::invalid_param, "store url has no scheme: expected sqlite:PATH or postgres://...");
  }
  const std::string_view scheme = url.substr(0, colon);
  if (scheme == "sqlite") {
    std::string path(url.substr(colon + 1));
    if (path.empty()) return make_error(errc::invalid_param, "store url sqlite: names no file (sqlite:PATH)");
    if (path == ":memory:") {
      return make_error(errc::invalid_param, "store url sqlite::memory: is not supported: the store needs a file");
    }
    const auto parent = std::filesystem::path(path).parent_path();
    if (!parent.empty()) {
      std::error_code ec;
      std::filesystem::create_directories(parent, ec);
      if (ec) {
        return make_error(errc::unavailable, "cannot create the store directory " + parent.string() + ": " + ec.message());
      }
    }
    sqlite::sqlite_store_options o;
    o.path = std::move(path);
    o.fsync_each_commit = options.fsync_each_commit;
    o.vfs = options.sqlite_vfs;
    return sqlite::open_sqlite_store(o);
  }
  if (scheme == "postgres" || scheme == "postgresql") {
    pg::pg_store_options o;
    o.conninfo = options.url;
    if (options.pg_connections > 0) o.connections = options.pg_connections;
    o.connect_wait = options.pg_connect_wait;
    return pg::open_pg_store(o);
  }
  return make_error(errc::invalid_param,
                    "unknown store scheme \"" + std::string(scheme) + "\": expected sqlite:PATH or postgres://...");
}

}  // namespace callrec
