#include "http/tls.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

namespace callrec::http {
namespace {

namespace ssl = boost::asio::ssl;

// TLS 1.2: forward secrecy (ECDHE) and AEAD only, the strongest first (Mozilla's "intermediate" list minus
// DHE). TLS 1.3 suites are all AEAD and forward-secret.
constexpr const char* tls12_ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";
constexpr const char* tls13_suites = "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256";
constexpr const char* groups = "X25519:P-256:P-384";

// The ALPN protocols in wire format (length-prefixed), server preference first: HTTP/2, then HTTP/1.1.
constexpr unsigned char alpn_protocols[] = "\x02h2\x08http/1.1";

int select_alpn(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in, unsigned int inlen,
                void*) {
  unsigned char* selected = nullptr;
  unsigned char selected_len = 0;
  // Server preference: the first of ours that the client offers.
  if (SSL_select_next_proto(&selected, &selected_len, alpn_protocols, sizeof alpn_protocols - 1, in, inlen) !=
      OPENSSL_NPN_NEGOTIATED) {
    return SSL_TLSEXT_ERR_ALERT_FATAL;  // RFC 7301 3.2: no_application_protocol
  }
  *out = selected;
  *outlen = selected_len;
  return SSL_TLSEXT_ERR_OK;
}

// Never prompts for a pass phrase on the terminal (OpenSSL's default for an encrypted key): such a key fails.
int no_passphrase(char*, int, int, void*) { return 0; }

std::string openssl_reason() {
  const char* reason = ERR_reason_error_string(ERR_peek_last_error());
  std::string r = reason ? reason : "unknown OpenSSL error";
  ERR_clear_error();
  return r;
}

error tls_error(std::string_view key, const std::string& path, std::string_view problem) {
  return make_error(errc::invalid_param, std::string(key) + ": '" + path + "': " + std::string(problem));
}

// Opens `path` to tell a missing or unreadable file from a malformed one.
result<void> check_readable(std::string_view key, const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return tls_error(key, path, std::string("cannot read: ") + std::strerror(errno));
  std::fclose(f);
  return {};
}

}  // namespace

std::string_view alpn_name(app_protocol p) noexcept {
  switch (p) {
    case app_protocol::h2:
      return "h2";
    case app_protocol::http1:
      return "http/1.1";
  }
  return "http/1.1";
}

app_protocol negotiated_protocol(const SSL* ssl) noexcept {
  const unsigned char* data = nullptr;
  unsigned int len = 0;
  SSL_get0_alpn_selected(ssl, &data, &len);
  const std::string_view selected(reinterpret_cast<const char*>(data), data ? len : 0);
  for (auto p : {app_protocol::h2, app_protocol::http1}) {
    if (alpn_name(p) == selected) return p;
  }
  return app_protocol::http1;  // no ALPN: HTTP/1.1
}

result<std::shared_ptr<ssl::context>> make_tls_context(const tls_config& tls) {
  ERR_clear_error();
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
  SSL_CTX* h = ctx->native_handle();
  if (SSL_CTX_set_min_proto_version(h, TLS1_2_VERSION) != 1 || SSL_CTX_set_max_proto_version(h, TLS1_3_VERSION) != 1 ||
      SSL_CTX_set_cipher_list(h, tls12_ciphers) != 1 || SSL_CTX_set_ciphersuites(h, tls13_suites) != 1 ||
      SSL_CTX_set1_groups_list(h, groups) != 1) {
    return make_error(errc::internal, "tls: this OpenSSL refuses the cipher settings: " + openssl_reason());
  }
  // No TLS 1.2 renegotiation (a client-driven CPU sink); compression is off by default in OpenSSL 3 (CRIME).
  SSL_CTX_set_options(h, SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
  // Resumption: a server-side session cache (TLS 1.2 session ids) and tickets (TLS 1.2 and 1.3). Both are keyed
  // to this context, so sessions do not survive a certificate reload: those clients do one full handshake.
  SSL_CTX_clear_options(h, SSL_OP_NO_TICKET);
  SSL_CTX_set_session_cache_mode(h, SSL_SESS_CACHE_SERVER);
  SSL_CTX_sess_set_cache_size(h, 20000);
  static constexpr unsigned char session_context[] = "callrec";
  SSL_CTX_set_session_id_context(h, session_context, sizeof session_context - 1);
  SSL_CTX_set_alpn_select_cb(h, select_alpn, nullptr);

  if (auto r = check_readable("tls.cert", tls.cert); !r) return r.error();
  if (auto r = check_readable("tls.key", tls.key); !r) return r.error();
  if (SSL_CTX_use_certificate_chain_file(h, tls.cert.c_str()) != 1) {
    return tls_error("tls.cert", tls.cert, "not a PEM certificate chain (" + openssl_reason() + ")");
  }
  EVP_PKEY* pkey = nullptr;
  if (BIO* bio = BIO_new_file(tls.key.c_str(), "rb")) {
    pkey = PEM_read_bio_PrivateKey(bio, nullptr, no_passphrase, nullptr);
    BIO_free(bio);
  }
  if (!pkey) {
    return tls_error("tls.key", tls.key, "not an unencrypted PEM private key (" + openssl_reason() + ")");
  }
  const bool used = SSL_CTX_use_PrivateKey(h, pkey) == 1;
  EVP_PKEY_free(pkey);
  if (!used || SSL_CTX_check_private_key(h) != 1) {
    ERR_clear_error();
    return tls_error("tls.key", tls.key, "does not match the certificate in tls.cert ('" + tls.cert + "')");
  }
  return ctx;
}

}  // namespace callrec::http
