#include "sim/simulate.h"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <chrono>
#include <cstdio>
#include <deque>
#include <queue>
#include <random>
#include <vector>

#include "auth/usersig.h"
#include "core/clock.h"

namespace callrec::sim {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace json = boost::json;
using tcp = asio::ip::tcp;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

void add_options(CLI::App& cmd, options& o) {
  cmd.add_option("--url", o.url, "Server base URL (http://HOST:PORT)")->capture_default_str();
  cmd.add_option("--sdkappid", o.sdkappid, "App id")->capture_default_str();
  cmd.add_option("--key", o.key, "The app's secret key (the demo server prints it)")->required();
  cmd.add_option("--identifier", o.identifier, "Administrator account")->capture_default_str();
  cmd.add_option("--mode", o.mode, "live: events in real time; import: whole past calls with ts")
      ->check(CLI::IsMember({"live", "import"}))
      ->capture_default_str();
  cmd.add_option("--rate", o.rate, "New calls per second (import: 0 = as fast as possible)")->capture_default_str();
  cmd.add_option("--duration", o.duration, "Seconds to run")->capture_default_str();
  cmd.add_option("--calls", o.calls, "Stop after this many calls (0: no limit)")->capture_default_str();
  cmd.add_option("--connections", o.connections, "Concurrent HTTP connections")
      ->check(CLI::Range(1u, 1024u))
      ->capture_default_str();
  cmd.add_option("--batch", o.batch, "Events per request")->check(CLI::Range(1u, 500u))->capture_default_str();
  cmd.add_option("--window", o.window, "Import: spread call starts, in time order, over the last N seconds")
      ->check(CLI::Range(7200LL, 86400LL * 365))
      ->capture_default_str();
  cmd.add_option("--group-ratio", o.group_ratio, "Share of group calls")->check(CLI::Range(0.0, 1.0))->capture_default_str();
  cmd.add_option("--seed", o.seed, "Random seed")->capture_default_str();
  cmd.add_option("--mix", o.mix, "Import: realistic (outcomes, groups, heartbeats) or whole (1:1 calls of "
                                 "start_call, accept_call, hangup)")
      ->check(CLI::IsMember({"realistic", "whole"}))
      ->capture_default_str();
  cmd.add_flag("--tenths", o.tenths, "Import: a line per tenth of --calls with its calls/s and events/s");
  cmd.add_flag("--quiet", o.quiet, "No progress line");
}

namespace {

struct planned_event {
  std::int64_t at_ms;  // when it happens
  json::object body;
};

// A realistic mix of outcomes. Times are relative to `start_ms`.
std::vector<planned_event> plan_call(std::mt19937_64& rng, std::uint64_t n, std::int64_t start_ms, double group_ratio,
                                     bool live, std::string& id_out) {
  std::uniform_real_distribution<double> u(0, 1);
  auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  const bool group = u(rng) < group_ratio;
  const int callees_n = group ? pick(2, 5) : 1;
  char idbuf[48];
  std::snprintf(idbuf, sizeof idbuf, "sim-%016llx-%llu", static_cast<unsigned long long>(rng()),
                static_cast<unsigned long long>(n));
  id_out = idbuf;
  auto user = [&] { return "u" + std::to_string(pick(1, 50000)); };
  std::string caller = user();
  std::vector<std::string> callees;
  while (static_cast<int>(callees.size()) < callees_n) {
    auto c = user();
    if (c != caller && std::find(callees.begin(), callees.end(), c) == callees.end()) callees.push_back(c);
  }
  std::vector<planned_event> out;
  auto ev = [&](std::int64_t at, std::string_view name, const std::string& who) -> json::object& {
    json::object o;
    o["callId"] = id_out;
    o["event"] = name;
    o["userId"] = who;
    o["eventId"] = std::string(name) + ":" + who + ":" + std::to_string(out.size());
    out.push_back({start_ms + at, std::move(o)});
    return out.back().body;
  };
  auto& start = ev(0, "start_call", caller);
  json::array cs;
  for (auto& c : callees) cs.emplace_back(c);
  start["callees"] = std::move(cs);
  start["mediaType"] = u(rng) < 0.6 ? "video" : "audio";
  start["callType"] = group ? "group" : "single";
  start["roomId"] = std::to_string(pick(100000, 999999));
  start["timeoutSec"] = 30;

  const double r = u(rng);
  // Live calls are short so a demo sees them end; imported ones have realistic lengths.
  const std::int64_t ring = live ? pick(500, 3000) : pick(1000, 8000);
  const std::int64_t talk = live ? pick(2000, 15000) : pick(5000, 300000);
  // Connected clients send a heartbeat every 20 to 30 s, as TUICallKit does (heartbeat_sec defaults to 60).
  auto heartbeats = [&](const std::string& who, std::int64_t from, std::int64_t to) {
    for (std::int64_t t = from + pick(20000, 30000); t < to; t += pick(20000, 30000)) ev(t, "heartbeat", who);
  };
  if (r < 0.55) {  // normal_end
    ev(ring, "accept_call", callees[0]);
    heartbeats(caller, 0, ring + talk);
    heartbeats(callees[0], ring, ring + talk);
    for (std::size_t i = 1; i < callees.size(); ++i) {
      const std::int64_t at = ring + pick(0, 3000);
      const bool accepts = pick(0, 3) != 0;
      ev(at, accepts ? "accept_call" : "reject_call", callees[i]);
      if (accepts) heartbeats(callees[i], at, ring + talk);
    }
    ev(ring + talk, "hangup", pick(0, 1) ? caller : callees[0]);
    if (callees.size() > 1) {
      ev(ring + talk + 500, "hangup", caller);
      for (std::size_t i = 0; i < callees.size(); ++i) ev(ring + talk + 1000, "hangup", callees[i]);
    }
  } else if (r < 0.67) {  // reject
    for (auto& c : callees) ev(ring, "reject_call", c);
  } else if (r < 0.77) {  // not_answer
    for (auto& c : callees) ev(live ? 5000 : 30000, "not_answer_call", c);
  } else if (r < 0.87) {  // cancel
    ev(ring, "cancel_call", caller);
  } else if (r < 0.92) {  // call_busy
    for (auto& c : callees) ev(pick(100, 500), "call_busy", c);
  } else {  // interrupt
    ev(ring, "accept_call", callees[0]);
    heartbeats(caller, 0, ring + talk);
    heartbeats(callees[0], ring, ring + talk);
    for (std::size_t i = 1; i < callees.size(); ++i) ev(ring, "reject_call", callees[i]);
    ev(ring + talk, "call_interrupted", callees[0]);
  }
  std::stable_sort(out.begin(), out.end(), [](auto& a, auto& b) { return a.at_ms < b.at_ms; });
  return out;
}

// A whole 1:1 call as JSON text, written directly (the benchmark's client must outpace the server on the
// same two cores): start_call, accept_call 2 s later, hangup 60 s later.
void append_whole_call(std::string& out, std::mt19937_64& rng, std::uint64_t n, std::int64_t start_ms) {
  char id[48];
  std::snprintf(id, sizeof id, "sim-%016llx-%llu", static_cast<unsigned long long>(rng()), static_cast<unsigned long long>(n));
  const unsigned caller = static_cast<unsigned>(rng() % 50000) + 1;
  unsigned callee = static_cast<unsigned>(rng() % 50000) + 1;
  if (callee == caller) callee = callee % 50000 + 1;
  const unsigned room = static_cast<unsigned>(rng() % 900000) + 100000;
  char buf[640];
  const int len = std::snprintf(
      buf, sizeof buf,
      R"({"callId":"%s","event":"start_call","userId":"u%u","callees":["u%u"],"mediaType":"%s","roomId":"%u",)"
      R"("eventId":"s","ts":%lld},)"
      R"({"callId":"%s","event":"accept_call","userId":"u%u","eventId":"a","ts":%lld},)"
      R"({"callId":"%s","event":"hangup","userId":"u%u","eventId":"h","ts":%lld})",
      id, caller, callee, rng() % 5 < 3 ? "video" : "audio", room, static_cast<long long>(start_ms), id, callee,
      static_cast<long long>(start_ms + 2000), id, caller, static_cast<long long>(start_ms + 62000));
  out.append(buf, static_cast<std::size_t>(len));
}

struct stats {
  std::uint64_t calls = 0, events = 0, requests = 0, failed_requests = 0, refused_events = 0, transport_errors = 0,
                retries = 0;
  std::vector<double> latencies_ms;
  std::map<int, std::uint64_t> codes;
};

struct endpoint_parts {
  std::string host, port;
};

std::optional<endpoint_parts> parse_url(const std::string& url) {
  std::string rest;
  if (url.starts_with("http://")) rest = url.substr(7);
  else return std::nullopt;
  if (auto slash = rest.find('/'); slash != std::string::npos) rest = rest.substr(0, slash);
  auto colon = rest.rfind(':');
  if (colon == std::string::npos) return endpoint_parts{rest, "80"};
  return endpoint_parts{rest.substr(0, colon), rest.substr(colon + 1)};
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::size_t k = static_cast<std::size_t>(p * static_cast<double>(v.size() - 1));
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
  return v[k];
}

}  // namespace

int run(const options& o) {
  auto ep = parse_url(o.url);
  if (!ep) {
    std::fprintf(stderr, "simulate: --url must look like http://HOST:PORT\n");
    return 2;
  }
  const bool import = o.mode == "import";
  system_clock clk;
  const std::string target = "/v1/events/report?sdkappid=" + std::to_string(o.sdkappid) + "&identifier=" +
                             o.identifier + "&usersig=" +
                             auth::make_usersig(o.key, o.sdkappid, o.identifier, clk.now_s(), 86400) +
                             "&random=1&contenttype=json";
  asio::io_context ioc(1);
  std::mt19937_64 rng(o.seed);
  stats st;
  struct batch_body {
    std::string body;
    std::uint64_t calls = 0, events = 0;  // in this batch
  };
  std::deque<batch_body> ready;  // request bodies waiting for a connection
  std::uint64_t calls_in_batch = 0;
  std::uint64_t done_calls = 0, done_events = 0;  // acknowledged (errorCode 0 or refused events)
  double last_answer_s = 0;                        // when the last answer came: the load's end
  bool generating = true;
  const auto t0 = std::chrono::steady_clock::now();
  auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };
  const std::size_t max_ready = o.connections * 2;

  // Live mode: events wait here until their time.
  auto later = [](const planned_event& a, const planned_event& b) { return a.at_ms > b.at_ms; };
  std::priority_queue<planned_event, std::vector<planned_event>, decltype(later)> pending(later);

  auto add_batch = [&](json::array& events) {
    if (events.empty()) return;
    json::object body;
    st.events += events.size();
    const std::uint64_t n = events.size();
    body["events"] = std::move(events);
    ready.push_back(batch_body{json::serialize(body), calls_in_batch, n});
    calls_in_batch = 0;
    events = json::array();
  };

  const std::int64_t import_last_ms = clk.now_ms() - 3600000;
  double import_next_ms = static_cast<double>(import_last_ms - (o.window - 3600) * 1000);
  const double import_gap_ms =
      std::max(0.001, static_cast<double>((o.window - 3600) * 1000) / static_cast<double>(o.calls ? o.calls : 1000000));

  auto generator = [&]() -> asio::awaitable<void> {
    asio::steady_timer timer(ioc);
    json::array batch;
    double owed = 0;
    auto last = std::chrono::steady_clock::now();
    // Live mode: after the duration no call starts, but the calls in progress are played to their end.
    auto starting = [&] { return elapsed() < o.duration && (o.calls == 0 || st.calls < o.calls); };
    while (starting() || (!import && !pending.empty())) {
      auto now = std::chrono::steady_clock::now();
      owed += std::chrono::duration<double>(now - last).count() * o.rate;
      last = now;
      if (import && o.mix == "whole") {
        const std::uint32_t per_batch = std::max<std::uint32_t>(1, o.batch / 3);
        while ((o.rate <= 0 || owed >= per_batch) && ready.size() < max_ready && (o.calls == 0 || st.calls < o.calls)) {
          owed -= per_batch;
          std::string body = "{\"events\":[";
          body.reserve(per_batch * 420 + 32);
          for (std::uint32_t k = 0; k < per_batch && (o.calls == 0 || st.calls < o.calls); ++k) {
            import_next_ms += std::exponential_distribution<double>(1.0 / import_gap_ms)(rng);
            const std::int64_t start = std::min<std::int64_t>(static_cast<std::int64_t>(import_next_ms), import_last_ms);
            if (k) body += ',';
            append_whole_call(body, rng, st.calls, start);
            ++st.calls;
            ++calls_in_batch;
            st.events += 3;
          }
          body += "]}";
          ready.push_back(batch_body{std::move(body), calls_in_batch, calls_in_batch * 3});
          calls_in_batch = 0;
        }
      } else if (import) {
        // Whole calls, each in one batch, with past times spread over the window.
        while ((o.rate <= 0 || owed >= 1) && ready.size() < max_ready && (o.calls == 0 || st.calls < o.calls)) {
          owed -= 1;
          std::string id;
          // Calls come in the order they happened, as an export of call history would, spread evenly over
          // the window (ending an hour ago, so every call has ended).
          import_next_ms += std::exponential_distribution<double>(1.0 / import_gap_ms)(rng);
          const std::int64_t start = std::min<std::int64_t>(static_cast<std::int64_t>(import_next_ms), import_last_ms);
          auto evs = plan_call(rng, st.calls, start, o.group_ratio, false, id);
          if (batch.size() + evs.size() > o.batch && !batch.empty()) add_batch(batch);
          ++st.calls;
          ++calls_in_batch;
          for (auto& e : evs) {
            e.body["ts"] = e.at_ms;
            batch.emplace_back(std::move(e.body));
          }
        }
        if (batch.size() >= o.batch) add_batch(batch);
      } else {
        while (owed >= 1 && starting()) {
          owed -= 1;
          std::string id;
          for (auto& e : plan_call(rng, st.calls, clk.now_ms(), o.group_ratio, true, id)) pending.push(std::move(e));
          ++st.calls;
          ++calls_in_batch;
        }
        const auto now_ms = clk.now_ms();
        while (!pending.empty() && pending.top().at_ms <= now_ms) {
          batch.emplace_back(pending.top().body);
          pending.pop();
          if (batch.size() >= o.batch) add_batch(batch);
        }
        add_batch(batch);
      }
      timer.expires_after(std::chrono::milliseconds(import && o.rate <= 0 ? 1 : 20));
      co_await timer.async_wait(use_tuple);
    }
    add_batch(batch);
    generating = false;
  };

  // A line for each tenth of --calls acknowledged: how fast that tenth went.
  std::uint64_t tenths_done = 0;
  double tenth_t0 = 0;
  std::uint64_t tenth_calls0 = 0, tenth_events0 = 0;
  auto on_acknowledged = [&] {
    if (!o.tenths || o.calls == 0) return;
    while (tenths_done < 10 && done_calls >= o.calls * (tenths_done + 1) / 10) {
      const double now = elapsed(), secs = std::max(1e-9, now - tenth_t0);
      std::printf("  tenth %2llu: calls %llu..%llu, %.0f calls/s, %.0f events/s (%.1f s)\n",
                  static_cast<unsigned long long>(tenths_done + 1), static_cast<unsigned long long>(tenth_calls0),
                  static_cast<unsigned long long>(done_calls),
                  static_cast<double>(done_calls - tenth_calls0) / secs,
                  static_cast<double>(done_events - tenth_events0) / secs, secs);
      std::fflush(stdout);
      ++tenths_done;
      tenth_t0 = now;
      tenth_calls0 = done_calls;
      tenth_events0 = done_events;
    }
  };

  auto worker = [&]() -> asio::awaitable<void> {
    tcp::resolver resolver(ioc);
    beast::tcp_stream stream(ioc);
    beast::flat_buffer buffer;
    bool connected = false;
    asio::steady_timer idle(ioc);
    int attempts = 0;  // of the batch at the front, after internal errors
    while (generating || !ready.empty()) {
      if (ready.empty()) {
        idle.expires_after(std::chrono::milliseconds(2));
        co_await idle.async_wait(use_tuple);
        continue;
      }
      batch_body next = std::move(ready.front());
      ready.pop_front();
      std::string& body = next.body;
      if (!connected) {
        auto [rec, results] = co_await resolver.async_resolve(ep->host, ep->port, use_tuple);
        if (rec) {
          ++st.transport_errors;
          continue;
        }
        stream.expires_after(std::chrono::seconds(10));
        auto [cec, cep] = co_await stream.async_connect(results, use_tuple);
        if (cec) {
          ++st.transport_errors;
          continue;
        }
        connected = true;
      }
      bhttp::request<bhttp::string_body> req{bhttp::verb::post, target, 11};
      req.set(bhttp::field::host, ep->host);
      req.set(bhttp::field::content_type, "application/json");
      req.body() = std::move(body);
      req.prepare_payload();
      const auto sent = std::chrono::steady_clock::now();
      stream.expires_after(std::chrono::seconds(10));
      auto [wec, wn] = co_await bhttp::async_write(stream, req, use_tuple);
      bhttp::response<bhttp::string_body> res;
      boost::system::error_code rec2 = wec;
      if (!wec) {
        auto [rec, rn] = co_await bhttp::async_read(stream, buffer, res, use_tuple);
        rec2 = rec;
      }
      if (rec2) {
        ++st.transport_errors;
        connected = false;
        stream.close();
        continue;
      }
      st.latencies_ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - sent).count());
      ++st.requests;
      boost::system::error_code jec;
      auto v = json::parse(res.body(), jec);
      int code = -1;
      if (!jec && v.is_object() && v.as_object().contains("errorCode") && v.as_object().at("errorCode").is_int64()) {
        code = static_cast<int>(v.as_object().at("errorCode").as_int64());
        if (auto* d = v.as_object().if_contains("data"); d && d->is_object()) {
          if (auto* rf = d->as_object().if_contains("refused"); rf && rf->is_int64()) st.refused_events += rf->as_int64();
        }
      }
      // 101001 is "safe to retry" (events are idempotent): a well-behaved client sends the batch again.
      if (code == 101001 && attempts < 3) {
        ++st.retries;
        next.body = req.body();
        ready.push_front(std::move(next));
        ++attempts;
        continue;
      }
      attempts = 0;
      ++st.codes[code];
      if (code != 0) ++st.failed_requests;
      done_calls += next.calls;
      done_events += next.events;
      last_answer_s = elapsed();
      on_acknowledged();
    }
  };

  auto progress = [&]() -> asio::awaitable<void> {
    asio::steady_timer timer(ioc);
    std::uint64_t last_events = 0;
    while (generating || !ready.empty()) {
      timer.expires_after(std::chrono::seconds(1));
      co_await timer.async_wait(use_tuple);
      if (o.quiet) continue;
      std::fprintf(stderr, "\r%6.1fs  calls %llu  events %llu (%llu/s)  requests %llu  failed %llu  transport errors %llu   ",
                   elapsed(), static_cast<unsigned long long>(st.calls), static_cast<unsigned long long>(st.events),
                   static_cast<unsigned long long>(st.events - last_events),
                   static_cast<unsigned long long>(st.requests), static_cast<unsigned long long>(st.failed_requests),
                   static_cast<unsigned long long>(st.transport_errors));
      last_events = st.events;
    }
  };

  asio::co_spawn(ioc, generator(), asio::detached);
  for (std::uint32_t i = 0; i < o.connections; ++i) asio::co_spawn(ioc, worker(), asio::detached);
  asio::co_spawn(ioc, progress(), asio::detached);
  ioc.run();
  // The load ended with its last answer, not when the progress line's 1 s timer next woke.
  const double secs = last_answer_s > 0 ? last_answer_s : elapsed();
  if (!o.quiet) std::fprintf(stderr, "\n");
  std::printf("simulate: %s mode, %.1f s\n", o.mode.c_str(), secs);
  std::printf("  calls     %llu (%.0f/s)\n", static_cast<unsigned long long>(st.calls), static_cast<double>(st.calls) / secs);
  std::printf("  events    %llu (%.0f/s)\n", static_cast<unsigned long long>(st.events), static_cast<double>(st.events) / secs);
  std::printf("  requests  %llu, failed %llu, retried after 101001 %llu, transport errors %llu, events refused %llu\n",
              static_cast<unsigned long long>(st.requests), static_cast<unsigned long long>(st.failed_requests),
              static_cast<unsigned long long>(st.retries), static_cast<unsigned long long>(st.transport_errors),
              static_cast<unsigned long long>(st.refused_events));
  std::printf("  latency   p50 %.2f ms, p99 %.2f ms, max %.2f ms\n", percentile(st.latencies_ms, 0.5),
              percentile(st.latencies_ms, 0.99), percentile(st.latencies_ms, 1.0));
  for (auto& [code, n] : st.codes) std::printf("  errorCode %d: %llu\n", code, static_cast<unsigned long long>(n));
  return st.transport_errors == 0 && st.failed_requests == 0 ? 0 : 1;
}

}  // namespace callrec::sim
