#include "store/postgres/pg_conn.h"

#include <unistd.h>

#include <algorithm>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <charconv>
#include <cstring>

namespace callrec::pg {

namespace asio = boost::asio;

namespace {

void put32(std::string& out, std::uint32_t v) {
  const char b[4] = {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
                     static_cast<char>(v)};
  out.append(b, 4);
}

void put64(std::string& out, std::uint64_t v) {
  put32(out, static_cast<std::uint32_t>(v >> 32));
  put32(out, static_cast<std::uint32_t>(v));
}

std::string be64(std::int64_t v) {
  std::string s;
  put64(s, static_cast<std::uint64_t>(v));
  return s;
}

std::uint64_t get_be(std::string_view b) {
  std::uint64_t v = 0;
  for (unsigned char c : b) v = (v << 8) | c;
  return v;
}

std::string trimmed(const char* s) {
  std::string t = s ? s : "";
  while (!t.empty() && (t.back() == '\n' || t.back() == ' ')) t.pop_back();
  return t;
}

}  // namespace

// ---------------------------------------------------------------------------------------------------------
// Parameters

array& array::add(std::int64_t v) {
  put32(items_, 8);
  put64(items_, static_cast<std::uint64_t>(v));
  ++count_;
  return *this;
}

array& array::add_i16(std::int16_t v) {
  put32(items_, 2);
  const auto u = static_cast<std::uint16_t>(v);
  items_.push_back(static_cast<char>(u >> 8));
  items_.push_back(static_cast<char>(u));
  ++count_;
  return *this;
}

array& array::add(std::string_view bytes) {
  put32(items_, static_cast<std::uint32_t>(bytes.size()));
  items_.append(bytes);
  ++count_;
  return *this;
}

array& array::add_bool(bool v) {
  put32(items_, 1);
  items_.push_back(v ? 1 : 0);
  ++count_;
  return *this;
}

array& array::add_null() {
  put32(items_, 0xFFFFFFFFu);  // length -1
  has_null_ = true;
  ++count_;
  return *this;
}

std::string array::encode() const {
  std::string out;
  out.reserve(20 + items_.size());
  put32(out, count_ == 0 ? 0 : 1);  // dimensions
  put32(out, has_null_ ? 1 : 0);
  put32(out, static_cast<std::uint32_t>(element_));
  if (count_ != 0) {
    put32(out, static_cast<std::uint32_t>(count_));
    put32(out, 1);  // lower bound
  }
  out += items_;
  return out;
}

oid array::array_type() const {
  switch (element_) {
    case oid::boolean:
      return oid::bool_array;
    case oid::bytea:
      return oid::bytea_array;
    case oid::int2:
      return oid::int2_array;
    case oid::int4:
      return oid::int4_array;
    case oid::text:
      return oid::text_array;
    default:
      return oid::int8_array;
  }
}

statement& statement::add(oid type, std::string bytes) {
  types_.push_back(static_cast<Oid>(type));
  values_.push_back(std::move(bytes));
  null_.push_back(0);
  return *this;
}

statement& statement::i64(std::int64_t v) { return add(oid::int8, be64(v)); }

statement& statement::i32(std::int32_t v) {
  std::string s;
  put32(s, static_cast<std::uint32_t>(v));
  return add(oid::int4, std::move(s));
}

statement& statement::text(std::string_view v) { return add(oid::text, std::string(v)); }
statement& statement::bytea(std::string_view v) { return add(oid::bytea, std::string(v)); }
statement& statement::boolean(bool v) { return add(oid::boolean, std::string(1, v ? '\1' : '\0')); }
statement& statement::arr(const array& a) { return add(a.array_type(), a.encode()); }

statement& statement::null(oid type) {
  add(type, {});
  null_.back() = 1;
  return *this;
}

void statement::pointers(std::vector<const char*>& values, std::vector<int>& lengths) const {
  values.clear();
  lengths.clear();
  for (std::size_t i = 0; i < values_.size(); ++i) {
    values.push_back(null_[i] ? nullptr : values_[i].data());
    lengths.push_back(static_cast<int>(values_[i].size()));
  }
}

// ---------------------------------------------------------------------------------------------------------
// Results

std::int64_t rows::i64(int row, int col) const {
  const auto b = bytes(row, col);
  const auto u = get_be(b);
  switch (b.size()) {
    case 1:
      return static_cast<std::int64_t>(u);
    case 2:
      return static_cast<std::int16_t>(u);
    case 4:
      return static_cast<std::int32_t>(u);
    default:
      return static_cast<std::int64_t>(u);
  }
}

std::uint64_t rows::affected() const {
  if (!r_) return 0;
  const char* s = PQcmdTuples(r_.get());
  std::uint64_t n = 0;
  std::from_chars(s, s + std::strlen(s), n);
  return n;
}

// ---------------------------------------------------------------------------------------------------------
// Connection

namespace {

// Waits until `fd` is ready or `due` passes: false on the deadline or an error of the socket.
// The timer's handler owns what it touches: it may run after this coroutine has returned.
awaitable<bool> wait_fd(asio::any_io_executor ex, int fd, bool for_write, deadline due) {
  auto sd = std::make_shared<asio::posix::stream_descriptor>(ex, ::dup(fd));
  auto expired = std::make_shared<bool>(false);
  asio::steady_timer t(ex, due);
  t.async_wait([sd, expired](boost::system::error_code ec) {
    if (ec) return;
    *expired = true;
    sd->cancel(ec);
  });
  boost::system::error_code ec;
  const auto type = for_write ? asio::posix::descriptor_base::wait_write : asio::posix::descriptor_base::wait_read;
  co_await sd->async_wait(type, asio::redirect_error(asio::use_awaitable, ec));
  t.cancel();
  co_return !ec && !*expired;
}

}  // namespace

namespace {

// A connection string as libpq's keyword/value pairs.
struct conn_params {
  std::vector<std::string> keys, values;
  std::string get(const std::string& key) const {
    for (std::size_t i = 0; i < keys.size(); ++i) {
      if (keys[i] == key) return values[i];
    }
    return {};
  }
  void set(const std::string& key, std::string value) {
    for (std::size_t i = 0; i < keys.size(); ++i) {
      if (keys[i] == key) {
        values[i] = std::move(value);
        return;
      }
    }
    keys.push_back(key);
    values.push_back(std::move(value));
  }
};

std::vector<std::string> split_commas(const std::string& s) {
  std::vector<std::string> out(1);
  for (char ch : s) {
    if (ch == ',') {
      out.emplace_back();
    } else {
      out.back() += ch;
    }
  }
  return out;
}

// One host name's addresses, looked up by Asio's resolver (on a thread of its own). The lookup is shared with its
// completion, so a caller that stops waiting at its deadline leaves it to finish alone.
struct lookup {
  explicit lookup(const asio::any_io_executor& ex, deadline due) : resolver(ex), wake(ex, due) {}
  asio::ip::tcp::resolver resolver;
  asio::steady_timer wake;  // expires at the deadline; cancelled by the answer
  bool done = false;
  boost::system::error_code ec;
  std::vector<std::string> addrs;
};

awaitable<std::shared_ptr<lookup>> look_up(asio::any_io_executor ex, const std::string& name, deadline due) {
  auto l = std::make_shared<lookup>(ex, due);
  l->resolver.async_resolve(name, "0", asio::ip::resolver_base::numeric_service,
                            [l](boost::system::error_code ec, const asio::ip::tcp::resolver::results_type& found) {
                              l->done = true;
                              l->ec = ec;
                              for (const auto& e : found) {
                                auto a = e.endpoint().address().to_string();
                                if (std::find(l->addrs.begin(), l->addrs.end(), a) == l->addrs.end()) {
                                  l->addrs.push_back(std::move(a));
                                }
                              }
                              l->wake.cancel();
                            });
  boost::system::error_code ec;
  co_await l->wake.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  co_return l;
}

// `conninfo` with its host names resolved here: libpq would resolve them inside PQconnectPoll, blocking the calling
// thread (an I/O thread, for the read pools) for as long as DNS takes. Each address of a name becomes an entry of
// its own (the host repeated, hostaddr the address), so libpq still tries them all in turn; `host` stays as given,
// for TLS verification and .pgpass. Numeric hosts, socket directories and a hostaddr given by the user are left
// as they are. A name that does not resolve is skipped; none resolving fails the connection.
awaitable<result<conn_params>> resolve_hosts(asio::any_io_executor ex, const std::string& conninfo, deadline due) {
  char* err = nullptr;
  PQconninfoOption* opts = PQconninfoParse(conninfo.c_str(), &err);
  if (!opts) {
    std::string why = err ? trimmed(err) : "bad connection string";
    if (err) PQfreemem(err);
    co_return make_error(errc::unavailable, "cannot reach the database", why);
  }
  conn_params p;
  for (auto* o = opts; o->keyword; ++o) {
    if (o->val) p.set(o->keyword, o->val);
  }
  PQconninfoFree(opts);
  const std::string host = p.get("host");
  if (host.empty() || !p.get("hostaddr").empty()) co_return p;
  const auto hosts = split_commas(host);
  const auto ports = split_commas(p.get("port"));
  std::string new_hosts, new_addrs, new_ports, failures;
  bool any_name = false, first = true;
  for (std::size_t i = 0; i < hosts.size(); ++i) {
    const std::string& h = hosts[i];
    const std::string& port = ports.size() == hosts.size() ? ports[i] : ports.front();
    std::vector<std::string> addrs{std::string()};  // numeric or a socket directory: libpq's, as given
    boost::system::error_code numeric;
    asio::ip::make_address(h, numeric);
    if (!h.empty() && h.front() != '/' && h.front() != '@' && numeric) {
      any_name = true;
      auto asking = look_up(ex, h, due);
      const auto l = co_await std::move(asking);
      if (!l->done) co_return make_error(errc::timeout, "the database's host name did not resolve within the deadline", h);
      if (l->ec || l->addrs.empty()) {
        failures += (failures.empty() ? "" : "; ") + h + ": " + (l->ec ? l->ec.message() : "no address");
        continue;
      }
      addrs = l->addrs;
    }
    for (const auto& a : addrs) {
      const char* sep = first ? "" : ",";
      first = false;
      new_hosts += sep + h;
      new_addrs += sep + a;
      new_ports += sep + port;
    }
  }
  if (!any_name) co_return p;
  if (first) co_return make_error(errc::unavailable, "cannot reach the database", "cannot resolve " + failures);
  p.set("host", new_hosts);
  p.set("hostaddr", new_addrs);
  if (!p.get("port").empty()) p.set("port", new_ports);
  co_return p;
}

}  // namespace

awaitable<result<std::shared_ptr<connection>>> connection::open(asio::any_io_executor ex, std::string conninfo,
                                                                deadline due) {
  auto resolving = resolve_hosts(ex, conninfo, due);
  auto params = co_await std::move(resolving);
  if (!params) co_return std::move(params).error();
  std::vector<const char*> keys, values;
  for (std::size_t i = 0; i < params->keys.size(); ++i) {
    keys.push_back(params->keys[i].c_str());
    values.push_back(params->values[i].c_str());
  }
  keys.push_back(nullptr);
  values.push_back(nullptr);
  PGconn* c = PQconnectStartParams(keys.data(), values.data(), 0);
  if (!c) co_return make_error(errc::unavailable, "cannot reach the database", "out of memory");
  auto give_up = [&](std::string why) {
    std::string detail = trimmed(PQerrorMessage(c));
    PQfinish(c);
    return make_error(errc::unavailable, "cannot reach the database", detail.empty() ? why : detail);
  };
  if (PQstatus(c) == CONNECTION_BAD) co_return give_up("bad connection string");
  if (PQsetnonblocking(c, 1) != 0) co_return give_up("cannot make the connection non-blocking");
  for (;;) {
    const auto st = PQconnectPoll(c);
    if (st == PGRES_POLLING_OK) break;
    if (st == PGRES_POLLING_FAILED) co_return give_up("connection failed");
    auto wait = wait_fd(ex, PQsocket(c), st == PGRES_POLLING_WRITING, due);
    const bool ready = co_await std::move(wait);
    if (!ready) {
      PQfinish(c);
      co_return make_error(errc::timeout, "the database did not accept a connection within the deadline");
    }
  }
  if (PQenterPipelineMode(c) != 1) co_return give_up("cannot enter pipeline mode");
  // The server's notices ("already exists, skipping") are not for the operator's terminal.
  PQsetNoticeProcessor(c, [](void*, const char*) {}, nullptr);
  co_return std::make_shared<connection>(key{}, ex, c);
}

connection::connection(key, asio::any_io_executor ex, PGconn* c) : conn_(c), socket_(ex, ::dup(PQsocket(c))), timer_(ex) {}

connection::~connection() {
  boost::system::error_code ec;
  socket_.close(ec);
  PQfinish(conn_);
}

error connection::fail(errc code, std::string message, std::string detail) {
  broken_ = true;
  return make_error(code, std::move(message), std::move(detail));
}

awaitable<bool> connection::wait(bool for_write) {
  boost::system::error_code ec;
  co_await socket_.async_wait(for_write ? asio::posix::descriptor_base::wait_write
                                        : asio::posix::descriptor_base::wait_read,
                              asio::redirect_error(asio::use_awaitable, ec));
  co_return !ec && !timed_out_;
}

awaitable<connection::next> connection::next_result() {
  while (PQisBusy(conn_)) {
    const bool ready = co_await wait(false);
    if (!ready || !PQconsumeInput(conn_)) co_return next{};
  }
  co_return next{true, PQgetResult(conn_)};
}

awaitable<result<std::vector<rows>>> connection::run(const std::vector<statement>& batch, deadline due) {
  if (broken_) co_return make_error(errc::unavailable, "the database connection is closed");
  const std::uint64_t gen = ++run_gen_;
  timed_out_ = false;
  timer_.expires_at(due);
  timer_.async_wait([weak = weak_from_this(), gen](boost::system::error_code ec) {
    if (ec) return;
    auto self = weak.lock();
    if (!self || self->run_gen_ != gen) return;
    self->timed_out_ = true;
    boost::system::error_code ignored;
    self->socket_.cancel(ignored);
  });
  auto out = co_await exchange(batch);
  timer_.cancel();
  co_return out;
}

awaitable<result<std::vector<rows>>> connection::exchange(const std::vector<statement>& batch) {
  sqlstate_.clear();
  auto lost = [this](std::string what) {
    if (timed_out_) return fail(errc::timeout, "the database did not answer within the deadline", what);
    return fail(errc::unavailable, "the database connection was lost", what + ": " + trimmed(PQerrorMessage(conn_)));
  };
  // What was sent, in order: the result of each is read back in the same order.
  struct sent {
    bool is_prepare;
    const std::string* new_name_of;  // a prepare of this batch: its text (a key of prepared_)
  };
  std::vector<sent> order;
  std::vector<const char*> values;
  std::vector<int> lengths, formats;
  for (const auto& s : batch) {
    s.pointers(values, lengths);
    formats.assign(values.size(), 1);
    int okay;
    if (s.prepared()) {
      auto it = prepared_.find(s.sql());
      if (it == prepared_.end()) {
        it = prepared_.emplace(s.sql(), "s" + std::to_string(names_++)).first;
        if (!PQsendPrepare(conn_, it->second.c_str(), s.sql().c_str(), s.count(), s.types())) {
          co_return lost("send prepare");
        }
        order.push_back({true, &it->first});
      }
      okay = PQsendQueryPrepared(conn_, it->second.c_str(), s.count(), values.data(), lengths.data(),
                                 formats.data(), 1);
    } else {
      okay = PQsendQueryParams(conn_, s.sql().c_str(), s.count(), s.types(), values.data(), lengths.data(),
                               formats.data(), 1);
    }
    if (!okay) co_return lost("send");
    order.push_back({false, nullptr});
  }
  if (!PQpipelineSync(conn_)) co_return lost("sync");
  for (;;) {
    const int f = PQflush(conn_);
    if (f == 0) break;
    if (f < 0) co_return lost("flush");
    const bool ready = co_await wait(true);
    if (!ready) co_return lost("flush");
  }

  std::vector<rows> out;
  out.reserve(batch.size());
  std::optional<error> first_error;
  // Prepares of this batch the server did not carry out: the failing one, and any after a failure (the server
  // skips the rest of an aborted pipeline). Their texts are forgotten, so they are prepared again next time.
  std::vector<const std::string*> unprepared;
  for (const auto& item : order) {
    const next got = co_await next_result();
    if (!got.ok) co_return lost("read");
    PGresult* r = got.result;
    if (!r) co_return fail(errc::unavailable, "the database connection was lost", "a result was missing");
    const auto status = PQresultStatus(r);
    if (status == PGRES_FATAL_ERROR && !first_error) {
      const char* state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
      sqlstate_ = state ? state : "";
      first_error = make_error(errc::unavailable, "the database refused the statement",
                               sqlstate_ + ": " + trimmed(PQresultErrorMessage(r)));
    }
    if (item.is_prepare) {
      if (status != PGRES_COMMAND_OK) unprepared.push_back(item.new_name_of);
      PQclear(r);
    } else {
      out.emplace_back(r);
    }
    // Each statement's results end with a null.
    for (;;) {
      const next end = co_await next_result();
      if (!end.ok) co_return lost("read");
      if (!end.result) break;
      PQclear(end.result);
    }
  }
  {
    const next got = co_await next_result();
    if (!got.ok) co_return lost("read");
    PGresult* s = got.result;
    const bool synced = s && PQresultStatus(s) == PGRES_PIPELINE_SYNC;
    if (s) PQclear(s);
    if (!synced) co_return fail(errc::unavailable, "the database connection was lost", "pipeline out of step");
  }
  if (!first_error) co_return out;

  for (const auto* text : unprepared) {
    const std::string key = *text;  // a copy: the element is erased
    prepared_.erase(key);
  }
  if (PQtransactionStatus(conn_) != PQTRANS_IDLE) {
    // A transaction the failure left open: roll it back so the connection can serve the next caller.
    const std::string keep = sqlstate_;
    const std::vector<statement> rollback{statement("ROLLBACK", false)};
    auto r = co_await exchange(rollback);
    sqlstate_ = keep;
    if (!r) co_return r;
  }
  co_return std::move(*first_error);
}

// ---------------------------------------------------------------------------------------------------------
// Pool

struct pool::waiter {
  waiter(asio::any_io_executor ex, deadline due) : timer(ex, due) {}
  asio::steady_timer timer;
  std::shared_ptr<connection> given;
  bool woken = false;
};

pool::pool(asio::any_io_executor ex, std::string conninfo, std::size_t max, std::vector<std::string> setup)
    : ex_(std::move(ex)), conninfo_(std::move(conninfo)), max_(std::max<std::size_t>(1, max)) {
  for (auto& sql : setup) setup_.emplace_back(std::move(sql), false);
}

pool::~pool() { close(); }

awaitable<result<std::shared_ptr<connection>>> pool::acquire(deadline due) {
  using clock = std::chrono::steady_clock;
  for (;;) {
    if (closed_) co_return make_error(errc::unavailable, "the store is closed");
    while (!idle_.empty()) {
      auto c = std::move(idle_.back());
      idle_.pop_back();
      if (!c->broken()) co_return c;
      --open_;
    }
    if (open_ < max_) {
      const auto now = clock::now();
      if (now < refused_until_) {
        co_return make_error(errc::unavailable, "cannot reach the database", refused_detail_);
      }
      ++open_;
      // A connection attempt gets at most 2 s: a request's whole deadline is 3 s.
      auto opening = connection::open(ex_, conninfo_, std::min(due, now + std::chrono::seconds(2)));
      auto c = co_await std::move(opening);
      if (!c) {
        --open_;
        refused_until_ = clock::now() + std::chrono::milliseconds(250);
        refused_detail_ = c.error().detail;
        wake_one(nullptr);
        co_return std::move(c).error();
      }
      if (!setup_.empty()) {
        auto set = co_await (*c)->run(setup_, due);
        if (!set) {
          --open_;
          wake_one(nullptr);
          co_return std::move(set).error();
        }
      }
      if (closed_) {
        --open_;
        co_return make_error(errc::unavailable, "the store is closed");
      }
      co_return std::move(*c);
    }
    auto w = std::make_shared<waiter>(ex_, due);
    waiters_.push_back(w);
    boost::system::error_code ec;
    co_await w->timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    if (w->given) co_return std::move(w->given);
    if (!w->woken) {
      std::erase(waiters_, w);
      co_return make_error(errc::timeout, "no database connection was free within the deadline");
    }
    // Woken without a connection: one was dropped, so a new one may be opened.
  }
}

void pool::release(std::shared_ptr<connection> c) {
  if (!c) return;
  if (closed_ || c->broken()) {
    --open_;
    c.reset();
    wake_one(nullptr);
    return;
  }
  if (!waiters_.empty()) {
    wake_one(std::move(c));
    return;
  }
  idle_.push_back(std::move(c));
}

void pool::wake_one(std::shared_ptr<connection> c) {
  if (waiters_.empty()) return;
  auto w = std::move(waiters_.front());
  waiters_.pop_front();
  w->given = std::move(c);
  w->woken = true;
  w->timer.cancel();
}

void pool::close() {
  closed_ = true;
  open_ -= idle_.size();
  idle_.clear();
  for (auto& w : waiters_) {
    w->woken = true;
    w->timer.cancel();
  }
  waiters_.clear();
}

bool retryable(std::string_view sqlstate) {
  return sqlstate == failure_kind::deadlock || sqlstate == failure_kind::serialization;
}

awaitable<result<std::vector<rows>>> run(pool& p, const std::vector<statement>& batch, deadline due, int retries) {
  auto c = co_await p.acquire(due);
  if (!c) co_return std::move(c).error();
  auto conn = std::move(*c);
  auto out = co_await conn->run(batch, due);
  for (int tries = 0; !out && tries < retries && retryable(conn->last_sqlstate()) &&
                      std::chrono::steady_clock::now() < due;
       ++tries) {
    out = co_await conn->run(batch, due);
  }
  p.release(std::move(conn));
  co_return out;
}

std::int64_t lock_key(std::string_view name) {
  std::uint64_t h = 1469598103934665603ull;
  for (unsigned char ch : name) {
    h ^= ch;
    h *= 1099511628211ull;
  }
  return static_cast<std::int64_t>(h);
}

}  // namespace callrec::pg
