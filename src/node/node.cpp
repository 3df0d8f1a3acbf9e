#include "node/node.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cstdio>

#include "api/dispatcher.h"
#include "api/routes.h"
#include "http/server.h"
#include "limits/local_rate_limiter.h"
#include "limits/redis_rate_limiter.h"
#include "ops/core.h"
#include "ops/events.h"
#include "ops/maintenance.h"

namespace callrec {

namespace asio = boost::asio;

node::node(server_config cfg, const clock& clk)
    : cfg_(std::move(cfg)), clock_(clk), metrics_(std::make_unique<obs::metrics>(api::api_names(api::v1_routes()))) {}

node::~node() { stop(); }

std::uint16_t node::port() const noexcept { return server_ ? server_->port() : 0; }

result<void> node::start() {
  if (auto v = validate(cfg_); !v) return v.error();
  store_settings ss{cfg_.store_url(), cfg_.fsync_each_commit, sqlite_vfs};
  ss.pg_connections = static_cast<std::size_t>(cfg_.pg_connections);
  auto st = open_store(ss);
  if (!st) return st.error();
  store_ = std::move(*st);
  if (wrap_store) store_ = wrap_store(std::move(store_));
  log_ = std::make_unique<obs::access_log>(cfg_.access_log);
  apps_ = std::make_unique<ops::app_registry>(cfg_.apps);
  std::vector<std::pair<std::uint32_t, limits::rates>> rates;
  for (const auto& a : cfg_.apps) rates.emplace_back(a.sdkappid, a.limits);
  if (cfg_.redis) {
    limits::redis_options ro;
    ro.url = *cfg_.redis;
    limiter_ = std::make_unique<limits::redis_rate_limiter>(ro, rates, *metrics_);
  } else {
    limiter_ = std::make_unique<limits::local_rate_limiter>(rates);
  }
  core_ = std::make_unique<ops::core>(ops::core{*store_, *limiter_, clock_, *apps_, *metrics_});
  dispatcher_ = std::make_unique<api::dispatcher>(*core_, api::v1_routes(), *log_, request_deadline);

  http::server_options ho;
  ho.host = cfg_.listen_host;
  ho.port = cfg_.listen_port;
  ho.threads = cfg_.threads;
  ho.batch_scheduling = cfg_.io_batch_scheduling;
  ho.limits = cfg_.limits;
  ho.tls = cfg_.tls;
  ho.on_refusal = [log = log_.get()](const http::refusal_event& e) {
    log->write_refusal(obs::refusal_entry{e.status, e.reason, e.remote, e.request_id});
  };
  server_ = std::make_unique<http::server>(
      ho, [d = dispatcher_.get()](const http::request& r) { return d->handle(r); }, *metrics_);
  if (auto r = server_->start(); !r) return r.error();
  for (std::size_t i = 0; i < server_->thread_count(); ++i) {
    limiter_->attach(server_->context(i).get_executor());
    store_->attach(server_->context(i).get_executor());
  }
  bg_thread_ = std::thread([this] { background_loop(); });
  return {};
}

result<void> node::reload_tls() {
  if (!server_) return make_error(errc::internal, "tls: the server is not running");
  return server_->reload_tls();
}

asio::awaitable<void> node::maintenance_pass() {
  const std::int64_t now = clock_.now_ms();
  auto fired = co_await ops::fire_due_timers(*core_, now);
  std::optional<error> failure;
  if (!fired) failure = std::move(fired).error();
  // Retention: at most once a minute; the store removes records in slices, so nothing waits for it long.
  if (now - last_retention_ms_ >= 60000 || now < last_retention_ms_) {
    last_retention_ms_ = now;
    auto removed = co_await ops::apply_retention(*core_, now);
    if (!removed) failure = std::move(removed).error();
  }
  if (failure) {
    // Said once a minute at most: the next pass retries, and a failing store would say it every 200 ms.
    if (now - last_failure_said_ms_ >= 60000 || now < last_failure_said_ms_) {
      last_failure_said_ms_ = now;
      std::fprintf(stderr, "callrec: background jobs: %s (%s); retrying\n", failure->message.c_str(),
                   failure->detail.c_str());
    }
  }
}

void node::background_loop() {
  asio::co_spawn(
      bg_,
      [&]() -> asio::awaitable<void> {
        for (;;) {
          std::uint64_t wanted;
          {
            std::lock_guard lk(pass_mu_);
            if (stopping_) co_return;
            wanted = passes_wanted_;
          }
          co_await maintenance_pass();
          bool again;
          {
            std::lock_guard lk(pass_mu_);
            passes_served_ = std::max(passes_served_, wanted);
            again = passes_wanted_ > wanted;  // asked for during this pass: it must start after the request
          }
          pass_cv_.notify_all();
          if (again) continue;
          tick_.expires_after(std::chrono::milliseconds(tick_ms));
          boost::system::error_code ec;
          co_await tick_.async_wait(asio::redirect_error(asio::use_awaitable, ec));  // cancelled: asked, or stop
        }
      },
      asio::detached);
  bg_.run();
}

void node::run_maintenance_once() {
  std::unique_lock lk(pass_mu_);
  if (!bg_thread_.joinable() || stopping_) return;
  const std::uint64_t want = ++passes_wanted_;
  // Wake the loop if it waits for its next tick (on the background thread, the timer's own).
  asio::post(bg_, [this] { tick_.cancel(); });
  pass_cv_.wait(lk, [&] { return passes_served_ >= want || stopping_; });
}

void node::stop() {
  if (server_) server_->stop();
  {
    std::lock_guard lk(pass_mu_);
    stopping_ = true;
  }
  pass_cv_.notify_all();
  if (bg_thread_.joinable()) {
    asio::post(bg_, [this] { tick_.cancel(); });
    bg_thread_.join();
  }
  if (store_) store_->close();
  if (log_) log_->flush();
}

}  // namespace callrec
