// Storage faults injected under the embedded store (support/faulty_vfs.h): a full disk, a failed fsync, a torn
// write, a slow disk. Each answers 101001 while it lasts, loses nothing that was acknowledged, and the node
// recovers by itself once the fault clears (and after a restart).
#include <gtest/gtest.h>

#include <fstream>

#include "support/faulty_vfs.h"
#include "support/test_server.h"

namespace callrec::testing {
namespace {

using namespace std::chrono_literals;
using fault = faulty_vfs::fault;

struct fault_case {
  std::string name;
  fault kind;
  bool fsync_each_commit = false;  // a failed fsync is only seen by a store that syncs each commit
};
void PrintTo(const fault_case& c, std::ostream* os) { *os << c.name; }

constexpr auto deadline = 1000ms;
constexpr auto slow_delay = 1200ms;  // one slow write outlasts the request deadline

class faults_test : public ::testing::TestWithParam<fault_case> {
 protected:
  faults_test() { faulty_vfs::instance().clear(); }
  ~faults_test() override { faulty_vfs::instance().clear(); }

  test_server srv{transport::plain, [](server_config& c) { c.fsync_each_commit = GetParam().fsync_each_commit; },
                  "faults", [](callrec::node& n) {
                    faulty_vfs::instance();  // registered before the store opens
                    n.sqlite_vfs = faulty_vfs::name;
                    n.request_deadline = deadline;
                  }};
  client cli{srv};

  // A whole 1:1 call reported in one batch: it ends, so its record is written in the same commit.
  http_answer report_call(client& c, const std::string& id) {
    const std::string ts = std::to_string(t0_ms - 60000);
    return c.post(api_target("events/report"),
                  R"({"events":[{"callId":")" + id + R"(","event":"start_call","userId":"alice","callees":["bob"],)"
                  R"("eventId":"s","ts":)" + ts + R"(},{"callId":")" + id +
                  R"(","event":"accept_call","userId":"bob","eventId":"a","ts":)" + ts +
                  R"(},{"callId":")" + id + R"(","event":"hangup","userId":"bob","eventId":"h","ts":)" + ts + "}]}");
  }
  static int record_code(client& c, const std::string& id) {
    return c.post(api_target("records/get_record_by_callId"), R"({"callId":")" + id + R"("})").code();
  }
};

TEST_P(faults_test, answers_101001_loses_nothing_acknowledged_and_recovers) {
  auto& vfs = faulty_vfs::instance();
  ASSERT_EQ(report_call(cli, "before").code(), 0);

  const int injected = vfs.injected();
  vfs.inject(GetParam().kind, srv.dir().string(), slow_delay);
  auto during = report_call(cli, "during");
  EXPECT_EQ(during.status, 200u);
  EXPECT_EQ(during.code(), 101001) << during.body;
  EXPECT_GT(vfs.injected(), injected) << "the fault was not hit: the test proves nothing";
  EXPECT_EQ(during.message().find("sqlite"), std::string::npos) << "no database text for the client: " << during.body;
  EXPECT_EQ(record_code(cli, "before"), 0) << "reads go on during a write fault";
  if (GetParam().kind != fault::slow) {
    // The operator sees what the database said: in the access log, not in the answer.
    ASSERT_TRUE(eventually([&] {
      std::ifstream log(srv.dir() / "access.log");
      std::string line;
      while (std::getline(log, line)) {
        if (line.find(during.request_id_header) != std::string::npos) return line.find("\"detail\":\"sqlite") != std::string::npos;
      }
      return false;
    })) << "no access-log line with the store's own error text";
  }

  vfs.clear();
  // The batch that failed may still be applied once a slow write ends; a retry is safe either way (eventIds).
  ASSERT_TRUE(eventually([&] { return report_call(cli, "during").code() == 0; }));
  EXPECT_EQ(report_call(cli, "after").code(), 0);
  for (const char* id : {"before", "during", "after"}) EXPECT_EQ(record_code(cli, id), 0) << id;

  // Nothing acknowledged is lost across a restart either (the WAL may end in a torn frame).
  srv.restart();
  client fresh(srv);
  for (const char* id : {"before", "during", "after"}) EXPECT_EQ(record_code(fresh, id), 0) << id;
  EXPECT_EQ(report_call(fresh, "later").code(), 0);
}

INSTANTIATE_TEST_SUITE_P(faults, faults_test,
                         ::testing::Values(fault_case{"disk_full", fault::disk_full},
                                           fault_case{"fsync_fails", fault::fsync_fails, true},
                                           fault_case{"short_write", fault::short_write},
                                           fault_case{"slow_disk", fault::slow}),
                         [](const auto& info) { return info.param.name; });

}  // namespace
}  // namespace callrec::testing
