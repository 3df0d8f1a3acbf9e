// Acknowledged batches survive a crash of the process right after the answer: the real binary is started,
// fed events, killed with SIGKILL as soon as the answer arrives, restarted on the same data directory.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fcntl.h>

#include <fstream>

#include "support/free_port.h"
#include "support/test_server.h"

namespace callrec::testing {
namespace {

namespace json = boost::json;

class child_server {
 public:
  child_server(const std::filesystem::path& dir, std::uint16_t port) {
    std::ofstream(dir / "callrec.toml") << "listen = \"127.0.0.1:" << port << "\"\nthreads = 2\ndata_dir = \""
                                        << dir.string() << "\"\naccess_log = \"off\"\n[[apps]]\nsdkappid = " << app_id
                                        << "\nsecret_key = \"" << app_key
                                        << "\"\nrate_limits = { events = 1e9 }\n";
    pid_ = fork();
    if (pid_ == 0) {
      std::string cfg = (dir / "callrec.toml").string();
      int devnull = open("/dev/null", O_WRONLY);
      dup2(devnull, 1);
      dup2(devnull, 2);
      execl(CALLREC_BINARY, CALLREC_BINARY, "serve", "--config", cfg.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
  }
  ~child_server() { kill_now(); }
  void kill_now() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
      pid_ = -1;
    }
  }

 private:
  pid_t pid_ = -1;
};

bool serving(std::uint16_t port) {
  try {
    client c(port);
    return c.get("/healthz").status == 200;
  } catch (const std::exception&) {
    return false;
  }
}

// The child runs on the real clock.
std::int64_t wall_now_s() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string real_time_target(const std::string& api) {
  return "/v1/" + api + "?sdkappid=" + std::to_string(app_id) + "&identifier=administrator&usersig=" +
         auth::make_usersig(app_key, app_id, "administrator", wall_now_s(), 3600) + "&random=1&contenttype=json";
}

TEST(crash, acknowledged_events_survive_sigkill) {
  auto dir = fresh_dir("crash");
  const auto port = free_port();
  const int batches = 20;
  {
    child_server srv(dir, port);
    ASSERT_TRUE(eventually([&] { return serving(port); }));
    client cli(port);
    const std::string target = real_time_target("events/report");
    for (int b = 0; b < batches; ++b) {
      json::array evs;
      for (int i = 0; i < 10; ++i) {
        std::string id = "crash-" + std::to_string(b) + "-" + std::to_string(i);
        evs.push_back({{"callId", id}, {"event", "start_call"}, {"userId", "alice"}, {"callees", json::array{"bob"}}});
        evs.push_back({{"callId", id}, {"event", "reject_call"}, {"userId", "bob"}});
      }
      json::object body{{"events", evs}};
      auto a = cli.post(target, json::serialize(body));
      ASSERT_EQ(a.code(), 0) << a.body;
    }
    srv.kill_now();  // right after the last answer
  }
  child_server again(dir, port);
  ASSERT_TRUE(eventually([&] { return serving(port); }));
  client cli(port);
  auto a = cli.post(real_time_target("records/get_records_by_filter"),
                    "{\"startTimestamp\": " + std::to_string(wall_now_s() - 3600) + "}");
  ASSERT_EQ(a.code(), 0) << a.body;
  EXPECT_EQ(a.data().at("totalNum").as_int64(), batches * 10);
  again.kill_now();
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
}

}  // namespace
}  // namespace callrec::testing
