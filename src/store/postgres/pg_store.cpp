#include "store/postgres/pg_store.h"

#include <algorithm>
#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cstdio>
#include <deque>
#include <future>
#include <map>
#include <mutex>
#include <unordered_map>
#include <array>
#include <set>
#include <thread>
#include <type_traits>
#include <variant>

#include "records/record_doc.h"
#include "store/postgres/pg_conn.h"
#include "store/postgres/pg_schema.h"
#include "store/store_core.h"
#include "core/thread_completion.h"
#include "store/time_buckets.h"

namespace callrec::pg {
namespace {

namespace asio = boost::asio;
using buckets::count_spans;
using buckets::span_count;
using clock = std::chrono::steady_clock;

// Records removed per app in one retention slice (one transaction), when a whole day cannot be dropped.
constexpr std::size_t retention_slice = 5000;
// How long the store's own work (a group commit, a retention step) may take before it gives up on the
// database; callers stop waiting at their own deadline (3 s) and may retry.
constexpr auto work_deadline = std::chrono::seconds(10);

error closed_error() { return make_error(errc::unavailable, "the store is closed; retry"); }
error corrupt(std::string what) { return make_error(errc::internal, "internal error: corrupt data in the store", what); }

// ---------------------------------------------------------------------------------------------------------
// Statements assembled from parts: "?" in the text becomes $1, $2, ... in the order the arguments were added.

struct query {
  std::string text;
  std::vector<std::variant<std::int64_t, std::string, bool, array>> args;
  query& add(std::string_view t) {
    text += t;
    return *this;
  }
  template <class T>
  query& add(std::string_view t, T&& v) {
    text += t;
    if constexpr (std::is_convertible_v<T, std::string_view>) {
      args.emplace_back(std::string(std::string_view(v)));
    } else if constexpr (std::is_same_v<std::decay_t<T>, bool> || std::is_same_v<std::decay_t<T>, array>) {
      args.emplace_back(std::forward<T>(v));
    } else {
      args.emplace_back(static_cast<std::int64_t>(v));
    }
    return *this;
  }
  statement make() const {
    std::string sql;
    int n = 0;
    for (char ch : text) {
      if (ch == '?') {
        sql += '$';
        sql += std::to_string(++n);
      } else {
        sql += ch;
      }
    }
    statement s(std::move(sql));
    for (const auto& a : args) {
      std::visit(
          [&](const auto& v) {
            using T = std::decay_t<decltype(v)>;
            if constexpr (std::is_same_v<T, std::int64_t>) {
              s.i64(v);
            } else if constexpr (std::is_same_v<T, std::string>) {
              s.text(v);
            } else if constexpr (std::is_same_v<T, bool>) {
              s.boolean(v);
            } else {
              s.arr(v);
            }
          },
          a);
    }
    return s;
  }
};

// ---------------------------------------------------------------------------------------------------------
// find_records: the embedded store's plan (store/time_buckets.h) as one statement, so that the total and the page
// share its snapshot and a page costs one round trip. Its result: the counts as rows (i, n, NULL) and the page's
// documents as rows (NULL, NULL, doc), in no promised order (read_page sorts the page).
//
// The time driver counts the window's segments (whole buckets from record_counts, the edges exactly) and, for a
// deep offset, walks down the count buckets to the 10 s bucket the page starts in (a recursive CTE, one level a
// step, as offset_seek does for the embedded store) before it reads records: skipping 20,000 rows costs a
// handful of index probes instead of 20,000 heap reads. The index drivers (user, caller, room) count their index
// and read with OFFSET.

// Bucket widths by level, as SQL array literals (1-based): the spans (with `seconds`, one more level: the finest
// bucket's own span, for the single bucket a seek ends in), and the children per bucket of each level.
std::string spans_sql(bool seconds) {
  std::string s = "'{";
  for (int l = 0; l < span_count; ++l) s += (l ? "," : "") + std::to_string(count_spans[l]);
  if (seconds) s += "," + std::to_string(count_spans[span_count - 1]);
  return s + "}'::int8[]";
}
std::string fanout_sql() {
  std::string s = "'{";
  for (int l = 0; l + 1 < span_count; ++l) s += (l ? "," : "") + std::to_string(count_spans[l] / count_spans[l + 1]);
  return s + "}'::int8[]";
}

class search {
 public:
  explicit search(const record_filter& f) : f_(f), driver_(store_core::driver_of(f)) {
    first_ = std::clamp(f.start_ts, buckets::min_second, buckets::max_second);
    last_ = std::clamp(f.end_ts, buckets::min_second, buckets::max_second);
  }

  // Nothing to ask: the window is empty.
  bool empty() const { return first_ > last_; }
  // The page's one statement.
  statement make() const { return (driver_ == driver::time ? by_time() : by_index()).make(); }
  // The total (the counts' sum) and the page in its order, with the cursor to the next one when a row more came.
  result<record_page> read_page(const rows& rows) const {
    record_page page;
    std::vector<call_record> found;
    found.reserve(static_cast<std::size_t>(rows.size()));
    for (int i = 0; i < rows.size(); ++i) {
      if (!rows.is_null(i, 0)) {
        page.total += static_cast<std::uint64_t>(rows.i64(i, 1));
        continue;
      }
      auto rec = stored_record::from_doc(rows.bytes(i, 2));
      if (!rec) return corrupt("a record's document");
      found.push_back(rec->to_record());
    }
    // (start_ts, call_id) order; call_id compares as bytes, as its "C" collation does in the database.
    std::sort(found.begin(), found.end(), [desc = f_.descending](const call_record& a, const call_record& b) {
      return desc ? std::tie(b.start_ts, b.call_id) < std::tie(a.start_ts, a.call_id)
                  : std::tie(a.start_ts, a.call_id) < std::tie(b.start_ts, b.call_id);
    });
    if (found.size() > f_.limit) {
      found.resize(f_.limit);
      page.next = record_cursor{found.back().start_ts, found.back().call_id};
    }
    page.records = std::move(found);
    return page;
  }

 private:
  using driver = store_core::search_driver;

  std::pair<std::int64_t, std::int64_t> fetch_window() const { return store_core::fetch_window(f_, first_, last_); }
  std::uint64_t offset() const { return f_.after ? 0 : f_.offset; }
  // One row more than the page, to know whether another follows; none when the page is empty by definition.
  std::int64_t fetch_limit() const { return f_.limit == 0 ? 0 : static_cast<std::int64_t>(f_.limit) + 1; }
  std::int64_t sql_offset() const { return static_cast<std::int64_t>(std::min<std::uint64_t>(offset(), INT64_MAX)); }
  const char* dir() const { return f_.descending ? " DESC" : ""; }

  query by_time() const {
    const auto app = static_cast<std::int64_t>(f_.sdkappid);
    array levels{oid::int8}, los{oid::int8}, his{oid::int8};
    for (const auto& seg : buckets::cover(first_, last_)) {
      levels.add(seg.level);
      los.add(seg.lo);
      his.add(seg.hi);
    }
    const auto [lo, hi] = fetch_window();
    const bool seek = !f_.after && offset() >= store_core::offset_seek_threshold;
    const std::string spans = spans_sql(false), spans_to_seconds = spans_sql(true), fanout = fanout_sql();
    const std::string last = std::to_string(span_count - 1);
    // A bucket's first (ascending) or last (descending) second: the edge a page starting in it reads from.
    auto edge = [&](std::string_view b, std::string_view level) {
      const std::string span = "(" + spans_to_seconds + ")[" + std::string(level) + " + 1]";
      return f_.descending ? "((" + std::string(b) + " + 1) * " + span + " - 1)" : "(" + std::string(b) + " * " + span + ")";
    };
    query q;
    q.add("WITH RECURSIVE seg AS (SELECT x.lvl, x.lo, x.hi, x.i FROM unnest(?::int8[]", levels);
    q.add(", ?::int8[]", los).add(", ?::int8[]) WITH ORDINALITY AS x(lvl, lo, hi, i)),", his);
    q.add(" tot AS (SELECT seg.*, CASE WHEN seg.lvl < 0 THEN (SELECT count(*) FROM records r WHERE r.sdkappid = ?", app);
    q.add(" AND r.start_ts >= seg.lo AND r.start_ts <= seg.hi");
    add_record_filters(q, "r.");
    q.add(") ELSE (SELECT COALESCE(sum(c.n), 0)::int8 FROM record_counts c WHERE c.sdkappid = ?", app);
    q.add(" AND c.span_s = (" + spans + ")[seg.lvl + 1] AND c.bucket >= seg.lo AND c.bucket <= seg.hi");
    add_record_filters(q, "c.");
    q.add(") END AS n FROM seg),");
    // The segment the offset falls in, and what is left to skip in it.
    q.add(" target AS (SELECT t.lvl, t.lo, t.hi, ?::int8 - t.before AS off FROM (SELECT tot.*,", sql_offset());
    q.add(std::string(" (sum(tot.n) OVER (ORDER BY tot.i") + dir() + "))::int8 - tot.n AS before FROM tot) t");
    q.add(" WHERE t.before + t.n > ?", sql_offset());
    q.add(std::string(" ORDER BY t.i") + dir() + " LIMIT 1),");
    // Down the levels: each step counts the children of the bucket holding the offset (level 4 -> 5: the 10 s bucket).
    q.add(" s(lvl, lo, hi, off) AS (SELECT lvl, lo, hi, off FROM target WHERE lvl >= 0 AND ?::bool", seek);
    q.add(" UNION ALL SELECT s.lvl + 1, b.lo, b.hi, b.off FROM s CROSS JOIN LATERAL (SELECT");
    q.add(" CASE WHEN s.lvl = " + last + " THEN w.bucket ELSE w.bucket * (" + fanout + ")[s.lvl + 1] END AS lo,");
    q.add(" CASE WHEN s.lvl = " + last + " THEN w.bucket ELSE (w.bucket + 1) * (" + fanout + ")[s.lvl + 1] - 1 END AS hi,");
    q.add(std::string(" s.off - w.before AS off FROM (SELECT g.bucket, g.n, (sum(g.n) OVER (ORDER BY g.bucket") + dir() +
          "))::int8 - g.n AS before");
    q.add(" FROM (SELECT c.bucket, sum(c.n)::int8 AS n FROM record_counts c WHERE c.sdkappid = ?", app);
    q.add(" AND c.span_s = (" + spans + ")[s.lvl + 1] AND c.bucket >= s.lo AND c.bucket <= s.hi");
    add_record_filters(q, "c.");
    q.add(std::string(" GROUP BY c.bucket) g) w WHERE w.before + w.n > s.off ORDER BY w.bucket") + dir() + " LIMIT 1) b");
    q.add(" WHERE s.lvl < " + std::to_string(span_count) + "),");
    // Where the page starts reading and what it skips there: the deepest bucket reached, an exact edge, or (no
    // seek) the window's start. Nothing when the offset is past the total.
    q.add(" f AS (SELECT z.edge, z.off FROM (SELECT " + edge(f_.descending ? "s.hi" : "s.lo", "s.lvl") + " AS edge, s.off, s.lvl AS k FROM s");
    q.add(std::string(" UNION ALL SELECT target.") + (f_.descending ? "hi" : "lo") +
              ", target.off, -1 FROM target WHERE target.lvl < 0 AND ?::bool",
          seek);
    q.add(" UNION ALL SELECT ?::int8", f_.descending ? hi : lo);
    q.add(", ?::int8", sql_offset()).add(", -2 FROM target WHERE NOT ?::bool) z ORDER BY z.k DESC LIMIT 1),", seek);
    q.add(" page AS (SELECT r.doc, r.start_ts, r.call_id FROM records r WHERE r.sdkappid = ?", app);
    if (f_.descending) {
      q.add(" AND r.start_ts >= ?", lo).add(" AND r.start_ts <= (SELECT edge FROM f)");
    } else {
      q.add(" AND r.start_ts >= (SELECT edge FROM f)").add(" AND r.start_ts <= ?", hi);
    }
    add_record_filters(q, "r.");
    add_cursor(q, "r");
    add_order_limit(q, "r");
    q.add(" OFFSET (SELECT off FROM f))");
    add_output(q, "tot.i");
    return q;
  }

  query by_index() const {
    const auto [lo, hi] = fetch_window();
    query q;
    q.add("WITH tot AS (SELECT count(*) AS n");
    from_where(q, first_, last_, store_core::needs_records(f_, driver_));
    q.add("), page AS (SELECT r.doc, p.start_ts, p.call_id");
    from_where(q, lo, hi, true);
    // The page is read only when the count says it has rows: a filter on the records' columns may match none.
    q.add(" AND (SELECT n FROM tot) > ?", sql_offset());
    add_cursor(q, "p");
    add_order_limit(q, "p");
    q.add(" OFFSET ?)", sql_offset());
    add_output(q, "1::int8");
    return q;
  }

  void add_cursor(query& q, const std::string& k) const {
    if (!f_.after) return;
    q.add(" AND (" + k + ".start_ts, " + k + ".call_id)" + (f_.descending ? " < (?" : " > (?"), f_.after->start_ts);
    q.add(", ?)", std::string_view(f_.after->call_id));
  }
  void add_order_limit(query& q, const std::string& k) const {
    q.add(" ORDER BY " + k + ".start_ts" + dir() + ", " + k + ".call_id" + dir());
    q.add(" LIMIT ?", fetch_limit());
  }
  // The counts (i set), then the page's documents (i null), in no particular order: read_page sorts them.
  void add_output(query& q, const std::string& index) const {
    q.add(" SELECT " + index + " AS i, tot.n, NULL::bytea AS doc FROM tot UNION ALL SELECT NULL, NULL, page.doc FROM page");
  }

  // "FROM ... WHERE ..." of an index driver for the records of the filter with start_ts in [lo, hi]. Without
  // `join`, only the index is read (enough to count when no other filter is set).
  void from_where(query& q, std::int64_t lo, std::int64_t hi, bool join) const {
    const auto app = static_cast<std::int64_t>(f_.sdkappid);
    q.add(driver_ == driver::room ? " FROM rooms p" : " FROM participants p");
    if (join) q.add(" JOIN records r ON r.sdkappid = p.sdkappid AND r.start_ts = p.start_ts AND r.call_id = p.call_id");
    q.add(" WHERE p.sdkappid = ?", app);
    q.add(" AND p." + std::string(store_core::index_column(driver_)) + " = ?", store_core::index_key(f_, driver_));
    if (driver_ == driver::caller) q.add(" AND p.is_caller");
    q.add(" AND p.start_ts >= ?", lo).add(" AND p.start_ts <= ?", hi);
    if (join) add_record_filters(q, "r.");
  }

  void add_record_filters(query& q, std::string_view alias) const {
    auto col = [&](std::string_view name) { return " AND " + std::string(alias) + std::string(name) + " = ?"; };
    if (f_.result) q.add(col("result"), static_cast<std::int64_t>(*f_.result));
    if (f_.type) q.add(col("call_type"), static_cast<std::int64_t>(*f_.type));
    if (f_.media) q.add(col("media"), static_cast<std::int64_t>(*f_.media));
    if (driver_ != driver::time && alias == "r.") {
      // Not in the records' columns: the room and caller are checked against the other index.
      if (f_.caller && driver_ != driver::caller) {
        q.add(" AND EXISTS (SELECT 1 FROM participants c WHERE c.sdkappid = r.sdkappid AND c.user_id = ?",
              std::string_view(*f_.caller));
        q.add(" AND c.start_ts = r.start_ts AND c.call_id = r.call_id AND c.is_caller)");
      }
      if (f_.room_id && driver_ != driver::room) {
        q.add(" AND EXISTS (SELECT 1 FROM rooms m WHERE m.sdkappid = r.sdkappid AND m.room_id = ?",
              std::string_view(*f_.room_id));
        q.add(" AND m.start_ts = r.start_ts AND m.call_id = r.call_id)");
      }
    }
  }


  record_filter f_;
  driver driver_;
  std::int64_t first_ = 0, last_ = 0;
};

// ---------------------------------------------------------------------------------------------------------
// Updates

struct update_job {
  std::uint32_t sdkappid = 0;
  std::vector<std::string> call_ids;
  update_fn fn;
  completion<void> done;
};

using call_key = std::pair<std::uint32_t, std::string>;

// A call as a group transaction holds it: read under its lock, changed in memory by the group's updates in
// order, written once at the end.
struct held_call {
  std::optional<calls::call_state> state;
  std::optional<std::int64_t> deadline_ms;
  bool was_live = false;  // a live_calls row exists
  bool ended = false;     // a record exists (or this group inserted one)
  bool dirty = false;
};

// What a group writes, as columns for unnest().
struct group_writes {
  array rec_app{oid::int8}, rec_start{oid::int8}, rec_id{oid::text}, rec_result{oid::int2}, rec_type{oid::int2},
      rec_media{oid::int2}, rec_doc{oid::bytea};
  array part_app{oid::int8}, part_user{oid::text}, part_start{oid::int8}, part_id{oid::text},
      part_caller{oid::boolean};
  array room_app{oid::int8}, room_id{oid::text}, room_start{oid::int8}, room_call{oid::text};
  store_core::count_deltas deltas;
  std::set<std::int64_t> days;
  std::string doc;
  std::vector<std::string_view> users;  // of the record being added

  void add_record(const call_record& r) {
    const auto app = static_cast<std::int64_t>(r.sdkappid);
    const std::string callees = store_core::join_callees(r.callees);
    doc.clear();
    encode_doc(doc, record_fields{r.call_id, r.sdkappid, r.media, r.room_id, r.start_ts, r.accept_ts, r.end_ts,
                                  r.caller, callees, r.type, r.result});
    rec_app.add(app);
    rec_start.add(r.start_ts);
    rec_id.add(r.call_id);
    rec_result.add_i16(static_cast<std::int16_t>(r.result));
    rec_type.add_i16(static_cast<std::int16_t>(r.type));
    rec_media.add_i16(static_cast<std::int16_t>(r.media));
    rec_doc.add(doc);
    // One row a user: the caller's first, so a caller who is also a callee keeps is_caller; a callee named twice
    // once (the rows are inserted without ON CONFLICT, see try_group).
    users.clear();
    auto participant = [&](std::string_view user, bool is_caller) {
      if (std::find(users.begin(), users.end(), user) != users.end()) return;
      users.push_back(user);
      part_app.add(app);
      part_user.add(user);
      part_start.add(r.start_ts);
      part_id.add(r.call_id);
      part_caller.add_bool(is_caller);
    };
    participant(r.caller, true);
    for (const auto& c : r.callees) participant(c, false);
    room_app.add(app);
    room_id.add(r.room_id);
    room_start.add(r.start_ts);
    room_call.add(r.call_id);
    store_core::add_counts(deltas, r.sdkappid, r.start_ts, r.result, r.type, r.media, 1);
    days.insert(day_of(r.start_ts));
  }
};

// The statements that apply count deltas (in key order: every transaction locks count rows in one order).
void count_statements(const store_core::count_deltas& deltas, std::vector<statement>& out) {
  array app{oid::int8}, span{oid::int8}, bucket{oid::int8}, res{oid::int2}, type{oid::int2}, media{oid::int2},
      n{oid::int8};
  bool negative = false;
  for (const auto& [k, delta] : deltas) {
    if (delta == 0) continue;
    negative = negative || delta < 0;
    app.add(static_cast<std::int64_t>(k.sdkappid));
    span.add(count_spans[k.level]);  // int8 elements, cast in SQL
    bucket.add(k.bucket);
    res.add_i16(static_cast<std::int16_t>(k.result));
    type.add_i16(static_cast<std::int16_t>(k.type));
    media.add_i16(static_cast<std::int16_t>(k.media));
    n.add(delta);
  }
  if (app.size() == 0) return;
  out.emplace_back(
         "INSERT INTO record_counts (sdkappid, span_s, bucket, result, call_type, media, n) "
         "SELECT a, s::int4, b, r, t, m, n FROM unnest($1::int8[], $2::int8[], $3::int8[], $4::int2[], $5::int2[], "
         "$6::int2[], $7::int8[]) AS k(a, s, b, r, t, m, n) "
         "ON CONFLICT (sdkappid, span_s, bucket, result, call_type, media) DO UPDATE SET n = record_counts.n + excluded.n")
      .arr(app)
      .arr(span)
      .arr(bucket)
      .arr(res)
      .arr(type)
      .arr(media)
      .arr(n);
  if (negative) {
    out.emplace_back(
           "DELETE FROM record_counts c USING unnest($1::int8[], $2::int8[], $3::int8[], $4::int2[], $5::int2[], "
           "$6::int2[]) AS k(a, s, b, r, t, m) WHERE c.sdkappid = k.a AND c.span_s = k.s AND c.bucket = k.b "
           "AND c.result = k.r AND c.call_type = k.t AND c.media = k.m AND c.n = 0")
        .arr(app)
        .arr(span)
        .arr(bucket)
        .arr(res)
        .arr(type)
        .arr(media);
  }
}

struct group_txn {
  std::map<call_key, held_call>& calls;
  group_writes& w;
  std::uint32_t sdkappid;

  held_call& at(std::string_view id) { return calls[call_key{sdkappid, std::string(id)}]; }
  result<call_slot> load(std::string_view call_id) {
    const auto& h = at(call_id);
    call_slot slot;
    slot.call_id = call_id;
    slot.state = h.state;
    slot.deadline_ms = h.deadline_ms;
    slot.ended = !h.state && h.ended;
    return slot;
  }
  result<void> put_live(std::string_view call_id, calls::call_state&& state, std::optional<std::int64_t> due) {
    auto& h = at(call_id);
    h.state = std::move(state);
    h.deadline_ms = due;
    h.dirty = true;
    return {};
  }
  result<void> drop_live(std::string_view call_id) {
    auto& h = at(call_id);
    h.state.reset();
    h.deadline_ms.reset();
    h.dirty = true;
    return {};
  }
  result<bool> insert_record(const call_record& r) {
    auto& h = at(r.call_id);
    if (h.ended) return false;
    h.ended = true;
    w.add_record(r);
    return true;
  }
};

// How one attempt at a group transaction ended.
struct attempt {
  enum class how { committed, retry, failed } end = how::failed;
  std::vector<result<void>> outcomes;  // committed: one per update
  std::uint64_t records = 0;
  std::set<std::int64_t> missing_days;  // retry: partitions to create first
  bool duplicate = false;               // retry: a plain insert met an existing row; the next try is careful
  std::optional<error> failure;
};

// A read can lose a deadlock to DDL on the partitions (a day's partitions created while it takes its locks): it
// changed nothing, so it runs again, this many times at most, within its deadline.
constexpr int read_retries = 3;

// Records this node has read, by call: a record never changes once written (the first record of a call
// stays), so a copy is as good as the row for as long as it is inside its app's window, which the reader
// checks against its own oldest_ts. Only found records are kept. Sharded by the call's hash; a full shard
// drops an arbitrary entry. Any thread.
class record_cache {
 public:
  explicit record_cache(std::size_t capacity) : per_shard_(std::max<std::size_t>(1, capacity / shard_count)) {}
  std::optional<stored_record> find(std::uint32_t sdkappid, std::string_view call_id, std::int64_t oldest_ts) {
    std::string key = make_key(sdkappid, call_id);
    auto& sh = shard_of(key);
    std::lock_guard lock(sh.mu);
    auto it = sh.map.find(key);
    if (it == sh.map.end() || it->second.fields().start_ts < oldest_ts) return std::nullopt;
    return it->second;
  }
  void put(std::uint32_t sdkappid, std::string_view call_id, const stored_record& r) {
    std::string key = make_key(sdkappid, call_id);
    auto& sh = shard_of(key);
    std::lock_guard lock(sh.mu);
    if (sh.map.size() >= per_shard_ && !sh.map.contains(key)) sh.map.erase(sh.map.begin());
    sh.map.insert_or_assign(std::move(key), r);
  }

 private:
  static constexpr std::size_t shard_count = 16;
  struct shard {
    std::mutex mu;
    std::unordered_map<std::string, stored_record> map;
  };
  static std::string make_key(std::uint32_t sdkappid, std::string_view call_id) {
    std::string k(reinterpret_cast<const char*>(&sdkappid), sizeof sdkappid);
    k += call_id;
    return k;
  }
  shard& shard_of(const std::string& key) { return shards_[std::hash<std::string>{}(key) % shard_count]; }
  std::size_t per_shard_;
  std::array<shard, shard_count> shards_;
};

// ---------------------------------------------------------------------------------------------------------

// Generic plans with run-time partition pruning: a custom plan of a statement over the partitioned tables is
// planned again at every execution (its pruned cost always looks cheaper), which cost more than the query itself
// (ms of bind per execution, measured on 8 day partitions). No parallel workers: our statements read a few
// hundred rows, and starting workers took 40 ms.
std::vector<std::string> session_setup() {
  return {"SET plan_cache_mode = force_generic_plan", "SET max_parallel_workers_per_gather = 0"};
}

// The read pools of the calling I/O thread, by store (pg_store::attach): used and destroyed on that thread (at
// its exit, while its io_context still exists). A store's id, not its address, names it: ids are never reused.
thread_local std::vector<std::pair<std::uint64_t, std::shared_ptr<pool>>> thread_read_pools;
std::atomic<std::uint64_t> next_store_id{1};

class pg_store final : public store {
 public:
  explicit pg_store(const pg_store_options& o)
      : options_(o),
        work_(asio::make_work_guard(ctx_)),
        pool_(ctx_.get_executor(), o.conninfo, std::max<std::size_t>(2, o.connections), session_setup()) {}

  ~pg_store() override { close(); }

  result<void> start() {
    thread_ = std::thread([this] { ctx_.run(); });
    std::promise<result<void>> ready;
    auto f = ready.get_future();
    asio::co_spawn(ctx_, prepare(), [&ready](std::exception_ptr e, result<void> r) {
      ready.set_value(e ? result<void>(make_error(errc::internal, "internal error: the store failed to start"))
                        : std::move(r));
    });
    auto r = f.get();
    if (!r) return r;
    for (int i = 0; i < std::max(1, options_.writers); ++i) {
      asio::post(ctx_, [this] {
        wakes_.push_back(std::make_unique<asio::steady_timer>(ctx_));
        ++writers_alive_;
        asio::co_spawn(ctx_, writer(wakes_.back().get()), asio::detached);
      });
    }
    return {};
  }

  awaitable<result<std::optional<stored_record>>> get_record(std::uint32_t sdkappid, std::string_view call_id,
                                                             std::int64_t oldest_ts, deadline due) override {
    // A record read before answers on this thread, with no round trip to the database.
    if (auto hit = cache_.find(sdkappid, call_id, oldest_ts)) co_return std::move(hit);
    auto op = read<std::optional<stored_record>>(
        [&](pool& p) { return get_record_work(p, sdkappid, std::string(call_id), oldest_ts, due); }, due);
    co_return co_await std::move(op);
  }

  awaitable<result<record_page>> find_records(const record_filter& filter, deadline due) override {
    auto op = read<record_page>([&](pool& p) { return find_work(p, filter, due); }, due);
    co_return co_await std::move(op);
  }

  awaitable<result<void>> update_calls(std::uint32_t sdkappid, std::vector<std::string> call_ids, update_fn fn,
                                       deadline due) override {
    co_return co_await await_store_thread<void>(
        [&](completion<void> done) {
          if (closed_.load()) {
            done(closed_error());
            return;
          }
          asio::post(ctx_, [this, job = update_job{sdkappid, std::move(call_ids), std::move(fn), std::move(done)}]() mutable {
            if (closing_) {
              job.done(closed_error());
              return;
            }
            queue_.push_back(std::move(job));
            for (auto& w : wakes_) w->cancel();
          });
        },
        due, "the store did not commit the update within the deadline; retry (it may still be applied)");
  }

  awaitable<result<std::vector<due_call>>> claim_due_calls(std::int64_t now_ms, std::size_t limit,
                                                          std::chrono::milliseconds lease) override {
    auto work = claim_work(now_ms, limit, lease);
    auto op = on_thread<std::vector<due_call>>(std::move(work), clock::now() + std::chrono::seconds(3),
                                                        "the store did not answer within the deadline");
    co_return co_await std::move(op);
  }

  awaitable<result<retention_report>> apply_retention(const retention_policy& policy, deadline due) override {
    auto work = retention_work(policy, due);
    auto op = on_thread<retention_report>(std::move(work), due,
                                                   "retention did not finish its step within the deadline");
    co_return co_await std::move(op);
  }

  awaitable<result<store_stats>> stats() override {
    auto work = stats_work();
    auto op = on_thread<store_stats>(std::move(work), clock::now() + std::chrono::seconds(3),
                                              "the store did not answer within the deadline");
    co_return co_await std::move(op);
  }

  awaitable<result<void>> ping(deadline due) override {
    auto work = ping_work(due);
    auto op = on_thread<void>(std::move(work), due, "the store did not answer within the deadline");
    co_return co_await std::move(op);
  }

  // Reads on `ex`'s thread get a pool of their own there: half the store thread's size, at least one connection.
  // A request then waits on the database from its own thread; through the store's thread it took two more
  // wake-ups (there and back), which on a busy machine are where the tail of a page's latency came from.
  void attach(const asio::any_io_executor& ex) override {
    if (closed_.load()) return;
    auto p = std::make_shared<pool>(ex, options_.conninfo, std::max<std::size_t>(1, options_.connections / 2),
                                    session_setup());
    asio::post(ex, [id = id_, p = std::move(p)]() mutable { thread_read_pools.emplace_back(id, std::move(p)); });
  }

  void close() override {
    std::lock_guard lock(close_mu_);
    if (!thread_.joinable()) return;
    closed_.store(true);
    asio::post(ctx_, [this] {
      closing_ = true;
      for (auto& w : wakes_) w->cancel();
      if (writers_alive_ == 0) finish();
    });
    thread_.join();
  }

 private:
  // Runs `work` on the store's thread and gives its result back on the caller's executor; past `due` the
  // caller gets errc::timeout and the work's late result is dropped.
  template <class T>
  awaitable<result<T>> on_thread(awaitable<result<T>> work, deadline due, const char* timeout_message) {
    co_return co_await await_store_thread<T>(
        [&](completion<T> done) {
          if (closed_.load()) {
            done(closed_error());
            return;
          }
          asio::co_spawn(ctx_, std::move(work), [done = std::move(done)](std::exception_ptr e, result<T> r) {
            if (e) {
              done(make_error(errc::internal, "internal error: the store failed"));
              return;
            }
            done(std::move(r));
          });
        },
        due, timeout_message);
  }

  // A read, `work(pool)`: on an attached I/O thread over that thread's own pool (no hop to the store's thread and
  // back), else on the store's thread. `work` is called at once; the coroutine it returns owns its arguments.
  template <class T, class Work>
  awaitable<result<T>> read(Work work, deadline due) {
    if (auto p = thread_pool()) {  // held by this frame while the read runs
      if (closed_.load()) co_return closed_error();
      auto direct = work(*p);
      co_return co_await std::move(direct);
    }
    auto on_store = work(pool_);
    auto op = on_thread<T>(std::move(on_store), due, "the store did not answer within the deadline; retry");
    co_return co_await std::move(op);
  }

  // The calling thread's read pool for this store, if attached. Held by the reading coroutine's frame.
  std::shared_ptr<pool> thread_pool() const {
    for (const auto& [id, p] : thread_read_pools) {
      if (id == id_) return p;
    }
    return nullptr;
  }

  // Runs one batch on a pooled connection.
  awaitable<result<std::vector<rows>>> exec(std::vector<statement> batch, deadline due) {
    co_return co_await pg::run(pool_, batch, due);
  }

  // Migrations and the partitions that exist, before the store serves anything. Waits up to connect_wait for
  // the database to accept connections (a cluster's nodes may start before it).
  awaitable<result<void>> prepare() {
    const auto give_up = clock::now() + options_.connect_wait;
    result<std::shared_ptr<connection>> c = make_error(errc::unavailable, "not connected");
    for (;;) {
      c = co_await pool_.acquire(clock::now() + std::chrono::seconds(3));
      if (c || clock::now() >= give_up) break;
      asio::steady_timer pause(ctx_, std::chrono::milliseconds(300));
      co_await pause.async_wait(asio::use_awaitable);
    }
    if (!c) co_return std::move(c).error();
    auto conn = std::move(*c);
    const auto due = clock::now() + std::chrono::minutes(10);  // an upgrade of a large database takes time
    auto migrated = co_await migrate(*conn, schema_version, due);
    if (!migrated) co_return std::move(migrated).error();
    auto days = co_await partition_days(*conn, due);
    if (!days) co_return std::move(days).error();
    days_ = std::move(*days);
    pool_.release(std::move(conn));
    co_return result<void>{};
  }

  void finish() {
    pool_.close();
    wakes_.clear();
    work_.reset();
  }

  awaitable<result<std::optional<stored_record>>> get_record_work(pool& p, std::uint32_t sdkappid,
                                                                  std::string call_id, std::int64_t oldest_ts,
                                                                  deadline due) {
    std::vector<statement> b;
    // ended_calls holds the call's start_ts, written with the record in one transaction (and removed with it):
    // the record is then one primary-key probe in one partition (the subquery's start_ts prunes the others at
    // run time). A row whose day was dropped meanwhile gives a NULL doc: not found.
    b.emplace_back(
         "SELECT (SELECT r.doc FROM records r WHERE r.sdkappid = e.sdkappid AND r.start_ts = e.start_ts "
         "AND r.call_id = e.call_id) FROM ended_calls e WHERE e.sdkappid = $1 AND e.call_id = $2 AND e.start_ts >= $3")
        .i64(sdkappid)
        .text(call_id)
        .i64(oldest_ts);
    auto r = co_await pg::run(p, b, due, read_retries);
    if (!r) co_return std::move(r).error();
    const auto& rows = (*r)[0];
    if (rows.size() == 0 || rows.is_null(0, 0)) co_return std::optional<stored_record>{};
    auto rec = stored_record::from_doc(rows.bytes(0, 0));
    if (!rec) co_return corrupt("a record's document");
    cache_.put(sdkappid, call_id, *rec);
    co_return std::optional<stored_record>(std::move(*rec));
  }

  awaitable<result<record_page>> find_work(pool& p, record_filter filter, deadline due) {
    const search s(filter);
    if (s.empty()) co_return record_page{};
    const std::vector<statement> b{s.make()};
    auto r = co_await pg::run(p, b, due, read_retries);
    if (!r) co_return std::move(r).error();
    co_return s.read_page((*r)[0]);
  }

  awaitable<result<std::vector<due_call>>> claim_work(std::int64_t now_ms, std::size_t limit,
                                                      std::chrono::milliseconds lease) {
    const auto due = clock::now() + std::chrono::seconds(3);
    // The apps with live calls (a loose index scan of the primary key), then each app's due calls through
    // live_calls_due: every index leads with sdkappid.
    const std::string apps =
        "WITH RECURSIVE apps(s) AS (SELECT min(sdkappid) FROM live_calls UNION ALL "
        "SELECT (SELECT min(sdkappid) FROM live_calls WHERE sdkappid > apps.s) FROM apps WHERE apps.s IS NOT NULL) ";
    const std::string per_app =
        "SELECT l.sdkappid, l.call_id, l.deadline_ms FROM apps, LATERAL (SELECT sdkappid, call_id, deadline_ms "
        "FROM live_calls WHERE sdkappid = apps.s AND deadline_ms IS NOT NULL AND deadline_ms <= $1 "
        "AND (lease_ms IS NULL OR lease_ms <= $1) ORDER BY deadline_ms LIMIT $2";
    std::vector<statement> b;
    if (lease.count() > 0) {
      b.emplace_back(apps + ", due AS (" + per_app +
                     " FOR UPDATE SKIP LOCKED) l WHERE apps.s IS NOT NULL ORDER BY l.deadline_ms LIMIT $2) "
                     "UPDATE live_calls c SET lease_ms = $3 FROM due WHERE c.sdkappid = due.sdkappid "
                     "AND c.call_id = due.call_id RETURNING c.sdkappid, c.call_id, c.deadline_ms")
          .i64(now_ms)
          .i64(static_cast<std::int64_t>(std::min<std::size_t>(limit, INT32_MAX)))
          .i64(now_ms + lease.count());
    } else {
      b.emplace_back(apps + per_app + ") l WHERE apps.s IS NOT NULL ORDER BY l.deadline_ms LIMIT $2")
          .i64(now_ms)
          .i64(static_cast<std::int64_t>(std::min<std::size_t>(limit, INT32_MAX)));
    }
    auto r = co_await exec(std::move(b), due);
    if (!r) co_return std::move(r).error();
    std::vector<due_call> out;
    const auto& rows = (*r)[0];
    for (int i = 0; i < rows.size(); ++i) {
      out.push_back(
          due_call{static_cast<std::uint32_t>(rows.i64(i, 0)), std::string(rows.bytes(i, 1)), rows.i64(i, 2)});
    }
    std::sort(out.begin(), out.end(), [](const due_call& a, const due_call& b) {
      return std::tie(a.deadline_ms, a.sdkappid, a.call_id) < std::tie(b.deadline_ms, b.sdkappid, b.call_id);
    });
    co_return out;
  }

  awaitable<result<store_stats>> stats_work() {
    std::vector<statement> b;
    b.emplace_back(
        "SELECT (SELECT COALESCE(SUM(n), 0)::int8 FROM record_counts WHERE span_s = 86400), "
        "(SELECT count(*) FROM live_calls)");
    auto r = co_await exec(std::move(b), clock::now() + std::chrono::seconds(3));
    if (!r) co_return std::move(r).error();
    store_stats s;
    s.records = static_cast<std::uint64_t>((*r)[0].i64(0, 0));
    s.live_calls = static_cast<std::uint64_t>((*r)[0].i64(0, 1));
    s.commits = commits_.load(std::memory_order_relaxed);
    s.committed_updates = committed_updates_.load(std::memory_order_relaxed);
    co_return s;
  }

  awaitable<result<void>> ping_work(deadline due) {
    std::vector<statement> b;
    b.emplace_back("SELECT 1");
    auto r = co_await exec(std::move(b), due);
    if (!r) co_return std::move(r).error();
    co_return result<void>{};
  }

  // -------------------------------------------------------------------------------------------------------
  // Group commit

  awaitable<void> writer(asio::steady_timer* wake) {
    for (;;) {
      while (queue_.empty() && !closing_) {
        wake->expires_at(clock::time_point::max());
        boost::system::error_code ec;
        co_await wake->async_wait(asio::redirect_error(asio::use_awaitable, ec));
      }
      if (queue_.empty()) break;  // closing, and every queued update is done
      std::vector<update_job> group = take_group();
      if (group.empty()) {  // every queued update waits for a call another writer has in flight
        wake->expires_at(clock::time_point::max());
        boost::system::error_code ec;
        co_await wake->async_wait(asio::redirect_error(asio::use_awaitable, ec));
        continue;
      }
      co_await run_group(group);
      for (const auto& job : group) {
        for (const auto& id : job.call_ids) in_flight_.erase(call_key{job.sdkappid, id});
      }
      for (auto& w : wakes_) w->cancel();  // updates that waited for these calls may go now
    }
    if (--writers_alive_ == 0 && closing_) finish();
  }

  // The next group: queued updates in order, skipping any that touches a call in another writer's group in
  // flight or in an update skipped before it, so that the updates of one call commit in the order they came.
  std::vector<update_job> take_group() {
    std::vector<update_job> group;
    std::set<call_key> skipped;
    auto touches = [](const update_job& job, const std::set<call_key>& keys) {
      for (const auto& id : job.call_ids) {
        if (keys.contains(call_key{job.sdkappid, id})) return true;
      }
      return false;
    };
    for (auto it = queue_.begin(); it != queue_.end() && group.size() < options_.max_group;) {
      if (touches(*it, in_flight_) || touches(*it, skipped)) {
        for (const auto& id : it->call_ids) skipped.insert(call_key{it->sdkappid, id});
        ++it;
        continue;
      }
      group.push_back(std::move(*it));
      it = queue_.erase(it);
    }
    for (const auto& job : group) {
      for (const auto& id : job.call_ids) in_flight_.insert(call_key{job.sdkappid, id});
    }
    return group;
  }

  awaitable<void> run_group(std::vector<update_job>& group) {
    attempt a;
    bool careful = false;
    for (int tries = 0;; ++tries) {
      const auto due = clock::now() + work_deadline;
      auto c = co_await pool_.acquire(due);
      if (!c) {
        a.end = attempt::how::failed;
        a.failure = std::move(c).error();
        break;
      }
      auto conn = std::move(*c);
      a = co_await try_group(*conn, group, due, careful);
      careful = careful || a.duplicate;
      if (a.end == attempt::how::retry && tries < 8) {
        if (!a.missing_days.empty()) {
          auto made = co_await create_partitions(*conn, a.missing_days, due);
          if (!made) {
            pool_.release(std::move(conn));
            a.end = attempt::how::failed;
            a.failure = std::move(made).error();
            break;
          }
          days_.insert(a.missing_days.begin(), a.missing_days.end());
        }
        pool_.release(std::move(conn));
        continue;
      }
      pool_.release(std::move(conn));
      break;
    }
    if (a.end == attempt::how::committed) {
      commits_.fetch_add(1, std::memory_order_relaxed);
      committed_updates_.fetch_add(group.size(), std::memory_order_relaxed);
    } else if (!a.failure) {
      a.failure = make_error(errc::unavailable, "the database kept refusing the update; retry");
    }
    for (std::size_t i = 0; i < group.size(); ++i) {
      result<void> outcome = a.end != attempt::how::committed ? result<void>(*a.failure)
                             : i < a.outcomes.size()          ? std::move(a.outcomes[i])
                                                              : result<void>();
      try {
        group[i].done(std::move(outcome));
      } catch (...) {
        // `done` must not throw; the store's thread has to outlive a caller's bug.
      }
    }
  }

  // One transaction over the whole group, in two round trips: (1) begin, lock the calls, read their live state
  // and whether they have a record; the updates run in memory; (2) write everything and commit.
  //
  // A record is written only for a call that (1) found without one, under the call's lock, which every writer of
  // the call holds until it commits: so its rows (records, ended_calls, participants, rooms) are new, and go in
  // with plain INSERTs. ON CONFLICT DO NOTHING first searched each unique index for the row it was about to
  // insert, then descended it again to insert: a fifth of the database's CPU during a load. Should a row exist
  // anyway (a database changed by hand), the group fails with a unique violation and runs again `careful`,
  // with ON CONFLICT DO NOTHING.
  awaitable<attempt> try_group(connection& c, std::vector<update_job>& group, deadline due, bool careful) {
    attempt out;
    std::map<call_key, held_call> calls;
    for (auto& job : group) {
      store_core::unique_ids(job.call_ids);
      for (const auto& id : job.call_ids) {
        calls.try_emplace(call_key{job.sdkappid, id});
      }
    }
    std::vector<std::int64_t> keys;
    array live_apps{oid::int8}, live_ids{oid::text};
    for (const auto& [k, h] : calls) {
      keys.push_back(lock_key(std::to_string(k.first) + ':' + k.second));
      live_apps.add(static_cast<std::int64_t>(k.first));
      live_ids.add(k.second);
    }
    std::sort(keys.begin(), keys.end());
    keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
    array lock_keys{oid::int8};
    for (auto k : keys) lock_keys.add(k);

    std::vector<statement> first;
    first.emplace_back("BEGIN");
    // Sorted keys, taken in array order: every transaction locks its calls in one global order.
    first.emplace_back("SELECT pg_advisory_xact_lock(k) FROM unnest($1::int8[]) AS t(k)")
        .arr(lock_keys);
    // One index lookup per call (LATERAL ... LIMIT 1 keeps the planner from a hash join: the generic plan is
    // made once per connection, maybe while the table is nearly empty, and would scan it whole ever after).
    first.emplace_back(
             "SELECT k.a, k.id, l.state, l.deadline_ms FROM unnest($1::int8[], $2::text[]) AS k(a, id), "
             "LATERAL (SELECT state, deadline_ms FROM live_calls WHERE sdkappid = k.a AND call_id = k.id LIMIT 1) l")
        .arr(live_apps)
        .arr(live_ids);
    first.emplace_back(
             "SELECT k.a, k.id FROM unnest($1::int8[], $2::text[]) AS k(a, id), "
             "LATERAL (SELECT 1 FROM ended_calls WHERE sdkappid = k.a AND call_id = k.id LIMIT 1) e")
        .arr(live_apps)
        .arr(live_ids);
    auto r = co_await c.run(first, due);
    if (!r) {
      out.end = retryable(c.last_sqlstate()) ? attempt::how::retry : attempt::how::failed;
      out.failure = std::move(r).error();
      co_return out;
    }
    {
      const auto& live = (*r)[2];
      for (int i = 0; i < live.size(); ++i) {
        auto& h = calls[call_key{static_cast<std::uint32_t>(live.i64(i, 0)), std::string(live.bytes(i, 1))}];
        auto st = calls::decode(live.bytes(i, 2));
        if (!st) {
          out.failure = corrupt("a live call's state");
          co_await end_transaction(c, due);
          co_return out;
        }
        h.state = std::move(*st);
        if (!live.is_null(i, 3)) h.deadline_ms = live.i64(i, 3);
        h.was_live = true;
      }
      const auto& ended = (*r)[3];
      for (int i = 0; i < ended.size(); ++i) {
        calls[call_key{static_cast<std::uint32_t>(ended.i64(i, 0)), std::string(ended.bytes(i, 1))}].ended = true;
      }
    }

    group_writes w;
    for (auto& job : group) {
      group_txn txn{calls, w, job.sdkappid};
      auto o = store_core::run_update(txn, job.sdkappid, job.call_ids, job.fn, out.records);
      if (o.storage) {  // cannot happen in memory; kept for the contract
        out.failure = std::move(o.storage);
        co_await end_transaction(c, due);
        co_return out;
      }
      out.outcomes.push_back(std::move(o.own));
    }
    for (const auto day : w.days) {
      if (!days_.contains(day)) out.missing_days.insert(day);
    }
    if (!out.missing_days.empty()) {
      co_await end_transaction(c, due);
      out.end = attempt::how::retry;
      co_return out;
    }

    std::vector<statement> second;
    const std::string on_conflict = careful ? " ON CONFLICT DO NOTHING" : "";
    if (w.rec_app.size() > 0) {
      second.emplace_back(
                "INSERT INTO records (sdkappid, start_ts, call_id, result, call_type, media, doc) "
                "SELECT * FROM unnest($1::int8[], $2::int8[], $3::text[], $4::int2[], $5::int2[], $6::int2[], "
                "$7::bytea[])" + on_conflict)
          .arr(w.rec_app)
          .arr(w.rec_start)
          .arr(w.rec_id)
          .arr(w.rec_result)
          .arr(w.rec_type)
          .arr(w.rec_media)
          .arr(w.rec_doc);
      second.emplace_back(
                "INSERT INTO ended_calls (sdkappid, call_id, start_ts) "
                "SELECT * FROM unnest($1::int8[], $2::text[], $3::int8[])" + on_conflict)
          .arr(w.rec_app)
          .arr(w.rec_id)
          .arr(w.rec_start);
      second.emplace_back(
                "INSERT INTO participants (sdkappid, user_id, start_ts, call_id, is_caller) "
                "SELECT * FROM unnest($1::int8[], $2::text[], $3::int8[], $4::text[], $5::bool[])" + on_conflict)
          .arr(w.part_app)
          .arr(w.part_user)
          .arr(w.part_start)
          .arr(w.part_id)
          .arr(w.part_caller);
      second.emplace_back(
                "INSERT INTO rooms (sdkappid, room_id, start_ts, call_id) "
                "SELECT * FROM unnest($1::int8[], $2::text[], $3::int8[], $4::text[])" + on_conflict)
          .arr(w.room_app)
          .arr(w.room_id)
          .arr(w.room_start)
          .arr(w.room_call);
      count_statements(w.deltas, second);
    }
    array up_app{oid::int8}, up_id{oid::text}, up_state{oid::bytea}, up_due{oid::int8};
    array del_app{oid::int8}, del_id{oid::text};
    for (const auto& [k, h] : calls) {
      if (!h.dirty) continue;
      if (h.state) {
        up_app.add(static_cast<std::int64_t>(k.first));
        up_id.add(k.second);
        up_state.add(calls::encode(*h.state));
        if (h.deadline_ms) {
          up_due.add(*h.deadline_ms);
        } else {
          up_due.add_null();
        }
      } else if (h.was_live) {
        del_app.add(static_cast<std::int64_t>(k.first));
        del_id.add(k.second);
      }
    }
    if (up_app.size() > 0) {
      second.emplace_back(
                "INSERT INTO live_calls (sdkappid, call_id, state, deadline_ms, lease_ms) "
                "SELECT a, id, s, d, NULL FROM unnest($1::int8[], $2::text[], $3::bytea[], $4::int8[]) AS k(a, id, s, d) "
                "ON CONFLICT (sdkappid, call_id) DO UPDATE SET state = excluded.state, "
                "deadline_ms = excluded.deadline_ms, lease_ms = NULL")
          .arr(up_app)
          .arr(up_id)
          .arr(up_state)
          .arr(up_due);
    }
    if (del_app.size() > 0) {
      second.emplace_back(
                "DELETE FROM live_calls l USING unnest($1::int8[], $2::text[]) AS k(a, id) "
                "WHERE l.sdkappid = k.a AND l.call_id = k.id")
          .arr(del_app)
          .arr(del_id);
    }
    second.emplace_back("COMMIT");
    auto done = co_await c.run(second, due);
    if (!done) {
      const auto& state = c.last_sqlstate();
      if (state == failure_kind::no_partition) {
        // Another node dropped a day this one still knew: learn the partitions again and retry.
        auto days = co_await partition_days(c, due);
        if (days) days_ = std::move(*days);
        out.end = attempt::how::retry;
      } else if (state == failure_kind::unique_violation && !careful) {
        out.end = attempt::how::retry;
        out.duplicate = true;
      } else {
        out.end = retryable(state) ? attempt::how::retry : attempt::how::failed;
      }
      out.failure = std::move(done).error();
      co_return out;
    }
    out.end = attempt::how::committed;
    co_return out;
  }

  // Ends a transaction that will not commit (the connection stays usable).
  static awaitable<void> end_transaction(connection& c, deadline due) {
    const std::vector<statement> rollback{statement("ROLLBACK", false)};
    (void)co_await c.run(rollback, due);
  }

  // -------------------------------------------------------------------------------------------------------
  // Retention: a day whose records all lie outside every window they belong to goes as whole partitions;
  // otherwise an app's records leave a slice at a time.

  awaitable<result<retention_report>> retention_work(retention_policy policy, deadline due) {
    retention_report report;
    if (policy.apps.empty()) co_return report;
    std::map<std::uint32_t, std::int64_t> oldest;
    for (const auto& a : policy.apps) oldest[a.sdkappid] = a.oldest_ts;
    auto c = co_await pool_.acquire(due);
    if (!c) co_return std::move(c).error();
    auto conn = std::move(*c);
    // Partitions ahead: today's and tomorrow's (UTC, the machine's clock) exist before their first call, so
    // the first group after midnight does not stop to create them (the update path still creates any day it
    // lacks, a call far from now included).
    const auto today = buckets::floor_div(
        std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count(),
        std::int64_t{86400});
    std::set<std::int64_t> ahead;
    for (const auto day : {today, today + 1}) {
      if (!days_.contains(day)) ahead.insert(day);
    }
    if (!ahead.empty()) {
      // Best effort: DDL can lose a deadlock to reads of the partitions; the next pass tries again, and a
      // group of updates creates a day it needs itself.
      if (auto made = co_await create_partitions(*conn, ahead, due)) days_.insert(ahead.begin(), ahead.end());
    }
    auto out = co_await retention_step(*conn, oldest, due, report);
    pool_.release(std::move(conn));
    if (!out) co_return out.error();
    co_return report;
  }

  awaitable<result<void>> retention_step(connection& c, const std::map<std::uint32_t, std::int64_t>& oldest,
                                         deadline due, retention_report& report) {
    auto days = co_await partition_days(c, due);
    if (!days) co_return std::move(days).error();
    days_ = *days;
    std::int64_t latest = INT64_MIN;
    for (const auto& [app, ts] : oldest) latest = std::max(latest, ts);
    for (const auto day : *days) {
      if ((day + 1) * 86400 > latest) break;  // no app's window has left this day entirely
      const std::string name = day_name(day);
      std::vector<statement> look;
      look.emplace_back("WITH RECURSIVE a(s) AS (SELECT min(sdkappid) FROM records_p" + name +
                            " UNION ALL SELECT (SELECT min(sdkappid) FROM records_p" + name +
                            " WHERE sdkappid > a.s) FROM a WHERE a.s IS NOT NULL) SELECT s FROM a WHERE s IS NOT NULL",
                        false);
      auto r = co_await c.run(look, due);
      if (!r) co_return std::move(r).error();
      std::vector<std::int64_t> apps;
      bool droppable = true;
      for (int i = 0; i < (*r)[0].size(); ++i) {
        const auto app = (*r)[0].i64(i, 0);
        apps.push_back(app);
        auto it = oldest.find(static_cast<std::uint32_t>(app));
        if (it == oldest.end() || it->second < (day + 1) * 86400) droppable = false;
      }
      if (!droppable) continue;
      auto dropped = co_await drop_day(c, day, apps, due);
      if (!dropped) co_return std::move(dropped).error();
      report.records_removed += *dropped;
      days_.erase(day);
      report.complete = false;  // one day a step: the caller comes back for the next
      co_return result<void>{};
    }
    // Apps whose window ends inside a day that stays: their older records go a slice at a time.
    for (const auto& [app, ts] : oldest) {
      auto n = co_await remove_slice(c, app, ts, due);
      if (!n) co_return std::move(n).error();
      report.records_removed += *n;
      if (*n == retention_slice) report.complete = false;
    }
    co_return result<void>{};
  }

  // Drops one day's partitions with the counts of its records. A short lock timeout: the drop waits for the
  // reads that use the parent table, and while it waits, new ones would queue behind it.
  awaitable<result<std::uint64_t>> drop_day(connection& c, std::int64_t day, const std::vector<std::int64_t>& apps,
                                            deadline due) {
    const std::string name = day_name(day);
    array app_list{oid::int8};
    for (auto a : apps) app_list.add(a);
    std::vector<statement> b;
    b.emplace_back("BEGIN");
    b.emplace_back("SET LOCAL lock_timeout = '500ms'");
    b.emplace_back(
         "SELECT COALESCE(SUM(n), 0)::int8 FROM record_counts WHERE sdkappid = ANY($1::int8[]) AND span_s = 86400 "
         "AND bucket = $2")
        .arr(app_list)
        .i64(day);
    for (int level = 0; level < span_count; ++level) {
      const auto span = count_spans[level];
      b.emplace_back(
           "DELETE FROM record_counts WHERE sdkappid = ANY($1::int8[]) AND span_s = $2 AND bucket >= $3 AND bucket <= $4")
          .arr(app_list)
          .i32(static_cast<std::int32_t>(span))
          .i64(day * 86400 / span)
          .i64((day + 1) * 86400 / span - 1);
    }
    b.emplace_back("DELETE FROM ended_calls WHERE sdkappid = ANY($1::int8[]) AND start_ts >= $2 AND start_ts < $3")
        .arr(app_list)
        .i64(day * 86400)
        .i64((day + 1) * 86400);
    for (const char* table : {"records", "participants", "rooms"}) {
      b.emplace_back(std::string("DROP TABLE IF EXISTS ") + table + "_p" + name, false);
    }
    b.emplace_back("COMMIT");
    auto r = co_await c.run(b, due);
    if (!r) {
      if (c.last_sqlstate() == failure_kind::lock_timeout) co_return std::uint64_t{0};  // next time
      co_return std::move(r).error();
    }
    co_return static_cast<std::uint64_t>((*r)[2].i64(0, 0));
  }

  awaitable<result<std::uint64_t>> remove_slice(connection& c, std::uint32_t app, std::int64_t before, deadline due) {
    std::vector<statement> look;
    look.emplace_back("SELECT doc FROM records WHERE sdkappid = $1 AND start_ts < $2 ORDER BY start_ts LIMIT $3")
        .i64(app)
        .i64(before)
        .i64(static_cast<std::int64_t>(retention_slice));
    auto r = co_await c.run(look, due);
    if (!r) co_return std::move(r).error();
    const auto& rows = (*r)[0];
    if (rows.size() == 0) co_return std::uint64_t{0};
    array rec_start{oid::int8}, rec_id{oid::text};
    array part_user{oid::text}, part_start{oid::int8}, part_id{oid::text};
    array room_id{oid::text}, room_start{oid::int8}, room_call{oid::text};
    store_core::count_deltas deltas;
    for (int i = 0; i < rows.size(); ++i) {
      record_fields f;
      if (!decode_doc(rows.bytes(i, 0), f)) co_return corrupt("a record's document");
      rec_start.add(f.start_ts);
      rec_id.add(f.call_id);
      auto participant = [&](std::string_view user) {
        part_user.add(user);
        part_start.add(f.start_ts);
        part_id.add(f.call_id);
      };
      participant(f.caller);
      for_each_callee(f.callees, participant);
      room_id.add(f.room_id);
      room_start.add(f.start_ts);
      room_call.add(f.call_id);
      store_core::add_counts(deltas, app, f.start_ts, f.result, f.type, f.media, -1);
    }
    std::vector<statement> b;
    b.emplace_back("BEGIN");
    b.emplace_back(
         "DELETE FROM records r USING unnest($2::int8[], $3::text[]) AS k(s, id) "
         "WHERE r.sdkappid = $1 AND r.start_ts = k.s AND r.call_id = k.id")
        .i64(app)
        .arr(rec_start)
        .arr(rec_id);
    b.emplace_back("DELETE FROM ended_calls e USING unnest($2::text[]) AS k(id) WHERE e.sdkappid = $1 AND e.call_id = k.id")
        .i64(app)
        .arr(rec_id);
    b.emplace_back(
         "DELETE FROM participants p USING unnest($2::text[], $3::int8[], $4::text[]) AS k(u, s, id) "
         "WHERE p.sdkappid = $1 AND p.user_id = k.u AND p.start_ts = k.s AND p.call_id = k.id")
        .i64(app)
        .arr(part_user)
        .arr(part_start)
        .arr(part_id);
    b.emplace_back(
         "DELETE FROM rooms m USING unnest($2::text[], $3::int8[], $4::text[]) AS k(room, s, id) "
         "WHERE m.sdkappid = $1 AND m.room_id = k.room AND m.start_ts = k.s AND m.call_id = k.id")
        .i64(app)
        .arr(room_id)
        .arr(room_start)
        .arr(room_call);
    count_statements(deltas, b);
    b.emplace_back("COMMIT");
    auto done = co_await c.run(b, due);
    if (!done) co_return std::move(done).error();
    co_return static_cast<std::uint64_t>((*done)[1].affected());
  }

  pg_store_options options_;
  const std::uint64_t id_ = next_store_id.fetch_add(1);
  asio::io_context ctx_{1};
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  std::thread thread_;
  std::mutex close_mu_;
  std::atomic<bool> closed_{false};  // any thread: no new work is accepted

  // The store's thread only:
  pool pool_;
  std::deque<update_job> queue_;
  std::vector<std::unique_ptr<asio::steady_timer>> wakes_;  // one per writer, cancelled to wake it
  int writers_alive_ = 0;
  bool closing_ = false;
  std::set<std::int64_t> days_;  // days with partitions, as this node last saw them
  std::set<call_key> in_flight_;  // the calls of the groups being committed

  std::atomic<std::uint64_t> commits_{0}, committed_updates_{0};
  record_cache cache_{options_.cached_records};
};

}  // namespace

result<std::unique_ptr<store>> open_pg_store(const pg_store_options& options) {
  auto s = std::make_unique<pg_store>(options);
  if (auto r = s->start(); !r) {
    s->close();
    return r.error();
  }
  return std::unique_ptr<store>(std::move(s));
}

}  // namespace callrec::pg
