// The HTTP/2 session over real loopback sockets, against an nghttp2 client: concurrency, bodies, limits,
// floods, stalls, shutdown. Every wait is a bounded poll on a condition.
#include "http/h2_session.h"

#include <gtest/gtest.h>
#include <nghttp2/nghttp2.h>
#include <poll.h>
#include <sys/socket.h>

#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <cstring>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "support/h2_client.h"

namespace callrec::http {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

// Runs run_h2 on every accepted connection, on one I/O thread. Test handler routes:
//   /echo       the request body, request id "rid-1"
//   /delay/MS   "MS" after MS milliseconds (responses complete out of order)
//   /hold       waits for release()
//   /big/N      N bytes
class test_server {
 public:
  explicit test_server(h2_limits limits, bool preread_preface = false)
      : limits_(limits),
        preread_(preread_preface),
        acceptor_(ioc_),
        gate_(ioc_, std::chrono::steady_clock::time_point::max()) {
    acceptor_.open(tcp::v4());
    acceptor_.bind(tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    acceptor_.listen();
    port_ = acceptor_.local_endpoint().port();
    handler_ = [this](const request& req) { return handle(req); };
    asio::co_spawn(ioc_, accept_loop(), asio::detached);
    thread_ = std::thread([this] { ioc_.run(); });
  }
  ~test_server() {
    release();
    asio::post(ioc_, [this] {
      boost::system::error_code ec;
      acceptor_.close(ec);
      for (auto& c : controls_) c.shutdown();
    });
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (started_.load() != ended_.load() && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::yield();  // bounded drain of the connections still open
    }
    ioc_.stop();
    thread_.join();
  }
  std::uint16_t port() const { return port_; }
  int ended() const { return ended_.load(); }
  const obs::metrics& metrics() const { return metrics_; }
  void release() {
    asio::post(ioc_, [this] {
      released_ = true;
      gate_.cancel();
    });
  }
  // Graceful shutdown of every open connection.
  void shutdown_all() {
    asio::post(ioc_, [this] {
      for (auto& c : controls_) c.shutdown();
    });
  }

 private:
  asio::awaitable<reply> handle(const request& req) {
    reply r;
    r.content_type = "text/plain";
    const std::string_view t = req.target;
    if (t == "/echo") {
      r.body.assign(req.body);
      r.request_id = "rid-1";
    } else if (t.starts_with("/delay/")) {
      const int ms = std::stoi(std::string(t.substr(7)));
      asio::steady_timer timer(co_await asio::this_coro::executor, std::chrono::milliseconds(ms));
      co_await timer.async_wait(use_tuple);
      r.body.assign(t.substr(7));
    } else if (t == "/hold") {
      if (!released_) co_await gate_.async_wait(use_tuple);
      r.body = "held";
    } else if (t.starts_with("/big/")) {
      r.body.assign(std::stoul(std::string(t.substr(5))), 'x');
    } else {
      r.status = 404;
    }
    co_return r;
  }

  asio::awaitable<void> accept_loop() {
    for (;;) {
      auto [ec, sock] = co_await acceptor_.async_accept(use_tuple);
      if (ec) co_return;
      ++started_;
      asio::co_spawn(ioc_, serve(std::move(sock)), asio::detached);
    }
  }

  asio::awaitable<void> serve(tcp::socket sock) {
    controls_.emplace_back();
    auto control = std::prev(controls_.end());
    std::string first;
    if (preread_) {  // as the HTTP/1.1 session will: it has read the preface before handing over
      first.resize(h2_client_preface.size());
      auto [ec, n] = co_await asio::async_read(sock, asio::buffer(first), use_tuple);
      first.resize(n);
    }
    co_await run_h2(sock, first, handler_, limits_, "127.0.0.1:1", &*control, &metrics_);
    controls_.erase(control);
    ++ended_;
  }

  h2_limits limits_;
  bool preread_;
  asio::io_context ioc_;
  tcp::acceptor acceptor_;
  asio::steady_timer gate_;
  bool released_ = false;
  handler handler_;
  std::list<h2_control> controls_;
  obs::metrics metrics_;
  std::uint16_t port_ = 0;
  std::atomic<int> started_{0}, ended_{0};
  std::thread thread_;
};

// The tests' HTTP/2 client (tests/support/h2_client.h), here over plain TCP.
using test_client = callrec::testing::h2_connection;

h2_limits fast_limits() {
  h2_limits l;
  l.stall_timeout_ms = 300;
  l.request_timeout_ms = 5000;
  return l;
}

// A fresh connection to `port` answers /echo: the server as a whole is unaffected.
void expect_server_answers(std::uint16_t port) {
  test_client c(port);
  const auto id = c.request("POST", "/echo", "still here");
  ASSERT_TRUE(c.run_until([&] { return c.complete(id); }));
  EXPECT_EQ(c.streams[id].status, 200);
  EXPECT_EQ(c.streams[id].body, "still here");
}

// The server's metrics contain `line` within 5 s (a connection is counted once its coroutines have ended).
bool metric_reaches(const test_server& server, const std::string& line) {
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (server.metrics().render().find(line) == std::string::npos) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

TEST(H2Limits, FromDefaultHttpLimitsKeepsTheH2Defaults) {
  const h2_limits defaults;
  const auto l = h2_limits::from(http_limits{});
  EXPECT_EQ(l.max_concurrent_streams, defaults.max_concurrent_streams);
  EXPECT_EQ(l.initial_window_size, defaults.initial_window_size);
  EXPECT_EQ(l.connection_window_size, defaults.connection_window_size);
  EXPECT_EQ(l.max_frame_size, defaults.max_frame_size);
  EXPECT_EQ(l.rate_window_ms, defaults.rate_window_ms);
  EXPECT_EQ(l.max_peer_resets_per_window, defaults.max_peer_resets_per_window);
  EXPECT_EQ(l.max_pings_per_window, defaults.max_pings_per_window);
  EXPECT_EQ(l.max_settings_per_window, defaults.max_settings_per_window);
  EXPECT_EQ(l.stall_timeout_ms, defaults.stall_timeout_ms);
  EXPECT_EQ(l.idle_timeout_ms, defaults.idle_timeout_ms);
  EXPECT_EQ(l.request_timeout_ms, defaults.request_timeout_ms);
}

TEST(H2Limits, FromMapsTheH2Keys) {
  http_limits http;
  http.idle_timeout_sec = 30;
  http.h2_max_concurrent_streams = 16;
  http.h2_initial_window_bytes = 4 * 1024 * 1024;
  http.h2_max_frame_bytes = 65536;
  http.h2_max_resets_per_10s = 50;
  http.h2_max_pings_per_10s = 20;
  http.h2_max_settings_per_10s = 10;
  http.h2_stall_timeout_sec = 5;
  auto l = h2_limits::from(http);
  EXPECT_EQ(l.max_concurrent_streams, 16u);
  EXPECT_EQ(l.initial_window_size, 4u * 1024 * 1024);
  EXPECT_EQ(l.connection_window_size, 4u * 1024 * 1024);  // never below one stream's window
  EXPECT_EQ(l.max_frame_size, 65536u);
  EXPECT_EQ(l.max_peer_resets_per_window, 50u);
  EXPECT_EQ(l.max_pings_per_window, 20u);
  EXPECT_EQ(l.max_settings_per_window, 10u);
  EXPECT_EQ(l.stall_timeout_ms, 5000u);
  EXPECT_EQ(l.idle_timeout_ms, 30000u);  // h2_idle_timeout_sec unset: idle_timeout_sec
  http.h2_idle_timeout_sec = 120;
  EXPECT_EQ(h2_limits::from(http).idle_timeout_ms, 120000u);
}

TEST(H2Session, ManyConcurrentStreamsOnOneConnectionAllAnsweredOutOfOrder) {
  test_server server(fast_limits());
  test_client c(server.port());
  std::vector<std::int32_t> ids;
  for (int i = 0; i < 100; ++i) ids.push_back(c.request("GET", "/delay/" + std::to_string((100 - i) * 2)));
  ASSERT_TRUE(c.run_until([&] { return c.completion_order.size() == ids.size(); }));
  for (int i = 0; i < 100; ++i) {
    auto& st = c.streams[ids[i]];
    EXPECT_EQ(st.status, 200);
    EXPECT_EQ(st.close_code, NGHTTP2_NO_ERROR);
    EXPECT_EQ(st.body, std::to_string((100 - i) * 2));
  }
  EXPECT_NE(c.completion_order.front(), ids.front());  // the shortest delay (the last stream) came first
  EXPECT_EQ(server.metrics().h2_connections.value(), 1u);
  EXPECT_EQ(server.metrics().h2_streams.value(), 100u);
  EXPECT_NE(server.metrics().render().find("callrec_h2_abuse_closes_total{reason=\"rapid_reset\"} 0\n"),
            std::string::npos);
}

TEST(H2Session, PostBodyArrivesIntactAcrossWindowUpdates) {
  h2_limits l = fast_limits();
  l.max_body_bytes = 4 * 1024 * 1024;
  test_server server(l, /*preread_preface=*/true);
  test_client c(server.port());
  std::string body;
  for (int i = 0; body.size() < 3 * 1024 * 1024; ++i) body += std::to_string(i) + ",";
  const auto id = c.request("POST", "/echo", body);
  const auto head = c.request("HEAD", "/echo");
  ASSERT_TRUE(c.run_until([&] { return c.complete(id) && c.complete(head); }));
  auto& st = c.streams[id];
  EXPECT_EQ(st.status, 200);
  EXPECT_EQ(st.body.size(), body.size());
  EXPECT_TRUE(st.body == body);
  EXPECT_EQ(st.headers["content-type"], "text/plain");
  EXPECT_EQ(st.headers["x-request-id"], "rid-1");
  EXPECT_EQ(st.headers["content-length"], std::to_string(body.size()));
  EXPECT_EQ(c.streams[head].status, 200);
  EXPECT_EQ(c.streams[head].body, "");
}

TEST(H2Session, OversizedBodyIs413WhileOtherStreamsSucceed) {
  h2_limits l = fast_limits();
  l.max_body_bytes = 1000;
  test_server server(l);
  test_client c(server.port());
  const auto big = c.request("POST", "/echo", std::string(200'000, 'a'));
  const auto announced = c.request("POST", "/echo", std::string(5000, 'b'), {{"content-length", "5000"}});
  const auto ok1 = c.request("POST", "/echo", std::string(1000, 'c'));
  const auto ok2 = c.request("GET", "/echo");
  ASSERT_TRUE(
      c.run_until([&] { return c.complete(big) && c.complete(announced) && c.complete(ok1) && c.complete(ok2); }));
  for (auto id : {big, announced}) {
    EXPECT_EQ(c.streams[id].status, 413);
    const auto& rid = c.streams[id].headers["x-request-id"];
    EXPECT_EQ(rid.size(), 32u) << "a refusal has a request id of its own";
    EXPECT_EQ(c.streams[id].body,
              R"({"errorCode":70001,"errorMessage":"request body exceeds 1000 bytes","requestId":")" + rid + "\"}");
    EXPECT_EQ(c.streams[id].headers["content-type"], "application/json");
  }
  EXPECT_EQ(c.streams[ok1].status, 200);
  EXPECT_EQ(c.streams[ok1].body, std::string(1000, 'c'));
  EXPECT_EQ(c.streams[ok2].status, 200);
  // The connection is still usable.
  const auto after = c.request("POST", "/echo", "x");
  ASSERT_TRUE(c.run_until([&] { return c.complete(after); }));
  EXPECT_EQ(c.streams[after].body, "x");
}

TEST(H2Session, OversizedHeaderListIs431) {
  h2_limits l = fast_limits();
  l.max_header_bytes = 4096;
  test_server server(l);
  test_client c(server.port());
  const auto big = c.request("GET", "/echo", {}, {{"x-big", std::string(8000, 'h')}});
  const auto ok = c.request("GET", "/echo");
  ASSERT_TRUE(c.run_until([&] { return c.complete(big) && c.complete(ok); }));
  EXPECT_EQ(c.streams[big].status, 431);
  EXPECT_EQ(c.streams[ok].status, 200);
}

TEST(H2Session, TooManyHeaderFieldsIs431) {
  h2_limits l = fast_limits();
  l.max_header_count = 12;
  test_server server(l);
  test_client c(server.port());
  std::vector<std::pair<std::string, std::string>> many, few;
  for (int i = 0; i < 9; ++i) many.emplace_back("x-f" + std::to_string(i), "v");  // 4 pseudo-headers + 9
  few.assign(many.begin(), many.begin() + 8);                                        // 4 + 8: at the limit
  const auto over = c.request("GET", "/echo", {}, many);
  const auto at = c.request("GET", "/echo", {}, few);
  ASSERT_TRUE(c.run_until([&] { return c.complete(over) && c.complete(at); }));
  EXPECT_EQ(c.streams[over].status, 431);
  EXPECT_NE(c.streams[over].body.find("more than 12 header fields"), std::string::npos) << c.streams[over].body;
  EXPECT_EQ(c.streams[at].status, 200);
}

TEST(H2Session, StreamsBeyondTheConcurrencyLimitAreRefused) {
  h2_limits l = fast_limits();
  l.max_concurrent_streams = 4;
  test_server server(l);
  test_client::options o;
  o.peer_max_concurrent_streams = 1000;  // the client does not wait for our SETTINGS: 10 streams in its first flight
  test_client c(server.port(), o);
  std::vector<std::int32_t> ids;
  for (int i = 0; i < 10; ++i) ids.push_back(c.request("GET", "/hold"));
  auto refused = [&] {
    int n = 0;
    for (auto id : ids) n += c.complete(id) && c.streams[id].close_code == NGHTTP2_REFUSED_STREAM;
    return n;
  };
  ASSERT_TRUE(c.run_until([&] { return refused() == 6; }));
  server.release();
  ASSERT_TRUE(c.run_until([&] { return c.completion_order.size() == 10; }));
  int answered = 0;
  for (auto id : ids) answered += c.streams[id].status == 200 && c.streams[id].body == "held";
  EXPECT_EQ(answered, 4);
  EXPECT_EQ(refused(), 6);
}

TEST(H2Session, RapidResetGetsGoawayEnhanceYourCalmAndCloseOthersUnaffected) {
  h2_limits l = fast_limits();
  l.max_peer_resets_per_window = 50;
  test_server server(l);
  test_client other(server.port());
  test_client c(server.port());
  for (int i = 0; i < 200 && !c.eof; ++i) {
    const auto id = c.request("GET", "/delay/100");
    c.flush();
    nghttp2_submit_rst_stream(c.session(), NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL);
    c.flush();
  }
  ASSERT_TRUE(c.run_until([&] { return c.goaway; }));
  EXPECT_EQ(c.goaway_code, NGHTTP2_ENHANCE_YOUR_CALM);
  EXPECT_TRUE(c.wait_closed());
  const auto id = other.request("POST", "/echo", "other");
  ASSERT_TRUE(other.run_until([&] { return other.complete(id); }));
  EXPECT_EQ(other.streams[id].body, "other");
  expect_server_answers(server.port());
  EXPECT_TRUE(metric_reaches(server, "callrec_h2_abuse_closes_total{reason=\"rapid_reset\"} 1\n"));
  EXPECT_EQ(server.metrics().h2_connections.value(), 3u);
}

TEST(H2Session, PingFloodClosesTheConnectionOthersUnaffected) {
  test_server server(fast_limits());
  test_client other(server.port());
  test_client c(server.port());
  for (int i = 0; i < 1000; ++i) nghttp2_submit_ping(c.session(), NGHTTP2_FLAG_NONE, nullptr);
  c.flush();
  EXPECT_TRUE(c.wait_closed());
  EXPECT_TRUE(c.goaway) << c.ping_acks;
  EXPECT_EQ(c.goaway_code, NGHTTP2_ENHANCE_YOUR_CALM);
  const auto id = other.request("GET", "/echo");
  ASSERT_TRUE(other.run_until([&] { return other.complete(id); }));
  EXPECT_EQ(other.streams[id].status, 200);
}

TEST(H2Session, SettingsFloodClosesTheConnectionOthersUnaffected) {
  test_server server(fast_limits());
  test_client other(server.port());
  test_client c(server.port());
  for (int i = 0; i < 1000; ++i) nghttp2_submit_settings(c.session(), NGHTTP2_FLAG_NONE, nullptr, 0);
  c.flush();
  EXPECT_TRUE(c.wait_closed());
  EXPECT_TRUE(c.goaway);
  EXPECT_EQ(c.goaway_code, NGHTTP2_ENHANCE_YOUR_CALM);
  const auto id = other.request("GET", "/echo");
  ASSERT_TRUE(other.run_until([&] { return other.complete(id); }));
  EXPECT_EQ(other.streams[id].status, 200);
}

TEST(H2Session, ZeroWindowClientIsCutOffAfterTheStallLimit) {
  test_server server(fast_limits());
  test_client::options o;
  o.initial_window = 0;  // and never a WINDOW_UPDATE: the response body can never be sent
  o.auto_window_update = false;
  test_client c(server.port(), o);
  const auto id = c.request("GET", "/big/1000");
  const auto start = std::chrono::steady_clock::now();
  EXPECT_TRUE(c.wait_closed());
  EXPECT_GE(std::chrono::steady_clock::now() - start, 250ms);
  EXPECT_FALSE(c.complete(id) && c.streams[id].body.size() == 1000);
  EXPECT_TRUE(c.goaway);
  EXPECT_EQ(c.goaway_code, NGHTTP2_ENHANCE_YOUR_CALM);
  expect_server_answers(server.port());
  EXPECT_TRUE(metric_reaches(server, "callrec_h2_abuse_closes_total{reason=\"stall\"} 1\n"));
}

TEST(H2Session, ClientThatOpensItsWindowAByteAtATimeIsCutOffAfterTheStallLimit) {
  test_server server(fast_limits());  // stall limit 300 ms, request timeout 5 s
  test_client::options o;
  o.initial_window = 0;
  o.auto_window_update = false;
  test_client c(server.port(), o);
  const auto id = c.request("GET", "/big/100000");
  const auto start = std::chrono::steady_clock::now();
  // A slow drain: one byte of window every 50 ms, so a little always moves, far too little to ever finish.
  auto next = start;
  while (!c.eof && std::chrono::steady_clock::now() - start < 4s) {
    c.window_update(id, 1);
    next += 50ms;
    while (!c.eof && std::chrono::steady_clock::now() < next) {
      c.pump(std::chrono::duration_cast<std::chrono::milliseconds>(next - std::chrono::steady_clock::now()) + 1ms);
    }
  }
  EXPECT_TRUE(c.wait_closed());
  EXPECT_LT(std::chrono::steady_clock::now() - start, 4s) << "the trickle held the response past the stall limit";
  EXPECT_LT(c.streams[id].body.size(), 100000u);
  EXPECT_TRUE(c.goaway);
  EXPECT_EQ(c.goaway_code, NGHTTP2_ENHANCE_YOUR_CALM);
  expect_server_answers(server.port());
}

TEST(H2Session, ClientThatNeverReadsTheSocketIsCutOffAfterTheStallLimit) {
  test_server server(fast_limits());
  test_client::options o;
  o.initial_window = NGHTTP2_MAX_WINDOW_SIZE;
  o.huge_connection_window = true;
  test_client c(server.port(), o);
  const auto id = c.request("GET", "/big/" + std::to_string(64 * 1024 * 1024));
  ASSERT_TRUE(c.flush());  // and never read: the server's writes block once the socket buffers are full
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (server.ended() < 1 && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
  EXPECT_EQ(server.ended(), 1);
  EXPECT_TRUE(c.wait_closed());
  EXPECT_FALSE(c.complete(id));
  expect_server_answers(server.port());
}

TEST(H2Session, IdleConnectionIsClosedWithGoawayNoError) {
  h2_limits l = fast_limits();
  l.idle_timeout_ms = 200;
  test_server server(l);
  test_client c(server.port());
  const auto id = c.request("GET", "/echo");
  ASSERT_TRUE(c.run_until([&] { return c.complete(id); }));
  EXPECT_TRUE(c.wait_closed());
  EXPECT_TRUE(c.goaway);
  EXPECT_EQ(c.goaway_code, NGHTTP2_NO_ERROR);
}

TEST(H2Session, GracefulShutdownFinishesInFlightStreamsThenCloses) {
  test_server server(fast_limits());
  test_client c(server.port());
  const auto held = c.request("GET", "/hold");
  nghttp2_submit_ping(c.session(), NGHTTP2_FLAG_NONE, nullptr);  // its ACK means the request was read
  ASSERT_TRUE(c.run_until([&] { return c.ping_acks > 0; }));
  server.shutdown_all();
  ASSERT_TRUE(c.run_until([&] { return c.goaway; }));
  EXPECT_EQ(c.goaway_code, NGHTTP2_NO_ERROR);
  EXPECT_FALSE(c.complete(held));
  server.release();
  ASSERT_TRUE(c.run_until([&] { return c.complete(held); }));
  EXPECT_EQ(c.streams[held].status, 200);
  EXPECT_EQ(c.streams[held].body, "held");
  EXPECT_TRUE(c.wait_closed());
}

}  // namespace
}  // namespace callrec::http
