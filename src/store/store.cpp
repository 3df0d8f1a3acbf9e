#include "store/store.h"

#include <filesystem>
#include <system_error>

#include "records/wire.h"
#include "store/sqlite/sqlite_store.h"

namespace callrec {

result<bool> store::get_record_json(std::uint32_t sdkappid, std::string_view call_id, std::string& out) {
  auto r = get_record(sdkappid, call_id);
  if (!r) return std::move(r).error();
  if (!*r) return false;
  append_record_json(out, **r);
  return true;
}

result<std::unique_ptr<store>> open_store(const store_options& options) {
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
        return make_error(errc::internal, "cannot create the store directory " + parent.string() + ": " + ec.message());
      }
    }
    return sqlite::open_sqlite_store(
        sqlite::sqlite_store_options{std::move(path), options.max_group, options.fsync_each_commit,
                                     options.read_deadline});
  }
  if (scheme == "postgres" || scheme == "postgresql") {
    return make_error(errc::invalid_param, "PostgreSQL store is not built yet");
  }
  return make_error(errc::invalid_param,
                    "unknown store scheme \"" + std::string(scheme) + "\": expected sqlite:PATH or postgres://...");
}

}  // namespace callrec
