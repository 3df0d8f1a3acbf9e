// Event ingestion (SPEC 5) and the timers that end calls without further traffic: call signalling turned into
// live-call updates through the call store; the state machine itself is calls/ (pure).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "calls/call_state.h"
#include "ops/core.h"

namespace callrec::ops {

// One entry of a batch: a parsed event, or the reason it was refused before reaching a call.
struct batch_entry {
  std::optional<calls::call_event> event;
  calls::event_outcome outcome;  // set when `event` is empty, and by applying it otherwise
};

// events/report: applies the entries' events in order (refused entries stay as they are) and completes once
// the changes are durable; each entry then holds its outcome. On a store failure, or past the caller's
// deadline, an error (the batch may still be applied later: events are idempotent, so retrying is safe).
awaitable<result<std::vector<batch_entry>>> report_events(const core& c, const caller& who,
                                                          std::vector<batch_entry> entries);

// Fires the timers due at now_ms (ringing timeouts, heartbeat silence) of calls this node claimed, and
// writes what they ended. Returns how many timers fired.
awaitable<result<std::size_t>> fire_due_timers(const core& c, std::int64_t now_ms);

}  // namespace callrec::ops
