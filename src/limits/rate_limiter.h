// The rate-limit port (SPEC 3): per app and per limit, with time as a parameter. The in-process token buckets
// (local_rate_limiter) are one implementation; one shared by a cluster (Redis) is another. Asynchronous,
// since a shared one asks over the network.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <cstdint>
#include <optional>

#include "limits/limits.h"

namespace callrec::limits {

class rate_limiter {
 public:
  virtual ~rate_limiter() = default;
  // Called once for each I/O thread's executor before it serves requests (an io_context run by one thread):
  // a limiter that talks to a server keeps a connection per thread. In-process limiters need nothing.
  virtual void attach(const boost::asio::any_io_executor& ex) { (void)ex; }
  // Admits a request of `app` under `limit` at now_ms (unix milliseconds) when at least one token is left, and
  // takes `cost` tokens (an event limit admits with cost 0 and is charged the batch once it is read).
  virtual boost::asio::awaitable<bool> admit(std::uint32_t app, limit_id limit, double cost, std::int64_t now_ms) = 0;
  // The same decision when it needs no waiting (an in-process limiter always decides at once), else nullopt:
  // callers try this first and await admit() only when it cannot say, so the usual request costs no coroutine.
  virtual std::optional<bool> admit_now(std::uint32_t app, limit_id limit, double cost, std::int64_t now_ms) {
    (void)app, (void)limit, (void)cost, (void)now_ms;
    return std::nullopt;
  }
  // Takes `cost` more tokens after an admission; the balance may go below zero, which delays the next one.
  virtual void charge(std::uint32_t app, limit_id limit, double cost, std::int64_t now_ms) = 0;
};

}  // namespace callrec::limits
