#include "limits/redis_rate_limiter.h"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <unistd.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <charconv>
#include <cstdio>
#include <deque>
#include <thread>
#include <unordered_map>

#include "core/thread_completion.h"

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

// Everything that lives on the limiter's thread (hiredis is not thread-safe): the connection, its Asio
// descriptor, the reconnect timer. Shared with the handlers that may outlive the limiter's destructor call.
struct redis_rate_limiter::impl : std::enable_shared_from_this<impl> {
  impl(const redis_options& o, redis_address a, const std::vector<std::pair<std::uint32_t, rates>>& apps,
       obs::metrics& m)
      : opt(o), addr(std::move(a)), local(apps), metrics(m), work(asio::make_work_guard(ctx)), retry(ctx) {
    for (const auto& [app, r] : apps) app_rates.emplace(app, r);
  }

  redis_options opt;
  redis_address addr;
  local_rate_limiter local;
  obs::metrics& metrics;
  std::unordered_map<std::uint32_t, rates> app_rates;
  std::atomic<bool> up{false};  // any thread: decisions go to Redis

  asio::io_context ctx{1};
  asio::executor_work_guard<asio::io_context::executor_type> work;
  std::thread thread;

  // The limiter's thread only:
  redisAsyncContext* ac = nullptr;
  std::unique_ptr<asio::posix::stream_descriptor> socket;
  bool want_read = false, want_write = false, reading = false, writing = false;
  bool ready = false;        // connected, authenticated, script loaded
  std::string sha;           // the script's SHA1, from SCRIPT LOAD
  asio::steady_timer retry;  // reconnects, and bounds a connection attempt
  bool outage_said = false;
  bool stopping = false;
  std::uint64_t generation = 0;  // connection attempts, so stale timers do nothing

  // ---- hiredis event hooks (privdata: impl*)
  static void add_read(void* p) {
    auto* self = static_cast<impl*>(p);
    self->want_read = true;
    self->arm(false);
  }
  static void del_read(void* p) { static_cast<impl*>(p)->want_read = false; }
  static void add_write(void* p) {
    auto* self = static_cast<impl*>(p);
    self->want_write = true;
    self->arm(true);
  }
  static void del_write(void* p) { static_cast<impl*>(p)->want_write = false; }
  static void cleanup(void* p) {
    auto* self = static_cast<impl*>(p);
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
                         if (ec || !self->ac) return;
                         if (for_write) {
                           if (self->want_write) redisAsyncHandleWrite(self->ac);
                         } else if (self->want_read) {
                           redisAsyncHandleRead(self->ac);
                         }
                         if (self->ac && (for_write ? self->want_write : self->want_read)) self->arm(for_write);
                       });
  }

  // ---- connection
  void connect() {
    if (stopping) return;
    const std::uint64_t gen = ++generation;
    ready = false;
    ac = redisAsyncConnect(addr.host.c_str(), addr.port);
    if (!ac || ac->err) {
      down(ac ? ac->errstr : "cannot allocate a connection");
      if (ac) redisAsyncFree(ac);
      ac = nullptr;
      schedule_reconnect();
      return;
    }
    ac->data = this;
    socket = std::make_unique<asio::posix::stream_descriptor>(ctx, ::dup(ac->c.fd));
    ac->ev.data = this;
    ac->ev.addRead = &add_read;
    ac->ev.delRead = &del_read;
    ac->ev.addWrite = &add_write;
    ac->ev.delWrite = &del_write;
    ac->ev.cleanup = &cleanup;
    redisAsyncSetConnectCallback(ac, &on_connect);
    redisAsyncSetDisconnectCallback(ac, &on_disconnect);
    // hiredis 0.14 has no connect timeout: an attempt that has not become ready in a second is dropped.
    retry.expires_after(std::chrono::seconds(1));
    retry.async_wait([self = shared_from_this(), gen](boost::system::error_code ec) {
      if (ec || self->generation != gen || self->ready || self->stopping) return;
      self->drop("no answer within a second");
    });
  }

  static void on_connect(const redisAsyncContext* c, int status) {
    auto* self = static_cast<impl*>(c->data);
    if (status != REDIS_OK) {
      self->ac = nullptr;  // hiredis frees it
      self->down(c->errstr);
      self->schedule_reconnect();
      return;
    }
    if (!self->addr.password.empty()) {
      self->command({"AUTH", self->addr.password}, [](impl& s, redisReply* r) {
        if (!r || r->type == REDIS_REPLY_ERROR) s.drop(r ? std::string(r->str, r->len) : "AUTH failed");
      });
    }
    if (self->addr.db != 0) {
      self->command({"SELECT", std::to_string(self->addr.db)}, [](impl& s, redisReply* r) {
        if (!r || r->type == REDIS_REPLY_ERROR) s.drop(r ? std::string(r->str, r->len) : "SELECT failed");
      });
    }
    self->command({"SCRIPT", "LOAD", bucket_script}, [](impl& s, redisReply* r) {
      if (!r || r->type != REDIS_REPLY_STRING) {
        s.drop(r && r->type == REDIS_REPLY_ERROR ? std::string(r->str, r->len) : "SCRIPT LOAD failed");
        return;
      }
      s.sha.assign(r->str, r->len);
      s.ready = true;
      s.up.store(true);
      s.metrics.rate_limit_shared.store(1, std::memory_order_relaxed);
      if (s.outage_said) {
        std::fprintf(stderr, "callrec: redis %s:%d answers again: rate limits are shared by the cluster\n",
                     s.addr.host.c_str(), s.addr.port);
      }
      s.outage_said = false;
    });
  }

  static void on_disconnect(const redisAsyncContext* c, int status) {
    auto* self = static_cast<impl*>(c->data);
    self->ac = nullptr;
    self->ready = false;
    if (self->stopping) return;
    self->down(status == REDIS_OK ? "disconnected" : c->errstr);
    self->schedule_reconnect();
  }

  // Ends the current connection (its pending commands fail) and tries again later.
  void drop(const std::string& why) {
    down(why);
    if (ac) {
      auto* c = ac;
      ac = nullptr;
      redisAsyncFree(c);  // calls the pending replies with null, then cleanup; no disconnect callback for a free
    }
    ready = false;
    schedule_reconnect();
  }

  void down(const std::string& why) {
    up.store(false);
    metrics.rate_limit_shared.store(0, std::memory_order_relaxed);
    if (!outage_said && !stopping) {
      outage_said = true;
      std::fprintf(stderr,
                   "callrec: warning: redis %s:%d cannot be reached (%s): each node limits requests on its own "
                   "until it answers again\n",
                   addr.host.c_str(), addr.port, why.c_str());
    }
  }

  void schedule_reconnect() {
    if (stopping) return;
    const std::uint64_t gen = ++generation;
    retry.expires_after(opt.reconnect_every);
    retry.async_wait([self = shared_from_this(), gen](boost::system::error_code ec) {
      if (ec || self->generation != gen || self->stopping) return;
      self->connect();
    });
  }

  // ---- commands
  using reply_fn = void (*)(impl&, redisReply*);
  struct pending {
    impl* self;
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

  // One bucket's checks on this node. While a script call for the bucket is out, the checks that arrive
  // queue, and the next call decides them all at once: under load a node sends a call per round trip and
  // bucket, not per request, and every check is still decided inside Redis's atomic script against the
  // cluster's bucket (nothing is taken or admitted by the node on its own). Charges queued meanwhile are
  // taken by the same call, before the checks.
  struct check {
    double cost;
    completion<bool> done;
  };
  struct bucket_queue {
    std::string key;  // callrec:rl:<app>:<limit>
    double rate = 0;
    std::vector<check> waiting;
    double charges = 0;
    std::int64_t now_ms = 0;  // the latest time among the queued checks and charges
    std::vector<check> out;   // the checks of the call out, in the order its script decides them
    bool busy = false;        // a call is out
  };
  std::unordered_map<std::uint64_t, bucket_queue> queues;

  // Queues a check (done set) or a charge (done empty) for (app, limit), and sends a call if none is out.
  void bucket(std::uint32_t app, limit_id limit, double cost, std::int64_t now_ms, completion<bool> done) {
    auto it = app_rates.find(app);
    if (it == app_rates.end() || limit >= count) {
      if (done) done(false);  // an app not configured is never admitted
      return;
    }
    if (!ready || !ac) {
      if (done) done(make_error(errc::unavailable, "redis is not connected"));
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
      asio::post(ctx, [self = shared_from_this()] {
        if (self->ac) self->drop("cannot send a command");
      });
      return;
    }
    in_order.push_back(&q);
    metrics.rate_limit_redis_calls.add();
  }
  // The buckets whose calls are out, in the order they were sent: Redis answers a connection's commands in
  // order, so each bucket reply belongs to the front one.
  std::deque<bucket_queue*> in_order;

  static void on_bucket_reply(impl& s, redisReply* r) {
    if (s.in_order.empty()) return;
    bucket_queue& q = *s.in_order.front();
    s.in_order.pop_front();
    q.busy = false;
    auto out = std::move(q.out);
    q.out.clear();
    if (!r) {
      // The connection is going away (hiredis fails what is pending): so do the checks queued behind.
      fail(out, "redis did not decide", "no reply");
      fail(q.waiting, "redis is not connected");
      q.charges = 0;
      return;
    }
    if (r->type == REDIS_REPLY_INTEGER) {
      const auto admitted = static_cast<std::size_t>(std::max<long long>(0, r->integer));
      s.metrics.rate_limit_shared_decisions.add(out.size());
      for (std::size_t i = 0; i < out.size(); ++i) out[i].done(i < admitted);
    } else {
      const std::string why = r->type == REDIS_REPLY_ERROR ? std::string(r->str, r->len) : "not a number";
      fail(out, "redis did not decide", why);
      // NOSCRIPT and the like: the server lost the script (restarted without us noticing); start over.
      s.drop(why);
    }
    s.send_queue(q);
  }

  static void fail(std::vector<check>& checks, const char* what, const std::string& detail = {}) {
    for (auto& c : checks) c.done(make_error(errc::unavailable, what, detail));
    checks.clear();
  }

  void stop() {
    stopping = true;
    retry.cancel();
    if (ac) {
      auto* c = ac;
      ac = nullptr;
      redisAsyncFree(c);
    }
    socket.reset();
    work.reset();
  }
};

redis_rate_limiter::redis_rate_limiter(const redis_options& options,
                                       const std::vector<std::pair<std::uint32_t, rates>>& apps,
                                       obs::metrics& metrics) {
  auto addr = parse_redis_url(options.url);
  impl_ = std::make_shared<impl>(options, addr ? std::move(*addr) : redis_address{}, apps, metrics);
  metrics.rate_limit_shared.store(0, std::memory_order_relaxed);
  impl_->thread = std::thread([i = impl_.get()] { i->ctx.run(); });
  asio::post(impl_->ctx, [i = impl_] { i->connect(); });
}

redis_rate_limiter::~redis_rate_limiter() {
  asio::post(impl_->ctx, [i = impl_] { i->stop(); });
  impl_->thread.join();
}

bool redis_rate_limiter::shared() const noexcept { return impl_->up.load(); }

std::optional<bool> redis_rate_limiter::admit_now(std::uint32_t app, limit_id limit, double cost,
                                                  std::int64_t now_ms) {
  if (impl_->up.load(std::memory_order_relaxed)) return std::nullopt;  // Redis decides: admit() waits for it
  impl_->metrics.rate_limit_local_decisions.add();
  return impl_->local.admit_now(app, limit, cost, now_ms);
}

boost::asio::awaitable<bool> redis_rate_limiter::admit(std::uint32_t app, limit_id limit, double cost,
                                                       std::int64_t now_ms) {
  auto i = impl_;
  auto asked = await_store_thread<bool>(
      [&](completion<bool> done) {
        asio::post(i->ctx, [i, app, limit, cost, now_ms, done = std::move(done)]() mutable {
          i->bucket(app, limit, cost, now_ms, std::move(done));
        });
      },
      std::chrono::steady_clock::now() + i->opt.answer_within, "redis did not answer in time");
  auto r = co_await std::move(asked);
  if (r) co_return *r;
  if (r.error().code == errc::timeout) {
    // Unanswered: treat the connection as lost, so the next requests decide locally at once.
    asio::post(i->ctx, [i] {
      if (i->ready) i->drop("no answer within " + std::to_string(i->opt.answer_within.count()) + " ms");
    });
  }
  i->metrics.rate_limit_local_decisions.add();
  co_return *i->local.admit_now(app, limit, cost, now_ms);
}

void redis_rate_limiter::charge(std::uint32_t app, limit_id limit, double cost, std::int64_t now_ms) {
  if (!impl_->up.load(std::memory_order_relaxed)) {
    impl_->local.charge(app, limit, cost, now_ms);
    return;
  }
  asio::post(impl_->ctx, [i = impl_, app, limit, cost, now_ms] { i->bucket(app, limit, cost, now_ms, {}); });
}

}  // namespace callrec::limits
