#include "api/service.h"

#include <chrono>

namespace callrec::api {

service::service(server_config cfg, const clock& clk) : cfg_(std::move(cfg)), clock_(clk) {}

service::~service() { stop(); }

result<void> service::start() {
  if (auto v = validate(cfg_); !v) return v.error();
  store_options so;
  so.url = cfg_.store_url();
  so.fsync_each_commit = cfg_.fsync_each_commit;
  auto st = open_store(so);
  if (!st) return st.error();
  store_ = std::move(*st);
  if (wrap_store) store_ = wrap_store(std::move(store_));
  log_ = std::make_unique<obs::access_log>(cfg_.access_log);
  hub_ = std::make_unique<hub>(cfg_, *store_, metrics_, *log_, clock_);
  hub_->deadline = request_deadline;
  // One field of the store's stats, read at render time (0 when the store cannot say).
  auto stat = [this](std::uint64_t store_stats::*field) {
    return [this, field] {
      auto s = store_->stats();
      return s ? static_cast<double>((*s).*field) : 0.0;
    };
  };
  metrics_.add_gauge("callrec_live_calls", "Calls in progress.", stat(&store_stats::live_calls));
  metrics_.add_gauge("callrec_records", "Call records kept.", stat(&store_stats::records));
  metrics_.add_counter("callrec_store_commits_total", "Store write transactions.", stat(&store_stats::commits));
  metrics_.add_counter("callrec_store_commit_updates_total", "Updates grouped into store commits.",
                       stat(&store_stats::committed_updates));
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
      ho, [h = hub_.get()](const http::request& r) { return h->handle(r); }, metrics_,
      [h = hub_.get()](const http::request& r, http::reply& out) { return h->answer_now(r, out); });
  if (auto r = server_->start(); !r) return r.error();
  maintenance_ = std::thread([this] { maintenance_loop(); });
  return {};
}

result<void> service::reload_tls() {
  if (!server_) return make_error(errc::internal, "tls: the server is not running");
  return server_->reload_tls();
}

void service::run_maintenance_once() {
  std::lock_guard guard(maintenance_mu_);
  if (!store_ || !hub_) return;
  const std::int64_t now = clock_.now_ms();
  hub_->events().fire_due_timers(now, [this](std::uint32_t app) { return hub_->settings_of(app); });
  // Retention: at most once a minute, in slices so the writer is never held for long.
  if (now - last_retention_ms_ >= 60000 || now < last_retention_ms_) {
    last_retention_ms_ = now;
    for (const auto& app : cfg_.apps) {
      const std::int64_t before = now / 1000 - static_cast<std::int64_t>(app.retention_days) * 86400;
      for (int slice = 0; slice < 1000; ++slice) {
        auto n = store_->purge_records(app.sdkappid, before, 5000);
        if (!n) break;
        metrics_.records_purged.add(*n);
        if (*n < 5000) break;
      }
    }
  }
}

void service::maintenance_loop() {
  std::unique_lock lk(mu_);
  while (!stop_) {
    lk.unlock();
    run_maintenance_once();
    lk.lock();
    cv_.wait_for(lk, std::chrono::milliseconds(tick_ms), [this] { return stop_; });
  }
}

void service::stop() {
  if (server_) server_->stop();
  {
    std::lock_guard lk(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (maintenance_.joinable()) maintenance_.join();
  if (store_) store_->close();
  if (log_) log_->flush();
}

}  // namespace callrec::api
