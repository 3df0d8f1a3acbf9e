// The one storage interface (SPEC sections 4, 5, 8). Nothing above src/store/ names a database; the
// embedded store (sqlite/) and later PostgreSQL implement this.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "calls/call_state.h"
#include "core/error.h"
#include "records/filter.h"
#include "records/record.h"

namespace callrec {

// One call as seen by an update: its live state if in progress, and whether it already ended.
struct call_slot {
  std::string call_id;
  std::optional<calls::call_state> state;  // live state; empty if unknown or ended
  bool ended = false;                      // a record exists (events for it are late)
  // Set by the update function:
  bool changed = false;                    // persist `state` (with `deadline_ms`)
  std::optional<std::int64_t> deadline_ms; // next timer of `state`, indexed for due_calls
  std::optional<call_record> finished;     // the call ended: insert this record, drop the live state
};

struct due_call {
  std::uint32_t sdkappid = 0;
  std::string call_id;
  std::int64_t deadline_ms = 0;
};

struct store_stats {
  std::uint64_t records = 0;
  std::uint64_t live_calls = 0;
  std::uint64_t commits = 0;          // write transactions committed
  std::uint64_t committed_updates = 0;  // update_calls() jobs they carried (group commit: several each)
};

// The completion of an asynchronous read. It runs exactly once: either before the read call returns (the
// embedded store answers on the calling thread) or later on a store thread, so it must be quick.
template <class T>
using read_done = std::function<void(result<T>)>;

// Thread-safe. Synchronous reads may be called from any thread and return quickly. update_calls is
// asynchronous: `done` runs on a store thread after the change is durable (or failed), so callers must not
// block in it.
class store {
 public:
  using update_fn = std::function<void(std::vector<call_slot>&)>;
  using done_fn = std::function<void(result<void>)>;

  virtual ~store() = default;

  virtual result<std::optional<call_record>> get_record(std::uint32_t sdkappid, std::string_view call_id) = 0;
  virtual result<record_page> find_records(const record_filter& filter) = 0;
  // get_record's answer as the record's JSON object (records/wire.h), appended to `out`; false when there is
  // no such record. The default renders get_record's record; a store may write it straight from its row.
  virtual result<bool> get_record_json(std::uint32_t sdkappid, std::string_view call_id, std::string& out);

  // The reads of the API, asynchronous: the caller keeps its own deadline and does not wait past it. The
  // defaults answer inline from the synchronous reads (the embedded store, whose reads take microseconds and
  // are interrupted at `store_options::read_deadline`); a store across the network overrides them so that no
  // I/O thread waits for it. `filter` and `call_id` need only live until the call returns. A call that throws
  // has not started the read and never calls `done`. close() completes every read still pending, with an error.
  virtual void async_get_record(std::uint32_t sdkappid, std::string_view call_id,
                                read_done<std::optional<call_record>> done) {
    done(get_record(sdkappid, call_id));
  }
  virtual void async_find_records(const record_filter& filter, read_done<record_page> done) {
    done(find_records(filter));
  }
  // True while the async reads above are the defaults, answering inline: callers then take the synchronous
  // read directly and skip the completion's shared state. A store that overrides them returns false.
  virtual bool reads_inline() const noexcept { return true; }

  // Gives `fn` exclusive access to the named calls of one app (duplicates in `call_ids` are allowed and
  // collapse into one slot, in first-seen order), then durably writes what it changed, atomically with
  // other updates committed in the same group. `fn` must be quick and must not call the store. After close(),
  // `done` is called at once, on the calling thread, with an errc::internal error.
  virtual void update_calls(std::uint32_t sdkappid, std::vector<std::string> call_ids, update_fn fn, done_fn done) = 0;

  // Live calls whose deadline is at or before now_ms, earliest first.
  virtual result<std::vector<due_call>> due_calls(std::int64_t now_ms, std::size_t limit) = 0;

  // Removes records of an app that started before `before_ts` (unix seconds); at most `limit` per call so
  // queries are never blocked for long. Returns how many were removed.
  virtual result<std::uint64_t> purge_records(std::uint32_t sdkappid, std::int64_t before_ts, std::size_t limit) = 0;

  virtual result<store_stats> stats() = 0;
  virtual result<void> ping() = 0;  // readiness

  // Waits for queued updates to be durable; no update is accepted after it.
  virtual void close() = 0;
};

// Opens a store from its configuration string: "sqlite:PATH" (PostgreSQL URLs come later).
struct store_options {
  std::string url;
  std::size_t max_group = 4096;  // at most this many update_calls in one commit
  // An acknowledged update is committed, which survives a crash of the process. Surviving a power loss
  // too needs an fsync per commit (SQLite: synchronous=FULL instead of NORMAL), at a cost in throughput.
  bool fsync_each_commit = false;
  // A read (a lookup, a page, due timers) still running after this long is interrupted and fails with
  // errc::internal (wire 101001, "retry"), so one slow query cannot hold an I/O thread past the API's
  // 3-second deadline.
  std::chrono::milliseconds read_deadline{3000};
};
result<std::unique_ptr<store>> open_store(const store_options& options);

}  // namespace callrec
