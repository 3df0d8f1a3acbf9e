// The HTTP/1.1 server: a listener per I/O thread (SO_REUSEPORT), one coroutine per connection, keep-alive
// and pipelining, limits on header and body size, idle, slow-request and TLS-handshake timeouts, graceful
// shutdown, and HTTPS when [tls] is configured (certificate reloadable without dropping connections).
// It knows nothing of the API: every request goes to one transport-independent handler.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "config/config.h"
#include "core/error.h"
#include "http/request_id.h"
#include "obs/metrics.h"

namespace boost::asio::ssl {
class context;
}

namespace callrec::http {

enum class method : std::uint8_t { get, post, head, other };

// A request as the handler sees it; views stay valid until the handler's coroutine completes.
struct request {
  method verb = method::other;
  std::string_view target;  // path and query, as sent
  std::string_view body;
  std::string_view remote;  // peer address
};

struct reply {
  unsigned status = 200;
  std::string_view content_type = "application/json";
  std::string body;
  http::request_id request_id;  // sent as X-Request-Id when not empty
};

// Answers a request. HTTP/1.1 awaits it within the connection's coroutine, so an answer that needed no
// waiting costs no hop to another handler; HTTP/2 runs one per stream.
using handler = std::function<boost::asio::awaitable<reply>(const request&)>;

// Bodies of the answers the transport gives itself, before or instead of the handler, in the API's error
// shape; HTTP/1.1 and HTTP/2 say the same. A refused request (too large, malformed, plain HTTP on the TLS
// port) gets 70001 with `message` and its own request id (also sent as X-Request-Id and logged); a handler
// that failed, 101001.
std::string refusal_body(std::string_view message, std::string_view request_id);
inline constexpr std::string_view internal_error_body = R"({"errorCode":101001,"errorMessage":"internal error"})";

// Why a request broke a size limit of [limits], for its 413 (body) or 431 (header) answer.
enum class size_limit : std::uint8_t { body_bytes, header_bytes, header_fields };
std::string limit_message(size_limit which, std::uint64_t limit);

// What the transport refused before any handler ran, for the access log (SPEC 6): a request answered 400,
// 413, 431 or 501 and closed, or a TLS handshake that failed (status 0, no request id). Views valid during
// the call only. Called on an I/O thread: must be quick (the access log queues the line).
struct refusal_event {
  unsigned status = 0;
  std::string_view reason;
  std::string_view remote;
  std::string_view request_id;
};
using refusal_sink = std::function<void(const refusal_event&)>;

struct server_options {
  std::string host = "127.0.0.1";
  std::uint16_t port = 0;
  std::uint32_t threads = 1;
  // The I/O threads run under SCHED_BATCH: a thread woken by a request does not preempt the task running
  // on its CPU, it runs when that task yields, and then finds a batch of requests rather than one.
  bool batch_scheduling = false;
  http_limits limits;
  std::optional<tls_config> tls;  // HTTPS when set
  refusal_sink on_refusal;        // optional
};

class server {
 public:
  server(server_options options, handler h, obs::metrics& metrics);
  ~server();
  server(const server&) = delete;
  server& operator=(const server&) = delete;

  // Loads the TLS certificate (if any), binds and starts the I/O threads. Errors name the address or the
  // [tls] key.
  result<void> start();

  // Reads the [tls] certificate and key again (SIGHUP): new connections use them, open ones keep the
  // certificate they were accepted with. On error the previous certificate stays in use. Any thread.
  result<void> reload_tls();
  std::uint16_t port() const noexcept { return port_; }

  // Graceful stop: no new connections, idle ones closed, in-flight requests answered (for at most
  // `drain_ms`), then the threads end. Safe to call more than once and from any thread.
  void stop(int drain_ms = 10000);

  // The I/O contexts, for background work that should share the I/O threads.
  boost::asio::io_context& context(std::size_t i) { return *contexts_[i % contexts_.size()]; }
  std::size_t thread_count() const noexcept { return contexts_.size(); }

  struct connection;

 private:
  boost::asio::awaitable<void> accept_loop(std::size_t index);
  boost::asio::awaitable<void> sweep_loop(std::size_t index);
  boost::asio::awaitable<void> session(std::size_t index, std::shared_ptr<connection> conn);
  // HTTP/1.1 over a plain socket or a handshaken TLS stream. Returns true when the server chose to end the
  // connection (Connection: close, shutdown, idle timeout), false when the peer or the network did.
  template <class Stream>
  boost::asio::awaitable<bool> serve_http1(std::size_t index, connection& conn, Stream& stream);
  // HTTP/2 (ALPN "h2", or h2c with prior knowledge: `already_read` holds the client preface read so far).
  // run_h2 keeps its own timeouts and closes the connection itself.
  template <class Stream>
  boost::asio::awaitable<void> serve_h2(connection& conn, Stream& stream, std::string_view already_read);
  void start_session(std::size_t index, boost::asio::ip::tcp::socket sock);
  // Answers a plain HTTP request sent to the TLS port (true), or does nothing for other handshake failures.
  boost::asio::awaitable<bool> answer_plaintext(connection& conn, const boost::system::error_code& handshake_error,
                                                std::string_view remote);
  std::string refusal(unsigned status, std::string_view message, std::string_view remote);
  // A connection placed on thread `index` is gone (closed, or its hand-over failed): the counts drop.
  void forget_connection(std::size_t index);
  std::shared_ptr<boost::asio::ssl::context> current_tls_context() const;

  server_options options_;
  handler handler_;
  obs::metrics& metrics_;
  std::uint16_t port_ = 0;
  std::vector<std::unique_ptr<boost::asio::io_context>> contexts_;
  struct per_thread;
  std::vector<std::unique_ptr<per_thread>> threads_state_;
  std::vector<std::thread> threads_;
  std::atomic<std::uint32_t> connections_{0};
  std::atomic<bool> stopping_{false};
  bool stopped_ = false;
  mutable std::mutex tls_mu_;
  std::shared_ptr<boost::asio::ssl::context> tls_context_;  // for new connections; null: plain HTTP
};

}  // namespace callrec::http
