// The HTTP/1.1 transport over raw sockets: pipelining, limits, slow and broken clients, shutdown.
#include <gtest/gtest.h>

#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <filesystem>
#include <sched.h>

#include "support/raw_socket.h"
#include "support/test_server.h"

namespace callrec::testing {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

std::string post_request(const std::string& target, const std::string& body, bool close = false) {
  return "POST " + target + " HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: " +
         std::to_string(body.size()) + (close ? "\r\nConnection: close" : "") + "\r\n\r\n" + body;
}

int count_of(const std::string& hay, const std::string& needle) {
  int n = 0;
  for (auto p = hay.find(needle); p != std::string::npos; p = hay.find(needle, p + 1)) ++n;
  return n;
}

TEST(http_transport, h2c_with_prior_knowledge_speaks_http2) {
  test_server srv;
  raw_socket s(srv.port());
  // The preface in two pieces (the server waits for all of it), an empty SETTINGS frame, then a GET of
  // /healthz on stream 1: HPACK :method GET (static 2), :scheme http (static 6), literals :authority
  // (name 1) and :path (name 4).
  s.send("PRI * HT");
  const std::string settings("\0\0\0\x04\0\0\0\0\0", 9);
  const std::string block = std::string("\x82\x86\x01\x01t\x04\x08", 7) + "/healthz";
  const std::string headers = std::string("\0\0", 2) + static_cast<char>(block.size()) +
                              std::string("\x01\x05\0\0\0\x01", 6) + block;  // END_STREAM | END_HEADERS
  s.send("TP/2.0\r\n\r\nSM\r\n\r\n" + settings + headers);
  const std::string out = s.read_until("ok\n");
  ASSERT_GE(out.size(), 9u);
  EXPECT_EQ(out[3], '\x04') << "the server's first frame is its SETTINGS";
  EXPECT_NE(out.find("ok\n"), std::string::npos) << "the DATA of /healthz";
  EXPECT_EQ(out.find("HTTP/1.1"), std::string::npos);
}

TEST(http_transport, pipelined_requests_are_answered_in_order) {
  test_server srv;
  raw_socket s(srv.port());
  std::string batch;
  for (int i = 0; i < 5; ++i) {
    batch += post_request(api_target("records/get_record_by_callId"), "{\"callId\":\"p" + std::to_string(i) + "\"}");
  }
  s.send(batch);
  std::string out = s.read_responses(5);
  EXPECT_EQ(count_of(out, "HTTP/1.1 200 OK"), 5);
  for (int i = 0; i < 5; ++i) {
    auto pos = out.find("no record of call p" + std::to_string(i));
    ASSERT_NE(pos, std::string::npos);
    if (i) {
      EXPECT_GT(pos, out.find("no record of call p" + std::to_string(i - 1)));
    }
  }
}

TEST(http_transport, keep_alive_serves_many_requests_on_one_connection) {
  test_server srv;
  client cli(srv.port());
  for (int i = 0; i < 100; ++i) ASSERT_EQ(cli.get("/healthz").status, 200u);
  EXPECT_EQ(srv.node().metrics().connections_accepted.value(), 1u);
}

// The threads of this process under SCHED_BATCH (`chrt -p` shows the same).
int batch_threads() {
  int n = 0;
  for (const auto& e : std::filesystem::directory_iterator("/proc/self/task")) {
    if (sched_getscheduler(std::stoi(e.path().filename().string())) == SCHED_BATCH) ++n;
  }
  return n;
}

TEST(http_transport, io_threads_run_under_the_configured_scheduling_policy) {
  {
    test_server srv;  // io_scheduling defaults to "batch"; the policy is set before start() returns
    EXPECT_EQ(batch_threads(), 2) << "both I/O threads (threads = 2), and nothing else";
  }
  test_server srv([](server_config& c) { c.io_batch_scheduling = false; });
  EXPECT_EQ(batch_threads(), 0);
}

TEST(http_transport, oversized_body_is_413_and_others_are_still_served) {
  test_server srv([](server_config& c) { c.limits.max_body_bytes = 4096; });
  raw_socket s(srv.port());
  s.send(post_request(api_target("events/report"), std::string(5000, ' ')));
  std::string out = s.read_all();
  EXPECT_NE(out.find("413"), std::string::npos) << out;
  EXPECT_NE(out.find("exceeds 4096"), std::string::npos);
  client cli(srv.port());
  EXPECT_EQ(cli.get("/healthz").status, 200u);
}

TEST(http_transport, oversized_header_is_431) {
  test_server srv([](server_config& c) { c.limits.max_header_bytes = 2048; });
  raw_socket s(srv.port());
  s.send("GET /healthz HTTP/1.1\r\nHost: t\r\nX-Big: " + std::string(4000, 'a') + "\r\n\r\n");
  std::string out = s.read_all();
  EXPECT_NE(out.find("431"), std::string::npos) << out;
}

TEST(http_transport, too_many_header_fields_is_431_and_others_are_served) {
  test_server srv([](server_config& c) { c.limits.max_header_count = 16; });
  std::string head = "GET /healthz HTTP/1.1\r\nHost: t\r\n";
  for (int i = 0; i < 15; ++i) head += "X-F" + std::to_string(i) + ": v\r\n";  // 16 fields with Host
  raw_socket at_limit(srv.port());
  at_limit.send(head + "Connection: close\r\n\r\n");  // the 17th
  std::string out = at_limit.read_all();
  EXPECT_NE(out.find("431"), std::string::npos) << out;
  EXPECT_NE(out.find("more than 16 header fields"), std::string::npos) << out;
  raw_socket under(srv.port());
  under.send(head + "\r\n");
  EXPECT_NE(under.read_until("ok\n").find("200 OK"), std::string::npos);
  client cli(srv.port());
  EXPECT_EQ(cli.get("/healthz").status, 200u);
}

TEST(http_transport, garbage_gets_400_and_a_closed_connection) {
  test_server srv;
  raw_socket s(srv.port());
  s.send("\x01\x02 not http at all\r\n\r\n");
  std::string out = s.read_all();
  EXPECT_NE(out.find("400"), std::string::npos) << out;
}

TEST(http_transport, a_slow_request_is_cut_off_and_others_are_served) {
  test_server srv([](server_config& c) { c.limits.request_timeout_sec = 1; });
  raw_socket slow(srv.port());
  slow.send("POST /v1/events/report HTTP/1.1\r\nHost: t\r\n");  // and never the rest
  client cli(srv.port());
  EXPECT_EQ(cli.get("/healthz").status, 200u);
  const auto t0 = std::chrono::steady_clock::now();
  std::string out = slow.read_all();  // returns when the server closes the connection
  EXPECT_TRUE(out.empty() || out.find("HTTP/1.1") != std::string::npos);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
}

TEST(http_transport, expect_100_continue_is_honoured) {
  test_server srv;
  raw_socket s(srv.port());
  const std::string body = "{\"callId\":\"e\"}";
  s.send("POST " + api_target("records/get_record_by_callId") +
         " HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n");
  // The interim answer comes before the body is sent.
  EXPECT_NE(s.read_until("\r\n\r\n").find("HTTP/1.1 100 Continue"), std::string::npos);
  s.send(body);
  std::string out = s.read_until("101050");
  EXPECT_NE(out.find("101050"), std::string::npos) << out;
}

TEST(http_transport, stop_closes_idle_connections_and_refuses_new_ones) {
  test_server srv;
  raw_socket idle(srv.port());
  const auto port = srv.port();
  srv.stop();
  EXPECT_EQ(idle.read_all(), "");
  boost::system::error_code ec;
  asio::io_context ioc;
  tcp::socket s(ioc);
  s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port), ec);
  EXPECT_TRUE(ec);
}

}  // namespace
}  // namespace callrec::testing
