// HTTP/2 server connections (RFC 9113) on nghttp2: many concurrent streams per connection, each complete
// request answered by the transport-independent handler in its own coroutine, responses in any order.
// Two parts: `h2_server_session`, a byte-in/byte-out core with no I/O (time is a parameter; the fuzz target
// drives it directly), and `run_h2`, the coroutine that drives it over any Asio stream (plain TCP or TLS).
#pragma once

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "config/config.h"
#include "http/server.h"
#include "http/tls.h"

namespace callrec::http {

// Limits of one HTTP/2 connection; every one has a safe default. Counts "per window" are fixed windows of
// `rate_window_ms`; going over any of them ends the connection with GOAWAY ENHANCE_YOUR_CALM.
struct h2_limits {
  // SETTINGS_MAX_CONCURRENT_STREAMS: requests in flight on one connection. Streams beyond it are refused
  // with RST_STREAM REFUSED_STREAM (before the client acknowledged our SETTINGS; after, nghttp2 answers a
  // client that ignores the setting with RST_STREAM PROTOCOL_ERROR, which RFC 9113 5.1.2 also allows).
  std::uint32_t max_concurrent_streams = 128;
  // SETTINGS_INITIAL_WINDOW_SIZE, bytes: request body a client may send on one stream ahead of our reading.
  std::uint32_t initial_window_size = 256 * 1024;
  // The connection-level receive window, bytes (all streams together).
  std::uint32_t connection_window_size = 1024 * 1024;
  // SETTINGS_MAX_FRAME_SIZE, bytes: the protocol default (16 KiB), the largest frame we accept.
  std::uint32_t max_frame_size = 16 * 1024;
  // SETTINGS_MAX_HEADER_LIST_SIZE, bytes (decoded names + values + 32 per field, as RFC 9113 counts them).
  // A request over it is answered 431; the decoded size is what is counted, so an HPACK bomb (a few bytes
  // referencing a large table entry many times) is caught too.
  std::uint32_t max_header_bytes = 16 * 1024;
  // Header fields per request, pseudo-headers included; over it: 431 (many tiny fields cost more to index than
  // their bytes suggest).
  std::uint32_t max_header_count = 100;
  // Request body per stream, bytes. Over it (or a content-length announcing more): 413 with the JSON
  // envelope, then RST_STREAM NO_ERROR so the client stops sending.
  std::uint32_t max_body_bytes = 1024 * 1024;
  // SETTINGS_HEADER_TABLE_SIZE, bytes: the HPACK dynamic table the client may make us keep for decoding.
  std::uint32_t header_table_size = 4096;
  // Upper bound of the HPACK table we keep for encoding responses, whatever the client allows, bytes.
  std::uint32_t max_deflate_table_size = 4096;
  // CONTINUATION frames after one HEADERS frame (CONTINUATION flood, CVE-2024-27316 class).
  std::uint32_t max_continuations = 8;
  // SETTINGS ACK and PING ACK frames queued for a client that does not read them (nghttp2 then ends the
  // connection: PING/SETTINGS flood against a non-reading peer, CVE-2019-9512/9515).
  std::uint32_t max_outbound_ack = 100;
  // Entries in one SETTINGS frame.
  std::uint32_t max_settings_entries = 32;
  // Length of the rate windows below, milliseconds.
  std::uint32_t rate_window_ms = 10'000;
  // Streams the client resets (RST_STREAM it sends) per window: rapid reset (CVE-2023-44487).
  std::uint32_t max_peer_resets_per_window = 200;
  // PING frames (not ACKs) the client sends per window, answered or not (CVE-2019-9512).
  std::uint32_t max_pings_per_window = 100;
  // SETTINGS frames (not ACKs) the client sends per window (CVE-2019-9515).
  std::uint32_t max_settings_per_window = 100;
  // Frames with an empty payload and no END_STREAM (DATA, HEADERS, CONTINUATION) per window (CVE-2019-9518).
  std::uint32_t max_empty_frames_per_window = 100;
  // A connection with no open stream for this long is closed (GOAWAY NO_ERROR), milliseconds. PINGs do not
  // keep it open.
  std::uint32_t idle_timeout_ms = 60'000;
  // A request must be complete (headers and body) this long after its HEADERS, or its stream is reset
  // (RST_STREAM CANCEL): slowloris per stream, milliseconds.
  std::uint32_t request_timeout_ms = 10'000;
  // A connection with response bytes to deliver that makes no progress for this long is closed: the client
  // keeps its flow-control window at zero, or does not read the socket (zero-window stall), milliseconds.
  // Progress means at least min_progress_bytes sent within the limit: a window opened a byte at a time
  // (slow drain) counts as a stall.
  std::uint32_t stall_timeout_ms = 10'000;
  std::uint32_t min_progress_bytes = 4096;
  // After a graceful shutdown starts (GOAWAY sent), in-flight streams have this long to finish, milliseconds.
  std::uint32_t shutdown_grace_ms = 10'000;
  // Bytes gathered from nghttp2 into one buffer per socket write (write coalescing).
  std::uint32_t max_write_bytes = 64 * 1024;

  // The defaults with the HTTP server's shared limits applied (header and body sizes, timeouts).
  static h2_limits from(const http_limits& http);
};

// Why a connection was ended for abuse (the metrics label); none when it was not.
enum class h2_abuse : std::uint8_t { none, rapid_reset, ping_flood, settings_flood, empty_frames, flood, stall };
std::string_view to_string(h2_abuse a) noexcept;

// The byte-in/byte-out core of one server connection. No I/O, no clock reads, single-threaded. The owner
// feeds received bytes to `receive`, writes what `take_output` gives, and answers each request it is told
// of with `submit_reply` (at once or later, in any order).
class h2_server_session {
 public:
  // A complete request on `stream_id`; the views stay valid until `submit_reply(stream_id, ...)`.
  using request_sink = std::function<void(std::int32_t stream_id, const request& req)>;
  using time_point = std::chrono::steady_clock::time_point;

  h2_server_session(const h2_limits& limits, std::string remote, request_sink on_request, time_point now);
  ~h2_server_session();
  h2_server_session(const h2_server_session&) = delete;
  h2_server_session& operator=(const h2_server_session&) = delete;

  // Bytes from the client, the connection preface first. Returns false when the connection must end (a
  // protocol error, a flood, a limit): `take_output` may still hold a GOAWAY worth sending.
  bool receive(std::string_view bytes, time_point now);
  // Appends frames ready to send to `out` (up to about max_write_bytes); returns the bytes appended.
  std::size_t take_output(std::string& out);
  // Where a stream refused before its handler (413, 431) is reported, for the access log.
  void on_refusal(refusal_sink sink);
  // Answers a request given to the sink. Harmless if the stream was reset meanwhile.
  void submit_reply(std::int32_t stream_id, reply r);
  // Time-based checks (request timeout, idle timeout); true when the connection should end by now.
  bool tick(time_point now);
  // Graceful shutdown: GOAWAY (last stream id processed), in-flight streams finish, then `done`.
  void shutdown();
  // Immediate end with GOAWAY carrying `error_code` (an nghttp2_error_code), e.g. a stalled client.
  void terminate(std::uint32_t error_code, std::string_view reason, h2_abuse abuse = h2_abuse::none);

  // Nothing more to read or write: the connection can be closed once the output is flushed.
  bool done() const;
  bool wants_read() const;
  // Response body is waiting for the client's flow-control window (nothing else is left to send).
  bool blocked_on_peer_window() const;
  // Streams opened and not yet closed, including those whose handler runs.
  std::size_t open_streams() const noexcept;
  // Why the connection ended early (empty when it did not): for logs and tests.
  std::string_view close_reason() const noexcept;
  // Whether it ended for abuse, and which (for metrics).
  h2_abuse abuse() const noexcept;
  // Request streams the client has opened so far (for metrics).
  std::uint64_t streams_opened() const noexcept;

  struct impl;

 private:
  std::unique_ptr<impl> impl_;
};

// A handle on a running connection for its owner. Everything runs on the connection's executor.
class h2_control {
 public:
  // Graceful shutdown: GOAWAY, in-flight streams finish (for at most shutdown_grace_ms), then the connection
  // closes. Before run_h2 starts it makes run_h2 shut down at once; after it ended it does nothing.
  void shutdown();
  bool shutdown_requested() const noexcept { return requested_; }
  // Open streams (0 when idle, before the start and after the end): the owner closes idle ones at once.
  std::size_t open_streams() const noexcept { return session_ ? session_->open_streams() : 0; }

  // For run_h2.
  void attach(const h2_server_session* session, std::function<void()> on_shutdown);
  void detach();

 private:
  bool requested_ = false;
  const h2_server_session* session_ = nullptr;
  std::function<void()> on_shutdown_;
};

// The client connection preface (RFC 9113 3.4): a connection whose first bytes are these is h2c.
inline constexpr std::string_view h2_client_preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

namespace h2_detail {

namespace asio = boost::asio;
using steady = std::chrono::steady_clock;
inline constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
inline constexpr std::uint32_t enhance_your_calm = 0x0b;  // the HTTP/2 error code (RFC 9113 7)

// One connection's coroutines: the reader feeds the core, the writer (run) flushes its output and decides
// when the connection is over, the watchdog enforces the timeouts, each handler runs on its own.
// All of them run on the connection's executor; `run` returns only after the others have ended.
template <class Stream>
struct h2_driver {
  h2_driver(Stream& stream, const handler& handler, const h2_limits& limits, std::string_view remote,
            const asio::any_io_executor& ex, obs::metrics* metrics)
      : s(stream),
        h(handler),
        lim(limits),
        ex(ex),
        metrics(metrics),
        wake(ex, steady::time_point::max()),
        watchdog_timer(ex),
        session(
            limits, std::string(remote), [this](std::int32_t id, const request& req) { start_handler(id, req); },
            steady::now()) {}

  Stream& s;
  const handler& h;
  const h2_limits& lim;
  asio::any_io_executor ex;
  obs::metrics* metrics;  // null: not counted
  std::uint64_t streams_counted = 0;
  bool cut_off_unread = false;  // closed because the client stopped reading the socket
  asio::steady_timer wake;      // cancelled to wake `run`
  asio::steady_timer watchdog_timer;
  h2_server_session session;
  std::string input;
  std::string output;
  bool dirty = false;
  bool closing = false;
  bool reader_done = false;
  bool watchdog_done = false;
  std::size_t handlers = 0;
  bool writing = false;
  steady::time_point write_started;
  std::optional<steady::time_point> stalled_since;
  std::size_t sent_while_stalled = 0;  // bytes out since stalled_since: a trickle is no progress
  std::optional<steady::time_point> shutdown_at;
  std::optional<steady::time_point> linger_until;

  void count_streams() {
    if (!metrics) return;
    const auto n = session.streams_opened();
    metrics->h2_streams.add(n - streams_counted);
    streams_counted = n;
  }

  // Once the connection is over.
  void count_end() {
    if (!metrics) return;
    count_streams();
    const h2_abuse a = cut_off_unread && session.abuse() == h2_abuse::none ? h2_abuse::stall : session.abuse();
    if (a != h2_abuse::none) metrics->h2_abuse_close(to_string(a));
  }

  void notify() {
    dirty = true;
    wake.cancel();
  }

  void close_socket() {
    closing = true;
    boost::system::error_code ec;
    auto& sock = s.lowest_layer();
    sock.shutdown(asio::ip::tcp::socket::shutdown_both, ec);
    sock.close(ec);
    watchdog_timer.cancel();
    notify();
  }

  void start_handler(std::int32_t id, const request& req) {
    count_streams();  // before the handler, which may run at once (and render the metrics)
    ++handlers;
    try {
      asio::co_spawn(ex, h(req), [this, id](std::exception_ptr e, reply r) {
        if (e) r = internal_error();
        finish_handler(id, std::move(r));
      });
    } catch (...) {
      finish_handler(id, internal_error());  // the handler threw before its first suspension
    }
  }

  static reply internal_error() {
    reply r;
    r.status = 500;
    r.body = internal_error_body;
    return r;
  }

  void finish_handler(std::int32_t id, reply r) {
    --handlers;
    session.submit_reply(id, std::move(r));
    notify();
  }

  asio::awaitable<void> wait_for_wake() {
    if (!dirty) {
      wake.expires_at(steady::time_point::max());
      co_await wake.async_wait(use_tuple);
    }
    dirty = false;
  }

  asio::awaitable<void> read_loop() {
    if (!input.empty()) {
      session.receive(input, steady::now());
      count_streams();
      notify();
    }
    input.resize(std::max<std::size_t>(lim.max_write_bytes, 16 * 1024));
    std::size_t discarded = 0;
    while (!closing) {
      auto [ec, n] = co_await s.async_read_some(asio::buffer(input), use_tuple);
      if (ec || closing) break;
      if (session.wants_read()) {
        session.receive(std::string_view(input.data(), n), steady::now());
        count_streams();
        notify();
      } else if ((discarded += n) > 1024 * 1024) {
        break;  // input after the end is read and dropped (so closing does not reset the GOAWAY away), up to 1 MiB
      }
    }
  }

  asio::awaitable<void> watchdog_loop() {
    const auto period = std::chrono::milliseconds(std::clamp<std::uint32_t>(
        std::min({lim.idle_timeout_ms, lim.request_timeout_ms, lim.stall_timeout_ms, lim.shutdown_grace_ms}) / 4, 5,
        250));
    const auto stall = std::chrono::milliseconds(lim.stall_timeout_ms);
    while (!closing) {
      watchdog_timer.expires_after(period);
      co_await watchdog_timer.async_wait(use_tuple);
      if (closing) break;
      const auto now = steady::now();
      if (writing && now - write_started > stall) {
        cut_off_unread = true;
        close_socket();  // the client does not read the socket: nothing more can be sent, not even GOAWAY
        break;
      }
      if (stalled_since && now - *stalled_since > stall) {
        session.terminate(enhance_your_calm, "zero window stall", h2_abuse::stall);
        stalled_since.reset();
        notify();
      }
      if (linger_until && now > *linger_until) {
        close_socket();
        break;
      }
      if (shutdown_at && now - *shutdown_at > std::chrono::milliseconds(lim.shutdown_grace_ms)) {
        close_socket();
        break;
      }
      if (session.tick(now)) notify();
    }
  }

  asio::awaitable<void> run(h2_control* control) {
    for (;;) {
      if (closing) break;
      if (control && control->shutdown_requested() && !shutdown_at) {
        session.shutdown();
        shutdown_at = steady::now();
      }
      output.clear();
      if (const std::size_t taken = session.take_output(output); taken > 0) {
        // Waiting on the client's window ends when it lets a real amount through within the stall limit, not
        // one byte at a time (a slow drain would otherwise hold the response and its stream forever).
        if (stalled_since && (sent_while_stalled += taken) >= lim.min_progress_bytes) {
          stalled_since.reset();
          sent_while_stalled = 0;
        }
        writing = true;
        write_started = steady::now();
        auto [ec, n] = co_await asio::async_write(s, asio::buffer(output), use_tuple);
        writing = false;
        if (ec) break;
        continue;
      }
      if (session.done() || reader_done) break;
      if (session.blocked_on_peer_window()) {
        if (!stalled_since) stalled_since = steady::now();
      } else {
        stalled_since.reset();
        sent_while_stalled = 0;
      }
      co_await wait_for_wake();
    }
    if (!closing && !reader_done) {
      // Over TLS the end is announced first (close_notify), so the client can tell it from a truncation. Only
      // ours is sent; the client's is not waited for (the read loop drains whatever comes).
      // The lingering drain below then still reads until the client's close_notify: unread input left in the
      // socket would make close() send a reset that can destroy our last frames.
      if constexpr (requires(Stream& t) { t.async_shutdown(use_tuple); }) {
        writing = true;  // a client that reads nothing is cut off by the watchdog, as for any write
        write_started = steady::now();
        co_await send_close_notify(s);
        writing = false;
      }
      // Lingering close: FIN after the last frame, then the client's remaining input is drained until it
      // closes too (at most 1 s), so the kernel does not answer it with a reset that could destroy our GOAWAY.
      boost::system::error_code ec;
      s.lowest_layer().shutdown(asio::ip::tcp::socket::shutdown_send, ec);
      linger_until = steady::now() + std::chrono::milliseconds(std::min<std::uint32_t>(lim.stall_timeout_ms, 1000));
      while (!reader_done && !closing) co_await wait_for_wake();
    }
    if (!closing) close_socket();
    while (!reader_done || !watchdog_done || handlers > 0) co_await wait_for_wake();
  }
};

}  // namespace h2_detail

// Serves one HTTP/2 connection until it ends, then closes `s` (its lowest layer). `already_read` holds bytes
// read before the hand-over (the client preface for h2c prior knowledge; empty after TLS ALPN "h2"). `remote`
// is the peer's address, as request::remote. `h`, `s` and `control` must outlive the coroutine; it returns
// only after every handler coroutine it started has completed. The executor of `s` must run one thread at
// a time (an io_context per thread, or a strand). Defined below: instantiated once for tcp::socket (h2_session.cpp),
// implicitly for TLS streams.
template <class Stream>
boost::asio::awaitable<void> run_h2(Stream& s, std::string_view already_read, const handler& h, const h2_limits& limits,
                                    std::string_view remote, h2_control* control = nullptr,
                                    obs::metrics* metrics = nullptr, const refusal_sink* refusals = nullptr) {
  namespace asio = boost::asio;
  const auto ex = co_await asio::this_coro::executor;
  auto d = std::make_unique<h2_detail::h2_driver<Stream>>(s, h, limits, remote, ex, metrics);
  if (refusals) d->session.on_refusal(*refusals);
  if (metrics) metrics->h2_connections.add();
  d->input.assign(already_read);
  if (control) control->attach(&d->session, [p = d.get()] { p->notify(); });
  auto* p = d.get();
  asio::co_spawn(ex, p->read_loop(), [p](std::exception_ptr) {
    p->reader_done = true;
    p->notify();
  });
  asio::co_spawn(ex, p->watchdog_loop(), [p](std::exception_ptr) {
    p->watchdog_done = true;
    p->notify();
  });
  co_await p->run(control);
  p->count_end();
  if (control) control->detach();
}

extern template boost::asio::awaitable<void> run_h2<boost::asio::ip::tcp::socket>(boost::asio::ip::tcp::socket&,
                                                                                  std::string_view, const handler&,
                                                                                  const h2_limits&, std::string_view,
                                                                                  h2_control*, obs::metrics*,
                                                                                  const refusal_sink*);

}  // namespace callrec::http
