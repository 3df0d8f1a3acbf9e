// Fuzzes the TLS record path as the server sets it up (http::make_tls_context: versions, ciphers, ALPN
// selection, session resumption): the input is what a client sends, handed over in two pieces (the first
// byte picks the split), through memory BIOs; whatever the server would answer is discarded. The seeds are
// ClientHellos of `openssl s_client` (TLS 1.3 and 1.2, ALPN h2,http/1.1).
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

#include "http/tls.h"
#include "support/test_cert.h"

namespace {

// The server's own context, built once from a certificate made at start-up.
boost::asio::ssl::context& server_context() {
  static std::shared_ptr<boost::asio::ssl::context> ctx = [] {
    const auto cert = callrec::testing::make_test_cert();
    const auto dir = std::filesystem::temp_directory_path() / ("callrec-fuzz-tls-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    callrec::testing::write_file(dir / "server.crt", cert.cert_pem);
    callrec::testing::write_file(dir / "server.key", cert.key_pem);
    auto made = callrec::http::make_tls_context(
        callrec::tls_config{(dir / "server.crt").string(), (dir / "server.key").string()});
    std::filesystem::remove_all(dir);
    if (!made) __builtin_trap();
    return *made;
  }();
  return *ctx;
}

// Runs the server side over what `in` holds: handshake, then application data; stops when it wants more.
void drive(SSL* ssl, BIO* out) {
  char buf[4096];
  for (int i = 0; i < 16; ++i) {
    if (SSL_read(ssl, buf, sizeof buf) <= 0) break;
  }
  (void)BIO_reset(out);  // the server's answer: nobody reads it
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto& ctx = server_context();
  SSL* ssl = SSL_new(ctx.native_handle());
  if (!ssl) __builtin_trap();
  BIO* in = BIO_new(BIO_s_mem());
  BIO* out = BIO_new(BIO_s_mem());
  SSL_set_bio(ssl, in, out);  // ssl owns both
  SSL_set_accept_state(ssl);
  const std::size_t split = size == 0 ? 0 : 1 + data[0] % size;
  const std::size_t first = split < size ? split : size;
  BIO_write(in, data, static_cast<int>(first));
  drive(ssl, out);
  if (size > first) {
    BIO_write(in, data + first, static_cast<int>(size - first));
    drive(ssl, out);
  }
  SSL_free(ssl);
  ERR_clear_error();
  return 0;
}
