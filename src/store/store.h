// The storage ports (SPEC sections 4, 5, 8): what the application core asks of a store, and nothing of how a
// store does it. Nothing above src/store/ names a database; the embedded store (sqlite/) implements these,
// and PostgreSQL will.
//
// Every call is asynchronous (boost::asio::awaitable) and completes on the caller's executor: a store across
// the network never holds an I/O thread, and one that answers at once (the embedded store's reads, which take
// microseconds) completes without suspending. Each takes a deadline: a store that cannot answer by then gives
// errc::timeout (101001, "retry"). Failures are errc::unavailable (the store cannot be reached or refused
// the write), errc::timeout, or errc::internal (corrupt data, a bug); their `detail` may carry the database's
// own text, for the log only.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "calls/call_state.h"
#include "core/clock.h"
#include "core/error.h"
#include "records/filter.h"
#include "records/record.h"
#include "records/record_doc.h"

namespace callrec {

template <class T>
using awaitable = boost::asio::awaitable<T>;

// Records: the reads of the API.
class record_store {
 public:
  virtual ~record_store() = default;

  // The record of a call whose start is at or after `oldest_ts` (unix seconds: the app's retention window);
  // nullopt when there is none.
  virtual awaitable<result<std::optional<stored_record>>> get_record(std::uint32_t sdkappid, std::string_view call_id,
                                                                     std::int64_t oldest_ts, deadline due) = 0;
  // A hint, as early as a request names its call: get_record of it follows. A store may start a slow memory
  // read it will need (the embedded store's index slot: a cache miss of about 0.5 us on a 10M-record index)
  // so it overlaps the request's other work. Any thread; no effect on results.
  virtual void prefetch_record(std::uint32_t sdkappid, std::string_view call_id) noexcept {
    (void)sdkappid, (void)call_id;
  }
  // One page of a filter (records/filter.h; its window already clamped to retention), with the exact total.
  virtual awaitable<result<record_page>> find_records(const record_filter& filter, deadline due) = 0;
};

// One call as an update sees it.
struct call_slot {
  // In: what the store holds.
  std::string call_id;
  std::optional<calls::call_state> state;  // live state; empty if the call is unknown or ended (in and out)
  bool ended = false;                      // the call has a record: events for it are late
  // Out, set by the update function:
  bool changed = false;                     // persist `state` (with `deadline_ms`), or drop it when empty
  std::optional<std::int64_t> deadline_ms;  // the next timer of `state`, for claim_due_calls
  std::optional<call_record> finished;      // the call ended: store this record and drop the live state
};

// Runs under exclusive access to the named calls. Pure: a function of the slots it is given that writes only
// their outputs and what it captured for its own result, which it overwrites in full on every run. A store may
// run it more than once (a transaction retried after a conflict), each time on fresh slots: only the run
// whose writes committed counts, and metrics are counted from it after the commit, never inside.
using update_fn = std::function<void(std::span<call_slot>)>;

struct due_call {
  std::uint32_t sdkappid = 0;
  std::string call_id;
  std::int64_t deadline_ms = 0;
};

// Live calls and their timers.
class call_store {
 public:
  virtual ~call_store() = default;

  // Gives `fn` exclusive access to the named calls of one app (duplicates in `call_ids` collapse into one
  // slot, in first-seen order), then durably writes what it changed, atomically. Completes once the change is
  // durable (it survives a crash of the process) or failed. Past `due` it answers errc::timeout, and the
  // change may still be applied later: callers make their updates idempotent (eventIds).
  virtual awaitable<result<void>> update_calls(std::uint32_t sdkappid, std::vector<std::string> call_ids,
                                               update_fn fn, deadline due) = 0;

  // Claims up to `limit` live calls whose next timer is due at or before now_ms (unix milliseconds), earliest
  // first, for `lease`: until it runs out (or an update writes the call), no other claim returns them, so a
  // timer fires once even with several nodes claiming. A claim that was not followed by an update is simply
  // returned again once its lease ran out (a node that died mid-way).
  virtual awaitable<result<std::vector<due_call>>> claim_due_calls(std::int64_t now_ms, std::size_t limit,
                                                                   std::chrono::milliseconds lease) = 0;
};

// How long records are kept: each app's oldest start (unix seconds) still inside its window. A store applies
// it its own way (deleting rows, dropping whole time partitions); reads never return a record outside it.
struct retention_policy {
  struct app_window {
    std::uint32_t sdkappid = 0;
    std::int64_t oldest_ts = 0;
  };
  std::vector<app_window> apps;
};

struct retention_report {
  std::uint64_t records_removed = 0;
  bool complete = true;  // false: there is more to remove; apply the policy again
};

struct store_stats {
  std::uint64_t records = 0;
  std::uint64_t live_calls = 0;
  std::uint64_t commits = 0;            // write transactions committed
  std::uint64_t committed_updates = 0;  // update_calls it carried (group commit: several each)
};

class store : public record_store, public call_store {
 public:
  // Reachable and able to answer (readiness).
  virtual awaitable<result<void>> ping(deadline due) = 0;
  virtual awaitable<result<store_stats>> stats() = 0;
  // Removes what the policy leaves out, a bounded amount at a time so the API's reads and writes never wait
  // long for it: apply again while the report is not complete.
  virtual awaitable<result<retention_report>> apply_retention(const retention_policy& policy, deadline due) = 0;

  // An I/O thread's executor whose requests will call this store: a store may keep resources for that thread
  // (the PostgreSQL store: connections for its reads, so they go out and come back on the request's own thread).
  // Any thread. Contract: the executor's threads stop before the store is closed.
  virtual void attach(const boost::asio::any_io_executor& ex) { (void)ex; }

  // Waits for queued updates to be durable; no update is accepted after it (they answer errc::unavailable).
  // Reads still pending complete with an error. Not a coroutine: called when the I/O threads have stopped.
  virtual void close() = 0;
};

// Opens a store from the configuration: `url` is "sqlite:PATH", or a PostgreSQL URL (postgres:// or
// postgresql://, as libpq takes it).
struct store_settings {
  std::string url;
  // SQLite: synchronous=FULL, so an acknowledged batch survives a power loss too, not only a crash of the
  // process (slower).
  bool fsync_each_commit = false;
  // SQLite: the VFS to open the files with (null: the default). Tests put one that fails on purpose.
  const char* sqlite_vfs = nullptr;
  // PostgreSQL: connections per node (0: the store's default).
  std::size_t pg_connections = 0;
  // PostgreSQL: how long the open waits for the database to accept connections (a cluster's nodes may start
  // before it).
  std::chrono::seconds pg_connect_wait{10};
};
result<std::unique_ptr<store>> open_store(const store_settings& settings);

}  // namespace callrec
