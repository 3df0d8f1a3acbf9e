// The server configuration (SPEC section 7): a TOML file, validated up front so a bad file stops the
// start with a message naming the key and the problem.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "limits/limits.h"

namespace callrec {

struct app_config {
  std::uint32_t sdkappid = 0;
  std::string secret_key;
  std::vector<std::string> admins{"administrator"};
  bool entitled = true;
  limits::rates limits = limits::default_rates();  // per second, one per limits::table row
  std::int32_t retention_days = 7;
  std::int32_t heartbeat_sec = 60;
};

// HTTPS: the files are read at start and again on reload (SIGHUP), so a renewed certificate needs no restart.
struct tls_config {
  std::string cert;  // PEM: the server certificate, then any intermediates
  std::string key;   // PEM: its private key (unencrypted)
};

// Limits and timeouts of the HTTP server; every one has a safe default.
struct http_limits {
  std::uint32_t max_header_bytes = 16 * 1024;
  std::uint32_t max_header_count = 100;  // header fields in one request (HTTP/2: pseudo-headers included)
  std::uint32_t max_body_bytes = 1024 * 1024;
  std::uint32_t max_connections = 10000;
  std::uint32_t idle_timeout_sec = 60;     // keep-alive connection with no request
  std::uint32_t request_timeout_sec = 10;  // from the first byte of a request to its last (slowloris)
  // From accept to the end of the TLS handshake ([tls] only): a client that connects and never finishes the
  // handshake holds a socket and a half-built TLS session, so it gets less time than an idle keep-alive one.
  std::uint32_t tls_handshake_timeout_sec = 10;

  // HTTP/2 (ALPN h2 and h2c). The sizes and timeouts above apply to HTTP/2 too; these are its own. Going over a
  // per_10s count (in a fixed 10 s window) ends the connection with GOAWAY ENHANCE_YOUR_CALM.
  std::uint32_t h2_max_concurrent_streams = 128;      // requests in flight on one connection
  std::uint32_t h2_initial_window_bytes = 256 * 1024;  // request body a client may send per stream ahead of us
  std::uint32_t h2_max_frame_bytes = 16 * 1024;       // largest frame accepted (16 KiB: the protocol default)
  std::uint32_t h2_max_resets_per_10s = 200;          // streams the client resets: rapid reset (CVE-2023-44487)
  std::uint32_t h2_max_pings_per_10s = 100;           // PING frames from the client (CVE-2019-9512)
  std::uint32_t h2_max_settings_per_10s = 100;        // SETTINGS frames from the client (CVE-2019-9515)
  // Responses that make no progress for this long (zero flow-control window, socket not read, or under 4 KiB
  // let through: a slow drain): cut off.
  std::uint32_t h2_stall_timeout_sec = 10;
  // A connection with no open stream for this long is closed (GOAWAY); unset: idle_timeout_sec.
  std::optional<std::uint32_t> h2_idle_timeout_sec;
};

struct server_config {
  std::string listen_host = "127.0.0.1";
  std::uint16_t listen_port = 8080;
  std::uint32_t threads = 0;  // 0: the number of cores
  bool io_batch_scheduling = true;  // io_scheduling = "batch" (SCHED_BATCH I/O threads) or "normal"
  std::string data_dir = "./callrec-data";
  std::string store;          // default: sqlite:<data_dir>/callrec.db
  std::optional<std::string> redis;
  std::optional<tls_config> tls;
  bool allow_plaintext = false;
  std::int32_t retention_days = 7;
  std::string access_log = "stdout";  // "stdout", "off", or a file path
  std::int64_t pg_connections = 0;    // PostgreSQL store: the store thread's pool (0: the store's default, 4); reads: half of it per I/O thread
  bool fsync_each_commit = false;     // true: acknowledged batches survive power loss too, not only a crash
  http_limits limits;
  std::vector<app_config> apps;

  std::string store_url() const;
};

// `url` with its password replaced by "***" (scheme://user:PASSWORD@host, or password=... in its query or
// key=value form): for logs and messages.
std::string redact_url(std::string_view url);

// Parses and validates a configuration text; `source` names it in messages.
result<server_config> parse_config(std::string_view toml_text, std::string_view source);
result<server_config> load_config_file(const std::string& path);

// Applies --listen HOST:PORT (or [v6]:PORT); validates the port.
result<void> apply_listen(server_config& cfg, std::string_view listen);

// Checks that hold after overrides: at least one app, plain HTTP only on loopback unless allowed.
result<void> validate(const server_config& cfg);

bool is_loopback_host(std::string_view host);

}  // namespace callrec
