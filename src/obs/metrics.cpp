#include "obs/metrics.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace callrec::obs {

void histogram::observe(double seconds) noexcept {
  std::size_t i = 0;
  while (i < bounds.size() && seconds > bounds[i]) ++i;
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  double ns = seconds * 1e9;
  sum_ns_.fetch_add(ns > 0 ? static_cast<std::uint64_t>(ns) : 0, std::memory_order_relaxed);
}

namespace {
void append_number(std::string& out, double v) {
  char buf[64];
  int n = std::snprintf(buf, sizeof buf, "%.10g", v);
  out.append(buf, static_cast<std::size_t>(n));
}
void labels_with(std::string& out, std::string_view labels, std::string_view extra) {
  out += '{';
  out += labels;
  if (!labels.empty() && !extra.empty()) out += ',';
  out += extra;
  out += '}';
}
}  // namespace

void histogram::render(std::string& out, std::string_view name, std::string_view labels) const {
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i <= bounds.size(); ++i) {
    cumulative += buckets_[i].load(std::memory_order_relaxed);
    out += name;
    out += "_bucket";
    std::string le = "le=\"";
    if (i < bounds.size()) {
      char buf[32];
      int n = std::snprintf(buf, sizeof buf, "%g", bounds[i]);
      le.append(buf, static_cast<std::size_t>(n));
    } else {
      le += "+Inf";
    }
    le += '"';
    labels_with(out, labels, le);
    out += ' ';
    out += std::to_string(cumulative);
    out += '\n';
  }
  out += name;
  out += "_sum";
  if (!labels.empty()) labels_with(out, labels, "");
  out += ' ';
  append_number(out, static_cast<double>(sum_ns_.load(std::memory_order_relaxed)) / 1e9);
  out += '\n';
  out += name;
  out += "_count";
  if (!labels.empty()) labels_with(out, labels, "");
  out += ' ';
  out += std::to_string(count_.load(std::memory_order_relaxed));
  out += '\n';
}

metrics::metrics(std::vector<std::string> apis) : apis_(std::move(apis)), per_api_(apis_.size() + 1) {}

std::size_t metrics::code_index(int code) noexcept {
  for (std::size_t i = 0; i + 1 < codes.size(); ++i) {
    if (codes[i] == code) return i;
  }
  return codes.size() - 1;
}

void metrics::request(std::size_t api, int error_code, double seconds) noexcept {
  per_api& a = per_api_[std::min(api, apis_.size())];
  a.requests[code_index(error_code)].add();
  a.latency.observe(seconds);
}

void metrics::h2_abuse_close(std::string_view reason) noexcept {
  std::size_t i = 0;
  while (i + 1 < h2_abuse_reasons.size() && h2_abuse_reasons[i] != reason) ++i;
  h2_abuse_closes_[i].add();
}

std::string metrics::render() const {
  std::string out;
  out.reserve(16384);
  out += "# HELP callrec_requests_total API requests by API and errorCode.\n# TYPE callrec_requests_total counter\n";
  auto api_name = [this](std::size_t a) { return a < apis_.size() ? std::string_view(apis_[a]) : "unknown"; };
  for (std::size_t a = 0; a < per_api_.size(); ++a) {
    for (std::size_t c = 0; c < codes.size(); ++c) {
      std::uint64_t v = per_api_[a].requests[c].value();
      if (v == 0) continue;
      out += "callrec_requests_total{api=\"";
      out += api_name(a);
      out += "\",errorCode=\"";
      out += codes[c] < 0 ? std::string("other") : std::to_string(codes[c]);
      out += "\"} ";
      out += std::to_string(v);
      out += '\n';
    }
  }
  out += "# HELP callrec_request_duration_seconds API latency.\n# TYPE callrec_request_duration_seconds histogram\n";
  for (std::size_t a = 0; a < per_api_.size(); ++a) {
    std::string labels = "api=\"" + std::string(api_name(a)) + "\"";
    per_api_[a].latency.render(out, "callrec_request_duration_seconds", labels);
  }
  auto emit_counter = [&out](std::string_view name, std::string_view help, const counter& c) {
    out += "# HELP ";
    out += name;
    out += ' ';
    out += help;
    out += "\n# TYPE ";
    out += name;
    out += " counter\n";
    out += name;
    out += ' ';
    out += std::to_string(c.value());
    out += '\n';
  };
  out += "# HELP callrec_events_total Reported events by outcome.\n# TYPE callrec_events_total counter\n";
  out += "callrec_events_total{outcome=\"applied\"} " + std::to_string(events_applied.value()) + "\n";
  out += "callrec_events_total{outcome=\"duplicate\"} " + std::to_string(events_duplicate.value()) + "\n";
  out += "callrec_events_total{outcome=\"late\"} " + std::to_string(events_late.value()) + "\n";
  out += "callrec_events_total{outcome=\"refused\"} " + std::to_string(events_refused.value()) + "\n";
  emit_counter("callrec_timers_fired_total", "Ringing and heartbeat timers fired.", timers_fired);
  emit_counter("callrec_records_written_total", "Call records written.", records_written);
  emit_counter("callrec_records_purged_total", "Call records removed by retention.", records_purged);
  emit_counter("callrec_connections_accepted_total", "TCP connections accepted.", connections_accepted);
  emit_counter("callrec_connections_rejected_total", "Connections refused over the limit.", connections_rejected);
  emit_counter("callrec_http_errors_total", "Malformed HTTP requests and timed-out connections.", http_errors);
  emit_counter("callrec_tls_handshake_failures_total",
               "TLS handshakes that failed or timed out (plain HTTP on the TLS port, old protocols, ...).",
               tls_handshake_failures);
  emit_counter("callrec_h2_connections_total", "HTTP/2 connections (ALPN h2 and h2c).", h2_connections);
  emit_counter("callrec_h2_streams_total", "HTTP/2 streams opened by clients.", h2_streams);
  out += "# HELP callrec_h2_abuse_closes_total HTTP/2 connections ended for abuse (GOAWAY ENHANCE_YOUR_CALM or "
         "cut off when stalled), by reason.\n# TYPE callrec_h2_abuse_closes_total counter\n";
  for (std::size_t i = 0; i < h2_abuse_reasons.size(); ++i) {
    out += "callrec_h2_abuse_closes_total{reason=\"";
    out += h2_abuse_reasons[i];
    out += "\"} " + std::to_string(h2_abuse_closes_[i].value()) + "\n";
  }
  out += "# HELP callrec_store_commit_seconds Time from queueing an update to its durable commit.\n"
         "# TYPE callrec_store_commit_seconds histogram\n";
  store_commit_seconds.render(out, "callrec_store_commit_seconds", "");
  out += "# HELP callrec_store_read_seconds Store read latency.\n# TYPE callrec_store_read_seconds histogram\n";
  store_read_seconds.render(out, "callrec_store_read_seconds", "");
  if (const int shared = rate_limit_shared.load(std::memory_order_relaxed); shared >= 0) {
    out += "# HELP callrec_rate_limit_shared_up 1 while the cluster's rate limits are decided in Redis, 0 while this "
           "node decides alone (Redis unreachable).\n# TYPE callrec_rate_limit_shared_up gauge\n";
    out += "callrec_rate_limit_shared_up " + std::to_string(shared) + "\n";
    emit_counter("callrec_rate_limit_local_decisions_total",
                 "Rate-limit decisions this node took alone because Redis could not be reached.",
                 rate_limit_local_decisions);
    emit_counter("callrec_rate_limit_shared_decisions_total", "Rate-limit decisions taken in Redis.",
                 rate_limit_shared_decisions);
    emit_counter("callrec_rate_limit_redis_calls_total",
                 "Bucket scripts run in Redis; each decides every check of one bucket queued behind the previous one.",
                 rate_limit_redis_calls);
  }
  return out;
}

}  // namespace callrec::obs
