#include "limits/local_rate_limiter.h"

namespace callrec::limits {

local_rate_limiter::local_rate_limiter(const std::vector<std::pair<std::uint32_t, rates>>& apps) {
  for (const auto& [app, r] : apps) {
    auto b = std::make_unique<std::array<token_bucket, count>>();
    for (std::size_t i = 0; i < count; ++i) (*b)[i].reset(r[i]);
    buckets_.insert_or_assign(app, std::move(b));
  }
}

token_bucket* local_rate_limiter::bucket(std::uint32_t app, limit_id limit) {
  auto it = buckets_.find(app);
  if (it == buckets_.end() || limit >= count) return nullptr;
  return &(*it->second)[limit];
}

std::optional<bool> local_rate_limiter::admit_now(std::uint32_t app, limit_id limit, double cost,
                                                  std::int64_t now_ms) {
  token_bucket* b = bucket(app, limit);
  return b && b->admit(now_ms, cost);
}

boost::asio::awaitable<bool> local_rate_limiter::admit(std::uint32_t app, limit_id limit, double cost,
                                                       std::int64_t now_ms) {
  co_return *admit_now(app, limit, cost, now_ms);
}

void local_rate_limiter::charge(std::uint32_t app, limit_id limit, double cost, std::int64_t now_ms) {
  if (token_bucket* b = bucket(app, limit)) b->charge(now_ms, cost);
}

}  // namespace callrec::limits
