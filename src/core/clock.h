// Injected time: every component that needs "now" takes a clock, so tests are deterministic.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

namespace callrec {

// When a request or a job must be answered by: a point of the steady clock (not the wall clock, which may
// step). Ports take one; a store that cannot answer by then gives errc::timeout.
using deadline = std::chrono::steady_clock::time_point;

class clock {
 public:
  virtual ~clock() = default;
  // Unix time in milliseconds.
  virtual std::int64_t now_ms() const = 0;
  std::int64_t now_s() const { return now_ms() / 1000; }
  // The steady clock, for deadlines. Tests that hold the wall clock still let this run: deadlines are real
  // waits (a store that holds a read answers 101001 when the real 3 s have passed).
  virtual deadline steady_now() const { return std::chrono::steady_clock::now(); }
};

class system_clock final : public clock {
 public:
  std::int64_t now_ms() const override {
    using namespace std::chrono;
    return duration_cast<milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  }
};

// A clock that tests set and advance by hand; safe to read from any thread.
class manual_clock final : public clock {
 public:
  explicit manual_clock(std::int64_t start_ms) : ms_(start_ms) {}
  std::int64_t now_ms() const override { return ms_.load(std::memory_order_relaxed); }
  void set_ms(std::int64_t ms) { ms_.store(ms, std::memory_order_relaxed); }
  void advance_ms(std::int64_t d) { ms_.fetch_add(d, std::memory_order_relaxed); }

 private:
  std::atomic<std::int64_t> ms_;
};

}  // namespace callrec
