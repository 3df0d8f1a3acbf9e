#include "ops/maintenance.h"

#include <cstdio>

namespace callrec::ops {

namespace {
// Slices per pass: a pass that has more to remove leaves the rest to the next one.
constexpr int retention_slices_per_pass = 1000;
constexpr std::chrono::seconds retention_deadline{30};
}  // namespace

awaitable<result<std::uint64_t>> apply_retention(const core& c, std::int64_t now_ms) {
  retention_policy policy;
  for (const auto& a : c.apps.all()) policy.apps.push_back({a.id(), a.oldest_kept(now_ms / 1000)});
  std::uint64_t removed = 0;
  for (int slice = 0; slice < retention_slices_per_pass; ++slice) {
    auto r = co_await c.storage.apply_retention(policy, c.clk.steady_now() + retention_deadline);
    if (!r) co_return std::move(r).error();
    removed += r->records_removed;
    c.metrics.records_purged.add(r->records_removed);
    if (r->complete) break;
  }
  co_return removed;
}

awaitable<result<void>> liveness(const core&, const caller&) { co_return result<void>(); }

awaitable<result<void>> readiness(const core& c, const caller& who) { co_return co_await c.storage.ping(who.due); }

awaitable<result<std::string>> metrics_text(const core& c, const caller&) {
  std::string out = c.metrics.render();
  auto stats = co_await c.storage.stats();
  if (stats) {
    auto line = [&out](const char* name, const char* help, const char* type, std::uint64_t v) {
      char buf[512];
      std::snprintf(buf, sizeof buf, "# HELP %s %s\n# TYPE %s %s\n%s %llu\n", name, help, name, type, name,
                    static_cast<unsigned long long>(v));
      out += buf;
    };
    line("callrec_live_calls", "Calls in progress.", "gauge", stats->live_calls);
    line("callrec_records", "Call records kept.", "gauge", stats->records);
    line("callrec_store_commits_total", "Store write transactions.", "counter", stats->commits);
    line("callrec_store_commit_updates_total", "Updates grouped into store commits.", "counter",
         stats->committed_updates);
  }
  co_return out;
}

}  // namespace callrec::ops
