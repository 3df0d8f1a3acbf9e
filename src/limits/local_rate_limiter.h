// Token buckets in this process, one per (app, limit): the rate limiter of a single node, and the fallback
// of a node whose shared limiter is unreachable.
#pragma once

#include <cstdint>
#include <memory>
#include <unordered_map>
#include <utility>
#include <vector>

#include "limits/rate_limiter.h"
#include "limits/token_bucket.h"

namespace callrec::limits {

class local_rate_limiter final : public rate_limiter {
 public:
  // The apps and their rates; an app not listed is never admitted.
  explicit local_rate_limiter(const std::vector<std::pair<std::uint32_t, rates>>& apps);

  boost::asio::awaitable<bool> admit(std::uint32_t app, limit_id limit, double cost, std::int64_t now_ms) override;
  void charge(std::uint32_t app, limit_id limit, double cost, std::int64_t now_ms) override;

  std::optional<bool> admit_now(std::uint32_t app, limit_id limit, double cost, std::int64_t now_ms) override;

 private:
  token_bucket* bucket(std::uint32_t app, limit_id limit);
  // Buckets are created at construction and never added or removed: lookups need no lock.
  std::unordered_map<std::uint32_t, std::unique_ptr<std::array<token_bucket, count>>> buckets_;
};

}  // namespace callrec::limits
