// A whole callrec node, assembled: the store, the rate limiter, the application core (ops/), the v1 dispatcher
// and route table, the HTTP server, and the background jobs (timers, retention) on a thread of their own.
// main() and the integration tests both run it.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>

#include "config/config.h"
#include "core/clock.h"
#include "core/error.h"
#include "obs/access_log.h"
#include "obs/metrics.h"
#include "store/store.h"

namespace callrec {

namespace api {
class dispatcher;
}
namespace http {
class server;
}
namespace limits {
class rate_limiter;
}
namespace ops {
class app_registry;
struct core;
}  // namespace ops

class node {
 public:
  // `clk` must outlive the node.
  node(server_config cfg, const clock& clk);
  ~node();
  node(const node&) = delete;
  node& operator=(const node&) = delete;

  // Opens the store, loads live calls, listens, starts the background jobs. Errors say what failed.
  result<void> start();
  std::uint16_t port() const noexcept;

  // Reloads the [tls] certificate and key for new connections (SIGHUP); on error the old ones stay in use.
  result<void> reload_tls();

  // Graceful: stops accepting, answers in-flight requests, stops the background jobs, flushes the store.
  void stop();

  // Runs the background jobs once now and waits for them: timers due at the clock's time have fired (and
  // retention has run) when it returns. Passes never overlap; one in progress is finished first.
  void run_maintenance_once();

  const server_config& config() const noexcept { return cfg_; }
  obs::metrics& metrics() noexcept { return *metrics_; }
  store& storage() noexcept { return *store_; }

  // Set before start():
  std::uint32_t tick_ms = 200;                          // how often timers are checked
  std::chrono::milliseconds request_deadline{3000};     // the API's deadline (SPEC: 3 s)
  std::function<std::unique_ptr<store>(std::unique_ptr<store>)> wrap_store;  // tests put a store in front
  const char* sqlite_vfs = nullptr;                     // tests open the embedded store on a faulty VFS

 private:
  void background_loop();
  // One pass of the background jobs, on the background thread.
  boost::asio::awaitable<void> maintenance_pass();

  server_config cfg_;
  const clock& clock_;
  std::unique_ptr<obs::metrics> metrics_;
  std::unique_ptr<obs::access_log> log_;
  std::unique_ptr<store> store_;
  std::unique_ptr<ops::app_registry> apps_;
  std::unique_ptr<limits::rate_limiter> limiter_;
  std::unique_ptr<ops::core> core_;
  std::unique_ptr<api::dispatcher> dispatcher_;
  std::unique_ptr<http::server> server_;

  // The background jobs: passes run on bg_thread_, one at a time.
  boost::asio::io_context bg_{1};
  boost::asio::steady_timer tick_{bg_};  // the wait between passes; used on the background thread only
  std::thread bg_thread_;
  std::mutex pass_mu_;
  std::condition_variable pass_cv_;
  std::uint64_t passes_wanted_ = 0;  // run_maintenance_once requests
  std::uint64_t passes_served_ = 0;  // requests that a completed pass started after
  bool stopping_ = false;
  std::int64_t last_retention_ms_ = 0;  // background thread only
  std::int64_t last_failure_said_ms_ = 0;  // background thread only
};

}  // namespace callrec
