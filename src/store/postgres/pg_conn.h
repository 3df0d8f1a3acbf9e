// One PostgreSQL connection driven by Asio through libpq's non-blocking API, in pipeline mode: a batch of
// statements goes out in one write and its results come back in one round trip. And the pool of them.
//
// Threads: a connection and the pool belong to one executor (the PostgreSQL store's own thread); every call
// is made there. Nothing blocks that thread: the socket is waited on with Asio, never inside libpq.
//
// Parameters and results are in PostgreSQL's binary format: integers in network order, text and bytea as
// their bytes, arrays as binary array values (statement::array). No quoting or escaping anywhere.
#pragma once

#include <libpq-fe.h>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/clock.h"
#include "core/error.h"

namespace callrec::pg {

template <class T>
using awaitable = boost::asio::awaitable<T>;

// Type OIDs of the parameters we send (pg_type.dat).
enum class oid : Oid {
  boolean = 16,
  bytea = 17,
  int8 = 20,
  int2 = 21,
  int4 = 23,
  text = 25,
  bool_array = 1000,
  bytea_array = 1001,
  int2_array = 1005,
  int4_array = 1007,
  text_array = 1009,
  int8_array = 1016,
};

// A one-dimensional array parameter in binary form, built element by element.
class array {
 public:
  explicit array(oid element) : element_(element) {}
  array& add(std::int64_t v);  // int8 elements
  array& add_i16(std::int16_t v);
  array& add(std::string_view bytes);  // text or bytea elements
  array& add_bool(bool v);
  array& add_null();
  std::size_t size() const { return count_; }
  std::string encode() const;
  oid array_type() const;

 private:
  oid element_;
  std::string items_;  // each element: int32 length (-1: null), then its bytes
  std::size_t count_ = 0;
  bool has_null_ = false;
};

// A statement and its parameters, owned. `prepared`: the connection prepares it once (named after its text)
// and then only sends the parameters.
class statement {
 public:
  explicit statement(std::string sql, bool prepared = true) : sql_(std::move(sql)), prepared_(prepared) {}
  statement& i64(std::int64_t v);
  statement& i32(std::int32_t v);
  statement& text(std::string_view v);
  statement& bytea(std::string_view v);
  statement& boolean(bool v);
  statement& null(oid type);
  statement& arr(const array& a);
  statement& opt_i64(const std::optional<std::int64_t>& v) { return v ? i64(*v) : null(oid::int8); }

  const std::string& sql() const { return sql_; }
  bool prepared() const { return prepared_; }
  int count() const { return static_cast<int>(types_.size()); }
  const Oid* types() const { return types_.data(); }
  // Pointers into this statement's storage: valid while it lives unchanged.
  void pointers(std::vector<const char*>& values, std::vector<int>& lengths) const;

 private:
  statement& add(oid type, std::string bytes);
  std::string sql_;
  bool prepared_;
  std::vector<Oid> types_;
  std::vector<std::string> values_;
  std::vector<char> null_;
};

// One statement's result (binary columns).
class rows {
 public:
  rows() = default;
  explicit rows(PGresult* r) : r_(r, &PQclear) {}
  int size() const { return r_ ? PQntuples(r_.get()) : 0; }
  bool is_null(int row, int col) const { return PQgetisnull(r_.get(), row, col) != 0; }
  std::string_view bytes(int row, int col) const {
    return std::string_view(PQgetvalue(r_.get(), row, col), static_cast<std::size_t>(PQgetlength(r_.get(), row, col)));
  }
  // An integer column of any width (int2, int4, int8) or a bool.
  std::int64_t i64(int row, int col) const;
  // Rows an INSERT, UPDATE or DELETE touched.
  std::uint64_t affected() const;

 private:
  std::shared_ptr<PGresult> r_;
};

// Why a statement failed, for retries: SQLSTATE classes the store reacts to.
struct failure_kind {
  static constexpr std::string_view deadlock = "40P01";
  static constexpr std::string_view serialization = "40001";
  static constexpr std::string_view no_partition = "23514";  // check_violation: no partition for the row
  static constexpr std::string_view unique_violation = "23505";
  static constexpr std::string_view lock_timeout = "55P03";
  static constexpr std::string_view query_canceled = "57014";
};

class connection : public std::enable_shared_from_this<connection> {
 public:
  // Connects without blocking and enters pipeline mode. `conninfo`: a libpq URL or key=value string.
  static awaitable<result<std::shared_ptr<connection>>> open(boost::asio::any_io_executor ex, std::string conninfo,
                                                             deadline due);
  ~connection();
  connection(const connection&) = delete;
  connection& operator=(const connection&) = delete;

  // Coroutine arguments: GCC 12 mishandles temporaries inside co_await expressions, so callers make the awaitable
  // a named local first (auto op = f(...); co_await std::move(op)) whenever an argument is not trivial.
  //
  // Sends the statements as one pipeline and returns their results in order: one round trip. When a statement
  // fails, its error is returned (the ones after it were skipped by the server; a transaction it was in is
  // rolled back before this returns, so the connection is reusable). Past `due`, or when the connection
  // breaks, the error is errc::timeout or errc::unavailable and the connection is broken().
  awaitable<result<std::vector<rows>>> run(const std::vector<statement>& batch, deadline due);

  bool broken() const { return broken_; }
  // SQLSTATE of the last failed statement ("" when the failure was the connection's).
  const std::string& last_sqlstate() const { return sqlstate_; }

 private:
  struct key {};

 public:
  connection(key, boost::asio::any_io_executor ex, PGconn* c);

 private:
  awaitable<bool> wait(bool for_write);  // false: the deadline passed or the socket failed
  struct next {
    bool ok = false;  // false: the connection failed or the deadline passed
    PGresult* result = nullptr;
  };
  awaitable<next> next_result();
  awaitable<result<std::vector<rows>>> exchange(const std::vector<statement>& batch);
  error fail(errc code, std::string message, std::string detail);

  PGconn* conn_;
  boost::asio::posix::stream_descriptor socket_;
  boost::asio::steady_timer timer_;
  std::uint64_t run_gen_ = 0;  // which run() the armed timer belongs to
  bool timed_out_ = false;
  bool broken_ = false;
  std::string sqlstate_;
  std::unordered_map<std::string, std::string> prepared_;  // statement text -> its name on this connection
  std::uint64_t names_ = 0;  // prepared statements named so far: a name is never given twice
};

// Connections to one database, opened on demand up to `max`. A connection returned broken is dropped; the
// next acquire opens a new one, so the pool reconnects by itself after the server comes back. While the server
// refuses connections, acquires fail at once for a short back-off instead of each trying again.
class pool {
 public:
  // `setup`: statements each new connection runs once before its first use (session settings).
  pool(boost::asio::any_io_executor ex, std::string conninfo, std::size_t max, std::vector<std::string> setup = {});
  ~pool();
  awaitable<result<std::shared_ptr<connection>>> acquire(deadline due);
  void release(std::shared_ptr<connection> c);
  // Closes idle connections and fails waiters; later acquires fail.
  void close();
  std::size_t open_count() const { return open_; }

 private:
  struct waiter;
  // Hands `c` to the longest waiter, or (null) tells it a slot is free to open a connection in.
  void wake_one(std::shared_ptr<connection> c);
  boost::asio::any_io_executor ex_;
  std::string conninfo_;
  std::size_t max_;
  std::vector<statement> setup_;
  std::size_t open_ = 0;  // connected or connecting
  bool closed_ = false;
  std::chrono::steady_clock::time_point refused_until_{};
  std::string refused_detail_;
  std::vector<std::shared_ptr<connection>> idle_;
  std::deque<std::shared_ptr<waiter>> waiters_;
};

// A deadlock or serialization failure: the transaction was rolled back and may simply run again.
bool retryable(std::string_view sqlstate);

// Runs `batch` on a connection of `p` (acquired and released here). A batch that is safe to run again (a read)
// may pass `retries`: it runs again that many times at most while it fails retryably, within `due`.
awaitable<result<std::vector<rows>>> run(pool& p, const std::vector<statement>& batch, deadline due,
                                         int retries = 0);

// The 64-bit advisory lock key of a name (FNV-1a), for pg_advisory_lock.
std::int64_t lock_key(std::string_view name);

}  // namespace callrec::pg
