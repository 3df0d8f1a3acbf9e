// The REST hub without sockets: the CPU a request costs from the dispatcher's entry to its answer (checks,
// UserSig, rate limit, store read, JSON, envelope), over a real SQLite store. Complements bench/run, where the
// kernel's TCP path is most of a request's cost; this is the part the code controls.
//
// Build: cmake --build build/release --target bench_dispatch
// Run:   build/release/bench/bench_dispatch [--records N] [--requests N]
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "api/dispatcher.h"
#include "api/routes.h"
#include "auth/usersig.h"
#include "limits/local_rate_limiter.h"
#include "ops/core.h"

using namespace callrec;
namespace asio = boost::asio;
using steady = std::chrono::steady_clock;

namespace {

constexpr std::uint32_t app_id = 1400000001;
constexpr const char* key = "5bd2850fff3ecb11d7c805251c51ee463a25727bddc2385f3fa8bfee1bb93b5e";

call_record make_record(std::uint64_t i, std::int64_t start) {
  call_record r;
  r.sdkappid = app_id;
  r.call_id = "2ae7d549-c441-4a9b-87c0-" + std::to_string(100000000000 + i);
  r.start_ts = start;
  r.accept_ts = start + 3;
  r.end_ts = start + 60;
  r.caller = "user" + std::to_string(i % 1000);
  r.callees = {"user" + std::to_string((i + 1) % 1000)};
  r.room_id = std::to_string(100000 + i % 900000);
  r.result = call_result::normal_end;
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  std::uint64_t records = 100000, requests = 300000;
  bool events = false;  // --api events: batches of 33 whole 1:1 calls (99 events) instead of lookups
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--records")) records = std::stoull(argv[i + 1]);
    if (!std::strcmp(argv[i], "--requests")) requests = std::stoull(argv[i + 1]);
    if (!std::strcmp(argv[i], "--api")) events = !std::strcmp(argv[i + 1], "events");
  }
  const auto dir = std::filesystem::temp_directory_path() / "callrec-bench-dispatch";
  std::filesystem::remove_all(dir);
  auto opened = open_store(store_settings{"sqlite:" + (dir / "bench.db").string()});
  if (!opened) {
    std::fprintf(stderr, "open: %s\n", opened.error().message.c_str());
    return 1;
  }
  store& st = **opened;
  asio::io_context ctx(1);
  auto run = [&](auto a) {
    auto f = asio::co_spawn(ctx, std::move(a), asio::use_future);
    ctx.restart();
    ctx.run();
    return f.get();
  };

  const std::int64_t now_s = std::chrono::duration_cast<std::chrono::seconds>(
                                 std::chrono::system_clock::now().time_since_epoch())
                                 .count();
  std::vector<std::string> ids;
  for (std::uint64_t i = 0; i < records; i += 100) {
    std::vector<call_record> chunk;
    std::vector<std::string> chunk_ids;
    for (std::uint64_t k = i; k < std::min(records, i + 100); ++k) {
      chunk.push_back(make_record(k, now_s - 3600 + static_cast<std::int64_t>(k % 3000)));
      chunk_ids.push_back(chunk.back().call_id);
      if (k % 97 == 0) ids.push_back(chunk.back().call_id);
    }
    auto r = run(st.update_calls(
        app_id, chunk_ids,
        [chunk](std::span<call_slot> slots) {
          for (std::size_t k = 0; k < slots.size(); ++k) slots[k].finished = chunk[k];
        },
        steady::now() + std::chrono::seconds(60)));
    if (!r) {
      std::fprintf(stderr, "load: %s\n", r.error().message.c_str());
      return 1;
    }
  }

  app_config app;
  app.sdkappid = app_id;
  app.secret_key = key;
  app.limits.fill(1e9);
  ops::app_registry apps({app});
  limits::local_rate_limiter limiter({{app_id, app.limits}});
  system_clock clk;
  obs::metrics metrics(api::api_names(api::v1_routes()));
  obs::access_log log("off");
  ops::core core{st, limiter, clk, apps, metrics};
  api::dispatcher d(core, api::v1_routes(), log);

  const std::string sig = auth::make_usersig(key, app_id, "administrator", now_s, 86400);
  const std::string target = "/v1/records/get_record_by_callId?sdkappid=" + std::to_string(app_id) +
                             "&identifier=administrator&usersig=" + sig + "&random=1&contenttype=json";
  std::vector<std::string> bodies;
  for (const auto& id : ids) bodies.push_back("{\"callId\": \"" + id + "\"}");

  if (events) {
    const std::string ev_target = "/v1/events/report?sdkappid=" + std::to_string(app_id) +
                                  "&identifier=administrator&usersig=" + sig + "&random=1&contenttype=json";
    const double per = run([&]() -> asio::awaitable<double> {
      const auto t0 = steady::now();
      for (std::uint64_t i = 0; i < requests; ++i) {
        std::string body = "{\"events\":[";
        for (int k = 0; k < 33; ++k) {
          const std::string id = "ev-" + std::to_string(i) + "-" + std::to_string(k);
          const std::string ts = std::to_string((now_s - 7200) * 1000 + static_cast<std::int64_t>(i));
          if (k) body += ',';
          body += R"({"callId":")" + id + R"(","event":"start_call","userId":"alice","callees":["bob"],"roomId":"7","ts":)" + ts +
                  R"(},{"callId":")" + id + R"(","event":"accept_call","userId":"bob","ts":)" + ts + R"(},{"callId":")" + id +
                  R"(","event":"hangup","userId":"bob","ts":)" + ts + "}";
        }
        body += "]}";
        http::request req;
        req.verb = http::method::post;
        req.target = ev_target;
        req.body = body;
        req.remote = "127.0.0.1:1";
        auto rep = co_await d.handle(req);
        if (rep.body.find("\"applied\":99") == std::string::npos) std::fprintf(stderr, "%s\n", rep.body.c_str());
      }
      co_return std::chrono::duration<double, std::nano>(steady::now() - t0).count() / static_cast<double>(requests);
    }());
    std::printf("events/report, 33 whole calls a batch, through the dispatcher: %.0f ns a batch\n", per);
    st.close();
    std::filesystem::remove_all(dir);
    return 0;
  }
  const double ns = run([&]() -> asio::awaitable<double> {
    std::uint64_t ok = 0;
    const auto t0 = steady::now();
    for (std::uint64_t i = 0; i < requests; ++i) {
      http::request req;
      req.verb = http::method::post;
      req.target = target;
      req.body = bodies[i % bodies.size()];
      req.remote = "127.0.0.1:1";
      auto rep = co_await d.handle(req);
      ok += rep.body.size() > 300;
    }
    const double per = std::chrono::duration<double, std::nano>(steady::now() - t0).count() /
                       static_cast<double>(requests);
    if (ok != requests) std::fprintf(stderr, "only %llu of %llu answers had a record\n",
                                     static_cast<unsigned long long>(ok), static_cast<unsigned long long>(requests));
    co_return per;
  }());
  std::printf("get_record_by_callId through the dispatcher: %.0f ns a request (%llu records, %llu requests)\n", ns,
              static_cast<unsigned long long>(records), static_cast<unsigned long long>(requests));
  st.close();
  std::filesystem::remove_all(dir);
  return 0;
}
