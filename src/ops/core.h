// The application core: every API and background job is an operation here, written once, over the ports
// (store/store.h, limits/rate_limiter.h) and an injected clock. Operations return awaitable<result<T>> and
// complete on the caller's executor; one that did not need to wait completes without suspending. The API
// dialects (api/), the background jobs of a node (node/) and the tests all call these.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <span>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "calls/call_state.h"
#include "config/config.h"
#include "core/clock.h"
#include "limits/rate_limiter.h"
#include "obs/metrics.h"
#include "store/store.h"

namespace callrec::ops {

template <class T>
using awaitable = boost::asio::awaitable<T>;

// An app of the configuration, with what the core derives from it.
struct app {
  app_config cfg;

  std::uint32_t id() const noexcept { return cfg.sdkappid; }
  calls::call_settings call_settings() const noexcept { return calls::call_settings{cfg.heartbeat_sec}; }
  bool is_admin(std::string_view identifier) const noexcept;
  // The oldest start (unix seconds) still inside the retention window at now_s.
  std::int64_t oldest_kept(std::int64_t now_s) const noexcept {
    return now_s - static_cast<std::int64_t>(cfg.retention_days) * 86400;
  }
};

// The apps, by sdkappid. Fixed at construction: lookups need no lock.
class app_registry {
 public:
  explicit app_registry(const std::vector<app_config>& apps);
  const app* find(std::uint32_t sdkappid) const noexcept;
  const std::vector<app>& all() const noexcept { return apps_; }

 private:
  std::vector<app> apps_;
  std::unordered_map<std::uint32_t, std::size_t> index_;
};

// The ports and services operations use. Everything referred to outlives the operations.
struct core {
  store& storage;
  limits::rate_limiter& limiter;
  const clock& clk;
  const app_registry& apps;
  obs::metrics& metrics;
};

// Who asks, once the checks of SPEC 1 passed: the app, the identifier (an administrator, or a user who
// reports their own events), when the request arrived, and when it must be answered by.
struct caller {
  const ops::app* app = nullptr;
  std::string_view identifier;
  bool admin = false;
  std::int64_t now_ms = 0;  // unix milliseconds, from the injected clock
  deadline due{};
};

}  // namespace callrec::ops
