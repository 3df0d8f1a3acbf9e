#include "config/config.h"

#include <toml++/toml.h>

#include <charconv>
#include <fstream>
#include <set>
#include <sstream>

#include "limits/redis_rate_limiter.h"
#include "records/record.h"

namespace callrec {
namespace {

error bad(std::string_view source, std::string_view key, std::string_view problem) {
  std::string m(source);
  m += ": ";
  m += key;
  m += ": ";
  m += problem;
  return make_error(errc::invalid_param, std::move(m));
}

// Reads an optional integer key within [lo, hi].
template <class Int>
result<void> read_int(const toml::table& t, std::string_view key, std::string_view path, std::string_view source,
                      Int& out, std::int64_t lo, std::int64_t hi) {
  const toml::node* n = t.get(key);
  if (!n) return {};
  auto v = n->value_exact<std::int64_t>();
  if (!v) return bad(source, path, "must be an integer");
  if (*v < lo || *v > hi) {
    return bad(source, path, "must be between " + std::to_string(lo) + " and " + std::to_string(hi));
  }
  out = static_cast<Int>(*v);
  return {};
}

result<void> read_string(const toml::table& t, std::string_view key, std::string_view path, std::string_view source,
                         std::string& out) {
  const toml::node* n = t.get(key);
  if (!n) return {};
  auto v = n->value_exact<std::string>();
  if (!v) return bad(source, path, "must be a string");
  out = *v;
  return {};
}

result<void> read_bool(const toml::table& t, std::string_view key, std::string_view path, std::string_view source,
                       bool& out) {
  const toml::node* n = t.get(key);
  if (!n) return {};
  auto v = n->value_exact<bool>();
  if (!v) return bad(source, path, "must be true or false");
  out = *v;
  return {};
}

result<void> check_keys(const toml::table& t, std::string_view path, std::string_view source,
                        std::initializer_list<std::string_view> known) {
  for (auto&& [k, v] : t) {
    bool ok = false;
    for (auto kk : known) ok = ok || kk == k.str();
    if (!ok) {
      std::string full = path.empty() ? std::string(k.str()) : std::string(path) + "." + std::string(k.str());
      return bad(source, full, "unknown key");
    }
  }
  return {};
}

#define CALLREC_TRY(expr)                         \
  do {                                            \
    auto callrec_try_r = (expr);                  \
    if (!callrec_try_r) return callrec_try_r.error(); \
  } while (0)

result<limits::rates> read_rate_limits(const toml::node& n, std::string_view path, std::string_view source,
                                       limits::rates rates) {
  const toml::table* t = n.as_table();
  if (!t) return bad(source, path, "must be a table");
  for (auto&& [k, v] : *t) {
    const std::string full = std::string(path) + "." + std::string(k.str());
    const auto id = limits::find(k.str());
    if (!id) {
      std::string known;
      for (const auto& d : limits::table) known += (known.empty() ? "" : ", ") + std::string(d.name);
      return bad(source, full, "unknown key (the limits are " + known + ")");
    }
    std::optional<double> d;
    if (auto i = v.value_exact<std::int64_t>()) d = static_cast<double>(*i);
    if (auto f = v.value_exact<double>()) d = *f;
    if (!d) return bad(source, full, "must be a number (requests per second)");
    if (!(*d > 0) || *d > 1e9) return bad(source, full, "must be greater than 0 and at most 1e9");
    rates[*id] = *d;
  }
  return rates;
}

result<app_config> read_app(const toml::table& t, std::string_view path, std::string_view source,
                            std::int32_t default_retention) {
  CALLREC_TRY(check_keys(t, path, source,
                         {"sdkappid", "secret_key", "admins", "entitled", "rate_limits", "retention_days",
                          "heartbeat_sec"}));
  app_config app;
  app.retention_days = default_retention;
  std::string p(path);
  if (!t.get("sdkappid")) return bad(source, p + ".sdkappid", "is required");
  CALLREC_TRY(read_int(t, "sdkappid", p + ".sdkappid", source, app.sdkappid, 1, 4294967295LL));
  if (!t.get("secret_key")) return bad(source, p + ".secret_key", "is required");
  CALLREC_TRY(read_string(t, "secret_key", p + ".secret_key", source, app.secret_key));
  if (app.secret_key.empty()) return bad(source, p + ".secret_key", "must not be empty");
  if (const toml::node* a = t.get("admins")) {
    const toml::array* arr = a->as_array();
    if (!arr) return bad(source, p + ".admins", "must be an array of user ids");
    if (arr->empty() || arr->size() > 10) return bad(source, p + ".admins", "must list 1 to 10 administrators");
    app.admins.clear();
    for (const auto& e : *arr) {
      auto s = e.value_exact<std::string>();
      if (!s || !valid_user_id(*s)) {
        return bad(source, p + ".admins", "each administrator must be a user id (1..32 printable ASCII, no space)");
      }
      app.admins.push_back(*s);
    }
  }
  CALLREC_TRY(read_bool(t, "entitled", p + ".entitled", source, app.entitled));
  if (const toml::node* r = t.get("rate_limits")) {
    auto rl = read_rate_limits(*r, p + ".rate_limits", source, app.limits);
    if (!rl) return rl.error();
    app.limits = *rl;
  }
  CALLREC_TRY(read_int(t, "retention_days", p + ".retention_days", source, app.retention_days, 1, 3650));
  CALLREC_TRY(read_int(t, "heartbeat_sec", p + ".heartbeat_sec", source, app.heartbeat_sec, 0, 86400));
  return app;
}

}  // namespace

std::string server_config::store_url() const {
  if (!store.empty()) return store;
  return "sqlite:" + data_dir + "/callrec.db";
}

std::string redact_url(std::string_view url) {
  std::string out(url);
  if (const auto scheme = out.find("://"); scheme != std::string::npos) {
    const auto authority = scheme + 3;
    const auto end = out.find_first_of("/?", authority);
    const auto at = out.rfind('@', end == std::string::npos ? std::string::npos : end);
    if (at != std::string::npos && at > authority) {
      const auto colon = out.find(':', authority);
      if (colon != std::string::npos && colon < at) out.replace(colon + 1, at - colon - 1, "***");
    }
  }
  for (std::size_t at = 0; (at = out.find("password=", at)) != std::string::npos;) {
    if (at > 0 && std::string_view("?& ").find(out[at - 1]) == std::string_view::npos) {
      at += 9;
      continue;
    }
    const auto value = at + 9;
    const auto end = out.find_first_of("& ", value);
    out.replace(value, (end == std::string::npos ? out.size() : end) - value, "***");
    at = value + 3;
  }
  return out;
}

bool is_loopback_host(std::string_view host) {
  return host == "localhost" || host == "::1" || host == "[::1]" || host.starts_with("127.");
}

result<void> apply_listen(server_config& cfg, std::string_view listen) {
  auto colon = listen.rfind(':');
  if (colon == std::string_view::npos || colon == 0) {
    return make_error(errc::invalid_param, "listen: expected HOST:PORT, got '" + std::string(listen) + "'");
  }
  std::string_view host = listen.substr(0, colon);
  std::string_view port = listen.substr(colon + 1);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  unsigned value = 0;
  auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (ec != std::errc{} || ptr != port.data() + port.size() || port.empty() || value > 65535) {
    return make_error(errc::invalid_param, "listen: port must be 0..65535, got '" + std::string(port) + "'");
  }
  cfg.listen_host = std::string(host);
  cfg.listen_port = static_cast<std::uint16_t>(value);
  return {};
}

result<server_config> parse_config(std::string_view text, std::string_view source) {
  toml::table root;
  try {
    root = toml::parse(text, source);
  } catch (const toml::parse_error& e) {
    std::ostringstream m;
    m << source << ":" << e.source().begin.line << ":" << e.source().begin.column << ": " << e.description();
    return make_error(errc::invalid_param, m.str());
  }
  CALLREC_TRY(check_keys(root, "", source,
                         {"listen", "threads", "io_scheduling", "store", "redis", "retention_days", "tls",
                          "allow_plaintext", "data_dir", "access_log", "fsync_each_commit", "pg_connections", "limits", "apps"}));
  server_config cfg;
  if (root.get("listen")) {
    std::string listen;
    CALLREC_TRY(read_string(root, "listen", "listen", source, listen));
    auto r = apply_listen(cfg, listen);
    if (!r) return bad(source, "listen", r.error().message.substr(8));
  }
  CALLREC_TRY(read_int(root, "threads", "threads", source, cfg.threads, 0, 256));
  if (root.get("io_scheduling")) {
    std::string policy;
    CALLREC_TRY(read_string(root, "io_scheduling", "io_scheduling", source, policy));
    if (policy != "batch" && policy != "normal") {
      return bad(source, "io_scheduling", "must be \"batch\" or \"normal\"");
    }
    cfg.io_batch_scheduling = policy == "batch";
  }
  CALLREC_TRY(read_string(root, "data_dir", "data_dir", source, cfg.data_dir));
  CALLREC_TRY(read_string(root, "store", "store", source, cfg.store));
  if (!cfg.store.empty() && !cfg.store.starts_with("sqlite:") && !cfg.store.starts_with("postgres://") &&
      !cfg.store.starts_with("postgresql://")) {
    return bad(source, "store", "must be sqlite:PATH or a postgresql:// URL");
  }
  if (root.get("redis")) {
    std::string r;
    CALLREC_TRY(read_string(root, "redis", "redis", source, r));
    if (auto a = limits::parse_redis_url(r); !a) return bad(source, "redis", a.error().message);
    cfg.redis = r;
  }
  CALLREC_TRY(read_int(root, "retention_days", "retention_days", source, cfg.retention_days, 1, 3650));
  CALLREC_TRY(read_bool(root, "allow_plaintext", "allow_plaintext", source, cfg.allow_plaintext));
  CALLREC_TRY(read_bool(root, "fsync_each_commit", "fsync_each_commit", source, cfg.fsync_each_commit));
  CALLREC_TRY(read_int(root, "pg_connections", "pg_connections", source, cfg.pg_connections, 1, 256));
  CALLREC_TRY(read_string(root, "access_log", "access_log", source, cfg.access_log));
  if (cfg.access_log.empty()) return bad(source, "access_log", "must be \"stdout\", \"off\" or a file path");
  if (const toml::node* n = root.get("tls")) {
    const toml::table* t = n->as_table();
    if (!t) return bad(source, "tls", "must be a table with cert and key");
    CALLREC_TRY(check_keys(*t, "tls", source, {"cert", "key"}));
    tls_config tls;
    CALLREC_TRY(read_string(*t, "cert", "tls.cert", source, tls.cert));
    CALLREC_TRY(read_string(*t, "key", "tls.key", source, tls.key));
    if (tls.cert.empty()) return bad(source, "tls.cert", "is required");
    if (tls.key.empty()) return bad(source, "tls.key", "is required");
    cfg.tls = tls;
  }
  if (const toml::node* n = root.get("limits")) {
    const toml::table* t = n->as_table();
    if (!t) return bad(source, "limits", "must be a table");
    CALLREC_TRY(check_keys(*t, "limits", source,
                           {"max_header_bytes", "max_header_count", "max_body_bytes", "max_connections", "idle_timeout_sec",
                            "request_timeout_sec", "tls_handshake_timeout_sec", "h2_max_concurrent_streams",
                            "h2_initial_window_bytes", "h2_max_frame_bytes", "h2_max_resets_per_10s",
                            "h2_max_pings_per_10s", "h2_max_settings_per_10s", "h2_stall_timeout_sec",
                            "h2_idle_timeout_sec"}));
    auto& l = cfg.limits;
    CALLREC_TRY(read_int(*t, "max_header_bytes", "limits.max_header_bytes", source, l.max_header_bytes, 1024,
                         1024 * 1024));
    CALLREC_TRY(read_int(*t, "max_header_count", "limits.max_header_count", source, l.max_header_count, 8, 10000));
    CALLREC_TRY(read_int(*t, "max_body_bytes", "limits.max_body_bytes", source, l.max_body_bytes, 1024,
                         64 * 1024 * 1024));
    CALLREC_TRY(read_int(*t, "max_connections", "limits.max_connections", source, l.max_connections, 1, 1000000));
    CALLREC_TRY(read_int(*t, "idle_timeout_sec", "limits.idle_timeout_sec", source, l.idle_timeout_sec, 1, 3600));
    CALLREC_TRY(
        read_int(*t, "request_timeout_sec", "limits.request_timeout_sec", source, l.request_timeout_sec, 1, 600));
    CALLREC_TRY(read_int(*t, "tls_handshake_timeout_sec", "limits.tls_handshake_timeout_sec", source,
                         l.tls_handshake_timeout_sec, 1, 600));
    CALLREC_TRY(read_int(*t, "h2_max_concurrent_streams", "limits.h2_max_concurrent_streams", source,
                         l.h2_max_concurrent_streams, 1, 10000));
    // RFC 9113 6.5.2 bounds the window (2^31-1) and the frame size (16 KiB to 16 MiB - 1).
    CALLREC_TRY(read_int(*t, "h2_initial_window_bytes", "limits.h2_initial_window_bytes", source,
                         l.h2_initial_window_bytes, 1024, 2147483647));
    CALLREC_TRY(read_int(*t, "h2_max_frame_bytes", "limits.h2_max_frame_bytes", source, l.h2_max_frame_bytes, 16384,
                         16777215));
    CALLREC_TRY(read_int(*t, "h2_max_resets_per_10s", "limits.h2_max_resets_per_10s", source,
                         l.h2_max_resets_per_10s, 1, 1000000));
    CALLREC_TRY(read_int(*t, "h2_max_pings_per_10s", "limits.h2_max_pings_per_10s", source, l.h2_max_pings_per_10s,
                         1, 1000000));
    CALLREC_TRY(read_int(*t, "h2_max_settings_per_10s", "limits.h2_max_settings_per_10s", source,
                         l.h2_max_settings_per_10s, 1, 1000000));
    CALLREC_TRY(read_int(*t, "h2_stall_timeout_sec", "limits.h2_stall_timeout_sec", source, l.h2_stall_timeout_sec,
                         1, 600));
    if (t->get("h2_idle_timeout_sec")) {
      std::uint32_t idle = 0;
      CALLREC_TRY(read_int(*t, "h2_idle_timeout_sec", "limits.h2_idle_timeout_sec", source, idle, 1, 3600));
      l.h2_idle_timeout_sec = idle;
    }
  }
  if (const toml::node* n = root.get("apps")) {
    const toml::array* arr = n->as_array();
    if (!arr) return bad(source, "apps", "must be an array of tables ([[apps]])");
    std::set<std::uint32_t> seen;
    for (std::size_t i = 0; i < arr->size(); ++i) {
      std::string path = "apps[" + std::to_string(i) + "]";
      const toml::table* t = (*arr)[i].as_table();
      if (!t) return bad(source, path, "must be a table");
      auto app = read_app(*t, path, source, cfg.retention_days);
      if (!app) return app.error();
      if (!seen.insert(app->sdkappid).second) {
        return bad(source, path + ".sdkappid", "duplicate sdkappid " + std::to_string(app->sdkappid));
      }
      cfg.apps.push_back(std::move(*app));
    }
  }
  return cfg;
}

result<server_config> load_config_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error(errc::invalid_param, path + ": cannot open the configuration file");
  std::ostringstream ss;
  ss << in.rdbuf();
  return parse_config(ss.str(), path);
}

result<void> validate(const server_config& cfg) {
  if (cfg.apps.empty()) return make_error(errc::invalid_param, "apps: at least one [[apps]] entry is required");
  if (!cfg.tls && !cfg.allow_plaintext && !is_loopback_host(cfg.listen_host)) {
    return make_error(errc::invalid_param,
                      "listen: refusing plain HTTP on non-loopback address " + cfg.listen_host +
                          " (the API carries credentials); configure [tls] or set allow_plaintext = true");
  }
  return {};
}

}  // namespace callrec
