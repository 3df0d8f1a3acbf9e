// The rate limits of SPEC 3 shared by every node of a cluster, in Redis: one token bucket per (app, limit)
// under the key "callrec:rl:<app>:<limit>", every check decided inside one Lua script call (atomic in Redis:
// no read-modify-write race between nodes); checks of a bucket queued on a node while its call is out share the
// next call. Each I/O thread has a connection of its own (hiredis is not thread-safe), its asynchronous API driven by
// that thread's io_context: a request's check goes out and its answer comes back on its own thread, and the
// coroutine waits for it without holding the thread.
//
// While Redis cannot be reached (not connected, or an answer later than `answer_within`), every decision is the
// node's own (local_rate_limiter, the same rates): a warning is logged once per outage, the metrics say so
// (callrec_rate_limit_shared_up 0, callrec_rate_limit_local_decisions_total), and the limiter reconnects by
// itself, once a second.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/error.h"
#include "limits/local_rate_limiter.h"
#include "limits/rate_limiter.h"
#include "obs/metrics.h"

namespace callrec::limits {

struct redis_options {
  std::string url;  // redis://[:password@]host[:port][/db]
  std::chrono::milliseconds answer_within{100};
  std::chrono::milliseconds reconnect_every{1000};
};

// What a redis:// URL names; an error for anything else.
struct redis_address {
  std::string host;
  int port = 6379;
  std::string password;
  int db = 0;
};
result<redis_address> parse_redis_url(std::string_view url);

class redis_rate_limiter final : public rate_limiter {
 public:
  // Connects nothing yet: each I/O thread gets its connection from attach(). Until one answers, decisions
  // are local.
  redis_rate_limiter(const redis_options& options, const std::vector<std::pair<std::uint32_t, rates>>& apps,
                     obs::metrics& metrics);
  // Closes the connections on their threads (posted: the contexts must still exist, or have shut down).
  ~redis_rate_limiter() override;

  // A connection for the thread that runs `ex`'s io_context (one thread per context), started there. admit,
  // admit_now and charge use the calling thread's connection and decide locally on a thread without one.
  void attach(const boost::asio::any_io_executor& ex) override;
  boost::asio::awaitable<bool> admit(std::uint32_t app, limit_id limit, double cost, std::int64_t now_ms) override;
  std::optional<bool> admit_now(std::uint32_t app, limit_id limit, double cost, std::int64_t now_ms) override;
  void charge(std::uint32_t app, limit_id limit, double cost, std::int64_t now_ms) override;

  // Whether every attached thread's connection is up (decisions are shared).
  bool shared_up() const noexcept;

  // Implementation (redis_rate_limiter.cpp).
  struct shared;
  struct link;

 private:
  std::shared_ptr<shared> shared_;
};

}  // namespace callrec::limits
