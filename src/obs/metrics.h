// Process metrics rendered as Prometheus text (SPEC section 6). Lock-free counters; updates are relaxed
// atomic adds so the hot path pays a few nanoseconds.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace callrec::obs {

class counter {
 public:
  void add(std::uint64_t n = 1) noexcept { v_.fetch_add(n, std::memory_order_relaxed); }
  std::uint64_t value() const noexcept { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> v_{0};
};

// Fixed-bucket histogram of seconds.
class histogram {
 public:
  static constexpr std::array<double, 14> bounds{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
                                                 0.025,  0.05,    0.1,    0.25,  0.5,    1,     2.5};
  void observe(double seconds) noexcept;
  void render(std::string& out, std::string_view name, std::string_view labels) const;

 private:
  std::array<std::atomic<std::uint64_t>, bounds.size() + 1> buckets_{};
  std::atomic<std::uint64_t> count_{0};
  std::atomic<std::uint64_t> sum_ns_{0};
};

class metrics {
 public:
  // Wire error codes tracked per API; others fall into "other".
  static constexpr std::array<int, 11> codes{0, 50001, 70001, 70002, 70003, 70004, 70005, 70009, 101001, 101050, -1};

  // `apis`: the names API requests are counted under (the route table's), by index; a request that names no
  // API counts under "unknown", index apis.size().
  explicit metrics(std::vector<std::string> apis = {});
  std::size_t unknown_api() const noexcept { return apis_.size(); }
  void request(std::size_t api, int error_code, double seconds) noexcept;

  counter events_applied, events_duplicate, events_late, events_refused;
  counter timers_fired, records_written, records_purged;
  counter connections_accepted, connections_rejected, http_errors, tls_handshake_failures;
  counter h2_connections, h2_streams;  // HTTP/2 connections served, streams the clients opened on them

  // HTTP/2 connections ended for abuse (GOAWAY ENHANCE_YOUR_CALM, or cut off when stalled), by reason.
  static constexpr std::array<std::string_view, 7> h2_abuse_reasons{
      "rapid_reset", "ping_flood", "settings_flood", "empty_frames", "flood", "stall", "other"};
  void h2_abuse_close(std::string_view reason) noexcept;  // an unknown reason counts as "other"
  histogram store_commit_seconds, store_read_seconds;
  // Cluster rate limits (limits/redis_rate_limiter.h): 1 while Redis decides, 0 while each node decides alone,
  // -1 when no Redis is configured (not rendered); the decisions a node took alone for want of Redis; the
  // decisions Redis took, and the script calls that took them (a call decides every check queued behind it).
  std::atomic<int> rate_limit_shared{-1};
  counter rate_limit_local_decisions;
  counter rate_limit_shared_decisions, rate_limit_redis_calls;

  std::string render() const;

 private:
  static std::size_t code_index(int code) noexcept;
  struct per_api {
    std::array<counter, codes.size()> requests{};
    histogram latency;
  };
  std::vector<std::string> apis_;
  std::vector<per_api> per_api_;  // apis_.size() + 1 ("unknown"); never resized (atomics do not move)
  std::array<counter, h2_abuse_reasons.size()> h2_abuse_closes_{};
};

}  // namespace callrec::obs
