// The operations a node runs besides the API: retention, readiness, and the metrics page.
#pragma once

#include <cstdint>
#include <string>

#include "ops/core.h"

namespace callrec::ops {

// Applies every app's retention window at now_ms (the store removes what lies before it, in bounded slices,
// each its own transaction). Returns how many records were removed.
awaitable<result<std::uint64_t>> apply_retention(const core& c, std::int64_t now_ms);

// Liveness (GET /healthz): the process answers.
awaitable<result<void>> liveness(const core& c, const caller& who);

// Readiness (GET /readyz): the store answers by the caller's deadline.
awaitable<result<void>> readiness(const core& c, const caller& who);

// The Prometheus text of GET /metrics: the process's metrics and the store's.
awaitable<result<std::string>> metrics_text(const core& c, const caller& who);

}  // namespace callrec::ops
