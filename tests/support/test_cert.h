// Test certificates made at test time with the OpenSSL C API (no key material in the repository): a
// self-signed ECDSA P-256 certificate for 127.0.0.1 and localhost, and TLS client contexts that trust it.
#pragma once

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <boost/asio/ssl/context.hpp>
#include <filesystem>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <string>

namespace callrec::testing {

struct test_cert {
  std::string cert_pem;
  std::string key_pem;
  std::string common_name;
};

// A fresh key and certificate whose subject CN is `common_name` (tests tell certificates apart by it).
inline test_cert make_test_cert(const std::string& common_name = "callrec-test") {
  auto fail = [](const char* what) { throw std::runtime_error(std::string("make_test_cert: ") + what); };
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(EVP_EC_gen("P-256"), EVP_PKEY_free);
  if (!key) fail("EVP_EC_gen");
  std::unique_ptr<X509, decltype(&X509_free)> x(X509_new(), X509_free);
  if (!x) fail("X509_new");
  static long serial = 1;
  X509_set_version(x.get(), 2);  // v3
  ASN1_INTEGER_set(X509_get_serialNumber(x.get()), serial++);
  X509_gmtime_adj(X509_getm_notBefore(x.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(x.get()), 86400);
  X509_set_pubkey(x.get(), key.get());
  X509_NAME* name = X509_get_subject_name(x.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(common_name.c_str()), -1,
                             -1, 0);
  X509_set_issuer_name(x.get(), name);
  X509V3_CTX v3;
  X509V3_set_ctx_nodb(&v3);
  X509V3_set_ctx(&v3, x.get(), x.get(), nullptr, nullptr, 0);
  for (auto [nid, value] :
       {std::pair{NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1"}, std::pair{NID_ext_key_usage, "serverAuth"}}) {
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &v3, nid, value);
    if (!ext) fail("X509V3_EXT_conf_nid");
    X509_add_ext(x.get(), ext, -1);
    X509_EXTENSION_free(ext);
  }
  if (X509_sign(x.get(), key.get(), EVP_sha256()) == 0) fail("X509_sign");

  auto to_pem = [&](auto write) {
    std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), BIO_free);
    if (!bio || write(bio.get()) != 1) fail("PEM_write");
    char* data = nullptr;
    long len = BIO_get_mem_data(bio.get(), &data);
    return std::string(data, static_cast<std::size_t>(len));
  };
  test_cert c;
  c.cert_pem = to_pem([&](BIO* b) { return PEM_write_bio_X509(b, x.get()); });
  c.key_pem =
      to_pem([&](BIO* b) { return PEM_write_bio_PrivateKey(b, key.get(), nullptr, nullptr, 0, nullptr, nullptr); });
  c.common_name = common_name;
  return c;
}

inline void write_file(const std::filesystem::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  if (!out.flush()) throw std::runtime_error("cannot write " + path.string());
}

// A client context that trusts exactly `cert_pem` and verifies the peer; TLS 1.2 and 1.3 unless narrowed.
inline std::shared_ptr<boost::asio::ssl::context> client_tls_context(const std::string& cert_pem,
                                                                     int max_version = TLS1_3_VERSION) {
  namespace ssl = boost::asio::ssl;
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_client);
  ctx->add_certificate_authority(boost::asio::buffer(cert_pem));
  ctx->set_verify_mode(ssl::verify_peer);
  SSL_CTX_set_max_proto_version(ctx->native_handle(), max_version);
  return ctx;
}

// The subject CN of the certificate the peer presented ("" if none).
inline std::string peer_common_name(const SSL* ssl) {
  std::unique_ptr<X509, decltype(&X509_free)> peer(SSL_get1_peer_certificate(ssl), X509_free);
  if (!peer) return "";
  char buf[256] = {};
  X509_NAME_get_text_by_NID(X509_get_subject_name(peer.get()), NID_commonName, buf, sizeof buf);
  return buf;
}

}  // namespace callrec::testing
