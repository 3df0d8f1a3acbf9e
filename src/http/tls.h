// The server's TLS settings: one ssl::context built from [tls] (TLS 1.2 and 1.3 only, forward-secret AEAD
// ciphers, server cipher preference, session resumption by cache and tickets, ALPN).
#pragma once

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <memory>
#include <openssl/ssl.h>
#include <string_view>

#include "config/config.h"
#include "core/error.h"

namespace callrec::http {

// Application protocols offered by ALPN, in the server's order of preference: HTTP/2, then HTTP/1.1.
enum class app_protocol : std::uint8_t { h2, http1 };
std::string_view alpn_name(app_protocol p) noexcept;

// Reads the certificate chain and key of `tls` and checks that they are a pair. Errors name the [tls] key
// ("tls.cert: ...", "tls.key: ...") and the problem. The context is immutable once built; connections hold
// it by shared_ptr, so a reload replaces it for new connections only.
result<std::shared_ptr<boost::asio::ssl::context>> make_tls_context(const tls_config& tls);

// The protocol ALPN settled on for a handshaken connection (HTTP/1.1 when the client sent no ALPN).
app_protocol negotiated_protocol(const SSL* ssl) noexcept;

// Sends TLS close_notify without waiting for the peer's. Marked as received, SSL_shutdown only writes, so
// asio's shutdown reads nothing (which would clash with a read in progress); marked as sent only afterwards,
// SSL_read goes on decrypting what the peer still sends. The caller bounds the write like any other.
template <class SslStream>
boost::asio::awaitable<void> send_close_notify(SslStream& s) {
  SSL_set_shutdown(s.native_handle(), SSL_RECEIVED_SHUTDOWN);
  co_await s.async_shutdown(boost::asio::as_tuple(boost::asio::use_awaitable));
  SSL_set_shutdown(s.native_handle(), SSL_SENT_SHUTDOWN);
}

}  // namespace callrec::http
