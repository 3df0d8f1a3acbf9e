// Event ingestion (SPEC section 5): turns a validated batch of events into call-state updates through the
// store, and fires due timers. The state machine itself is calls/ (pure); durability is the store's.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/json/value.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "calls/call_state.h"
#include "core/error.h"
#include "obs/metrics.h"
#include "store/store.h"

namespace callrec::api {

// One entry of a batch: a parsed event, or the reason it was refused before reaching a call.
struct batch_entry {
  std::optional<calls::call_event> event;
  calls::event_outcome outcome;  // filled in when `event` is empty, and after applying otherwise
};

// Parses events[i] of a report. `is_admin`: the reporter is an administrator (userId required, `ts`
// allowed); otherwise userId must be absent or equal to `identifier`. now_ms stamps events without ts.
batch_entry parse_event(const boost::json::value& v, bool is_admin, std::string_view identifier,
                        std::int64_t now_ms);

class ingest {
 public:
  ingest(store& st, obs::metrics& metrics) : store_(st), metrics_(metrics) {}

  // Applies the parsed entries of one batch in order and completes after they are durable. On a store
  // failure or after `timeout`, answers an internal error (the batch may still be applied: events are
  // idempotent, so retrying is safe).
  boost::asio::awaitable<result<std::vector<batch_entry>>> report(std::uint32_t sdkappid,
                                                                   calls::call_settings settings, bool is_admin,
                                                                   std::vector<batch_entry> entries,
                                                                   std::chrono::milliseconds timeout);

  // Fires the timers due at now_ms (ringing timeouts, heartbeat silence) and writes what they ended.
  // Blocking: for the maintenance thread. Returns how many calls were advanced.
  std::size_t fire_due_timers(std::int64_t now_ms, const std::function<calls::call_settings(std::uint32_t)>& settings);

 private:
  store& store_;
  obs::metrics& metrics_;
};

}  // namespace callrec::api
