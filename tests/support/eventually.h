// Waiting for what another thread or process brings about (a server reconnecting, a node's timers running):
// a bounded poll of the condition, never a sleep that assumes how long it takes.
#pragma once

#include <chrono>
#include <thread>

namespace callrec::testing {

// True as soon as `f()` is; false if it still is not after `limit`.
template <class F>
bool eventually(F f, std::chrono::seconds limit = std::chrono::seconds(10)) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    if (f()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return f();
}

}  // namespace callrec::testing
