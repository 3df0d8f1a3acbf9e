// The REST hub without sockets: the dispatcher and the route table over the application core, a real SQLite
// store in a fresh directory, an injected clock. The checks of SPEC 1 in their order, the envelope, the
// operational rows, and what an error may say.
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "api/dispatcher.h"
#include "api/routes.h"
#include "auth/usersig.h"
#include "limits/local_rate_limiter.h"
#include "ops/core.h"
#include "support/io_runner.h"

namespace callrec::api {
namespace {

namespace json = boost::json;

constexpr std::uint32_t app_id = 1400000001, unentitled = 1400000002, limited = 1400000003;
constexpr const char* key = "5bd2850fff3ecb11d7c805251c51ee463a25727bddc2385f3fa8bfee1bb93b5e";
constexpr std::int64_t t0_ms = 1700000000000;

// A store whose every call fails the way a database does, with its own text in the detail.
class broken_store final : public store {
 public:
  static error failure() {
    return make_error(errc::unavailable, "the store is unavailable; retry", "sqlite: disk I/O error [SECRET-TEXT]");
  }
  awaitable<result<std::optional<stored_record>>> get_record(std::uint32_t, std::string_view, std::int64_t,
                                                             deadline) override {
    co_return failure();
  }
  awaitable<result<record_page>> find_records(const record_filter&, deadline) override { co_return failure(); }
  awaitable<result<void>> update_calls(std::uint32_t, std::vector<std::string>, update_fn, deadline) override {
    co_return failure();
  }
  awaitable<result<std::vector<due_call>>> claim_due_calls(std::int64_t, std::size_t,
                                                          std::chrono::milliseconds) override {
    co_return failure();
  }
  awaitable<result<void>> ping(deadline) override { co_return failure(); }
  awaitable<result<store_stats>> stats() override { co_return failure(); }
  awaitable<result<retention_report>> apply_retention(const retention_policy&, deadline) override {
    co_return failure();
  }
  void close() override {}
};

class dispatcher_test : public ::testing::Test {
 protected:
  void SetUp() override {
    std::random_device rd;
    dir_ = std::filesystem::temp_directory_path() / ("callrec-dispatch-" + std::to_string(rd()));
    std::filesystem::create_directories(dir_);
    auto opened = open_store(store_settings{"sqlite:" + (dir_ / "db").string()});
    ASSERT_TRUE(opened) << opened.error().message;
    store_ = std::move(*opened);
    build(*store_);
  }
  void TearDown() override {
    dispatcher_.reset();
    if (store_) store_->close();
    std::filesystem::remove_all(dir_);
  }
  void build(store& st) {
    std::vector<app_config> apps;
    app_config a;
    a.sdkappid = app_id;
    a.secret_key = key;
    a.admins = {"administrator", "ops"};
    a.limits.fill(1e6);
    apps.push_back(a);
    a.sdkappid = unentitled;
    a.entitled = false;
    apps.push_back(a);
    a.sdkappid = limited;
    a.entitled = true;
    a.limits.fill(2);
    apps.push_back(a);
    apps_ = std::make_unique<ops::app_registry>(apps);
    std::vector<std::pair<std::uint32_t, limits::rates>> rates;
    for (const auto& x : apps) rates.emplace_back(x.sdkappid, x.limits);
    limiter_ = std::make_unique<limits::local_rate_limiter>(rates);
    metrics_ = std::make_unique<obs::metrics>(api_names(v1_routes()));
    log_ = std::make_unique<obs::access_log>((dir_ / "access.log").string());
    core_ = std::make_unique<ops::core>(ops::core{st, *limiter_, clock_, *apps_, *metrics_});
    dispatcher_ = std::make_unique<dispatcher>(*core_, v1_routes(), *log_);
  }

  static std::string target(const std::string& api, const std::string& identifier = "administrator",
                            std::uint32_t app = app_id, std::string sig = "") {
    if (sig.empty()) sig = auth::make_usersig(key, app, identifier, t0_ms / 1000, 86400);
    return "/v1/" + api + "?sdkappid=" + std::to_string(app) + "&identifier=" + identifier + "&usersig=" + sig +
           "&random=1&contenttype=json";
  }
  struct answer_seen {
    http::reply rep;
    json::value json;
    int code() const { return static_cast<int>(json.at("errorCode").as_int64()); }
    std::string message() const { return std::string(json.at("errorMessage").as_string()); }
  };
  answer_seen call(http::method m, const std::string& t, const std::string& body) {
    http::request req;
    req.verb = m;
    req.target = t;
    req.body = body;
    req.remote = "192.0.2.1:5000";
    answer_seen a;
    a.rep = io_.run(dispatcher_->handle(req));
    boost::system::error_code ec;
    a.json = json::parse(a.rep.body, ec);
    if (ec) a.json = nullptr;
    return a;
  }
  answer_seen post(const std::string& t, const std::string& body) { return call(http::method::post, t, body); }

  std::filesystem::path dir_;
  manual_clock clock_{t0_ms};
  std::unique_ptr<store> store_;
  std::unique_ptr<ops::app_registry> apps_;
  std::unique_ptr<limits::local_rate_limiter> limiter_;
  std::unique_ptr<obs::metrics> metrics_;
  std::unique_ptr<obs::access_log> log_;
  std::unique_ptr<ops::core> core_;
  std::unique_ptr<dispatcher> dispatcher_;
  testing::io_runner io_;
};

// SPEC 1: path and method, query parameters, app, UserSig, administrator, entitlement, rate limit, body, then
// the API. Each request below fails two checks; the earlier one answers.
TEST_F(dispatcher_test, checks_answer_in_the_spec_s_order) {
  const std::string good = R"({"callId":"c1"})";
  const std::string get = "records/get_record_by_callId";
  struct step {
    std::string what;
    http::method m;
    std::string target;
    std::string body;
    int code;
    unsigned status;
  };
  const std::string bad_sig = "eJx*bad";
  const std::vector<step> steps = {
      {"unknown path, bad query", http::method::post, "/v1/records/nope?x", good, 70001, 200},
      {"unknown path outside /v1/", http::method::post, "/nope", good, 70001, 404},
      {"method, bad query", http::method::get, "/v1/" + get + "?x", good, 70001, 200},
      {"query, unknown app", http::method::post, target(get, "administrator", 42).substr(0, 60), good, 70001, 200},
      {"unknown app, bad usersig", http::method::post, target(get, "administrator", 42, bad_sig), good, 70002, 200},
      {"usersig, not admin", http::method::post, target(get, "alice", app_id, bad_sig), good, 70002, 200},
      {"not admin, not entitled", http::method::post, target(get, "alice", unentitled), good, 70004, 200},
      {"not entitled, empty body", http::method::post, target(get, "administrator", unentitled), "", 50001, 200},
      {"empty body, bad callId", http::method::post, target(get), "", 70009, 200},
      {"body not an object", http::method::post, target(get), "[1]", 70009, 200},
      {"body not JSON", http::method::post, target(get), "{", 70009, 200},
      {"the API: callId missing", http::method::post, target(get), "{}", 70001, 200},
      {"the API: callId of the wrong type", http::method::post, target(get), R"({"callId":7})", 70009, 200},
      {"the API: no such record", http::method::post, target(get), good, 101050, 200},
  };
  for (const auto& s : steps) {
    auto a = call(s.m, s.target, s.body);
    ASSERT_TRUE(a.json.is_object()) << s.what << ": " << a.rep.body;
    EXPECT_EQ(a.code(), s.code) << s.what << ": " << a.message();
    EXPECT_EQ(a.rep.status, s.status) << s.what;
    EXPECT_EQ(std::string_view(a.rep.request_id).size(), 32u) << s.what;
    EXPECT_EQ(a.json.at("requestId").as_string(), std::string_view(a.rep.request_id)) << s.what;
  }
}

TEST_F(dispatcher_test, rate_limit_comes_before_the_body_and_charges_events_per_event) {
  const std::string t = target("records/get_record_by_callId", "administrator", limited);
  EXPECT_EQ(post(t, "").code(), 70009);
  EXPECT_EQ(post(t, "").code(), 70009);
  auto over = post(t, "");
  EXPECT_EQ(over.code(), 70005) << "the third in one second, whatever its body";
  EXPECT_NE(over.message().find("get_record_by_callId"), std::string::npos) << over.message();
  // events: admitted while a token is left, then charged the batch (2 tokens a second for this app).
  const std::string ev = target("events/report", "administrator", limited);
  const std::string batch =
      R"({"events":[{"callId":"x","event":"heartbeat","userId":"a"},{"callId":"x","event":"heartbeat","userId":"a"},)"
      R"({"callId":"x","event":"heartbeat","userId":"a"}]})";
  EXPECT_NE(post(ev, batch).code(), 70005);  // 2 tokens, 3 taken: -1
  EXPECT_EQ(post(ev, batch).code(), 70005) << "3 events took the bucket below zero";
  clock_.advance_ms(1000);
  EXPECT_NE(post(ev, batch).code(), 70005) << "a second refilled 2: one token left, then -2";
  clock_.advance_ms(1000);
  EXPECT_EQ(post(ev, batch).code(), 70005) << "a second refilled 2 of the 3 owed";
  clock_.advance_ms(1000);
  EXPECT_NE(post(ev, batch).code(), 70005);
}

TEST_F(dispatcher_test, a_reported_call_is_read_back_by_both_apis) {
  const std::string batch = R"({"events":[)"
                            R"({"callId":"d1","event":"start_call","userId":"alice","callees":["bob"],"ts":1699999990000},)"
                            R"({"callId":"d1","event":"accept_call","userId":"bob","ts":1699999991000},)"
                            R"({"callId":"d1","event":"hangup","userId":"bob","ts":1699999999000}]})";
  auto r = post(target("events/report"), batch);
  ASSERT_EQ(r.code(), 0) << r.rep.body;
  EXPECT_EQ(r.json.at("data").at("applied").as_int64(), 3);
  // The usual body, read without the JSON parser, and the same request parsed: the same answer.
  for (const std::string body : {R"({"callId":"d1"})", R"({ "callId" : "d1" , "extra": 1 })"}) {
    auto a = post(target("records/get_record_by_callId"), body);
    ASSERT_EQ(a.code(), 0) << a.rep.body;
    EXPECT_EQ(a.json.at("data").at("callResult").as_string(), "normal_end");
    EXPECT_EQ(a.json.at("data").at("startCallTs").as_int64(), 1699999990);
  }
  auto p = post(target("records/get_records_by_filter"), R"({"startTimestamp":1699990000})");
  ASSERT_EQ(p.code(), 0) << p.rep.body;
  EXPECT_EQ(p.json.at("data").at("totalNum").as_int64(), 1);
  // Each request was counted under its API, with its errorCode.
  const std::string m = metrics_->render();
  EXPECT_NE(m.find("callrec_requests_total{api=\"events/report\",errorCode=\"0\"} 1"), std::string::npos) << m;
  EXPECT_NE(m.find("callrec_requests_total{api=\"records/get_record_by_callId\",errorCode=\"0\"} 2"), std::string::npos);
}

// SPEC 4: an event from before the retention window (7 days here) is answered late with 70001, naming the
// window; the batch's other events are applied, and the envelope names the first refused event.
TEST_F(dispatcher_test, an_event_before_the_retention_window_is_late_with_70001) {
  const std::string old_ts = std::to_string(t0_ms - 8LL * 86400 * 1000);
  const std::string batch = R"({"events":[{"callId":"o1","event":"start_call","userId":"alice","callees":["bob"],"ts":)" +
                            old_ts + R"(},{"callId":"n1","event":"start_call","userId":"alice","callees":["bob"],"ts":)" +
                            std::to_string(t0_ms - 1000) + "}]}";
  auto r = post(target("events/report"), batch);
  EXPECT_EQ(r.code(), 70001) << r.rep.body;
  EXPECT_NE(r.message().find("events[0] refused: ts " + old_ts + " lies before the retention window of 7 days"),
            std::string::npos)
      << r.message();
  const auto& data = r.json.at("data");
  EXPECT_EQ(data.at("applied").as_int64(), 1);
  EXPECT_EQ(data.at("late").as_int64(), 1);
  EXPECT_EQ(data.at("refused").as_int64(), 0);
  const auto& first = data.at("results").at(0);
  EXPECT_EQ(first.at("status").as_string(), "late");
  EXPECT_EQ(first.at("errorCode").as_int64(), 70001);
  EXPECT_FALSE(data.at("results").at(1).as_object().contains("errorCode"));
}

TEST_F(dispatcher_test, a_path_without_a_version_is_v1) {
  auto a = post(target("records/get_record_by_callId").substr(3), R"({"callId":"x"})");
  EXPECT_EQ(a.code(), 101050) << a.rep.body;
  EXPECT_EQ(post("/events/nope", "{}").rep.status, 200u);
}

TEST_F(dispatcher_test, operational_rows_answer_get_and_head_without_an_envelope) {
  auto health = call(http::method::get, "/healthz", "");
  EXPECT_EQ(health.rep.status, 200u);
  EXPECT_EQ(health.rep.body, "ok\n");
  EXPECT_TRUE(std::string_view(health.rep.request_id).empty());
  EXPECT_EQ(call(http::method::head, "/readyz", "").rep.body, "ready\n");
  auto root = call(http::method::get, "/", "");
  EXPECT_EQ(root.rep.content_type, "application/json");
  EXPECT_EQ(root.json.at("service").as_string(), "callrec");
  auto metrics = call(http::method::get, "/metrics", "");
  EXPECT_EQ(metrics.rep.content_type, "text/plain; version=0.0.4");
  EXPECT_NE(metrics.rep.body.find("callrec_live_calls 0"), std::string::npos) << "the store's gauges";
  // Another method on an operational path is an unknown path (404, enveloped).
  auto posted = post("/healthz", "{}");
  EXPECT_EQ(posted.rep.status, 404u);
  EXPECT_EQ(posted.code(), 70001);
}

// SPEC 1: errorMessage never carries internal detail. A failing store's own text reaches the access log only.
TEST_F(dispatcher_test, a_store_failure_answers_101001_without_the_database_s_text) {
  broken_store broken;
  build(broken);
  for (const auto& [api, body] : std::vector<std::pair<std::string, std::string>>{
           {"records/get_record_by_callId", R"({"callId":"c"})"},
           {"records/get_records_by_filter", R"({"startTimestamp":1699990000})"},
           {"events/report", R"({"events":[{"callId":"c","event":"hangup","userId":"u"}]})"}}) {
    auto a = post(target(api), body);
    EXPECT_EQ(a.code(), 101001) << api << ": " << a.rep.body;
    EXPECT_EQ(a.rep.body.find("SECRET"), std::string::npos) << api << ": " << a.rep.body;
    EXPECT_EQ(a.rep.body.find("sqlite"), std::string::npos) << api << ": " << a.rep.body;
  }
  EXPECT_EQ(call(http::method::get, "/readyz", "").rep.status, 503u);
  log_->flush();
  std::ifstream in(dir_ / "access.log");
  std::stringstream ss;
  ss << in.rdbuf();
  EXPECT_NE(ss.str().find("SECRET-TEXT"), std::string::npos) << "the operator sees it: " << ss.str();
}

}  // namespace
}  // namespace callrec::api
