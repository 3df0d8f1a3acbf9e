// What a black-box security review found in the transport (issue 11), each as the request that showed it:
// request framing (Transfer-Encoding, Host) and refusals in the access log.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "support/raw_socket.h"
#include "support/test_server.h"

namespace callrec::testing {
namespace {

namespace json = boost::json;

int count_of(const std::string& hay, const std::string& needle) {
  int n = 0;
  for (auto p = hay.find(needle); p != std::string::npos; p = hay.find(needle, p + 1)) ++n;
  return n;
}

std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Answers in what a connection received (each carries a request id).
int answers_in(const std::string& out) { return count_of(out, "\r\nX-Request-Id: "); }

// The review's reproduction: a chunked body of {"callId":"shared-1"} under a Transfer-Encoding value.
std::string chunked_lookup(const std::string& transfer_encoding, const std::string& version = "HTTP/1.1") {
  return "POST " + api_target("records/get_record_by_callId") + " " + version +
         "\r\nHost: x\r\nTransfer-Encoding: " + transfer_encoding + "\r\n\r\n15\r\n{\"callId\":\"shared-1\"}\r\n0\r\n\r\n";
}

// Defect 1: a Transfer-Encoding other than a single final chunked was ignored, the request answered as if
// it had no body and the body then parsed as a second request. Now: one refusal, and the connection closes.
TEST(request_framing, a_transfer_encoding_other_than_chunked_is_refused_and_the_connection_closed) {
  test_server srv;
  const std::vector<std::pair<std::string, unsigned>> cases = {
      {"chunked, identity", 400}, {"xchunked", 400}, {"chunked ,x", 400},  {"identity", 400},
      {"gzip, chunked", 501},     {"chunked, chunked", 400}, {",", 400}, {"chunked;x=1", 400}};
  for (const auto& [te, status] : cases) {
    raw_socket s(srv.port());
    s.send(chunked_lookup(te));
    const std::string out = s.read_all();  // returns only once the server closed the connection
    EXPECT_EQ(answers_in(out), 1) << te << ": exactly one answer\n" << out;
    EXPECT_EQ(out.rfind("HTTP/1.1 " + std::to_string(status) + " ", 0), 0u) << te << "\n" << out;
    EXPECT_NE(out.find("Connection: close"), std::string::npos) << te;
    EXPECT_NE(out.find("Transfer-Encoding"), std::string::npos) << te << ": the message says what was wrong";
    EXPECT_EQ(out.find("101050"), std::string::npos) << te << ": the body was not read as a request";
  }
  // Two Transfer-Encoding fields, and Transfer-Encoding in HTTP/1.0, are refused too.
  for (const std::string& req :
       {std::string("POST /v1/x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
        chunked_lookup("chunked", "HTTP/1.0")}) {
    raw_socket s(srv.port());
    s.send(req);
    const std::string out = s.read_all();
    EXPECT_EQ(answers_in(out), 1) << out;
    EXPECT_EQ(out.rfind("HTTP/1.1 400 ", 0), 0u) << out;
  }
  // A single chunked is read as before, and the connection stays open for the next request.
  raw_socket s(srv.port());
  s.send(chunked_lookup("Chunked") + "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
  const std::string out = s.read_until("ok\n");
  EXPECT_NE(out.find("no record of call shared-1"), std::string::npos) << out;
  EXPECT_EQ(count_of(out, "HTTP/1.1 200 OK"), 2) << out;
}

// Defect 3: RFC 9112 3.2, an HTTP/1.1 request without Host, or any request with two, is a 400.
TEST(request_framing, host_is_required_once_in_http_1_1) {
  test_server srv;
  const std::string target = api_target("records/get_record_by_callId");
  const std::string body = "{\"callId\":\"h\"}";
  auto post = [&](const std::string& version, const std::string& hosts) {
    return "POST " + target + " " + version + "\r\n" + hosts + "Content-Length: " + std::to_string(body.size()) +
           "\r\n\r\n" + body;
  };
  for (const std::string& req : {post("HTTP/1.1", ""), post("HTTP/1.1", "Host: a\r\nHost: a\r\n"),
                                 post("HTTP/1.0", "Host: a\r\nHost: b\r\n"), post("HTTP/1.1", "host: a\r\nHOST: b\r\n"),
                                 // the same through Beast's parser (a field the plain parser leaves to it)
                                 post("HTTP/1.1", "Expect: 100-continue\r\n")}) {
    raw_socket s(srv.port());
    s.send(req);
    const std::string out = s.read_all();
    EXPECT_EQ(out.rfind("HTTP/1.1 400 ", 0), 0u) << req << "\n" << out;
    EXPECT_NE(out.find("Host"), std::string::npos) << out;
    EXPECT_EQ(answers_in(out), 1);
  }
  for (const std::string& req : {post("HTTP/1.1", "Host: a\r\n"), post("HTTP/1.0", ""), post("HTTP/1.0", "Host: a\r\n")}) {
    raw_socket s(srv.port());
    s.send(req);
    const std::string out = s.read_until("101050");
    EXPECT_EQ(out.rfind("HTTP/1.1 200 OK", 0), 0u) << req << "\n" << out;
  }
}

std::string body_of(const std::string& http) {
  const auto head_end = http.find("\r\n\r\n");
  return head_end == std::string::npos ? std::string() : http.substr(head_end + 4);
}

// Defect 6: refusals by the transport are access log lines too (with the request id the client saw), and a
// flood of them is rate-limited.
std::vector<json::object> refusal_lines(const test_server& srv) {
  std::vector<json::object> out;
  std::istringstream in(read_file(srv.dir() / "access.log"));
  for (std::string line; std::getline(in, line);) {
    boost::system::error_code ec;
    auto v = json::parse(line, ec);
    if (!ec && v.is_object() && v.as_object().contains("refused")) out.push_back(v.as_object());
  }
  return out;
}

TEST(refusal_log, http_refusals_are_logged_with_their_request_id) {
  test_server srv([](server_config& c) { c.limits.max_header_bytes = 2048; });
  std::vector<std::pair<std::string, unsigned>> sent = {
      {chunked_lookup("gzip, chunked"), 501},
      {"GET / HTTP/1.1\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(3000, 'a') + "\r\n\r\n", 431},
      {"\x01\x02 not http\r\n\r\n", 400},
  };
  std::vector<std::string> ids;
  for (const auto& [req, status] : sent) {
    raw_socket s(srv.port());
    s.send(req);
    const std::string out = s.read_all();
    ASSERT_EQ(out.rfind("HTTP/1.1 " + std::to_string(status), 0), 0u) << out;
    const auto at = out.find("X-Request-Id: ");
    ASSERT_NE(at, std::string::npos) << out;
    ids.push_back(out.substr(at + 14, 32));
    const auto body = json::parse(body_of(out)).as_object();
    EXPECT_EQ(body.at("requestId").as_string(), ids.back());
  }
  ASSERT_TRUE(eventually([&] { return refusal_lines(srv).size() >= sent.size(); }));
  const auto lines = refusal_lines(srv);
  ASSERT_EQ(lines.size(), sent.size());
  for (std::size_t i = 0; i < sent.size(); ++i) {
    EXPECT_EQ(lines[i].at("requestId").as_string(), ids[i]);
    EXPECT_EQ(lines[i].at("status").as_int64(), sent[i].second);
    EXPECT_EQ(std::string(lines[i].at("remote").as_string()).rfind("127.0.0.1:", 0), 0u);
    EXPECT_FALSE(lines[i].at("refused").as_string().empty());
  }
}

TEST(refusal_log, a_flood_of_refusals_is_rate_limited) {
  test_server srv;
  const auto t0 = std::chrono::steady_clock::now();
  constexpr int flood = 400;
  for (int i = 0; i < flood; ++i) {
    raw_socket s(srv.port());
    s.send("GET / HTTP/1.1\r\n\r\n");
    (void)s.read_all();
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  // Once the burst is spent, a refusal is logged when a token has refilled: the line says how many were not.
  bool summarised = eventually([&] {
    raw_socket s(srv.port());
    s.send("GET / HTTP/1.1\r\n\r\n");
    (void)s.read_all();
    for (const auto& l : refusal_lines(srv)) {
      if (l.contains("notLogged")) return true;
    }
    return false;
  });
  EXPECT_TRUE(summarised);
  const auto lines = refusal_lines(srv);
  const double allowed = obs::access_log::refusal_burst +
                         obs::access_log::refusal_lines_per_second *
                             (secs + std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  EXPECT_LE(static_cast<double>(lines.size()), allowed) << "lines: " << lines.size();
  EXPECT_LT(lines.size(), static_cast<std::size_t>(flood));
  std::int64_t not_logged = 0;
  for (const auto& l : lines) {
    if (l.contains("notLogged")) not_logged += l.at("notLogged").as_int64();
  }
  EXPECT_GT(not_logged, 0);
  EXPECT_GE(srv.node().metrics().http_errors.value(), static_cast<std::uint64_t>(flood)) << "all counted";
}

TEST(refusal_log, refused_tls_handshakes_are_logged) {
  test_server srv(transport::tls);
  raw_socket s(srv.port());
  s.send(std::string("\x16\x03\x01\x00\x05hello", 10));  // a TLS record that is no ClientHello
  (void)s.read_all();
  ASSERT_TRUE(eventually([&] { return !refusal_lines(srv).empty(); }));
  const auto line = refusal_lines(srv).front();
  EXPECT_EQ(line.at("api").as_string(), "tls");
  EXPECT_NE(std::string(line.at("refused").as_string()).find("TLS handshake failed"), std::string::npos);
  EXPECT_FALSE(line.contains("requestId"));
}

}  // namespace
}  // namespace callrec::testing
