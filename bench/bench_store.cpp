// Store benchmark: loads N records (default 1M, over one day, a realistic mix) through update_calls groups,
// then prints get_record (the stored record and its JSON) and find_records latencies and the RSS, through the
// store ports alone (no HTTP). A plain program that prints figures.
//
// Build: cmake --build build/release --target bench_store
// Run: build/release/bench/bench_store [--records N] [--dir DIR] [--fsync] [--in-flight K] [--keep]
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include "records/wire.h"
#include "store/store.h"

using namespace callrec;
using steady = std::chrono::steady_clock;

namespace {

constexpr std::uint32_t app = 1400000001;
constexpr std::int64_t day_start = 1717200000;  // a UTC midnight
constexpr int users = 100000;

double cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

double micros(steady::duration d) { return std::chrono::duration<double, std::micro>(d).count(); }

struct latencies {
  std::vector<double> us;
  void add(steady::duration d) { us.push_back(micros(d)); }
  double pct(double p) {
    if (us.empty()) return 0;
    std::sort(us.begin(), us.end());
    return us[std::min(us.size() - 1, static_cast<std::size_t>(p / 100.0 * static_cast<double>(us.size())))];
  }
};

// A "Key:  123 kB" line of a /proc file, in MiB.
double proc_mib(const char* file, const char* key) {
  std::ifstream f(file);
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind(key, 0) == 0) return static_cast<double>(std::stol(line.substr(std::strlen(key)))) / 1024.0;
  }
  return -1;
}

// RSS counts the database pages that each connection maps once per mapping; PSS counts them once, and
// RssAnon is the heap (page caches, live calls).
void print_memory(const char* when) {
  std::printf("%s: RSS %.1f MiB, PSS %.1f MiB, RssAnon %.1f MiB\n", when, proc_mib("/proc/self/status", "VmRSS:"),
              proc_mib("/proc/self/smaps_rollup", "Pss:"), proc_mib("/proc/self/status", "RssAnon:"));
}

// Bytes this process handed to write() (WAL appends and checkpoints), from /proc/self/io.
double written_mib() {
  std::ifstream f("/proc/self/io");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("wchar:", 0) == 0) return static_cast<double>(std::stoll(line.substr(6))) / 1048576.0;
  }
  return -1;
}

std::string user(std::uint64_t n) { return "user" + std::to_string(n % users); }

call_record make_record(std::mt19937_64& rng, std::uint64_t i, std::int64_t start_ts) {
  call_record r;
  r.sdkappid = app;
  r.call_id = "call-" + std::to_string(i) + "-" + std::to_string(rng() % 100000);
  r.start_ts = start_ts;
  const auto roll = rng() % 100;
  r.result = roll < 60   ? call_result::normal_end
             : roll < 72 ? call_result::not_answer
             : roll < 82 ? call_result::reject
             : roll < 90 ? call_result::cancel
             : roll < 94 ? call_result::call_busy
             : roll < 97 ? call_result::interrupt
                         : call_result::offline;
  r.type = rng() % 5 == 0 ? call_type::group : call_type::single;
  r.media = rng() % 5 < 2 ? media_type::video : media_type::audio;
  r.caller = user(rng());
  const std::size_t callees = r.type == call_type::group ? 2 + rng() % 5 : 1;
  while (r.callees.size() < callees) {
    auto u = user(rng());
    if (u != r.caller && std::find(r.callees.begin(), r.callees.end(), u) == r.callees.end()) r.callees.push_back(u);
  }
  r.room_id = std::to_string(100000 + rng() % 900000);
  r.accept_ts = r.result == call_result::normal_end || r.result == call_result::interrupt ? start_ts + 5 : 0;
  r.end_ts = start_ts + 5 + static_cast<std::int64_t>(rng() % 600);
  return r;
}

calls::call_state make_state(const std::string& id, const call_record& r) {
  calls::call_state s;
  s.call_id = id;
  s.caller = r.caller;
  s.media = r.media;
  s.type = r.type;
  s.room_id = r.room_id;
  s.start_ms = r.start_ts * 1000;
  s.clock_ms = s.start_ms;
  s.members.push_back(calls::member{r.caller, calls::member_status::connected, 0, s.start_ms, false});
  for (const auto& c : r.callees) {
    s.members.push_back(calls::member{c, calls::member_status::ringing, s.start_ms + 30000, 0, true});
  }
  s.initial_callees = static_cast<std::uint32_t>(r.callees.size());
  return s;
}

// Bounds the updates in flight, like a server with that many concurrent requests.
class in_flight {
 public:
  explicit in_flight(std::size_t max) : max_(max) {}
  void acquire() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return n_ < max_; });
    ++n_;
  }
  void release() {
    std::lock_guard lock(mu_);
    --n_;
    cv_.notify_all();
  }
  void drain() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return n_ == 0; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::size_t n_ = 0, max_;
};

// The store's coroutines run on this thread, as on an I/O thread of the server.
class runner {
 public:
  runner() : guard_(boost::asio::make_work_guard(ctx_)), thread_([this] { ctx_.run(); }) {}
  ~runner() {
    guard_.reset();
    thread_.join();
  }
  template <class T>
  T run(boost::asio::awaitable<T> a) {
    return boost::asio::co_spawn(ctx_, std::move(a), boost::asio::use_future).get();
  }
  template <class T, class Then>
  void spawn(boost::asio::awaitable<T> a, Then then) {
    boost::asio::co_spawn(ctx_, std::move(a), [then = std::move(then)](std::exception_ptr, T v) { then(std::move(v)); });
  }

 private:
  boost::asio::io_context ctx_{1};
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> guard_;
  std::thread thread_;
};

deadline far() { return steady::now() + std::chrono::seconds(60); }

// Times `iterations` queries, each awaited in turn within one coroutine on the runner's thread.
template <class F>
void measure(runner& io, const char* name, int iterations, F query) {
  latencies lat;
  std::uint64_t total = io.run([&]() -> boost::asio::awaitable<std::uint64_t> {
    std::uint64_t sum = 0;
    for (int i = 0; i < iterations; ++i) {
      auto t = steady::now();
      sum += co_await query(i);
      lat.add(steady::now() - t);
    }
    co_return sum;
  }());
  std::printf("  %-34s p50 %8.1f us   p99 %8.1f us   (avg total %llu)\n", name, lat.pct(50), lat.pct(99),
              static_cast<unsigned long long>(total / static_cast<std::uint64_t>(iterations)));
}

}  // namespace

int main(int argc, char** argv) {
  std::uint64_t n_records = 1000000;
  std::filesystem::path dir = std::filesystem::temp_directory_path() / "callrec-bench-store";
  bool fsync = false, keep = false;
  std::size_t max_in_flight = 256;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--records") && i + 1 < argc)
      n_records = std::stoull(argv[++i]);
    else if (!std::strcmp(argv[i], "--dir") && i + 1 < argc)
      dir = argv[++i];
    else if (!std::strcmp(argv[i], "--in-flight") && i + 1 < argc)
      max_in_flight = std::stoull(argv[++i]);
    else if (!std::strcmp(argv[i], "--fsync"))
      fsync = true;
    else if (!std::strcmp(argv[i], "--keep"))
      keep = true;
    else {
      std::fprintf(stderr, "usage: %s [--records N] [--dir DIR] [--in-flight K] [--fsync] [--keep]\n", argv[0]);
      return 2;
    }
  }
  std::filesystem::remove_all(dir);
  store_settings opts;
  opts.url = "sqlite:" + (dir / "bench.db").string();
  opts.fsync_each_commit = fsync;
  auto opened = open_store(opts);
  if (!opened) {
    std::fprintf(stderr, "open: %s %s\n", opened.error().message.c_str(), opened.error().detail.c_str());
    return 1;
  }
  auto& st = **opened;
  runner io;

  // Load: each update finishes 20 calls (their live state, written by the previous update, is dropped and the
  // record inserted) and starts 20 new live calls: 40 calls touched, 20 records, like ~100 events.
  constexpr std::size_t per_update = 20;
  std::mt19937_64 rng(42);
  std::vector<std::pair<std::string, std::int64_t>> sample;  // (call id, start) of some records, for lookups
  std::vector<call_record> pending;                          // records of the calls live since the last update
  in_flight gate(max_in_flight);
  std::atomic<std::uint64_t> failures{0};
  const auto load_start = steady::now();
  const double load_cpu = cpu_seconds();
  const double load_written = written_mib();
  std::uint64_t updates = 0;
  for (std::uint64_t i = 0; i < n_records;) {
    std::vector<call_record> next;
    for (std::size_t k = 0; k < per_update && i < n_records; ++k, ++i) {
      // Time order with jitter: calls end roughly in the order they started.
      const auto ts =
          day_start + static_cast<std::int64_t>(i * 86400 / n_records) + static_cast<std::int64_t>(rng() % 30);
      next.push_back(make_record(rng, i, std::min<std::int64_t>(ts, day_start + 86399)));
      if (i % 97 == 0) sample.emplace_back(next.back().call_id, ts);
    }
    std::vector<std::string> ids;
    for (const auto& r : pending) ids.push_back(r.call_id);
    for (const auto& r : next) ids.push_back(r.call_id);
    gate.acquire();
    io.spawn(st.update_calls(
                 app, std::move(ids),
                 [finishing = std::move(pending), starting = next](std::span<call_slot> slots) {
                   for (std::size_t k = 0; k < finishing.size(); ++k) slots[k].finished = finishing[k];
                   for (std::size_t k = 0; k < starting.size(); ++k) {
                     auto& slot = slots[finishing.size() + k];
                     slot.state = make_state(slot.call_id, starting[k]);
                     slot.changed = true;
                     slot.deadline_ms = starting[k].start_ts * 1000 + 30000;
                   }
                 },
                 far()),
             [&](result<void> r) {
               if (!r) failures++;
               gate.release();
             });
    pending = std::move(next);
    ++updates;
  }
  // The last live calls end too.
  gate.acquire();
  {
    std::vector<std::string> ids;
    for (const auto& r : pending) ids.push_back(r.call_id);
    io.spawn(st.update_calls(
                 app, ids,
                 [finishing = pending](std::span<call_slot> slots) {
                   for (std::size_t k = 0; k < finishing.size(); ++k) slots[k].finished = finishing[k];
                 },
                 far()),
             [&](result<void> r) {
               if (!r) failures++;
               gate.release();
             });
  }
  gate.drain();
  const double load_s = std::chrono::duration<double>(steady::now() - load_start).count();
  const double load_cpu_s = cpu_seconds() - load_cpu;
  auto stats = io.run(st.stats());
  std::printf(
      "load: %llu records in %.1f s = %.0f records/s, %.0f update_calls/s (40 calls each), failures %llu, "
      "in flight <= %zu, %s\n",
      static_cast<unsigned long long>(stats ? stats->records : 0), load_s, static_cast<double>(n_records) / load_s,
      static_cast<double>(updates) / load_s, static_cast<unsigned long long>(failures.load()), max_in_flight,
      fsync ? "synchronous=FULL" : "synchronous=NORMAL");
  std::printf(
      "load CPU: %.1f s of CPU (all threads, the generator included) = %.0f records per CPU-second; "
      "written %.0f MiB = %.1f KiB per record\n",
      load_cpu_s, static_cast<double>(n_records) / load_cpu_s, written_mib() - load_written,
      (written_mib() - load_written) * 1024 / static_cast<double>(n_records));
  print_memory("memory after load");
  std::printf("database %.1f MiB (+ WAL %.1f MiB)\n",
              static_cast<double>(std::filesystem::file_size(dir / "bench.db")) / 1048576.0,
              std::filesystem::exists(dir / "bench.db-wal")
                  ? static_cast<double>(std::filesystem::file_size(dir / "bench.db-wal")) / 1048576.0
                  : 0.0);

  if (std::getenv("BENCH_LOAD_ONLY")) return 0;
  std::printf("get_record (1 thread):\n");
  std::mt19937_64 qrng(7);
  measure(io, "by callId", 50000, [&](int) -> boost::asio::awaitable<std::uint64_t> {
    const auto& s = sample[qrng() % sample.size()];
    auto r = co_await st.get_record(app, s.first, 0, far());
    co_return r && r->has_value() ? 1 : 0;
  });
  std::string json;
  measure(io, "by callId, as JSON (the API's read)", 50000, [&](int) -> boost::asio::awaitable<std::uint64_t> {
    const auto& s = sample[qrng() % sample.size()];
    json.clear();
    auto r = co_await st.get_record(app, s.first, 0, far());
    if (!r || !*r) co_return 0;
    append_record_json(json, (*r)->fields());
    co_return 1;
  });

  std::printf("find_records, page of 100:\n");
  auto page = [&](record_filter f) -> boost::asio::awaitable<std::uint64_t> {
    auto p = co_await st.find_records(f, far());
    if (!p) {
      std::fprintf(stderr, "find_records: %s %s\n", p.error().message.c_str(), p.error().detail.c_str());
      co_return 0;
    }
    co_return p->total;
  };
  auto day = [] {
    record_filter f;
    f.sdkappid = app;
    f.start_ts = day_start;
    f.end_ts = day_start + 86399;
    f.limit = 100;
    return f;
  };
  measure(io, "whole day", 2000, [&](int) { return page(day()); });
  measure(io, "whole day, descending", 2000, [&](int) {
    auto f = day();
    f.descending = true;
    return page(f);
  });
  measure(io, "3h window (random, unaligned)", 2000, [&](int) {
    auto f = day();
    f.start_ts = day_start + static_cast<std::int64_t>(qrng() % (21 * 3600));
    f.end_ts = f.start_ts + 3 * 3600;
    return page(f);
  });
  measure(io, "whole day, callResult=reject", 2000, [&](int) {
    auto f = day();
    f.result = call_result::reject;
    return page(f);
  });
  measure(io, "whole day, callResult=offline (3%)", 2000, [&](int) {
    auto f = day();
    f.result = call_result::offline;
    return page(f);
  });
  measure(io, "3h window, group video", 2000, [&](int) {
    auto f = day();
    f.start_ts = day_start + static_cast<std::int64_t>(qrng() % (21 * 3600));
    f.end_ts = f.start_ts + 3 * 3600;
    f.type = call_type::group;
    f.media = media_type::video;
    return page(f);
  });
  measure(io, "whole day, userId", 2000, [&](int) {
    auto f = day();
    f.user_id = user(qrng());
    return page(f);
  });
  measure(io, "whole day, caller", 2000, [&](int) {
    auto f = day();
    f.caller = user(qrng());
    return page(f);
  });
  measure(io, "deep offset (random page of the day)", 2000, [&](int) {
    auto f = day();
    f.offset = (qrng() % (n_records / 100)) * 100;
    return page(f);
  });
  measure(io, "deep offset, callResult=reject", 2000, [&](int) {
    auto f = day();
    f.result = call_result::reject;
    f.offset = (qrng() % (n_records / 1000)) * 100;  // reject is ~10% of the records
    return page(f);
  });
  measure(io, "keyset page (random cursor)", 2000, [&](int) {
    auto f = day();
    const auto& s = sample[qrng() % sample.size()];
    f.after = record_cursor{s.second, s.first};
    return page(f);
  });
  measure(io, "keyset page, descending", 2000, [&](int) {
    auto f = day();
    f.descending = true;
    const auto& s = sample[qrng() % sample.size()];
    f.after = record_cursor{s.second, s.first};
    return page(f);
  });
  {
    // Readers while the writer runs: 2 threads paging 3h windows during a second load of 100k records.
    std::atomic<bool> stop{false};
    latencies lat;
    std::mutex lat_mu;
    std::vector<std::thread> readers;
    for (int k = 0; k < 2; ++k) {
      readers.emplace_back([&, k] {
        runner reader_io;  // a thread of its own, as another I/O thread
        std::mt19937_64 trng(200 + k);
        latencies mine;
        while (!stop.load()) {
          auto f = day();
          f.start_ts = day_start + static_cast<std::int64_t>(trng() % (21 * 3600));
          f.end_ts = f.start_ts + 3 * 3600;
          auto t = steady::now();
          (void)reader_io.run(page(f));
          mine.add(steady::now() - t);
        }
        std::lock_guard lock(lat_mu);
        lat.us.insert(lat.us.end(), mine.us.begin(), mine.us.end());
      });
    }
    const auto t = steady::now();
    for (std::uint64_t i = 0; i < 100000; i += per_update) {
      std::vector<call_record> batch;
      std::vector<std::string> ids;
      for (std::size_t k = 0; k < per_update; ++k) {
        batch.push_back(make_record(rng, n_records + i + k, day_start + static_cast<std::int64_t>(rng() % 86400)));
        ids.push_back(batch.back().call_id);
      }
      gate.acquire();
      io.spawn(st.update_calls(
                   app, std::move(ids),
                   [batch](std::span<call_slot> slots) {
                     for (std::size_t k = 0; k < slots.size(); ++k) slots[k].finished = batch[k];
                   },
                   far()),
               [&](result<void>) { gate.release(); });
    }
    gate.drain();
    const double s = std::chrono::duration<double>(steady::now() - t).count();
    stop = true;
    for (auto& th : readers) th.join();
    std::printf(
        "concurrent: 100k more records at %.0f records/s while 2 threads paged 3h windows: "
        "%zu pages, p50 %.1f us, p99 %.1f us\n",
        100000 / s, lat.us.size(), lat.pct(50), lat.pct(99));
  }
  print_memory("memory at end");
  st.close();
  opened->reset();
  if (!keep) std::filesystem::remove_all(dir);
  return 0;
}
