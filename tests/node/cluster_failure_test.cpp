// The cluster when things fail (SPEC 8): PostgreSQL stopped and started under load, and a node killed with
// SIGKILL under load, whose acknowledged events are kept and whose live calls the other nodes' timers end,
// once each. The outage test runs a PostgreSQL of its own (scripts/services), since it stops it; the node that
// dies is the real binary, in a child process.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fcntl.h>

#include <atomic>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "support/free_port.h"
#include "support/test_server.h"

namespace callrec::testing {
namespace {

namespace json = boost::json;
using namespace std::chrono_literals;

std::string services(const std::string& args) { return std::string(CALLREC_SOURCE_DIR) + "/scripts/services " + args; }

// A PostgreSQL of this test's own, stopped on destruction.
class private_postgres {
 public:
  private_postgres() : dir_(fresh_dir("pg")) {
    ok_ = std::system(services("start '" + dir_.string() + "/s' --fast >/dev/null").c_str()) == 0;
    std::ifstream env(dir_ / "s" / "env");
    for (std::string line; std::getline(env, line);) {
      if (line.starts_with("CALLREC_PG_URL=")) url_ = line.substr(15);
    }
  }
  ~private_postgres() {
    (void)std::system(services("stop '" + dir_.string() + "/s'").c_str());
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  bool ok() const { return ok_ && !url_.empty(); }
  const std::string& url() const { return url_; }
  bool stop() { return std::system(services("pg-stop '" + dir_.string() + "/s'").c_str()) == 0; }
  bool start() { return std::system(services("pg-start '" + dir_.string() + "/s'").c_str()) == 0; }

 private:
  std::filesystem::path dir_;
  bool ok_ = false;
  std::string url_;
};

TEST(cluster_failure, postgres_stopped_and_started_under_load_loses_nothing_acknowledged) {
  if (const auto why = pg_unavailable(); !why.empty()) GTEST_SKIP() << why;
  private_postgres pg;
  ASSERT_TRUE(pg.ok()) << "scripts/services could not start a PostgreSQL";
  test_server srv([&](server_config& c) { c.store = pg.url(); }, "outage");

  // One connection reporting batches of 33 whole calls, as fast as they are answered, until told to stop.
  enum class phase { before, down, after };
  std::atomic<phase> now{phase::before};
  std::atomic<bool> done{false};
  std::atomic<int> ok_after{0}, refused_down{0}, slow{0}, other{0};
  std::vector<std::string> acknowledged;  // the load thread's until it is joined
  std::atomic<std::size_t> acked{0};
  std::thread load([&] {
    client cli(srv.port());
    for (int batch = 0; !done.load(); ++batch) {
      json::array evs;
      std::vector<std::string> ids;
      for (int i = 0; i < 33; ++i) {
        const std::string id = "o" + std::to_string(batch) + "-" + std::to_string(i);
        const std::int64_t t = t0_ms - 20000;
        evs.push_back(event_of(id, "start_call", "alice", {{"callees", json::array{"bob"}}, {"ts", t}}));
        evs.push_back(event_of(id, "accept_call", "bob", {{"ts", t + 1000}}));
        evs.push_back(event_of(id, "hangup", "bob", {{"ts", t + 5000}}));
        ids.push_back(id);
      }
      json::object body;
      body["events"] = std::move(evs);
      const auto seen = now.load();
      const auto begin = std::chrono::steady_clock::now();
      const auto answer = cli.post(api_target("events/report"), json::serialize(body));
      if (std::chrono::steady_clock::now() - begin > 3500ms) ++slow;
      const int code = answer.code();
      if (code == 0) {
        acknowledged.insert(acknowledged.end(), ids.begin(), ids.end());
        acked += ids.size();
        if (seen == phase::after) ++ok_after;
      } else if (code == 101001) {
        if (seen == phase::down) ++refused_down;
      } else {
        ++other;
      }
    }
  });
  auto wait_for = [](auto cond, std::chrono::seconds limit) {
    const auto end = std::chrono::steady_clock::now() + limit;
    while (!cond() && std::chrono::steady_clock::now() < end) std::this_thread::sleep_for(10ms);
    return cond();
  };
  ASSERT_TRUE(wait_for([&] { return acked.load() > 0; }, 20s));
  ASSERT_TRUE(pg.stop());
  now = phase::down;
  EXPECT_TRUE(wait_for([&] { return refused_down.load() >= 3; }, 20s)) << "requests answer 101001 while it is down";
  ASSERT_TRUE(pg.start());
  now = phase::after;
  EXPECT_TRUE(wait_for([&] { return ok_after.load() >= 5; }, 30s)) << "the pool reconnects without a restart";
  done = true;
  load.join();
  EXPECT_EQ(slow.load(), 0) << "every answer within the 3 s deadline";
  EXPECT_EQ(other.load(), 0) << "only 0 or 101001";

  // Every acknowledged call has its record.
  client cli(srv.port());
  std::set<std::string> stored;
  for (int page = 1;; ++page) {
    json::object q{{"startTimestamp", t0_ms / 1000 - 3600}, {"endTimestamp", t0_ms / 1000}, {"numberPerPage", 1000},
                   {"page", page}};
    auto a = cli.post(api_target("records/get_records_by_filter"), json::serialize(q));
    ASSERT_EQ(a.code(), 0) << a.body;
    const auto& list = a.data().at("callRecordList").as_array();
    for (const auto& r : list) stored.insert(std::string(r.at("callId").as_string()));
    if (list.size() < 1000) break;
  }
  std::size_t missing = 0;
  for (const auto& id : acknowledged) missing += stored.count(id) == 0;
  EXPECT_EQ(missing, 0u) << "of " << acknowledged.size() << " acknowledged calls";
}

// ---------------------------------------------------------------------------------------------------------

std::int64_t wall_now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// The real binary over a PostgreSQL store, on the real clock.
class child_node {
 public:
  child_node(const std::filesystem::path& dir, const std::string& store_url) : port_(free_port()) {
    std::ofstream(dir / "node.toml") << "listen = \"127.0.0.1:" << port_ << "\"\nthreads = 2\ndata_dir = \""
                                     << dir.string() << "\"\naccess_log = \"off\"\nstore = \"" << store_url
                                     << "\"\n[[apps]]\nsdkappid = " << app_id << "\nsecret_key = \"" << app_key
                                     << "\"\nadmins = [\"administrator\"]\n";
    pid_ = fork();
    if (pid_ == 0) {
      const std::string cfg = (dir / "node.toml").string();
      const int devnull = open("/dev/null", O_WRONLY);
      dup2(devnull, 1);
      dup2(devnull, 2);
      execl(CALLREC_BINARY, CALLREC_BINARY, "serve", "--config", cfg.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
  }
  ~child_node() { kill_now(); }
  void kill_now() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
      pid_ = -1;
    }
  }
  std::uint16_t port() const { return port_; }

 private:
  std::uint16_t port_;
  pid_t pid_ = -1;
};

TEST(cluster_failure, a_node_killed_under_load_loses_nothing_acknowledged_and_its_calls_end_once) {
  if (const auto why = pg_unavailable(); !why.empty()) GTEST_SKIP() << why;
  const auto schema = pg_schema_name("takeover." + std::to_string(::getpid()));
  ASSERT_EQ(pg_exec(pg_base_url(), "DROP SCHEMA IF EXISTS " + schema + " CASCADE"), "");
  const auto url = pg_schema_url(schema);
  auto dir = fresh_dir("takeover");
  auto a = std::make_unique<child_node>(dir, url);
  bool up = false;
  for (int i = 0; i < 300 && !up; ++i) {
    try {
      client c(a->port());
      up = c.get("/healthz").status == 200;
    } catch (const std::exception&) {
      std::this_thread::sleep_for(20ms);
    }
  }
  ASSERT_TRUE(up) << "the node did not start";

  // Load on node a (server time): each batch starts 10 calls that stay ringing and reports 10 whole calls,
  // as fast as it is answered, until the node is gone. Acknowledged ids are kept; the batch in flight when
  // the node dies may or may not have committed.
  const auto started_ms = wall_now_ms();
  const std::string target = "/v1/events/report?sdkappid=" + std::to_string(app_id) +
                             "&identifier=administrator&usersig=" + usersig_for("administrator", started_ms / 1000) +
                             "&random=1&contenttype=json";
  std::vector<std::string> ringing_sent, ringing_acked, whole_acked;  // the load thread's until joined
  std::atomic<int> batches_acked{0};
  std::atomic<bool> failed_otherwise{false};
  std::thread load([&] {
    try {
      client ca(a->port());
      for (int batch = 0;; ++batch) {
        json::array evs;
        std::vector<std::string> ringing, whole;
        const std::int64_t t = wall_now_ms() - 10000;
        for (int i = 0; i < 10; ++i) {
          ringing.push_back("k" + std::to_string(batch) + "-" + std::to_string(i));
          evs.push_back(event_of(ringing.back(), "start_call", "alice", {{"callees", json::array{"bob"}}}));
          whole.push_back("w" + std::to_string(batch) + "-" + std::to_string(i));
          evs.push_back(event_of(whole.back(), "start_call", "carol", {{"callees", json::array{"dave"}}, {"ts", t}}));
          evs.push_back(event_of(whole.back(), "accept_call", "dave", {{"ts", t + 1000}}));
          evs.push_back(event_of(whole.back(), "hangup", "dave", {{"ts", t + 5000}}));
        }
        json::object body;
        body["events"] = std::move(evs);
        ringing_sent.insert(ringing_sent.end(), ringing.begin(), ringing.end());
        const auto r = ca.post(target, json::serialize(body));
        if (r.code() != 0) {
          failed_otherwise = true;
          return;
        }
        ringing_acked.insert(ringing_acked.end(), ringing.begin(), ringing.end());
        whole_acked.insert(whole_acked.end(), whole.begin(), whole.end());
        ++batches_acked;
      }
    } catch (const std::exception&) {
      // the node is gone
    }
  });
  for (int i = 0; i < 3000 && batches_acked.load() < 20; ++i) std::this_thread::sleep_for(10ms);
  a->kill_now();  // while the load thread has a batch out (it sends the next as soon as one is answered)
  load.join();
  ASSERT_FALSE(failed_otherwise.load()) << "an answer other than success before the node died";
  ASSERT_GE(ringing_acked.size(), 200u);

  // Two other nodes, their clocks past the calls' ringing timeout (30 s), run their timers until nothing is
  // due: each live call of node a ends once, on one of them.
  test_server b([&](server_config& c) { c.store = url; }, "takeover-b");
  test_server c([&](server_config& c) { c.store = url; }, "takeover-c");
  for (auto* s : {&b, &c}) s->clock().advance_ms(wall_now_ms() + 40000 - t0_ms);
  auto fired = [&] { return b.node().metrics().timers_fired.value() + c.node().metrics().timers_fired.value(); };
  for (std::uint64_t before = ~std::uint64_t{0}; before != fired();) {
    before = fired();
    std::thread tb([&] { b.node().run_maintenance_once(); });
    std::thread tc([&] { c.node().run_maintenance_once(); });
    tb.join();
    tc.join();
  }

  client cb(b.port());
  const std::string get = "/v1/records/get_record_by_callId?sdkappid=" + std::to_string(app_id) +
                          "&identifier=administrator&usersig=" + usersig_for("administrator", b.clock().now_s()) +
                          "&random=1&contenttype=json";
  auto has_record = [&](const std::string& id) {
    auto r = cb.post(get, "{\"callId\":\"" + id + "\"}");
    return r.code() == 0;
  };
  std::size_t ended = 0, acked_missing = 0, whole_missing = 0;
  const std::set<std::string> acked(ringing_acked.begin(), ringing_acked.end());
  for (const auto& id : ringing_sent) {
    const bool found = has_record(id);
    ended += found;
    acked_missing += !found && acked.count(id);
  }
  for (const auto& id : whole_acked) whole_missing += !has_record(id);
  EXPECT_EQ(acked_missing, 0u) << "every acknowledged ringing call ended, of " << ringing_acked.size();
  EXPECT_EQ(whole_missing, 0u) << "every acknowledged whole call kept, of " << whole_acked.size();
  EXPECT_EQ(fired(), ended) << "one timer firing per ended call: none twice";
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
}

}  // namespace
}  // namespace callrec::testing
