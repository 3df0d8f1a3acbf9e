// One token bucket (SPEC 3): a rate per second and a burst of one second's worth. Time is a parameter
// (unix milliseconds). Thread-safe.
#pragma once

#include <cstdint>
#include <mutex>

namespace callrec::limits {

class token_bucket {
 public:
  explicit token_bucket(double per_second = 1) { reset(per_second); }
  void reset(double per_second);
  // Admits when at least one token is left, then takes `cost` tokens (the balance may go below zero
  // for a large batch, which delays the next admission accordingly).
  bool admit(std::int64_t now_ms, double cost = 1);
  // Takes more tokens after admission (events: the batch size is known after the body is parsed).
  void charge(std::int64_t now_ms, double cost);

 private:
  void refill(std::int64_t now_ms);
  std::mutex mu_;
  double rate_ = 1;      // tokens per second
  double capacity_ = 1;  // burst: one second's worth, at least 1
  double tokens_ = 1;
  std::int64_t last_ms_ = 0;
};

}  // namespace callrec::limits
