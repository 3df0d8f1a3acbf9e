// The whole server assembled: store, hub, HTTP server and the maintenance thread (timers, retention).
// main() and the integration tests both run it.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>

#include "api/hub.h"
#include "config/config.h"
#include "core/clock.h"
#include "core/error.h"
#include "http/server.h"
#include "obs/access_log.h"
#include "obs/metrics.h"
#include "store/store.h"

namespace callrec::api {

class service {
 public:
  // `clk` must outlive the service.
  service(server_config cfg, const clock& clk);
  ~service();
  service(const service&) = delete;
  service& operator=(const service&) = delete;

  // Opens the store, loads live calls, listens. Errors say what failed.
  result<void> start();
  std::uint16_t port() const noexcept { return server_ ? server_->port() : 0; }

  // Reloads the [tls] certificate and key for new connections (SIGHUP); on error the old ones stay in use.
  result<void> reload_tls();

  // Graceful: stops accepting, answers in-flight requests, stops the timers, flushes the store.
  void stop();

  // Runs the timers and retention once now (normally every `tick_ms` on the maintenance thread).
  void run_maintenance_once();

  const server_config& config() const noexcept { return cfg_; }
  obs::metrics& metrics() noexcept { return metrics_; }
  store& storage() noexcept { return *store_; }

  std::uint32_t tick_ms = 200;  // how often timers are checked
  // The API's request deadline (SPEC: 3 s). Set before start().
  std::chrono::milliseconds request_deadline{3000};
  // Set before start(): wraps the opened store (the tests put a deliberately slow store in front of it).
  std::function<std::unique_ptr<store>(std::unique_ptr<store>)> wrap_store;

 private:
  void maintenance_loop();

  server_config cfg_;
  const clock& clock_;
  obs::metrics metrics_;
  std::unique_ptr<obs::access_log> log_;
  std::unique_ptr<store> store_;
  std::unique_ptr<hub> hub_;
  std::unique_ptr<http::server> server_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::int64_t last_retention_ms_ = 0;
  std::thread maintenance_;
  std::mutex maintenance_mu_;  // one maintenance pass at a time
};

}  // namespace callrec::api
