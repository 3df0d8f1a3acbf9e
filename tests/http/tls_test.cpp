// HTTPS over real TLS sockets: protocol versions and ciphers, ALPN, broken and slow clients, certificate
// reload, session resumption, start-up errors, shutdown. (The API itself over TLS: hub_test.)
#include <gtest/gtest.h>

#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <cstdlib>
#include <fstream>
#include <iterator>

#include "support/raw_socket.h"
#include "support/test_server.h"

namespace callrec::testing {
namespace {

namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;
using tcp = asio::ip::tcp;

std::string negotiated_alpn(SSL* ssl) {
  const unsigned char* data = nullptr;
  unsigned int len = 0;
  SSL_get0_alpn_selected(ssl, &data, &len);
  return data ? std::string(reinterpret_cast<const char*>(data), len) : "";
}

TEST(tls_transport, tls13_is_the_default_and_alpn_selects_what_the_client_speaks) {
  test_server srv(transport::tls);
  client cli(srv);
  ASSERT_EQ(cli.get("/healthz").status, 200u);
  ASSERT_NE(cli.tls_handle(), nullptr);
  EXPECT_EQ(SSL_version(cli.tls_handle()), TLS1_3_VERSION);
  EXPECT_EQ(negotiated_alpn(cli.tls_handle()), "http/1.1");  // the client offered only http/1.1
  EXPECT_EQ(peer_common_name(cli.tls_handle()), "callrec-test");
}

TEST(tls_transport, a_client_offering_h2_gets_http2) {
  test_server srv(transport::tls);
  asio::io_context ioc;
  auto ctx = client_tls_context(srv.cert().cert_pem, TLS1_3_VERSION);
  ssl::stream<tcp::socket> s(ioc, *ctx);
  static constexpr unsigned char alpn[] = "\x02h2\x08http/1.1";  // as browsers offer it
  SSL_set_alpn_protos(s.native_handle(), alpn, sizeof alpn - 1);
  s.next_layer().connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), srv.port()));
  s.handshake(ssl::stream_base::client);
  EXPECT_EQ(negotiated_alpn(s.native_handle()), "h2");
  // The client preface and an empty SETTINGS frame; the server's first frame is its SETTINGS.
  const std::string preface = std::string("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n") + std::string("\0\0\0\x04\0\0\0\0\0", 9);
  asio::write(s, asio::buffer(preface));
  unsigned char head[9];
  asio::read(s, asio::buffer(head));
  EXPECT_EQ(head[3], 0x04) << "frame type";
  EXPECT_EQ(head[4] & 0x01, 0) << "a SETTINGS frame, not an ACK";
}

TEST(tls_transport, tls12_gets_a_forward_secret_aead_cipher) {
  test_server srv(transport::tls);
  client cli(srv.port(), client_tls_context(srv.cert().cert_pem, TLS1_2_VERSION));
  ASSERT_EQ(cli.get("/healthz").status, 200u);
  EXPECT_EQ(SSL_version(cli.tls_handle()), TLS1_2_VERSION);
  const std::string cipher = SSL_get_cipher_name(cli.tls_handle());
  EXPECT_TRUE(cipher.starts_with("ECDHE-")) << cipher;
  EXPECT_TRUE(cipher.find("GCM") != std::string::npos || cipher.find("CHACHA20-POLY1305") != std::string::npos)
      << cipher;
}

TEST(tls_transport, tls12_without_an_ecdhe_aead_cipher_is_refused) {
  test_server srv(transport::tls);
  auto ctx = client_tls_context(srv.cert().cert_pem, TLS1_2_VERSION);
  SSL_CTX_set_cipher_list(ctx->native_handle(), "AES128-SHA256:ECDHE-ECDSA-AES128-SHA");  // RSA kx / CBC only
  client cli(srv.port(), ctx);
  EXPECT_THROW(cli.get("/healthz"), boost::system::system_error);
}

TEST(tls_transport, tls11_is_refused) {
  test_server srv(transport::tls);
  auto ctx = client_tls_context(srv.cert().cert_pem, TLS1_1_VERSION);
  // OpenSSL 3 clients only offer TLS 1.1 at security level 0; the point is what the server accepts.
  SSL_CTX_set_min_proto_version(ctx->native_handle(), TLS1_VERSION);
  SSL_CTX_set_cipher_list(ctx->native_handle(), "DEFAULT:@SECLEVEL=0");
  client cli(srv.port(), ctx);
  try {
    cli.get("/healthz");
    FAIL() << "a TLS 1.1 handshake succeeded";
  } catch (const boost::system::system_error& e) {
    EXPECT_NE(std::string(e.what()).find("protocol version"), std::string::npos) << e.what();
  }
  client modern(srv);
  EXPECT_EQ(modern.get("/healthz").status, 200u);
}

TEST(tls_transport, plain_http_on_the_tls_port_gets_a_400_that_says_https_and_others_are_served) {
  test_server srv(transport::tls);
  client before(srv);
  ASSERT_EQ(before.get("/healthz").status, 200u);
  raw_socket plain(srv.port());
  plain.send("POST /v1/records/get_record_by_callId HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\n{}");
  const std::string out = plain.read_all();  // the answer, then the server closes
  EXPECT_EQ(out.rfind("HTTP/1.1 400 ", 0), 0u) << out;
  EXPECT_NE(out.find("Connection: close"), std::string::npos) << out;
  EXPECT_NE(out.find("\"errorCode\":70001"), std::string::npos) << out;
  EXPECT_NE(out.find("speaks HTTPS"), std::string::npos) << out;
  EXPECT_TRUE(eventually([&] { return srv.node().metrics().tls_handshake_failures.value() == 1; }));
  // Bytes that are neither TLS nor HTTP are only dropped.
  raw_socket junk(srv.port());
  junk.send(std::string("\x01\x02\x03\x04\x05\x06\x07\x08", 8));
  EXPECT_EQ(junk.read_all(), "");
  EXPECT_TRUE(eventually([&] { return srv.node().metrics().tls_handshake_failures.value() == 2; }));
  EXPECT_EQ(before.get("/healthz").status, 200u);
  client after(srv);
  EXPECT_EQ(after.get("/healthz").status, 200u);
  EXPECT_EQ(before.connects(), 1);
}

TEST(tls_transport, http2_over_tls_ends_with_close_notify) {
  test_server srv(transport::h2, [](server_config& c) { c.limits.h2_idle_timeout_sec = 1; });
  h2_connection h2(srv.port(), h2_connection::options{}, srv.client_tls());
  const auto id = h2.request("GET", "/healthz");
  ASSERT_TRUE(h2.run_until([&] { return h2.complete(id); }));
  ASSERT_TRUE(h2.wait_closed(std::chrono::seconds(20)));  // idle: GOAWAY, then the close
  EXPECT_TRUE(h2.goaway);
  // A TLS close without close_notify reads as stream_truncated: a truncation an attacker could also cause.
  EXPECT_EQ(h2.end_reason, boost::asio::error::eof) << h2.end_reason.message();
}

TEST(tls_transport, a_client_that_never_finishes_the_handshake_is_cut_off) {
  // The other timeouts are far longer, so only the handshake timeout can end the stalled connection in time.
  test_server srv(transport::tls, [](server_config& c) {
    c.limits.tls_handshake_timeout_sec = 1;
    c.limits.request_timeout_sec = 60;
    c.limits.idle_timeout_sec = 600;
  });
  raw_socket silent(srv.port());  // connects and says nothing
  raw_socket partial(srv.port());
  partial.send(std::string("\x16\x03\x01\x02\x00\x01", 6));  // a ClientHello record that never completes
  client cli(srv);
  EXPECT_EQ(cli.get("/healthz").status, 200u);
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(silent.read_all(), "");
  partial.read_all();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
  EXPECT_EQ(cli.get("/healthz").status, 200u);  // the established connection was left alone
  EXPECT_EQ(cli.connects(), 1);
  EXPECT_TRUE(eventually([&] { return srv.node().metrics().tls_handshake_failures.value() == 2; }));
}

TEST(tls_transport, reload_swaps_the_certificate_for_new_connections_only) {
  test_server srv(transport::tls);
  const test_cert first = srv.cert();
  client old_conn(srv);
  ASSERT_EQ(old_conn.get("/healthz").status, 200u);
  ASSERT_EQ(peer_common_name(old_conn.tls_handle()), "callrec-test");

  srv.replace_cert(make_test_cert("callrec-renewed"));
  // Until the reload, new connections still get the certificate read at start.
  client not_yet(srv.port(), client_tls_context(first.cert_pem));
  ASSERT_EQ(not_yet.get("/healthz").status, 200u);
  EXPECT_EQ(peer_common_name(not_yet.tls_handle()), "callrec-test");

  ASSERT_TRUE(srv.node().reload_tls());
  client fresh(srv);  // trusts only the renewed certificate
  ASSERT_EQ(fresh.get("/healthz").status, 200u);
  EXPECT_EQ(peer_common_name(fresh.tls_handle()), "callrec-renewed");

  // The keep-alive connection made before the reload goes on with its certificate.
  for (int i = 0; i < 3; ++i) EXPECT_EQ(old_conn.get("/healthz").status, 200u);
  EXPECT_EQ(old_conn.connects(), 1);
  EXPECT_EQ(peer_common_name(old_conn.tls_handle()), "callrec-test");
}

TEST(tls_transport, a_failed_reload_keeps_the_previous_certificate) {
  test_server srv(transport::tls);
  const test_cert good = srv.cert();
  const test_cert other = make_test_cert("callrec-other");
  write_file(srv.dir() / "key.pem", other.key_pem);  // a key that does not match cert.pem
  auto r = srv.node().reload_tls();
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("tls.key"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("does not match"), std::string::npos) << r.error().message;
  write_file(srv.dir() / "cert.pem", "not a certificate");
  r = srv.node().reload_tls();
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("tls.cert"), std::string::npos) << r.error().message;

  client cli(srv.port(), client_tls_context(good.cert_pem));
  EXPECT_EQ(cli.get("/healthz").status, 200u);
  EXPECT_EQ(peer_common_name(cli.tls_handle()), "callrec-test");
}

TEST(tls_transport, reload_without_tls_is_an_error) {
  test_server srv;
  auto r = srv.node().reload_tls();
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("[tls]"), std::string::npos) << r.error().message;
}

class tls_resumption : public ::testing::TestWithParam<int> {};

TEST_P(tls_resumption, a_second_connection_resumes_the_first_ones_session) {
  test_server srv(transport::tls);
  auto ctx = client_tls_context(srv.cert().cert_pem, GetParam());
  client first(srv.port(), ctx);
  ASSERT_EQ(first.get("/healthz").status, 200u);  // TLS 1.3: the ticket arrives with the first response
  EXPECT_FALSE(SSL_session_reused(first.tls_handle()));
  SSL_SESSION* session = first.tls_session();
  ASSERT_NE(session, nullptr);
  EXPECT_TRUE(SSL_SESSION_is_resumable(session));

  client second(srv.port(), ctx);
  second.resume(session);
  ASSERT_EQ(second.get("/healthz").status, 200u);
  EXPECT_EQ(SSL_version(second.tls_handle()), GetParam());
  EXPECT_TRUE(SSL_session_reused(second.tls_handle()));
}

INSTANTIATE_TEST_SUITE_P(versions, tls_resumption, ::testing::Values(TLS1_2_VERSION, TLS1_3_VERSION),
                         [](const ::testing::TestParamInfo<int>& p) {
                           return p.param == TLS1_3_VERSION ? std::string("tls13") : std::string("tls12");
                         });

TEST(tls_transport, a_bad_certificate_or_key_stops_the_start_naming_the_key) {
  const auto dir = fresh_dir("tls-start");
  const test_cert a = make_test_cert("a");
  const test_cert b = make_test_cert("b");
  write_file(dir / "a.crt", a.cert_pem);
  write_file(dir / "a.key", a.key_pem);
  write_file(dir / "b.key", b.key_pem);
  struct tc {
    std::string cert, key, expect_key, expect_problem;
  } cases[] = {
      {"missing.crt", "a.key", "tls.cert", "No such file"},
      {"a.crt", "missing.key", "tls.key", "No such file"},
      {"a.key", "a.key", "tls.cert", "not a PEM certificate"},
      {"a.crt", "a.crt", "tls.key", "not an unencrypted PEM private key"},
      {"a.crt", "b.key", "tls.key", "does not match the certificate"},
  };
  for (const auto& c : cases) {
    auto cfg = test_config(dir);
    cfg.tls = tls_config{(dir / c.cert).string(), (dir / c.key).string()};
    manual_clock clk(t0_ms);
    callrec::node svc(cfg, clk);
    auto r = svc.start();
    ASSERT_FALSE(r) << c.cert << " " << c.key;
    EXPECT_TRUE(r.error().message.starts_with(c.expect_key + ": ")) << r.error().message;
    EXPECT_NE(r.error().message.find(c.expect_problem), std::string::npos) << r.error().message;
  }
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
}

TEST(tls_transport, stop_closes_idle_tls_connections) {
  test_server srv(transport::tls);
  client cli(srv);
  ASSERT_EQ(cli.get("/healthz").status, 200u);
  raw_socket handshaking(srv.port());
  const auto t0 = std::chrono::steady_clock::now();
  srv.stop();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));  // no drain wait on idle ones
  EXPECT_EQ(handshaking.read_all(), "");
}

// scripts/make-cert, run as a user would: its certificate is served and verified for 127.0.0.1, and a second
// run keeps the files unless --force.
TEST(make_cert_script, makes_a_pair_the_server_serves_and_keeps_it_unless_forced) {
  if (std::system("command -v openssl >/dev/null 2>&1") != 0) GTEST_SKIP() << "no openssl command";
  const auto dir = fresh_dir("make-cert");
  const std::string script = std::string(CALLREC_TEST_DATA) + "/../../scripts/make-cert";
  auto run = [&](const std::string& args, std::string* out = nullptr) {
    const auto log = dir / "out.txt";
    const int rc =
        std::system((script + " --dir " + (dir / "tls").string() + " " + args + " >" + log.string() + " 2>&1").c_str());
    if (out) {
      std::ifstream in(log);
      *out = std::string(std::istreambuf_iterator<char>(in), {});
    }
    return rc;
  };
  auto read = [](const std::filesystem::path& p) {
    std::ifstream in(p);
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  const auto crt = dir / "tls" / "server.crt";
  const auto key = dir / "tls" / "server.key";
  std::string out;
  ASSERT_EQ(run("", &out), 0) << out;
  EXPECT_NE(out.find("[tls]\ncert = \"" + crt.string() + "\"\nkey = \"" + key.string() + "\""), std::string::npos)
      << out;
  EXPECT_EQ(std::filesystem::status(key).permissions() & std::filesystem::perms::all,
            std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  const std::string first = read(crt);

  {
    test_server srv([&](server_config& c) { c.tls = tls_config{crt.string(), key.string()}; });
    client cli(srv.port(), client_tls_context(first));
    EXPECT_EQ(cli.get("/healthz").status, 200u);
    EXPECT_EQ(peer_common_name(cli.tls_handle()), "localhost");
  }

  ASSERT_EQ(run("", &out), 0) << out;
  EXPECT_NE(out.find("kept"), std::string::npos) << out;
  EXPECT_EQ(read(crt), first);
  std::filesystem::remove(key);
  EXPECT_NE(run("", &out), 0) << out;  // one half missing: refuses to overwrite the other
  EXPECT_EQ(read(crt), first);
  ASSERT_EQ(run("--force", &out), 0) << out;
  EXPECT_NE(read(crt), first);
  EXPECT_TRUE(std::filesystem::exists(key));
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
}

}  // namespace
}  // namespace callrec::testing
