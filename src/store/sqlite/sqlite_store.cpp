#include "store/sqlite/sqlite_store.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <exception>
#include <future>
#include <map>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <variant>

#include <boost/asio/this_coro.hpp>

#include "records/wire.h"
#include "store/sqlite/record_docs.h"
#include "store/sqlite/schema.h"
#include "store/sqlite/sqlite_db.h"
#include "store/store_core.h"
#include "core/thread_completion.h"
#include "store/time_buckets.h"

namespace callrec::sqlite {
namespace {

using buckets::count_spans;
using buckets::segment;
using buckets::span_count;
using store_core::count_deltas;
using store_core::count_key;

// Connection settings. The page cache is per connection: the writer gets a larger one (64 MiB; its writes are
// appends and sorted batches into the last hours, so it needs the pages at the ends of its trees, not a tree's
// worth), readers smaller ones. No mmap: mapped database pages count as resident memory, and the OS page cache serves reads as well.
constexpr const char* writer_pragmas =
    "PRAGMA busy_timeout = 5000; PRAGMA cache_size = -65536; PRAGMA temp_store = MEMORY;"
    "PRAGMA mmap_size = 0; PRAGMA journal_size_limit = 268435456;";
constexpr const char* reader_pragmas =
    "PRAGMA busy_timeout = 5000; PRAGMA cache_size = -16384; PRAGMA temp_store = MEMORY;"
    "PRAGMA mmap_size = 0; PRAGMA query_only = 1;";

// WAL checkpoints: once the WAL holds checkpoint_wal_pages, a thread with a connection of its own copies it
// into the database while the writer goes on. The WAL restarts from its beginning only after a checkpoint
// that completed before a write transaction began, which under steady writes a background pass never
// does; so at hard_wal_pages the writer copies the remainder (what was written since the last background
// pass) itself, and the WAL restarts. This bounds the WAL and keeps most checkpoint work off the writer.
constexpr int checkpoint_wal_pages = 1000;  // 4 MiB of 4 KiB pages
// 256 MiB. Each writer checkpoint stalls every queued batch for about one background interval's worth of
// copying plus two fsyncs, whatever this limit; a higher limit makes them rarer (the measurements that chose
// it: docs/ARCHITECTURE.md).
constexpr int hard_wal_pages = 65536;

// Records removed per app in one retention slice (one write transaction).
constexpr std::size_t retention_slice = 5000;


// ---------------------------------------------------------------------------------------------------------
// Records <-> rows

void split_callees(std::string_view s, std::vector<std::string>& out) {
  out.clear();
  out.reserve(callee_count(s));  // one allocation, not log2(n)
  for_each_callee(s, [&out](std::string_view c) { out.emplace_back(c); });
}

// The same columns as a call_record.
bool read_record(const stmt_use& q, call_record& r) {
  record_fields f;
  if (!read_fields(q, f)) return false;
  r = to_record(f);
  return true;
}

// ---------------------------------------------------------------------------------------------------------
// Keys and in-memory state of the writer

struct call_key {
  std::uint32_t sdkappid = 0;
  std::string call_id;
  bool operator==(const call_key&) const = default;
};
struct call_key_hash {
  std::size_t operator()(const call_key& k) const noexcept {
    return std::hash<std::string_view>{}(k.call_id) ^ (std::size_t{k.sdkappid} * 0x9e3779b97f4a7c15ULL);
  }
};

struct live_entry {
  calls::call_state state;
  std::optional<std::int64_t> deadline_ms;
};
using live_map = std::unordered_map<call_key, live_entry, call_key_hash>;

struct update_job {
  std::uint32_t sdkappid = 0;
  std::vector<std::string> call_ids;
  update_fn fn;
  completion<void> done;
};
struct purge_job {
  std::uint32_t sdkappid = 0;
  std::int64_t before_ts = 0;
  std::size_t limit = 0;
  completion<std::uint64_t> done;
};
// Moves everything in index_queue into participants and rooms (a read that needs them asked).
struct flush_job {
  completion<void> done;
};
using job = std::variant<update_job, purge_job, flush_job>;

// The hour of a second (the lead of the participants and rooms keys), also before 1970.
constexpr std::int64_t hour_of(std::int64_t ts) noexcept { return buckets::floor_div(ts, 3600); }

// What one group of updates changed, to write at its end or to undo if its transaction fails.
struct group_state {
  std::unordered_map<call_key, std::optional<live_entry>, call_key_hash> before;  // pre-group live state
  count_deltas deltas;
  std::uint64_t records_added = 0;
  std::uint64_t queued = 0;  // rows appended to index_queue
  std::vector<doc_entry> docs_added;  // taken out of the index again on a rollback
  std::optional<callrec::error> failure;  // a storage failure: the whole group rolls back
};

// ---------------------------------------------------------------------------------------------------------
// Queries assembled from a filter

using sql_arg = std::variant<std::int64_t, std::string_view>;

struct sql_query {
  std::string text;
  std::vector<sql_arg> args;
  sql_query& add(std::string_view t) {
    text += t;
    return *this;
  }
  sql_query& add(std::string_view t, sql_arg a) {
    text += t;
    args.push_back(a);
    return *this;
  }
};

void bind_all(stmt_use& q, const std::vector<sql_arg>& args) {
  for (std::size_t i = 0; i < args.size(); ++i) {
    std::visit([&](auto v) { q.bind(static_cast<int>(i + 1), v); }, args[i]);
  }
}

// Runs one find_records inside a read transaction of `db`.
class record_search {
 public:
  record_search(connection& db, const record_filter& f) : db_(db), f_(f), driver_(store_core::driver_of(f)) {
    first_ = std::clamp(f.start_ts, buckets::min_second, buckets::max_second);
    last_ = std::clamp(f.end_ts, buckets::min_second, buckets::max_second);
  }

  result<record_page> run() {
    record_page page;
    if (first_ > last_) return page;
    if (by_index()) {
      auto any = hour_bounds();
      if (!any) return std::move(any).error();
      if (!*any) return page;
    }
    auto total = driver_ == driver::time ? bucket_total() : index_total();
    if (!total) return std::move(total).error();
    page.total = *total;
    if (page.total == 0 || f_.limit == 0) return page;
    if (!f_.after && f_.offset >= page.total) return page;

    auto [lo, hi] = store_core::fetch_window(f_, first_, last_);
    std::uint64_t offset = f_.after ? 0 : f_.offset;
    if (f_.after) {
      if (lo > hi) return page;
    } else if (driver_ == driver::time && offset >= store_core::offset_seek_threshold) {
      if (auto r = seek(lo, hi, offset); !r) return std::move(r).error();
    }
    if (auto r = fetch(lo, hi, offset, page); !r) return std::move(r).error();
    return page;
  }

 private:
  using driver = store_core::search_driver;

  // The user and caller filters walk participants, the room filter rooms (both aliased p); their rows are
  // ordered by (hour, start_ts, call_id), which is the order of (start_ts, call_id).
  bool by_index() const { return driver_ != driver::time; }

  // "FROM ... WHERE ..." for records of the filter with start_ts in [lo, hi]. Without `join`, the
  // participant drivers read only participants (enough to count when no other filter is set).
  void from_where(sql_query& q, std::int64_t lo, std::int64_t hi, bool join) const {
    const auto app = static_cast<std::int64_t>(f_.sdkappid);
    if (driver_ == driver::time) {
      q.add(" FROM records r WHERE r.sdkappid = ?", app);
    } else {
      // CROSS JOIN fixes the join order in SQLite: walk the index rows, look each record up by its primary key.
      std::string from = driver_ == driver::room ? " FROM rooms p" : " FROM participants p";
      if (join) from += " CROSS JOIN records r INDEXED BY sqlite_autoindex_records_1";
      q.add(from + " WHERE p.sdkappid = ?", app);
      // One seek per hour of the window that holds rows of the app (the hours come from a recursive CTE, so the
      // statement text, and its cached plan, stay the same whatever the window).
      q.add(" AND p.hour IN (WITH RECURSIVE d(x) AS (SELECT ?", std::max(hour_of(lo), hour_lo_));
      q.add(" UNION ALL SELECT x + 1 FROM d WHERE x < ?) SELECT x FROM d)", std::min(hour_of(hi), hour_hi_));
      q.add(" AND p." + std::string(store_core::index_column(driver_)) + " = ?", store_core::index_key(f_, driver_));
      if (driver_ == driver::caller) q.add(" AND p.is_caller = 1");
    }
    q.add(by_index() ? " AND p.start_ts >= ?" : " AND r.start_ts >= ?", lo);
    q.add(by_index() ? " AND p.start_ts <= ?" : " AND r.start_ts <= ?", hi);
    if (by_index() && join) {
      q.add(" AND r.sdkappid = p.sdkappid AND r.start_ts = p.start_ts AND r.call_id = p.call_id");
    }
    if (!by_index() || join) add_record_filters(q, "r.");
  }

  // The first and last hour with index rows of the app; false when there is none.
  result<bool> hour_bounds() {
    const std::string table = driver_ == driver::room ? "rooms" : "participants";
    for (const bool last : {false, true}) {
      sql_query q;
      q.add("SELECT hour FROM " + table + " WHERE sdkappid = ?", static_cast<std::int64_t>(f_.sdkappid));
      q.add(last ? " ORDER BY hour DESC LIMIT 1" : " ORDER BY hour LIMIT 1");
      sqlite3_stmt* s = db_.cached(q.text);
      if (!s) return db_.last_error("prepare");
      stmt_use use(s);
      bind_all(use, q.args);
      const int rc = use.step();
      if (rc == SQLITE_DONE) return false;
      if (rc != SQLITE_ROW) return db_.last_error("hours");
      (last ? hour_hi_ : hour_lo_) = use.int64(0);
    }
    return true;
  }

  void add_record_filters(sql_query& q, std::string_view alias) const {
    auto col = [&](std::string_view name) {
      std::string s = " AND ";
      s += alias;
      s += name;
      s += " = ?";
      return s;
    };
    if (f_.result) q.add(col("result"), static_cast<std::int64_t>(*f_.result));
    if (f_.type) q.add(col("call_type"), static_cast<std::int64_t>(*f_.type));
    if (f_.media) q.add(col("media"), static_cast<std::int64_t>(*f_.media));
    if (driver_ != driver::time) {
      if (f_.caller && driver_ != driver::caller) q.add(col("caller"), std::string_view(*f_.caller));
      if (f_.room_id && driver_ != driver::room) q.add(col("room_id"), std::string_view(*f_.room_id));
    }
  }

  result<std::int64_t> scalar(const sql_query& q) {
    sqlite3_stmt* s = db_.cached(q.text);
    if (!s) return db_.last_error("prepare");
    stmt_use use(s);
    bind_all(use, q.args);
    int rc = use.step();
    if (rc == SQLITE_ROW) return use.int64(0);
    if (rc == SQLITE_DONE) return std::int64_t{0};
    return db_.last_error("count");
  }

  // Exact count over the driving index (the selective filters: user, caller, room).
  result<std::uint64_t> index_total() {
    sql_query q;
    q.add("SELECT COUNT(*)");
    from_where(q, first_, last_, store_core::needs_records(f_, driver_));
    auto n = scalar(q);
    if (!n) return std::move(n).error();
    return static_cast<std::uint64_t>(*n);
  }

  void bucket_where(sql_query& q, int level, std::int64_t lo, std::int64_t hi) const {
    q.add(" FROM record_counts WHERE sdkappid = ?", static_cast<std::int64_t>(f_.sdkappid));
    q.add(" AND span_s = ?", count_spans[level]);
    q.add(" AND bucket >= ?", lo).add(" AND bucket <= ?", hi);
    add_record_filters(q, "");
  }

  result<std::uint64_t> segment_count(const segment& seg) {
    sql_query q;
    if (seg.level == segment::exact) {
      q.add("SELECT COUNT(*)");
      from_where(q, seg.lo, seg.hi, true);
    } else {
      q.add("SELECT COALESCE(SUM(n), 0)");
      bucket_where(q, seg.level, seg.lo, seg.hi);
    }
    auto n = scalar(q);
    if (!n) return std::move(n).error();
    return static_cast<std::uint64_t>(*n);
  }

  // Whole buckets from the count table, exact counts only for the partial finest buckets at the edges.
  result<std::uint64_t> bucket_total() {
    std::uint64_t total = 0;
    segments_ = buckets::cover(first_, last_);
    for (const auto& seg : segments_) {
      auto n = segment_count(seg);
      if (!n) return std::move(n).error();
      counts_.push_back(*n);
      total += *n;
    }
    return total;
  }

  // Narrows [lo, hi] and `offset` so that the page starts within the finest bucket holding its first record:
  // whole buckets before it (in the page order) are skipped by their counts, not by reading rows.
  result<void> seek(std::int64_t& lo, std::int64_t& hi, std::uint64_t& offset) {
    store_core::offset_seek seeker(segments_, counts_, offset, f_.descending);
    while (const auto b = seeker.next()) {
      sql_query q;
      q.add("SELECT bucket, SUM(n)");
      bucket_where(q, b->level, b->lo, b->hi);
      q.add(f_.descending ? " GROUP BY bucket ORDER BY bucket DESC" : " GROUP BY bucket ORDER BY bucket");
      sqlite3_stmt* s = db_.cached(q.text);
      if (!s) return db_.last_error("prepare");
      std::vector<std::pair<std::int64_t, std::uint64_t>> rows;
      {
        stmt_use use(s);
        bind_all(use, q.args);
        int rc;
        while ((rc = use.step()) == SQLITE_ROW) rows.emplace_back(use.int64(0), static_cast<std::uint64_t>(use.int64(1)));
        if (rc != SQLITE_DONE) return db_.last_error("seek");
      }
      seeker.feed(rows);
    }
    seeker.narrow(lo, hi);
    offset = seeker.offset();
    return {};
  }

  result<void> fetch(std::int64_t lo, std::int64_t hi, std::uint64_t offset, record_page& page) {
    const std::string_view k = by_index() ? "p" : "r";
    sql_query q;
    q.add("SELECT ").add(record_columns);
    from_where(q, lo, hi, true);
    if (f_.after) {
      std::string cond = " AND (";
      cond.append(k).append(f_.descending ? ".start_ts < ?" : ".start_ts > ?");
      q.add(cond, f_.after->start_ts);
      cond = " OR ";
      cond.append(k).append(f_.descending ? ".call_id < ?)" : ".call_id > ?)");
      q.add(cond, std::string_view(f_.after->call_id));
    }
    std::string order = " ORDER BY ";
    if (by_index()) order.append(f_.descending ? "p.hour DESC, " : "p.hour, ");
    order.append(k).append(".start_ts").append(f_.descending ? " DESC, " : ", ");
    order.append(k).append(".call_id").append(f_.descending ? " DESC" : "");
    q.add(order);
    q.add(" LIMIT ?", static_cast<std::int64_t>(f_.limit) + 1);
    q.add(" OFFSET ?", static_cast<std::int64_t>(std::min<std::uint64_t>(offset, INT64_MAX)));

    sqlite3_stmt* s = db_.cached(q.text);
    if (!s) return db_.last_error("prepare");
    stmt_use use(s);
    bind_all(use, q.args);
    page.records.reserve(std::min<std::uint64_t>(f_.limit, page.total));
    int rc;
    while ((rc = use.step()) == SQLITE_ROW) {
      if (page.records.size() == f_.limit) {
        const auto& last = page.records.back();
        page.next = record_cursor{last.start_ts, last.call_id};
        break;
      }
      if (!read_record(use, page.records.emplace_back())) return corrupt_record();
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) return db_.last_error("page");
    return {};
  }

  connection& db_;
  const record_filter& f_;
  driver driver_;
  std::int64_t first_ = 0, last_ = 0;
  std::vector<segment> segments_;
  std::vector<std::uint64_t> counts_;
  std::int64_t hour_lo_ = 0, hour_hi_ = -1;  // by_index(): the hours with rows of the app (hour_bounds)
};

// ---------------------------------------------------------------------------------------------------------
// Writer statements

// A call has one record: the first one stays (put_doc tells; the writer is the only inserter).
constexpr const char* sql_insert_record =
    "INSERT INTO records (sdkappid, start_ts, call_id, media, call_type, result, room_id, accept_ts, end_ts, "
    "caller, callees) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
constexpr const char* sql_queue_index =
    "INSERT INTO index_queue (kind, sdkappid, hour, key, start_ts, call_id, is_caller) VALUES (?, ?, ?, ?, ?, ?, ?)";
// The batch moves in key order (each page of an hour's rows is written once a batch). A caller who is also
// listed as a callee keeps is_caller: that row comes first, the other is ignored.
constexpr const char* sql_flush_participants =
    "INSERT OR IGNORE INTO participants (sdkappid, hour, user_id, start_ts, call_id, is_caller) "
    "SELECT sdkappid, hour, key, start_ts, call_id, is_caller FROM index_queue WHERE kind = 0 "
    "ORDER BY sdkappid, hour, key, start_ts, call_id, is_caller DESC";
constexpr const char* sql_flush_rooms =
    "INSERT OR IGNORE INTO rooms (sdkappid, hour, room_id, start_ts, call_id) "
    "SELECT sdkappid, hour, key, start_ts, call_id FROM index_queue WHERE kind = 1 "
    "ORDER BY sdkappid, hour, key, start_ts, call_id";
constexpr const char* sql_clear_index_queue = "DELETE FROM index_queue";
constexpr const char* sql_upsert_count =
    "INSERT INTO record_counts (sdkappid, span_s, bucket, result, call_type, media, n) VALUES (?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (sdkappid, span_s, bucket, result, call_type, media) DO UPDATE SET n = n + excluded.n";
constexpr const char* sql_delete_empty_count =
    "DELETE FROM record_counts WHERE sdkappid = ? AND span_s = ? AND bucket = ? AND result = ? AND call_type = ? "
    "AND media = ? AND n <= 0";
constexpr const char* sql_upsert_live =
    "INSERT INTO live_calls (sdkappid, call_id, state, deadline_ms) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (sdkappid, call_id) DO UPDATE SET state = excluded.state, deadline_ms = excluded.deadline_ms";
constexpr const char* sql_delete_live = "DELETE FROM live_calls WHERE sdkappid = ? AND call_id = ?";
constexpr const char* sql_purge_select =
    "SELECT start_ts, call_id, caller, callees, result, call_type, media, room_id FROM records "
    "WHERE sdkappid = ? AND start_ts < ? ORDER BY start_ts, call_id LIMIT ?";
constexpr const char* sql_delete_record = "DELETE FROM records WHERE sdkappid = ? AND start_ts = ? AND call_id = ?";
constexpr const char* sql_delete_participant =
    "DELETE FROM participants WHERE sdkappid = ? AND hour = ? AND user_id = ? AND start_ts = ? AND call_id = ?";
constexpr const char* sql_delete_room =
    "DELETE FROM rooms WHERE sdkappid = ? AND hour = ? AND room_id = ? AND start_ts = ? AND call_id = ?";

// ---------------------------------------------------------------------------------------------------------

class sqlite_store final : public store {
 public:
  sqlite_store(sqlite_store_options options, std::unique_ptr<connection> writer)
      : options_(std::move(options)), writer_(std::move(writer)) {}

  // Loads the live calls and the record count, then starts the writer thread.
  result<void> start() {
    {
      sqlite3_stmt* s = writer_->cached_static("SELECT sdkappid, call_id, state, deadline_ms FROM live_calls");
      if (!s) return writer_->last_error("prepare");
      stmt_use q(s);
      int rc;
      while ((rc = q.step()) == SQLITE_ROW) {
        call_key key{static_cast<std::uint32_t>(q.int64(0)), std::string(q.text(1))};
        auto state = calls::decode(q.blob(2));
        if (!state) {
          return make_error(errc::internal, "live call " + key.call_id + " of app " + std::to_string(key.sdkappid) +
                                                " cannot be decoded: " + state.error().message);
        }
        std::optional<std::int64_t> deadline;
        if (!q.is_null(3)) deadline = q.int64(3);
        live_.emplace(std::move(key), live_entry{std::move(*state), deadline});
      }
      if (rc != SQLITE_DONE) return writer_->last_error("load live calls");
    }
    auto n = writer_->query_int("SELECT COALESCE(SUM(n), 0) FROM record_counts WHERE span_s = 86400");
    if (!n) return std::move(n).error();
    records_.store(static_cast<std::uint64_t>(*n));
    if (auto r = load_doc_index(*writer_, docs_); !r) return r;
    auto queued = writer_->query_int("SELECT COUNT(*) FROM index_queue");
    if (!queued) return std::move(queued).error();
    queued_.store(static_cast<std::uint64_t>(*queued));
    live_count_.store(live_.size());

    auto ckpt = connection::open(options_.path, SQLITE_OPEN_READWRITE, options_.vfs);
    if (!ckpt) return std::move(ckpt).error();
    checkpointer_ = std::move(*ckpt);
    // A connection learns that the database is in WAL mode when it first reads it.
    if (auto r = checkpointer_->query_int("SELECT COUNT(*) FROM sqlite_master"); !r) return std::move(r).error();
    sqlite3_wal_hook(writer_->handle(), &sqlite_store::on_commit, this);  // replaces automatic checkpoints
    checkpoint_thread_ = std::thread([this] { checkpoint_loop(); });
    writer_thread_ = std::thread([this] { writer_loop(); });
    return {};
  }

  ~sqlite_store() override { close(); }

  void prefetch_record(std::uint32_t sdkappid, std::string_view call_id) noexcept override {
    docs_.prefetch(call_hash(sdkappid, call_id));
  }

  awaitable<result<std::optional<stored_record>>> get_record(std::uint32_t sdkappid, std::string_view call_id,
                                                             std::int64_t oldest_ts, deadline due) override {
    // Read here, on the caller's thread: a lookup takes about a microsecond, less than any hand-over.
    co_return read(due, [&](connection& db) { return read_doc(db, docs_, sdkappid, call_id, oldest_ts); });
  }

  awaitable<result<record_page>> find_records(const record_filter& filter, deadline due) override {
    if ((filter.user_id || filter.caller || filter.room_id) && queued_.load(std::memory_order_acquire) > 0) {
      // Those filters read participants or rooms: rows still in index_queue move there first (with every
      // update queued before), so the answer holds each record acknowledged before the request.
      auto flushed = co_await await_store_thread<void>(
          [&](completion<void> done) {
            {
              std::lock_guard lock(queue_mu_);
              if (!closing_) {
                queue_.emplace_back(flush_job{std::move(done)});
                queue_cv_.notify_one();
                return;
              }
            }
            done(closed_error());
          },
          due, "the store did not prepare the page within the deadline; retry");
      if (!flushed) co_return std::move(flushed).error();
    }
    // One read transaction: the total and the page come from the same snapshot.
    co_return read(due, [&](connection& db) { return record_search(db, filter).run(); });
  }

  awaitable<result<void>> update_calls(std::uint32_t sdkappid, std::vector<std::string> call_ids, update_fn fn,
                                       deadline due) override {
    co_return co_await await_store_thread<void>(
        [&](completion<void> done) {
          {
            std::lock_guard lock(queue_mu_);
            if (!closing_) {
              queue_.emplace_back(update_job{sdkappid, std::move(call_ids), std::move(fn), std::move(done)});
              queue_cv_.notify_one();
              return;
            }
          }
          done(closed_error());
        },
        due, "the store did not commit the update within the deadline; retry (it may still be applied)");
  }

  awaitable<result<std::vector<due_call>>> claim_due_calls(std::int64_t now_ms, std::size_t limit,
                                                          std::chrono::milliseconds lease) override {
    std::size_t leased = 0;
    {
      std::lock_guard lock(leases_mu_);
      std::erase_if(leases_, [now_ms](const auto& l) { return l.second <= now_ms; });
      leased = leases_.size();
    }
    // Calls under a lease are read again and skipped: ask for as many more.
    auto due = read(clock_deadline(), [&](connection& db) -> result<std::vector<due_call>> {
      sqlite3_stmt* s = db.cached_static(
          "SELECT sdkappid, call_id, deadline_ms FROM live_calls WHERE deadline_ms IS NOT NULL AND deadline_ms <= ? "
          "ORDER BY deadline_ms, sdkappid, call_id LIMIT ?");
      if (!s) return db.last_error("prepare");
      stmt_use q(s);
      q.bind(1, now_ms);
      q.bind(2, static_cast<std::int64_t>(std::min<std::size_t>(limit + leased, INT64_MAX)));
      std::vector<due_call> out;
      int rc;
      while ((rc = q.step()) == SQLITE_ROW) {
        out.push_back(due_call{static_cast<std::uint32_t>(q.int64(0)), std::string(q.text(1)), q.int64(2)});
      }
      if (rc != SQLITE_DONE) return db.last_error("due calls");
      return out;
    });
    if (!due) co_return due;
    std::vector<due_call> claimed;
    std::lock_guard lock(leases_mu_);
    for (auto& d : *due) {
      if (claimed.size() == limit) break;
      call_key key{d.sdkappid, d.call_id};
      if (leases_.contains(key)) continue;
      if (lease.count() > 0) leases_.emplace(std::move(key), now_ms + lease.count());  // none: just a look
      claimed.push_back(std::move(d));
    }
    co_return claimed;
  }

  awaitable<result<retention_report>> apply_retention(const retention_policy& policy, deadline due) override {
    retention_report report;
    for (const auto& app : policy.apps) {
      const std::uint32_t sdkappid = app.sdkappid;
      const std::int64_t before = app.oldest_ts;
      auto n = co_await await_store_thread<std::uint64_t>(
          [&](completion<std::uint64_t> done) {
            {
              std::lock_guard lock(queue_mu_);
              if (!closing_) {
                queue_.emplace_back(purge_job{sdkappid, before, retention_slice, std::move(done)});
                queue_cv_.notify_one();
                return;
              }
            }
            done(closed_error());
          },
          due, "retention did not finish its slice within the deadline");
      if (!n) co_return std::move(n).error();
      report.records_removed += *n;
      if (*n == retention_slice) report.complete = false;
    }
    co_return report;
  }

  awaitable<result<store_stats>> stats() override {
    co_return store_stats{records_.load(std::memory_order_relaxed), live_count_.load(std::memory_order_relaxed),
                          commits_.load(std::memory_order_relaxed), committed_updates_.load(std::memory_order_relaxed)};
  }

  awaitable<result<void>> ping(deadline due) override {
    {
      std::lock_guard lock(queue_mu_);
      if (closing_) co_return closed_error();
    }
    co_return read(due, [&](connection& db) -> result<void> {
      auto n = db.query_int("SELECT COUNT(*) FROM sqlite_master");
      if (!n) return std::move(n).error();
      return {};
    });
  }

  void close() override {
    std::lock_guard close_lock(close_mu_);
    {
      std::lock_guard lock(queue_mu_);
      closing_ = true;
    }
    queue_cv_.notify_all();
    if (writer_thread_.joinable()) writer_thread_.join();
    {
      std::lock_guard lock(checkpoint_mu_);
      checkpoint_stop_ = true;
    }
    checkpoint_cv_.notify_all();
    if (checkpoint_thread_.joinable()) checkpoint_thread_.join();
  }

 private:
  // -------------------------------------------------------------------------------------------------------
  // Readers: a pool of read-only connections, each used by one thread at a time.

  // A pooled read connection keeps its read transaction (its snapshot) open between uses for as long as the
  // writer has committed nothing since: a lookup then costs no transaction begin and end (WAL read locks).
  // A commit bumps commit_gen_, and the next use starts a fresh snapshot, so reads never miss a write that
  // was acknowledged before they began. Idle connections with stale snapshots are closed off before each
  // checkpoint, so they do not pin the WAL.
  struct reader_slot {
    std::unique_ptr<connection> conn;
    std::uint64_t gen = 0;  // commit_gen_ when the snapshot was taken
    bool open = false;      // a read transaction is open
    // When the current read must end; SQLite's progress handler (every 1000 VM steps) interrupts it after.
    std::unique_ptr<std::chrono::steady_clock::time_point> deadline =
        std::make_unique<std::chrono::steady_clock::time_point>();

    static int past_deadline(void* deadline) {
      return std::chrono::steady_clock::now() > *static_cast<std::chrono::steady_clock::time_point*>(deadline);
    }

    // Starts a read: arms its deadline and makes sure the snapshot is no older than the last commit.
    result<void> snapshot(const std::atomic<std::uint64_t>& commit_gen, callrec::deadline due) {
      *deadline = due;
      const std::uint64_t now = commit_gen.load(std::memory_order_acquire);
      if (open && gen == now) return {};
      end_snapshot();
      if (auto r = run_simple(*conn, "BEGIN"); !r) return r;
      // The read transaction starts at the first read, after `now` was taken: it holds at least the
      // commits counted in `now`.
      gen = now;
      open = true;
      return {};
    }
    void end_snapshot() {
      if (open || !sqlite3_get_autocommit(conn->handle())) (void)run_simple(*conn, "ROLLBACK");
      open = false;
    }
  };

  struct reader_lease : reader_slot {
    sqlite_store* owner;
    reader_lease(sqlite_store* o, reader_slot s) : reader_slot(std::move(s)), owner(o) {}
    reader_lease(reader_lease&& other) noexcept : reader_slot(std::move(other)), owner(other.owner) {}
    reader_lease& operator=(reader_lease&&) = delete;
    ~reader_lease() {
      if (conn) owner->release_reader(std::move(static_cast<reader_slot&>(*this)));
    }
  };

  result<reader_lease> acquire_reader() {
    {
      std::lock_guard lock(readers_mu_);
      if (!idle_readers_.empty()) {
        auto slot = std::move(idle_readers_.back());
        idle_readers_.pop_back();
        return reader_lease(this, std::move(slot));
      }
    }
    auto c = connection::open(options_.path, SQLITE_OPEN_READONLY, options_.vfs);
    if (!c) return std::move(c).error();
    if (auto r = (*c)->exec(reader_pragmas); !r) return r.error();
    reader_slot slot;
    slot.conn = std::move(*c);
    sqlite3_progress_handler(slot.conn->handle(), 1000, &reader_slot::past_deadline, slot.deadline.get());
    return reader_lease(this, std::move(slot));
  }

  void release_reader(reader_slot slot) {
    // A transaction open without our knowing (a failed ROLLBACK) would pin an old snapshot: drop that one.
    if (!slot.open && !sqlite3_get_autocommit(slot.conn->handle())) return;
    // A snapshot that a commit made stale is ended now rather than held in the pool (it would pin the WAL).
    if (slot.open && slot.gen != commit_gen_.load(std::memory_order_acquire)) slot.end_snapshot();
    std::lock_guard lock(readers_mu_);
    idle_readers_.push_back(std::move(slot));
  }

  // Ends the snapshots of idle readers that a commit has made stale (they would keep the WAL from restarting).
  void end_stale_snapshots() {
    const std::uint64_t now = commit_gen_.load(std::memory_order_acquire);
    std::lock_guard lock(readers_mu_);
    for (auto& slot : idle_readers_) {
      if (slot.open && slot.gen != now) slot.end_snapshot();
    }
  }

  // Runs `fn(connection&)` (which returns a result) on a pooled reader, in its snapshot, interrupted past
  // `due` (errc::timeout); a failed read gives the snapshot up.
  template <class Fn>
  auto read(deadline due, Fn&& fn) -> decltype(fn(std::declval<connection&>())) {
    auto lease = acquire_reader();
    if (!lease) return std::move(lease).error();
    if (auto r = lease->snapshot(commit_gen_, due); !r) return std::move(r).error();
    auto r = fn(*lease->conn);
    if (!r) lease->end_snapshot();
    return r;
  }

  // Reads that run outside a request (timers) still end: the API's deadline.
  static deadline clock_deadline() { return std::chrono::steady_clock::now() + std::chrono::seconds(3); }

  static callrec::error closed_error() { return make_error(errc::unavailable, "the store is closed; retry"); }

  static result<void> run_simple(connection& db, const char* sql) {  // sql: a literal
    sqlite3_stmt* s = db.cached_static(sql);
    if (!s) return db.last_error("prepare");
    stmt_use q(s);
    if (q.step() != SQLITE_DONE) return db.last_error(sql);
    return {};
  }

  // -------------------------------------------------------------------------------------------------------
  // Checkpoints

  // Called by SQLite on the writer thread after each commit, with the WAL's size in pages.
  static int on_commit(void* self, sqlite3* db, const char*, int wal_pages) {
    auto* s = static_cast<sqlite_store*>(self);
    // Readers see this commit from their next use on, and idle ones let go of their old snapshots now: a
    // snapshot left open pins the WAL, which then can neither be fully checkpointed nor restart.
    s->commit_gen_.fetch_add(1, std::memory_order_release);
    s->end_stale_snapshots();
    if (wal_pages < checkpoint_wal_pages) return SQLITE_OK;
    if (wal_pages >= hard_wal_pages) {
      // PASSIVE: never waits; SQLITE_BUSY (the checkpointer is at it) is harmless, the next commit retries.
      const auto t0 = std::chrono::steady_clock::now();
      sqlite3_wal_checkpoint_v2(db, nullptr, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
      s->writer_checkpoint_ms_ = std::chrono::duration_cast<std::chrono::milliseconds>(
                                     std::chrono::steady_clock::now() - t0)
                                     .count();
      return SQLITE_OK;
    }
    std::lock_guard lock(s->checkpoint_mu_);
    if (!s->checkpoint_running_) {
      s->checkpoint_wanted_ = true;
      s->checkpoint_cv_.notify_one();
    }
    return SQLITE_OK;
  }

  void checkpoint_loop() {
    std::unique_lock lock(checkpoint_mu_);
    for (;;) {
      checkpoint_cv_.wait(lock, [&] { return checkpoint_wanted_ || checkpoint_stop_; });
      if (checkpoint_stop_) return;
      // At most a few passes a second: each pass walks the whole WAL index and allocates an iterator of its
      // size, so back-to-back passes after every commit cost more than they copy.
      if (checkpoint_stop_ || checkpoint_cv_.wait_for(lock, std::chrono::milliseconds(100),
                                                      [&] { return checkpoint_stop_; })) {
        return;
      }
      checkpoint_wanted_ = false;
      checkpoint_running_ = true;
      lock.unlock();
      end_stale_snapshots();
      // PASSIVE: copies what it can without blocking the writer or readers; SQLITE_BUSY is harmless.
      sqlite3_wal_checkpoint_v2(checkpointer_->handle(), nullptr, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
      lock.lock();
      checkpoint_running_ = false;
    }
  }

  // -------------------------------------------------------------------------------------------------------
  // The writer thread

  void writer_loop() {
    std::vector<update_job> group;
    for (;;) {
      std::optional<purge_job> purge;
      std::optional<flush_job> flush;
      {
        std::unique_lock lock(queue_mu_);
        queue_cv_.wait(lock, [&] { return !queue_.empty() || closing_; });
        if (queue_.empty()) return;  // closing, and everything queued is done
        if (auto* p = std::get_if<purge_job>(&queue_.front())) {
          purge = std::move(*p);
          queue_.pop_front();
        } else if (auto* f = std::get_if<flush_job>(&queue_.front())) {
          flush = std::move(*f);
          queue_.pop_front();
        } else {
          while (!queue_.empty() && group.size() < std::max<std::size_t>(options_.max_group, 1)) {
            auto* u = std::get_if<update_job>(&queue_.front());
            if (!u) break;
            group.push_back(std::move(*u));
            queue_.pop_front();
          }
        }
      }
      if (purge) {
        purge->done(run_purge(purge->sdkappid, purge->before_ts, purge->limit));
      } else if (flush) {
        flush->done(run_flush());
      } else {
        run_group(group);
        group.clear();
        // A failed batch stays queued and is tried again with the next one.
        if (queued_.load(std::memory_order_relaxed) >= std::max<std::size_t>(options_.index_batch, 1)) (void)run_flush();
      }
    }
  }

  void run_group(std::vector<update_job>& group) {
    group_state g;
    std::vector<result<void>> outcomes;
    outcomes.reserve(group.size());
    using clk = std::chrono::steady_clock;
    const auto t0 = clk::now();
    if (auto r = run_simple(*writer_, "BEGIN IMMEDIATE"); !r) g.failure = r.error();
    for (auto& u : group) {
      if (g.failure) break;
      group_txn txn{*this, g, u.sdkappid};
      auto out = store_core::run_update(txn, u.sdkappid, u.call_ids, u.fn, g.records_added);
      if (out.storage) g.failure = std::move(out.storage);
      outcomes.push_back(std::move(out.own));
    }
    if (!g.failure) write_live(g);
    if (!g.failure) write_counts(g.deltas, g.failure);
    const auto t1 = clk::now();
    writer_checkpoint_ms_ = 0;
    if (!g.failure) {
      auto commit = run_simple(*writer_, "COMMIT");
      const auto t2 = clk::now();
      auto ms = [](auto d) { return std::chrono::duration_cast<std::chrono::milliseconds>(d).count(); };
      if (ms(t2 - t0) >= 1000) {
        // Operators need to see a stall: every queued request waits for it.
        std::fprintf(stderr,
                     "callrec: store: slow commit: %zu updates, staging %lld ms, commit %lld ms (checkpoint %lld ms)\n",
                     group.size(), static_cast<long long>(ms(t1 - t0)), static_cast<long long>(ms(t2 - t1)),
                     static_cast<long long>(writer_checkpoint_ms_));
      }
      if (auto& r = commit; !r) {
        g.failure = r.error();
      } else {
        commit_gen_.fetch_add(1, std::memory_order_release);  // before any `done`: readers take a new snapshot
      }
    }
    if (g.failure) {
      if (!sqlite3_get_autocommit(writer_->handle())) (void)run_simple(*writer_, "ROLLBACK");
      for (const auto& e : g.docs_added) docs_.erase(e.hash, e.key);
      for (auto& [key, before] : g.before) {
        if (before) {
          live_.insert_or_assign(key, std::move(*before));
        } else {
          live_.erase(key);
        }
      }
    } else {
      records_.fetch_add(g.records_added, std::memory_order_relaxed);
      queued_.fetch_add(g.queued, std::memory_order_release);
      commits_.fetch_add(1, std::memory_order_relaxed);
      committed_updates_.fetch_add(group.size(), std::memory_order_relaxed);
      // A written call's timer claim is done with: its new deadline is claimed afresh.
      std::lock_guard lock(leases_mu_);
      if (!leases_.empty()) {
        for (const auto& entry : g.before) leases_.erase(entry.first);
      }
    }
    live_count_.store(live_.size(), std::memory_order_relaxed);
    for (std::size_t i = 0; i < group.size(); ++i) {
      result<void> outcome = g.failure ? result<void>(*g.failure) : i < outcomes.size() ? std::move(outcomes[i])
                                                                                         : result<void>();
      try {
        group[i].done(std::move(outcome));
      } catch (...) {
        // `done` must not throw; the writer thread has to outlive a caller's bug.
      }
    }
  }

  // The adapter's side of store_core::run_update, for one update of a group: live states change in the
  // writer's map (each changed call is written once, at the end of the group, by write_live), and the state
  // each call had before the group is kept to undo the map if the transaction fails.
  struct group_txn {
    sqlite_store& st;
    group_state& g;
    std::uint32_t sdkappid;

    result<call_slot> load(std::string_view call_id) {
      call_slot slot;
      slot.call_id = call_id;
      if (auto it = st.live_.find(call_key{sdkappid, slot.call_id}); it != st.live_.end()) {
        slot.state = it->second.state;  // a copy: the map keeps the state until the update is written
        slot.deadline_ms = it->second.deadline_ms;
        return slot;
      }
      auto ended = st.record_exists(sdkappid, call_id);
      if (!ended) return std::move(ended).error();
      slot.ended = *ended;
      return slot;
    }
    // Remembers the call's state before the group (once), and returns where it is in the map.
    live_map::iterator touch(const call_key& key) {
      auto it = st.live_.find(key);
      auto [b, fresh] = g.before.try_emplace(key);
      if (fresh && it != st.live_.end()) b->second = std::move(it->second);
      return it;
    }
    result<void> put_live(std::string_view call_id, calls::call_state&& state, std::optional<std::int64_t> due) {
      call_key key{sdkappid, std::string(call_id)};
      auto it = touch(key);
      live_entry e{std::move(state), due};
      if (it != st.live_.end()) {
        it->second = std::move(e);
      } else {
        st.live_.emplace(std::move(key), std::move(e));
      }
      return {};
    }
    result<void> drop_live(std::string_view call_id) {
      call_key key{sdkappid, std::string(call_id)};
      if (auto it = touch(key); it != st.live_.end()) st.live_.erase(it);
      return {};
    }
    result<bool> insert_record(const call_record& r) { return st.insert_record(r, g); }
  };

  result<bool> record_exists(std::uint32_t sdkappid, std::string_view call_id) {
    auto found = find_doc(*writer_, docs_, sdkappid, call_id);
    if (!found) return std::move(found).error();
    return found->has_value();
  }

  // Inserts a record with its document, participants and counts, unless its call has a record already
  // (then false: the first record of a call stays).
  result<bool> insert_record(const call_record& r, group_state& g) {
    const auto app = static_cast<std::int64_t>(r.sdkappid);
    const std::string callees = store_core::join_callees(r.callees);
    doc_buffer_.clear();
    encode_doc(doc_buffer_, record_fields{r.call_id, r.sdkappid, r.media, r.room_id, r.start_ts, r.accept_ts,
                                          r.end_ts, r.caller, callees, r.type, r.result});
    auto stored = put_doc(*writer_, docs_, r.sdkappid, r.call_id, r.start_ts, doc_buffer_);
    if (!stored) return std::move(stored).error();
    if (!*stored) return false;
    g.docs_added.push_back(**stored);
    {
      sqlite3_stmt* s = writer_->cached_static(sql_insert_record);
      if (!s) return writer_->last_error("prepare");
      stmt_use q(s);
      q.bind(1, app);
      q.bind(2, r.start_ts);
      q.bind(3, r.call_id);
      q.bind(4, static_cast<std::int64_t>(r.media));
      q.bind(5, static_cast<std::int64_t>(r.type));
      q.bind(6, static_cast<std::int64_t>(r.result));
      q.bind(7, r.room_id);
      q.bind(8, r.accept_ts);
      q.bind(9, r.end_ts);
      q.bind(10, r.caller);
      q.bind(11, callees);
      if (q.step() != SQLITE_DONE) return writer_->last_error("insert record");
    }
    // The lookups by user and room get their rows through index_queue (see the schema).
    sqlite3_stmt* s = writer_->cached_static(sql_queue_index);
    if (!s) return writer_->last_error("prepare");
    const std::int64_t hour = hour_of(r.start_ts);
    auto queue = [&](int kind, std::string_view key, bool is_caller) -> result<void> {
      stmt_use q(s);
      q.bind(1, std::int64_t{kind});
      q.bind(2, app);
      q.bind(3, hour);
      q.bind(4, key);
      q.bind(5, r.start_ts);
      q.bind(6, r.call_id);
      q.bind(7, std::int64_t{is_caller ? 1 : 0});
      if (q.step() != SQLITE_DONE) return writer_->last_error("queue index rows");
      ++g.queued;
      return {};
    };
    if (auto x = queue(0, r.caller, true); !x) return x.error();
    for (const auto& c : r.callees) {
      if (auto x = queue(0, c, false); !x) return x.error();
    }
    if (auto x = queue(1, r.room_id, false); !x) return x.error();
    store_core::add_counts(g.deltas, r.sdkappid, r.start_ts, r.result, r.type, r.media, 1);
    return true;
  }

  // Writes the final live state of every call the group changed, once per call.
  void write_live(group_state& g) {
    sqlite3_stmt* up = writer_->cached_static(sql_upsert_live);
    sqlite3_stmt* del = writer_->cached_static(sql_delete_live);
    if (!up || !del) {
      g.failure = writer_->last_error("prepare");
      return;
    }
    std::string blob;
    for (const auto& [key, before] : g.before) {
      auto it = live_.find(key);
      if (it == live_.end()) {
        if (!before) continue;  // created and dropped within the group: no row was written
        stmt_use q(del);
        q.bind(1, static_cast<std::int64_t>(key.sdkappid));
        q.bind(2, key.call_id);
        if (q.step() != SQLITE_DONE) {
          g.failure = writer_->last_error("delete live call");
          return;
        }
      } else {
        blob = calls::encode(it->second.state);
        stmt_use q(up);
        q.bind(1, static_cast<std::int64_t>(key.sdkappid));
        q.bind(2, key.call_id);
        q.bind_blob(3, blob);
        if (it->second.deadline_ms) {
          q.bind(4, *it->second.deadline_ms);
        } else {
          q.bind_null(4);
        }
        if (q.step() != SQLITE_DONE) {
          g.failure = writer_->last_error("write live call");
          return;
        }
      }
    }
  }

  void write_counts(const count_deltas& deltas, std::optional<callrec::error>& failure) {
    sqlite3_stmt* up = writer_->cached_static(sql_upsert_count);
    sqlite3_stmt* del = writer_->cached_static(sql_delete_empty_count);
    if (!up || !del) {
      failure = writer_->last_error("prepare");
      return;
    }
    for (const auto& entry : deltas) {
      const auto& k = entry.first;  // not a structured binding: C++20 lambdas cannot capture those (clang)
      const auto delta = entry.second;
      if (delta == 0) continue;
      auto bind_key = [&](stmt_use& q) {
        q.bind(1, static_cast<std::int64_t>(k.sdkappid));
        q.bind(2, count_spans[k.level]);
        q.bind(3, k.bucket);
        q.bind(4, static_cast<std::int64_t>(k.result));
        q.bind(5, static_cast<std::int64_t>(k.type));
        q.bind(6, static_cast<std::int64_t>(k.media));
      };
      {
        stmt_use q(up);
        bind_key(q);
        q.bind(7, delta);
        if (q.step() != SQLITE_DONE) {
          failure = writer_->last_error("count records");
          return;
        }
      }
      if (delta < 0) {
        stmt_use q(del);
        bind_key(q);
        if (q.step() != SQLITE_DONE) {
          failure = writer_->last_error("count records");
          return;
        }
      }
    }
  }

  // Moves index_queue into participants and rooms, in key order, in one transaction.
  result<void> run_flush() {
    if (queued_.load(std::memory_order_relaxed) == 0) return {};
    if (auto r = run_simple(*writer_, "BEGIN IMMEDIATE"); !r) return r;
    for (const char* sql : {sql_flush_participants, sql_flush_rooms, sql_clear_index_queue, "COMMIT"}) {
      if (auto r = run_simple(*writer_, sql); !r) {
        if (!sqlite3_get_autocommit(writer_->handle())) (void)run_simple(*writer_, "ROLLBACK");
        return r;
      }
    }
    commit_gen_.fetch_add(1, std::memory_order_release);
    queued_.store(0, std::memory_order_release);
    return {};
  }

  result<std::uint64_t> run_purge(std::uint32_t sdkappid, std::int64_t before_ts, std::size_t limit) {
    if (limit == 0) return std::uint64_t{0};
    struct victim {
      std::int64_t start_ts;
      std::string call_id;
      std::string caller;
      std::vector<std::string> callees;
      int result, type, media;
      std::string room_id;
    };
    const auto app = static_cast<std::int64_t>(sdkappid);
    // Index rows still queued would otherwise reach participants and rooms after their record was removed.
    if (auto r = run_flush(); !r) return r.error();
    if (auto r = run_simple(*writer_, "BEGIN IMMEDIATE"); !r) return r.error();
    std::vector<doc_entry> docs_removed;  // put back on a rollback
    auto fail = [&](callrec::error e) -> result<std::uint64_t> {
      if (!sqlite3_get_autocommit(writer_->handle())) (void)run_simple(*writer_, "ROLLBACK");
      for (const auto& e : docs_removed) docs_.insert(e.hash, e.key);
      return e;
    };
    std::vector<victim> victims;
    {
      sqlite3_stmt* s = writer_->cached_static(sql_purge_select);
      if (!s) return fail(writer_->last_error("prepare"));
      stmt_use q(s);
      q.bind(1, app);
      q.bind(2, before_ts);
      q.bind(3, static_cast<std::int64_t>(std::min<std::size_t>(limit, INT64_MAX)));
      int rc;
      while ((rc = q.step()) == SQLITE_ROW) {
        victim v{q.int64(0),
                 std::string(q.text(1)),
                 std::string(q.text(2)),
                 {},
                 static_cast<int>(q.int64(4)),
                 static_cast<int>(q.int64(5)),
                 static_cast<int>(q.int64(6)),
                 std::string(q.text(7))};
        split_callees(q.text(3), v.callees);
        victims.push_back(std::move(v));
      }
      if (rc != SQLITE_DONE) return fail(writer_->last_error("purge"));
    }
    sqlite3_stmt* del_rec = writer_->cached_static(sql_delete_record);
    sqlite3_stmt* del_part = writer_->cached_static(sql_delete_participant);
    sqlite3_stmt* del_room = writer_->cached_static(sql_delete_room);
    if (!del_rec || !del_part || !del_room) return fail(writer_->last_error("prepare"));
    count_deltas deltas;
    for (const auto& v : victims) {
      {
        stmt_use q(del_rec);
        q.bind(1, app);
        q.bind(2, v.start_ts);
        q.bind(3, v.call_id);
        if (q.step() != SQLITE_DONE) return fail(writer_->last_error("purge"));
      }
      auto removed = delete_doc(*writer_, docs_, sdkappid, v.call_id);
      if (!removed) return fail(removed.error());
      if (*removed) docs_removed.push_back(**removed);
      auto drop = [&](sqlite3_stmt* del, const std::string& key) {
        stmt_use q(del);
        q.bind(1, app);
        q.bind(2, hour_of(v.start_ts));
        q.bind(3, key);
        q.bind(4, v.start_ts);
        q.bind(5, v.call_id);
        return q.step() == SQLITE_DONE;
      };
      if (!drop(del_part, v.caller) || !drop(del_room, v.room_id)) return fail(writer_->last_error("purge"));
      for (const auto& c : v.callees) {
        if (!drop(del_part, c)) return fail(writer_->last_error("purge"));
      }
      store_core::add_counts(deltas, sdkappid, v.start_ts, static_cast<call_result>(v.result),
                             static_cast<call_type>(v.type), static_cast<media_type>(v.media), -1);
    }
    std::optional<callrec::error> failure;
    write_counts(deltas, failure);
    if (failure) return fail(*failure);
    if (auto r = run_simple(*writer_, "COMMIT"); !r) return fail(r.error());
    commit_gen_.fetch_add(1, std::memory_order_release);
    records_.fetch_sub(victims.size(), std::memory_order_relaxed);
    return static_cast<std::uint64_t>(victims.size());
  }

  const sqlite_store_options options_;
  std::unique_ptr<connection> writer_;  // the writer thread's, once started
  std::string doc_buffer_;              // the writer's, for encoding a record's document

  std::mutex readers_mu_;
  std::vector<reader_slot> idle_readers_;
  std::atomic<std::uint64_t> commit_gen_{0};  // bumped after every write commit
  std::int64_t writer_checkpoint_ms_ = 0;     // the writer's own checkpoint in the last commit (writer thread)

  std::mutex queue_mu_;
  std::condition_variable queue_cv_;
  std::deque<job> queue_;
  bool closing_ = false;
  std::mutex close_mu_;
  std::thread writer_thread_;

  std::unique_ptr<connection> checkpointer_;  // the checkpoint thread's
  std::mutex checkpoint_mu_;
  std::condition_variable checkpoint_cv_;
  bool checkpoint_wanted_ = false;
  bool checkpoint_running_ = false;
  bool checkpoint_stop_ = false;
  std::thread checkpoint_thread_;

  live_map live_;  // writer thread only (and start())
  std::mutex leases_mu_;
  std::unordered_map<call_key, std::int64_t, call_key_hash> leases_;  // claimed calls: lease end, unix ms
  std::atomic<std::uint64_t> records_{0};
  doc_index docs_;  // call id -> record_docs key; the writer changes it, readers probe it
  std::atomic<std::uint64_t> queued_{0};  // rows in index_queue (the writer changes it; readers look)
  std::atomic<std::uint64_t> commits_{0}, committed_updates_{0};
  std::atomic<std::uint64_t> live_count_{0};
};

}  // namespace

result<std::unique_ptr<store>> open_sqlite_store(const sqlite_store_options& options) {
  // Process-wide, before SQLite initializes: no global mutex around every allocation for memory statistics
  // nobody reads. Harmless (SQLITE_MISUSE) if SQLite was already initialized by someone else.
  static std::once_flag configured;
  std::call_once(configured, [] { sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0); });
  auto writer = connection::open(options.path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, options.vfs);
  if (!writer) return std::move(writer).error();
  connection& db = **writer;
  if (auto r = db.exec(writer_pragmas); !r) return r.error();
  {
    sqlite3_stmt* s = db.cached_static("PRAGMA journal_mode = WAL");
    if (!s) return db.last_error("journal mode");
    stmt_use q(s);
    if (q.step() != SQLITE_ROW || q.text(0) != "wal") {
      return make_error(errc::internal, "the SQLite store " + options.path + " cannot use WAL journaling");
    }
  }
  if (auto r = db.exec(options.fsync_each_commit ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL"); !r) {
    return r.error();
  }
  if (auto r = ensure_schema(db); !r) return r.error();
  auto s = std::make_unique<sqlite_store>(options, std::move(*writer));
  if (auto r = s->start(); !r) return r.error();
  return std::unique_ptr<store>(std::move(s));
}

}  // namespace callrec::sqlite
