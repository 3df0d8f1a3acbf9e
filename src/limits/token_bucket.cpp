#include "limits/token_bucket.h"

#include <algorithm>

namespace callrec::limits {

void token_bucket::reset(double per_second) {
  std::lock_guard lk(mu_);
  rate_ = per_second;
  capacity_ = std::max(1.0, per_second);
  tokens_ = capacity_;
  last_ms_ = 0;
}

void token_bucket::refill(std::int64_t now_ms) {
  if (last_ms_ == 0 || now_ms < last_ms_) {
    last_ms_ = now_ms;
    return;
  }
  tokens_ = std::min(capacity_, tokens_ + static_cast<double>(now_ms - last_ms_) * rate_ / 1000.0);
  last_ms_ = now_ms;
}

bool token_bucket::admit(std::int64_t now_ms, double cost) {
  std::lock_guard lk(mu_);
  refill(now_ms);
  if (tokens_ < 1.0) return false;
  tokens_ -= cost;
  return true;
}

void token_bucket::charge(std::int64_t now_ms, double cost) {
  std::lock_guard lk(mu_);
  refill(now_ms);
  tokens_ -= cost;
}

}  // namespace callrec::limits
