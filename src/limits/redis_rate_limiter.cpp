#include "limits/redis_rate_limiter.h"

#include <arpa/inet.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <netdb.h>
#include <unistd.h>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/execution_context.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <charconv>
#include <cstdio>
#include <deque>
#include <mutex>
#include <unordered_map>

#include "core/error.h"

namespace callrec::limits {

namespace asio = boost::asio;

namespace {

// The token bucket of token_bucket.h, in Redis, deciding the checks of one bucket queued on a node in one call:
// refill by the time passed, take ARGV[4] tokens regardless (charges), then admit the checks in order, each
// while at least one token is left, taking its cost (ARGV[5..]). Returns how many were admitted: the first k
// (costs are never negative, so once one is refused every later one is). Times are the nodes' unix
// milliseconds; a clock behind the bucket's last time refills nothing. The key expires once the bucket would
// be full again, so idle apps leave nothing behind.
constexpr const char* bucket_script = R"lua(
local rate = tonumber(ARGV[1])
local cap = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local b = redis.call('HMGET', KEYS[1], 't', 'ms')
local tokens = tonumber(b[1])
local last = tonumber(b[2])
if tokens == nil or last == nil then
  tokens = cap
  last = now
end
if now > last then
  tokens = math.min(cap, tokens + (now - last) * rate / 1000)
  last = now
end
tokens = tokens - tonumber(ARGV[4])
local admitted = 0
for i = 5, #ARGV do
  if tokens < 1 then break end
  tokens = tokens - tonumber(ARGV[i])
  admitted = admitted + 1
end
redis.call('HSET', KEYS[1], 't', tostring(tokens), 'ms', tostring(last))
redis.call('PEXPIRE', KEYS[1], math.ceil((cap - tokens) / rate * 1000) + 60000)
return admitted
)lua";

// Checks decided by one script call at most (its argument list stays small).
constexpr std::size_t max_batch = 256;

std::string number(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

}  // namespace

result<redis_address> parse_redis_url(std::string_view url) {
  constexpr std::string_view scheme = "redis://";
  if (!url.starts_with(scheme)) return make_error(errc::invalid_param, "redis must be a redis:// URL");
  std::string_view rest = url.substr(scheme.size());
  redis_address a;
  if (const auto slash = rest.find('/'); slash != std::string_view::npos) {
    const auto db = rest.substr(slash + 1);
    if (!db.empty()) {
      auto [p, ec] = std::from_chars(db.data(), db.data() + db.size(), a.db);
      if (ec != std::errc() || p != db.data() + db.size() || a.db < 0) {
        return make_error(errc::invalid_param, "redis URL: the database after / must be a number");
      }
    }
    rest = rest.substr(0, slash);
  }
  if (const auto at = rest.rfind('@'); at != std::string_view::npos) {
    auto userinfo = rest.substr(0, at);
    if (const auto colon = userinfo.find(':'); colon != std::string_view::npos) a.password = userinfo.substr(colon + 1);
    rest = rest.substr(at + 1);
  }
  if (const auto colon = rest.rfind(':'); colon != std::string_view::npos && rest.find(']') == std::string_view::npos) {
    const auto port = rest.substr(colon + 1);
    auto [p, ec] = std::from_chars(port.data(), port.data() + port.size(), a.port);
    if (ec != std::errc() || p != port.data() + port.size() || a.port < 1 || a.port > 65535) {
      return make_error(errc::invalid_param, "redis URL: the port must be 1..65535");
    }
    rest = rest.substr(0, colon);
  }
  if (rest.starts_with('[') && rest.ends_with(']')) rest = rest.substr(1, rest.size() - 2);
  if (rest.empty()) return make_error(errc::invalid_param, "redis URL: no host");
  a.host = rest;
  return a;
}

// What the links of one limiter share; any thread. `mu` guards `links` and `attached`: once the limiter is
// gone (attached false) a link still running touches neither the metrics nor the log.
struct redis_rate_limiter::shared {
  shared(const redis_options& o, redis_address a, const std::vector<std::pair<std::uint32_t, rates>>& apps,
         obs::metrics& m)
      : opt(o), addr(std::move(a)), local(apps), metrics(m) {
    for (const auto& [app, r] : apps) app_rates.emplace(app, r);
  }
  redis_options opt;
  redis_address addr;
  local_rate_limiter local;
  obs::metrics& metrics;
  std::unordered_map<std::uint32_t, rates> app_rates;

  std::mutex mu;
  bool attached = true;
  std::vector<std::weak_ptr<link>> links;
  std::atomic<int> link_count{0}, ready_count{0};
  std::atomic<bool> outage_said{false};

  bool up() const noexcept {
    const int n = link_count.load(std::memory_order_relaxed);
    return n > 0 && ready_count.load(std::memory_order_relaxed) == n;
  }
  // fn(metrics) unless the limiter is gone.
  template <class Fn>
  void with_metrics(Fn&& fn) {
    std::lock_guard lock(mu);
    if (attached) fn(metrics);
  }
  void publish() {
    with_metrics([&](obs::metrics& m) { m.rate_limit_shared.store(up() ? 1 : 0, std::memory_order_relaxed); });
  }
};

namespace {

// The links of the calling thread (one per limiter that attached it).
thread_local std::vector<std::shared_ptr<redis_rate_limiter::link>> thread_links;

}  // namespace

// One connection to Redis, on one I/O thread, driven by that thread's io_context (hiredis is not thread-safe;
// each thread has its own). Requests on the thread reach it without a thread hop, and its answers resume them
// on the same thread. Everything here runs on that thread, except close_now (the context's shutdown).
struct redis_rate_limiter::link : std::enable_shared_from_this<link> {
  link(std::shared_ptr<shared> s, asio::any_io_executor e)
      : st(std::move(s)),
        ex(std::move(e)),
        retry(std::make_unique<asio::steady_timer>(ex)),
        watch(std::make_unique<asio::steady_timer>(ex)) {}
  ~link() {
    stopping = true;
    free_context();
  }

  std::shared_ptr<shared> st;
  asio::any_io_executor ex;
  redisAsyncContext* ac = nullptr;
  std::unique_ptr<asio::posix::stream_descriptor> socket;
  bool want_read = false, want_write = false, reading = false, writing = false;
  bool flush_posted = false;  // a write of hiredis's output buffer is queued on the thread
  bool ready = false;  // connected, authenticated, script loaded
  std::string sha;     // the script's SHA1, from SCRIPT LOAD
  std::unique_ptr<asio::steady_timer> retry;  // reconnects, and bounds a connection attempt
  bool stopping = false;
  std::uint64_t generation = 0;  // connection attempts, so stale timers do nothing

  // The io_context's service that closes its links when the context shuts down (an I/O thread's context may
  // go before the limiter: a node stops its server first).
  struct closer : asio::execution_context::service {
    static inline asio::execution_context::id id;
    explicit closer(asio::execution_context& c) : asio::execution_context::service(c) {}
    std::vector<std::weak_ptr<link>> links;  // the context's thread, then its shutdown
    void shutdown() override {
      for (auto& w : links) {
        if (auto l = w.lock()) l->close_now();
      }
      links.clear();
    }
  };

  // On the link's thread: registers it, connects.
  void start() {
    thread_links.push_back(shared_from_this());
    asio::use_service<closer>(asio::query(ex, asio::execution::context)).links.push_back(weak_from_this());
    connect();
  }
  // On the link's thread: closes the connection for good and forgets the link.
  void stop() {
    close_now();
    std::erase_if(thread_links, [this](const auto& l) { return l.get() == this; });
  }
  void close_now() {
    if (stopping) return;
    stopping = true;
    free_context();
    socket.reset();
    retry.reset();
    watch.reset();
    set_ready(false);
    {
      std::lock_guard lock(st->mu);
      std::erase_if(st->links, [this](const auto& w) { return w.expired() || w.lock().get() == this; });
    }
    st->link_count.fetch_sub(1);
    st->publish();
  }

  // Frees the hiredis context, if any: hiredis calls the pending replies with null (they fail), then cleanup;
  // no disconnect callback for a free.
  void free_context() {
    if (!ac) return;
    auto* c = ac;
    ac = nullptr;
    redisAsyncFree(c);
  }

  void set_ready(bool r) {
    if (r == ready) return;
    ready = r;
    st->ready_count.fetch_add(r ? 1 : -1);
    st->publish();
  }

  // ---- hiredis event hooks (privdata: link*)
  static void add_read(void* p) {
    auto* self = static_cast<link*>(p);
    self->want_read = true;
    self->arm(false);
  }
  static void del_read(void* p) { static_cast<link*>(p)->want_read = false; }
  static void add_write(void* p) {
    auto* self = static_cast<link*>(p);
    self->want_write = true;
    // The socket nearly always takes the command at once: write it from a fresh handler (not from inside
    // hiredis's call) rather than wait for writability, which costs Asio an epoll_ctl pair and a poll round a
    // command. Only what the socket did not take waits.
    if (!self->ac || !(self->ac->c.flags & REDIS_CONNECTED)) {
      self->arm(true);  // connecting: writability is how hiredis learns the connection is up
      return;
    }
    if (self->flush_posted) return;
    self->flush_posted = true;
    asio::post(self->ex, [l = self->shared_from_this()] {
      l->flush_posted = false;
      l->handle(true);
    });
  }
  static void del_write(void* p) { static_cast<link*>(p)->want_write = false; }
  static void cleanup(void* p) {
    auto* self = static_cast<link*>(p);
    self->want_read = self->want_write = false;
    if (self->socket) {
      boost::system::error_code ec;
      self->socket->close(ec);
    }
    self->ac = nullptr;  // hiredis frees the context after this
  }

  void arm(bool for_write) {
    bool& busy = for_write ? writing : reading;
    if (busy || !socket || !ac) return;
    busy = true;
    socket->async_wait(for_write ? asio::posix::descriptor_base::wait_write : asio::posix::descriptor_base::wait_read,
                       [self = shared_from_this(), for_write](boost::system::error_code ec) {
                         (for_write ? self->writing : self->reading) = false;
                         if (!ec) self->handle(for_write);
                       });
  }
  // Lets hiredis read or write what it wants to, and waits for the socket again if it still wants to.
  void handle(bool for_write) {
    if (!ac) return;
    if (for_write) {
      if (want_write) redisAsyncHandleWrite(ac);
    } else if (want_read) {
      redisAsyncHandleRead(ac);
    }
    if (ac && (for_write ? want_write : want_read)) arm(for_write);
  }

  // ---- connection
  void connect() {
    if (stopping) return;
    const std::uint64_t gen = ++generation;
    set_ready(false);
    ac = redisAsyncConnect(st->addr.host.c_str(), st->addr.port);
    if (!ac || ac->err) {
      down(ac ? ac->errstr : "cannot allocate a connection");
      if (ac) redisAsyncFree(ac);
      ac = nullptr;
      schedule_reconnect();
      return;
    }
    ac->data = this;
    socket = std::make_unique<asio::posix::stream_descriptor>(ex, ::dup(ac->c.fd));
    ac->ev.data = this;
    ac->ev.addRead = &add_read;
    ac->ev.delRead = &del_read;
    ac->ev.addWrite = &add_write;
    ac->ev.delWrite = &del_write;
    ac->ev.cleanup = &cleanup;
    redisAsyncSetConnectCallback(ac, &on_connect);
    redisAsyncSetDisconnectCallback(ac, &on_disconnect);
    // hiredis 0.14 has no connect timeout: an attempt that has not become ready in a second is dropped.
    retry->expires_after(std::chrono::seconds(1));
    retry->async_wait([self = shared_from_this(), gen](boost::system::error_code ec) {
      if (ec || self->generation != gen || self->ready || self->stopping) return;
      self->drop("no answer within a second");
    });
  }

  static void on_connect(const redisAsyncContext* c, int status) {
    auto* self = static_cast<link*>(c->data);
    if (status != REDIS_OK) {
      self->ac = nullptr;  // hiredis frees it
      self->down(c->errstr);
      self->schedule_reconnect();
      return;
    }
    if (!self->st->addr.password.empty()) {
      self->command({"AUTH", self->st->addr.password}, [](link& s, redisReply* r) {
        if (!r || r->type == REDIS_REPLY_ERROR) s.drop(r ? std::string(r->str, r->len) : "AUTH failed");
      });
    }
    if (self->st->addr.db != 0) {
      self->command({"SELECT", std::to_string(self->st->addr.db)}, [](link& s, redisReply* r) {
        if (!r || r->type == REDIS_REPLY_ERROR) s.drop(r ? std::string(r->str, r->len) : "SELECT failed");
      });
    }
    self->command({"SCRIPT", "LOAD", bucket_script}, [](link& s, redisReply* r) {
      if (!r || r->type != REDIS_REPLY_STRING) {
        s.drop(r && r->type == REDIS_REPLY_ERROR ? std::string(r->str, r->len) : "SCRIPT LOAD failed");
        return;
      }
      s.sha.assign(r->str, r->len);
      s.set_ready(true);
      // Said once, when every thread's connection is back.
      if (s.st->up() && s.st->outage_said.exchange(false)) {
        s.st->with_metrics([&](obs::metrics&) {
          std::fprintf(stderr, "callrec: redis %s:%d answers again: rate limits are shared by the cluster\n",
                       s.st->addr.host.c_str(), s.st->addr.port);
        });
      }
    });
  }

  static void on_disconnect(const redisAsyncContext* c, int status) {
    auto* self = static_cast<link*>(c->data);
    self->ac = nullptr;
    if (self->stopping) return;
    self->down(status == REDIS_OK ? "disconnected" : c->errstr);
    self->schedule_reconnect();
  }

  // Ends the current connection (its pending commands fail) and tries again later.
  void drop(const std::string& why) {
    down(why);
    free_context();
    schedule_reconnect();
  }

  void down(const std::string& why) {
    set_ready(false);
    if (!stopping && !st->outage_said.exchange(true)) {
      st->with_metrics([&](obs::metrics&) {
        std::fprintf(stderr,
                     "callrec: warning: redis %s:%d cannot be reached (%s): each node limits requests on its own "
                     "until it answers again\n",
                     st->addr.host.c_str(), st->addr.port, why.c_str());
      });
    }
  }

  void schedule_reconnect() {
    if (stopping) return;
    const std::uint64_t gen = ++generation;
    retry->expires_after(st->opt.reconnect_every);
    retry->async_wait([self = shared_from_this(), gen](boost::system::error_code ec) {
      if (ec || self->generation != gen || self->stopping) return;
      self->connect();
    });
  }

  // ---- commands
  using reply_fn = void (*)(link&, redisReply*);
  struct pending {
    link* self;
    reply_fn fn;
  };

  static void on_reply(redisAsyncContext*, void* reply, void* privdata) {
    std::unique_ptr<pending> p(static_cast<pending*>(privdata));
    p->fn(*p->self, static_cast<redisReply*>(reply));
  }

  bool send(const std::vector<std::string>& args, reply_fn fn) {
    if (!ac) return false;
    std::vector<const char*> argv;
    std::vector<std::size_t> lens;
    for (const auto& a : args) {
      argv.push_back(a.data());
      lens.push_back(a.size());
    }
    auto p = std::unique_ptr<pending>(new pending{this, fn});
    if (redisAsyncCommandArgv(ac, &on_reply, p.get(), static_cast<int>(argv.size()), argv.data(), lens.data()) !=
        REDIS_OK) {
      return false;
    }
    p.release();  // on_reply owns it now
    return true;
  }

  void command(const std::vector<std::string>& args, reply_fn fn) {
    if (!send(args, fn)) drop("cannot send a command");
  }

  // A check's answer, resumed on the link's thread (posted: never from inside a hiredis callback).
  using answer_handler = asio::any_completion_handler<void(result<bool>)>;
  struct check {
    double cost;
    answer_handler done;
  };
  void answer(answer_handler h, result<bool> r) {
    asio::post(ex, [h = std::move(h), r = std::move(r)]() mutable { std::move(h)(std::move(r)); });
  }

  // One bucket's checks on this node. While a script call for the bucket is out, the checks that arrive
  // queue, and the next call decides them all at once: under load a node sends a call per round trip and
  // bucket, not per request, and every check is still decided inside Redis's atomic script against the
  // cluster's bucket (nothing is taken or admitted by the node on its own). Charges queued meanwhile are
  // taken by the same call, before the checks.
  struct bucket_queue {
    std::string key;  // callrec:rl:<app>:<limit>
    double rate = 0;
    std::vector<check> waiting;
    double charges = 0;
    std::int64_t now_ms = 0;  // the latest time among the queued checks and charges
    std::vector<check> out;   // the checks of the call out, in the order its script decides them
    bool busy = false;        // a call is out
    std::chrono::steady_clock::time_point sent_at;  // of the call out
  };
  std::unordered_map<std::uint64_t, bucket_queue> queues;

  // Queues a check (done set) or a charge (done empty) for (app, limit), and sends a call if none is out.
  void bucket(std::uint32_t app, limit_id limit, double cost, std::int64_t now_ms, answer_handler done) {
    auto it = st->app_rates.find(app);
    if (it == st->app_rates.end() || limit >= count) {
      if (done) answer(std::move(done), false);  // an app not configured is never admitted
      return;
    }
    if (!ready || !ac) {
      if (done) answer(std::move(done), make_error(errc::unavailable, "redis is not connected"));
      return;
    }
    auto& q = queues[std::uint64_t{app} << 8 | limit];
    if (q.key.empty()) {
      q.key = "callrec:rl:" + std::to_string(app) + ":" + std::string(table[limit].name);
      q.rate = it->second[limit];
    }
    if (done) {
      q.waiting.push_back({cost, std::move(done)});
    } else {
      q.charges += cost;
    }
    q.now_ms = std::max(q.now_ms, now_ms);
    if (!q.busy) send_queue(q);
  }

  void send_queue(bucket_queue& q) {
    if (q.waiting.empty() && q.charges == 0) return;
    if (!ready || !ac) {
      fail(q.waiting, "redis is not connected");
      q.charges = 0;
      return;
    }
    const std::size_t n = std::min(q.waiting.size(), max_batch);
    std::vector<std::string> args{"EVALSHA",    sha,        "1", q.key, number(q.rate), number(std::max(1.0, q.rate)),
                                  std::to_string(q.now_ms), number(q.charges)};
    for (std::size_t i = 0; i < n; ++i) args.push_back(number(q.waiting[i].cost));
    q.out.assign(std::make_move_iterator(q.waiting.begin()), std::make_move_iterator(q.waiting.begin() + n));
    q.waiting.erase(q.waiting.begin(), q.waiting.begin() + n);
    q.charges = 0;
    q.busy = true;
    if (!send(args, &on_bucket_reply)) {
      q.busy = false;
      fail(q.out, "redis is not connected");
      // Possibly inside a hiredis callback: the connection is dropped from a fresh handler, not from here.
      asio::post(ex, [self = shared_from_this()] {
        if (self->ac) self->drop("cannot send a command");
      });
      return;
    }
    in_order.push_back(&q);
    q.sent_at = std::chrono::steady_clock::now();
    if (!watching) watch_after(st->opt.answer_within);
    st->with_metrics([](obs::metrics& m) { m.rate_limit_redis_calls.add(); });
  }

  // The answer deadline, one timer for the link (not one per check): a call out longer than answer_within
  // ends the connection, which fails its checks and those queued behind (they decide locally), and the next
  // requests decide locally at once until it is back.
  std::unique_ptr<asio::steady_timer> watch;
  bool watching = false;
  void watch_after(std::chrono::steady_clock::duration d) {
    if (!watch) return;
    watching = true;
    watch->expires_after(d);
    watch->async_wait([self = shared_from_this()](boost::system::error_code ec) {
      self->watching = false;
      if (ec || self->stopping) return;
      if (self->in_order.empty()) return;
      // Calls go out in order: the front one is the oldest.
      const auto now = std::chrono::steady_clock::now();
      const auto oldest = self->in_order.front()->sent_at;
      if (now - oldest >= self->st->opt.answer_within) {
        self->drop("no answer within " + std::to_string(self->st->opt.answer_within.count()) + " ms");
        return;
      }
      self->watch_after(oldest + self->st->opt.answer_within - now);
    });
  }
  // The buckets whose calls are out, in the order they were sent: Redis answers a connection's commands in
  // order, so each bucket reply belongs to the front one.
  std::deque<bucket_queue*> in_order;

  static void on_bucket_reply(link& s, redisReply* r) {
    if (s.in_order.empty()) return;
    bucket_queue& q = *s.in_order.front();
    s.in_order.pop_front();
    q.busy = false;
    auto out = std::move(q.out);
    q.out.clear();
    if (!r) {
      // The connection is going away (hiredis fails what is pending): so do the checks queued behind.
      s.fail(out, "redis did not decide", "no reply");
      s.fail(q.waiting, "redis is not connected");
      q.charges = 0;
      return;
    }
    if (r->type == REDIS_REPLY_INTEGER) {
      const auto admitted = static_cast<std::size_t>(std::max<long long>(0, r->integer));
      s.st->with_metrics([&](obs::metrics& m) { m.rate_limit_shared_decisions.add(out.size()); });
      for (std::size_t i = 0; i < out.size(); ++i) s.answer(std::move(out[i].done), i < admitted);
    } else {
      const std::string why = r->type == REDIS_REPLY_ERROR ? std::string(r->str, r->len) : "not a number";
      s.fail(out, "redis did not decide", why);
      // NOSCRIPT and the like: the server lost the script (restarted without us noticing); start over.
      s.drop(why);
    }
    s.send_queue(q);
  }

  void fail(std::vector<check>& checks, const char* what, const std::string& detail = {}) {
    for (auto& c : checks) answer(std::move(c.done), make_error(errc::unavailable, what, detail));
    checks.clear();
  }

};

namespace {

// The link of `st` on the calling thread, if it has one.
redis_rate_limiter::link* thread_link(const redis_rate_limiter::shared* st) {
  for (const auto& l : thread_links) {
    if (l->st.get() == st) return l.get();
  }
  return nullptr;
}

// A host name resolved once, at start (the links connect from I/O threads, which must not wait for a
// resolver); the name itself when it does not resolve now.
std::string numeric_host(const std::string& host) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (::getaddrinfo(host.c_str(), nullptr, &hints, &found) != 0 || !found) return host;
  char buf[INET6_ADDRSTRLEN] = {};
  const void* at = found->ai_family == AF_INET6
                       ? static_cast<const void*>(&reinterpret_cast<const sockaddr_in6*>(found->ai_addr)->sin6_addr)
                       : static_cast<const void*>(&reinterpret_cast<const sockaddr_in*>(found->ai_addr)->sin_addr);
  const bool ok = ::inet_ntop(found->ai_family, at, buf, sizeof buf) != nullptr;
  ::freeaddrinfo(found);
  return ok ? std::string(buf) : host;
}

}  // namespace

redis_rate_limiter::redis_rate_limiter(const redis_options& options,
                                       const std::vector<std::pair<std::uint32_t, rates>>& apps,
                                       obs::metrics& metrics) {
  auto addr = parse_redis_url(options.url);
  if (addr) addr->host = numeric_host(addr->host);
  shared_ = std::make_shared<shared>(options, addr ? std::move(*addr) : redis_address{}, apps, metrics);
  metrics.rate_limit_shared.store(0, std::memory_order_relaxed);
}

redis_rate_limiter::~redis_rate_limiter() {
  std::vector<std::shared_ptr<link>> alive;
  {
    std::lock_guard lock(shared_->mu);
    shared_->attached = false;
    for (auto& w : shared_->links) {
      if (auto l = w.lock()) alive.push_back(std::move(l));
    }
  }
  for (auto& l : alive) asio::post(l->ex, [l] { l->stop(); });
}

void redis_rate_limiter::attach(const asio::any_io_executor& ex) {
  auto l = std::make_shared<link>(shared_, ex);
  {
    std::lock_guard lock(shared_->mu);
    shared_->links.push_back(l);
  }
  shared_->link_count.fetch_add(1);
  shared_->publish();
  asio::post(ex, [l] { l->start(); });
}

bool redis_rate_limiter::shared_up() const noexcept { return shared_->up(); }

std::optional<bool> redis_rate_limiter::admit_now(std::uint32_t app, limit_id limit, double cost,
                                                  std::int64_t now_ms) {
  if (const link* l = thread_link(shared_.get()); l && l->ready) return std::nullopt;  // admit() asks Redis
  shared_->metrics.rate_limit_local_decisions.add();
  return shared_->local.admit_now(app, limit, cost, now_ms);
}

boost::asio::awaitable<bool> redis_rate_limiter::admit(std::uint32_t app, limit_id limit, double cost,
                                                       std::int64_t now_ms) {
  auto st = shared_;
  if (link* l = thread_link(st.get()); l && l->ready) {
    // Answered on this thread by the link (a decision, or an error when Redis cannot decide in time).
    auto asked = asio::async_initiate<const asio::use_awaitable_t<>, void(result<bool>)>(
        [l, app, limit, cost, now_ms](auto handler) {
          l->bucket(app, limit, cost, now_ms, link::answer_handler(std::move(handler)));
        },
        asio::use_awaitable);
    auto r = co_await std::move(asked);
    if (r) co_return *r;
  }
  st->metrics.rate_limit_local_decisions.add();
  co_return *st->local.admit_now(app, limit, cost, now_ms);
}

void redis_rate_limiter::charge(std::uint32_t app, limit_id limit, double cost, std::int64_t now_ms) {
  if (link* l = thread_link(shared_.get()); l && l->ready) {
    l->bucket(app, limit, cost, now_ms, {});
    return;
  }
  shared_->local.charge(app, limit, cost, now_ms);
}

}  // namespace callrec::limits
