// What every store does the same way, above its adapter: the steps of an update (one slot per distinct call,
// the update function, the checks on what it produced, the writes in order), the contract on a record a store
// keeps, and the record counts per time bucket (exact totalNum). An adapter supplies the primitives of one
// transaction; sqlite/ and postgres/ keep only what is their database's.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "records/filter.h"
#include "records/record.h"
#include "records/wire.h"
#include "store/store.h"
#include "store/time_buckets.h"

namespace callrec::store_core {

// Collapses repeated call ids, keeping the first-seen order.
void unique_ids(std::vector<std::string>& ids);

// The callees of a record as stores keep them: space-joined, in invitation order.
std::string join_callees(const std::vector<std::string>& callees);

// The contract on a finished record a store keeps (ids are validated upstream; this guards the encoding).
result<void> check_record(const call_record& r, std::uint32_t sdkappid, std::string_view call_id);

// Record counts: per (app, span, bucket, result, type, media), added in the transaction that inserts or
// deletes the records (time_buckets.h).
struct count_key {
  std::uint32_t sdkappid = 0;
  int level = 0;  // index into buckets::count_spans
  std::int64_t bucket = 0;
  int result = 0;
  int type = 0;
  int media = 0;
  auto operator<=>(const count_key&) const = default;
};
using count_deltas = std::map<count_key, std::int64_t>;
void add_counts(count_deltas& d, std::uint32_t sdkappid, std::int64_t start_ts, call_result result, call_type type,
                media_type media, std::int64_t delta);

// What the stores' searches (find_records) decide alike.
//
// The index a search reads through: a filter naming a user, a caller or a room (the first of these it names) is
// read through that index (participants or rooms, aliased p in both stores' SQL), any other through the records'
// time index.
enum class search_driver { time, user, caller, room };
search_driver driver_of(const record_filter& f);
// The driving index's key: its column in participants or rooms, and the filter's value for it (a caller's rows
// are also the ones with is_caller set). Not for the time driver.
std::string_view index_column(search_driver d);
std::string_view index_key(const record_filter& f, search_driver d);
// Whether counting the matches needs more than the driving index: a filter on the records' columns, or on the
// other index.
bool needs_records(const record_filter& f, search_driver d);
// The seconds a page is read from: the filter's window [first, last], narrowed by its cursor.
std::pair<std::int64_t, std::int64_t> fetch_window(const record_filter& f, std::int64_t first, std::int64_t last);
// Offset pages at least this deep are located through the count buckets instead of skipping rows.
inline constexpr std::uint64_t offset_seek_threshold = 512;

// Locates a deep page through the count buckets instead of skipping rows: which bucket rows to read, level
// by level, and the window the page then starts in. The embedded store drives it from C++ (the PostgreSQL store
// walks the same way in SQL, in one recursive statement):
//   offset_seek s(segments, counts, offset, descending);
//   while (auto b = s.next()) s.feed(<the (bucket, n) rows of buckets [b->lo, b->hi] at b->level, in page order>);
//   s.narrow(lo, hi); offset = s.offset();
class offset_seek {
 public:
  // `segments` cover the window in ascending order and `counts` are their record counts.
  offset_seek(const std::vector<buckets::segment>& segments, const std::vector<std::uint64_t>& counts,
              std::uint64_t offset, bool descending);
  // The buckets to count next (GROUP BY bucket); nullopt once the page's finest bucket is known.
  std::optional<buckets::segment> next() const;
  void feed(const std::vector<std::pair<std::int64_t, std::uint64_t>>& bucket_counts);
  // Moves the window's start (its end, descending) to the bucket the page starts in.
  void narrow(std::int64_t& lo, std::int64_t& hi) const;
  // What is left to skip from there.
  std::uint64_t offset() const { return offset_; }

 private:
  std::optional<buckets::segment> target_;
  std::uint64_t offset_;
  bool descending_;
  bool done_ = false;
};

// The primitives of one transaction that an update needs from an adapter (duck-typed: run_update is a
// template). Failures of these are storage failures: the adapter rolls the whole transaction back.
//   result<call_slot> load(std::string_view call_id);          // the live state, or whether a record exists
//   result<void> put_live(std::string_view call_id, calls::call_state&& state, std::optional<std::int64_t> deadline_ms);
//   result<void> drop_live(std::string_view call_id);
//   result<bool> insert_record(const call_record& r);           // false: the call has a record already (kept)

// How one update ended: `storage` set means the transaction must roll back (and every update in it fails);
// otherwise `own` is this update's outcome (an update function that threw or produced a bad record fails
// alone, and writes nothing).
struct update_outcome {
  result<void> own;
  std::optional<callrec::error> storage;
};

// Runs `fn` over the calls `ids` (made unique here) of app `sdkappid` inside the adapter's transaction `txn`,
// checks what it produced, and writes it: the record of a call that ended (its live state dropped), the new
// live state of a call that changed. Returns how many records were stored through `records_stored`.
template <class Txn>
update_outcome run_update(Txn& txn, std::uint32_t sdkappid, std::vector<std::string>& ids, const update_fn& fn,
                          std::uint64_t& records_stored) {
  unique_ids(ids);
  std::vector<call_slot> slots;
  slots.reserve(ids.size());
  for (const auto& id : ids) {
    auto slot = txn.load(id);
    if (!slot) return {{}, std::move(slot).error()};
    slots.push_back(std::move(*slot));
  }
  try {
    fn(std::span<call_slot>(slots));
  } catch (const std::exception& e) {
    return {make_error(errc::internal, "internal error: the update failed", e.what()), std::nullopt};
  } catch (...) {
    return {make_error(errc::internal, "internal error: the update failed"), std::nullopt};
  }
  for (std::size_t i = 0; i < slots.size(); ++i) {
    if (slots[i].call_id != ids[i]) {
      return {make_error(errc::internal, "internal error: the update changed its calls"), std::nullopt};
    }
    if (slots[i].finished) {
      if (auto r = check_record(*slots[i].finished, sdkappid, ids[i]); !r) return {r, std::nullopt};
    }
  }
  for (auto& slot : slots) {
    if (slot.finished) {
      auto stored = txn.insert_record(*slot.finished);
      if (!stored) return {{}, std::move(stored).error()};
      if (*stored) ++records_stored;
      if (auto r = txn.drop_live(slot.call_id); !r) return {{}, r.error()};
    } else if (slot.changed && slot.state) {
      if (auto r = txn.put_live(slot.call_id, std::move(*slot.state), slot.deadline_ms); !r) return {{}, r.error()};
    } else if (slot.changed) {
      if (auto r = txn.drop_live(slot.call_id); !r) return {{}, r.error()};
    }
  }
  return {};
}

}  // namespace callrec::store_core
