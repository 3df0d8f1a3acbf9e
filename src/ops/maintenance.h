// The operations a node runs besides the API: retention, readiness, and the metrics page.
#pragma once

#include <cstdint>
#include <string>

#include "ops/core.h"

namespace callrec::ops {

// Applies every app's retention window at now_ms (the store removes what lies before it, in bounded slices,
// each its own transaction). Returns how many records were removed.
awaitable<result<std::uint64_t>> apply_retention(const core& c, std::int64_t now_ms);

// Readiness (GET /readyz): the store answers.
awaitable<result<void>> readiness(const core& c, deadline due);

// The Prometheus text of GET /metrics: the process's metrics and the store's.
awaitable<result<std::string>> metrics_text(const core& c);

}  // namespace callrec::ops
