#include "http/server.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/buffers_suffix.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/http/status.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <sched.h>
#include <cstdio>
#include <cstring>
#include <list>
#include <optional>
#include <type_traits>
#include <unistd.h>
#include <variant>

#include "core/json_text.h"
#include "http/early_reads.h"
#include "http/h2_session.h"
#include "http/request_parser.h"
#include "http/tls.h"

namespace callrec::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

using steady = std::chrono::steady_clock;
using tls_stream = asio::ssl::stream<tcp::socket>;

// Everything here is touched only on the connection's own I/O thread.
struct server::connection {
  explicit connection(tcp::socket s) : stream(std::in_place_type<tcp::socket>, std::move(s)) {}
  connection(tcp::socket s, std::shared_ptr<asio::ssl::context> ctx)
      : tls_context(std::move(ctx)), stream(std::in_place_type<tls_stream>, std::move(s), *tls_context) {}
  // The socket beneath the stream: the sweeper and stop() cancel or close it, whatever the stream is.
  tcp::socket& socket() {
    if (auto* tls = std::get_if<tls_stream>(&stream)) return tls->next_layer();
    return std::get<tcp::socket>(stream);
  }
  std::shared_ptr<asio::ssl::context> tls_context;  // TLS: the certificate as of accept, kept across reloads
  std::variant<tcp::socket, tls_stream> stream;
  bool busy = false;        // a request is being read or answered
  steady::time_point deadline = steady::time_point::max();  // the current read or write must end by then
  bool timed_out = false;   // the sweeper cancelled it
  bool h2 = false;          // speaks HTTP/2: run_h2 keeps the deadlines; stop() asks it for a GOAWAY
  h2_control h2_ctl;
  std::list<std::shared_ptr<connection>>::iterator self;

  std::string remote() {
    boost::system::error_code ec;
    auto ep = socket().remote_endpoint(ec);
    return ec ? std::string() : ep.address().to_string() + ":" + std::to_string(ep.port());
  }
};

struct server::per_thread {
  explicit per_thread(asio::io_context& ctx) : acceptor(ctx), sweeper(ctx) {}
  tcp::acceptor acceptor;
  asio::steady_timer sweeper;  // enforces connection deadlines (one timer per thread, not one per operation)
  std::list<std::shared_ptr<connection>> connections;
  std::atomic<std::uint32_t> open{0};  // connections placed on this thread (read by every acceptor)
  // The time as of the last sweep: connection deadlines are checked every sweep (250 ms), so setting them
  // from this coarse clock loses no precision and saves a clock read per deadline.
  steady::time_point now = steady::now();

  early_reads early;  // whether this thread's plain connections read early after an answer
};

server::server(server_options options, handler h, obs::metrics& metrics)
    : options_(std::move(options)), handler_(std::move(h)), metrics_(metrics) {
  std::uint32_t n = options_.threads == 0 ? std::max(1u, std::thread::hardware_concurrency()) : options_.threads;
  for (std::uint32_t i = 0; i < n; ++i) {
    // One thread runs each context, and a connection's socket and timers are used on that thread only (an
    // accepted socket moves to its thread as a descriptor; stop() posts): the reactor's per-socket locks
    // (three lock/unlock pairs per request) can go. The scheduler keeps its lock: other threads post to it.
    contexts_.push_back(std::make_unique<asio::io_context>(BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO));
    threads_state_.push_back(std::make_unique<per_thread>(*contexts_.back()));
  }
}

server::~server() { stop(0); }

std::shared_ptr<asio::ssl::context> server::current_tls_context() const {
  std::lock_guard lk(tls_mu_);
  return tls_context_;
}

result<void> server::reload_tls() {
  if (!options_.tls) return make_error(errc::invalid_param, "tls: no [tls] section is configured, nothing to reload");
  auto ctx = make_tls_context(*options_.tls);
  if (!ctx) return ctx.error();
  std::lock_guard lk(tls_mu_);
  tls_context_ = std::move(*ctx);
  return {};
}

result<void> server::start() {
  if (options_.tls) {
    if (auto r = reload_tls(); !r) return r;
  }
  boost::system::error_code ec;
  auto addr = asio::ip::make_address(options_.host == "localhost" ? "127.0.0.1" : options_.host, ec);
  if (ec) return make_error(errc::invalid_param, "listen: '" + options_.host + "' is not an IP address");
  tcp::endpoint ep(addr, options_.port);
  for (std::size_t i = 0; i < threads_state_.size(); ++i) {
    auto& acc = threads_state_[i]->acceptor;
    acc.open(ep.protocol(), ec);
    if (ec) break;
    acc.set_option(asio::socket_base::reuse_address(true), ec);
    int one = 1;
    ::setsockopt(acc.native_handle(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    acc.bind(ep, ec);
    if (ec) break;
    acc.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) break;
    if (i == 0) {
      port_ = acc.local_endpoint().port();
      ep.port(port_);  // the other listeners share the chosen port
    }
  }
  if (ec) {
    return make_error(errc::internal,
                      "listen: cannot listen on " + options_.host + ":" + std::to_string(options_.port) + ": " +
                          ec.message());
  }
  for (std::size_t i = 0; i < contexts_.size(); ++i) {
    asio::co_spawn(*contexts_[i], accept_loop(i), asio::detached);
    asio::co_spawn(*contexts_[i], sweep_loop(i), asio::detached);
  }
  for (std::size_t i = 0; i < contexts_.size(); ++i) {
    threads_.emplace_back([ctx = contexts_[i].get()] {
      auto guard = asio::make_work_guard(*ctx);
      ctx->run();
    });
    if (options_.batch_scheduling) {
      const sched_param param{};
      if (const int err = pthread_setschedparam(threads_.back().native_handle(), SCHED_BATCH, &param);
          err != 0 && i == 0) {
        std::fprintf(stderr, "callrec: io_scheduling = \"batch\": the I/O threads keep the normal policy (%s)\n",
                     std::strerror(err));
      }
    }
  }
  return {};
}

void server::stop(int drain_ms) {
  if (stopped_) return;
  stopped_ = true;
  stopping_ = true;
  for (std::size_t i = 0; i < contexts_.size(); ++i) {
    asio::post(*contexts_[i], [st = threads_state_[i].get()] {
      boost::system::error_code ec;
      st->acceptor.close(ec);
      st->sweeper.cancel();
      for (auto& c : st->connections) {
        if (c->h2) {
          c->h2_ctl.shutdown();  // GOAWAY; open streams finish, then run_h2 closes
        } else if (!c->busy) {
          c->socket().close(ec);  // idle or handshaking: nothing in flight
        }
      }
    });
  }
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(drain_ms);
  while (connections_.load() > 0 && std::chrono::steady_clock::now() < deadline && !threads_.empty()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));  // shutdown drain, not test synchronisation
  }
  for (auto& c : contexts_) c->stop();
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
  threads_.clear();
}

// Cancels the operations of connections past their deadline (idle keep-alive, slow requests, stalled
// readers). Granularity: a quarter of a second.
asio::awaitable<void> server::sweep_loop(std::size_t index) {
  auto& st = *threads_state_[index];
  for (;;) {
    st.sweeper.expires_after(std::chrono::milliseconds(250));
    auto [ec] = co_await st.sweeper.async_wait(use_tuple);
    if (ec || stopping_) co_return;
    const auto now = st.now = steady::now();
    for (auto& c : st.connections) {
      if (c->deadline <= now && !c->timed_out) {
        c->timed_out = true;
        boost::system::error_code ignored;
        c->socket().cancel(ignored);
      }
    }
  }
}

asio::awaitable<void> server::accept_loop(std::size_t index) {
  auto& st = *threads_state_[index];
  for (;;) {
    auto [ec, sock] = co_await st.acceptor.async_accept(use_tuple);
    if (ec) {
      if (stopping_ || ec == asio::error::operation_aborted || !st.acceptor.is_open()) co_return;
      continue;  // e.g. EMFILE: keep accepting
    }
    if (stopping_) co_return;
    if (connections_.load(std::memory_order_relaxed) >= options_.limits.max_connections) {
      metrics_.connections_rejected.add();
      boost::system::error_code ignored;
      sock.close(ignored);
      continue;
    }
    connections_.fetch_add(1, std::memory_order_relaxed);
    metrics_.connections_accepted.add();
    sock.set_option(tcp::no_delay(true), ec);
    // The kernel spreads connections over the listeners by a hash of their addresses, which leaves one
    // thread with noticeably more of them than another (64 connections split 40/24 as often as not): each
    // connection goes to the thread that has the fewest.
    std::size_t target = index;
    for (std::size_t i = 0; i < threads_state_.size(); ++i) {
      if (threads_state_[i]->open.load(std::memory_order_relaxed) <
          threads_state_[target]->open.load(std::memory_order_relaxed)) {
        target = i;
      }
    }
    threads_state_[target]->open.fetch_add(1, std::memory_order_relaxed);
    if (target == index) {
      start_session(index, std::move(sock));
      continue;
    }
    const auto protocol = sock.local_endpoint(ec).protocol();
    const int fd = ec ? -1 : sock.release(ec);
    if (fd < 0 || ec) {
      forget_connection(target);
      continue;
    }
    asio::post(*contexts_[target], [this, target, protocol, fd] {
      boost::system::error_code aec;
      tcp::socket moved(*contexts_[target]);
      moved.assign(protocol, fd, aec);
      if (aec || stopping_) {
        if (!aec) moved.close(aec);
        else ::close(fd);
        forget_connection(target);
        return;
      }
      start_session(target, std::move(moved));
    });
  }
}

// On the connection's own thread: registers it for the sweeper and runs its session there.
void server::start_session(std::size_t index, tcp::socket sock) {
  auto& st = *threads_state_[index];
  auto tls = current_tls_context();
  auto conn = tls ? std::make_shared<connection>(std::move(sock), std::move(tls))
                  : std::make_shared<connection>(std::move(sock));
  st.connections.push_front(conn);
  conn->self = st.connections.begin();
  asio::co_spawn(*contexts_[index], session(index, conn), asio::detached);
}

namespace {

method to_method(bhttp::verb v) {
  switch (v) {
    case bhttp::verb::get: return method::get;
    case bhttp::verb::post: return method::post;
    case bhttp::verb::head: return method::head;
    default: return method::other;
  }
}

}  // namespace

namespace {

// The response head, written by hand: one buffer, no per-field allocations.
void append_head(std::string& out, unsigned status, std::string_view content_type, std::string_view request_id,
                 std::size_t content_length, bool keep_alive, bool http10) {
  out += "HTTP/1.1 ";
  out += std::to_string(status);
  out += ' ';
  auto reason = bhttp::obsolete_reason(static_cast<bhttp::status>(status));
  out.append(reason.data(), reason.size());
  out += "\r\nContent-Type: ";
  out += content_type;
  if (!request_id.empty()) {
    out += "\r\nX-Request-Id: ";
    out += request_id;
  }
  out += "\r\nContent-Length: ";
  out += std::to_string(content_length);
  if (!keep_alive) {
    out += "\r\nConnection: close";
  } else if (http10) {
    out += "\r\nConnection: keep-alive";
  }
  out += "\r\n\r\n";
}

// A non-blocking socket had nothing to give or no room to take (EAGAIN): not a failure.
bool would_block(const boost::system::error_code& ec) {
  return ec == asio::error::would_block || ec == asio::error::try_again;
}

}  // namespace

std::string refusal_body(std::string_view message, std::string_view request_id) {
  std::string body = "{\"errorCode\":70001,\"errorMessage\":";
  append_json_string(body, message);
  if (!request_id.empty()) {
    body += ",\"requestId\":";
    append_json_string(body, request_id);
  }
  body += '}';
  return body;
}

// A whole answer to a refused request, head and body, with a request id of its own; the connection closes
// after it. The refusal goes to the access log (options_.on_refusal).
std::string server::refusal(unsigned status, std::string_view message, std::string_view remote) {
  const request_id id = new_request_id();
  const std::string body = refusal_body(message, id);
  std::string out;
  append_head(out, status, "application/json", id, body.size(), false, false);
  out += body;
  if (options_.on_refusal) options_.on_refusal(refusal_event{status, message, remote, id});
  return out;
}

namespace {

// Why a TLS handshake failed, for the access log.
std::string handshake_failure(const boost::system::error_code& ec, bool timed_out) {
  if (timed_out) return "not completed within tls_handshake_timeout_sec";
  if (ec == asio::error::eof || ec == asio::ssl::error::stream_truncated || ec == asio::error::connection_reset) {
    return "the client closed the connection";
  }
  return ec.message();
}

}  // namespace

std::string limit_message(size_limit which, std::uint64_t limit) {
  switch (which) {
    case size_limit::body_bytes: return "request body exceeds " + std::to_string(limit) + " bytes";
    case size_limit::header_bytes: return "request header exceeds " + std::to_string(limit) + " bytes";
    case size_limit::header_fields: return "request has more than " + std::to_string(limit) + " header fields";
  }
  return "request too large";
}

asio::awaitable<void> server::session(std::size_t index, std::shared_ptr<connection> conn) {
  auto& st = *threads_state_[index];
  if (auto* tls = std::get_if<tls_stream>(&conn->stream)) {
    conn->deadline = st.now + std::chrono::seconds(options_.limits.tls_handshake_timeout_sec);
    auto [hec] = co_await tls->async_handshake(asio::ssl::stream_base::server, use_tuple);
    if (hec) {
      const std::string remote = conn->remote();
      if (!co_await answer_plaintext(*conn, hec, remote) && options_.on_refusal) {
        const std::string reason = "TLS handshake failed: " + handshake_failure(hec, conn->timed_out);
        options_.on_refusal(refusal_event{0, reason, remote, {}});
      }
      metrics_.tls_handshake_failures.add();  // plaintext on the TLS port, old protocol, timeout, ...
    } else if (!stopping_) {
      bool server_closes = false;
      switch (negotiated_protocol(tls->native_handle())) {
        case app_protocol::h2: co_await serve_h2(*conn, *tls, {}); break;  // sends its own close_notify
        case app_protocol::http1: server_closes = co_await serve_http1(index, *conn, *tls); break;
      }
      if (server_closes) {
        // One small write, bounded like a response write; the peer's close_notify is not waited for (HTTP
        // framing already tells a complete response from a truncated one).
        conn->deadline = st.now + std::chrono::seconds(options_.limits.request_timeout_sec);
        conn->timed_out = false;
        co_await send_close_notify(*tls);
      }
    }
  } else {
    auto& sock = std::get<tcp::socket>(conn->stream);
    boost::system::error_code nec;
    sock.non_blocking(true, nec);  // serve_http1 writes an answer synchronously first
    if (!nec) co_await serve_http1(index, *conn, sock);
  }
  boost::system::error_code ec;
  conn->socket().shutdown(tcp::socket::shutdown_send, ec);
  conn->socket().close(ec);
  st.connections.erase(conn->self);
  forget_connection(index);
}

// After a failed handshake: if the client spoke plain HTTP to the TLS port (OpenSSL recognises a request line
// where the first TLS record should be: SSL_R_HTTP_REQUEST), it gets a 400 that says so, as nginx does,
// rather than a silently closed socket. Nothing was encrypted, so the answer goes out in the clear.
asio::awaitable<bool> server::answer_plaintext(connection& conn, const boost::system::error_code& handshake_error,
                                               std::string_view remote) {
  if (handshake_error.category() != asio::error::get_ssl_category() ||
      ERR_GET_REASON(static_cast<unsigned long>(handshake_error.value())) != SSL_R_HTTP_REQUEST) {
    co_return false;
  }
  const std::string out = refusal(400, "this port speaks HTTPS: send the request to https://", remote);
  co_await asio::async_write(conn.socket(), asio::buffer(out), use_tuple);
  co_return true;
}

void server::forget_connection(std::size_t index) {
  threads_state_[index]->open.fetch_sub(1, std::memory_order_relaxed);
  connections_.fetch_sub(1, std::memory_order_relaxed);
}

template <class Stream>
asio::awaitable<void> server::serve_h2(connection& conn, Stream& stream, std::string_view already_read) {
  conn.h2 = true;
  conn.busy = true;
  conn.deadline = steady::time_point::max();
  if (stopping_) conn.h2_ctl.shutdown();
  const std::string remote = conn.remote();
  co_await run_h2(stream, already_read, handler_, h2_limits::from(options_.limits), remote, &conn.h2_ctl, &metrics_,
                  options_.on_refusal ? &options_.on_refusal : nullptr);
}

template <class Stream>
asio::awaitable<bool> server::serve_http1(std::size_t index, connection& conn, Stream& sock) {
  auto& st = *threads_state_[index];
  beast::flat_buffer buffer;
  const std::string remote = conn.remote();
  bool first_request = true;
  const auto idle = std::chrono::seconds(options_.limits.idle_timeout_sec);
  const auto request_timeout = std::chrono::seconds(options_.limits.request_timeout_sec);
  std::string head;
  incoming_request in;
  // Early reads (early_reads.h): a connection whose early read missed goes back to Asio's reads
  // for 1, 2, 4 ... 64 answers before it tries again (some clients answer later than others).
  unsigned early_skip = 0, early_backoff = 1;

  for (;;) {
    conn.busy = false;
    if (stopping_) co_return true;
    if (buffer.size() == 0) {
      // Idle keep-alive: wait for the first byte of the next request.
      conn.deadline = st.now + idle;
      bool early = false;
      if constexpr (std::is_same_v<Stream, tcp::socket>) {
        if (first_request) {
          // nothing answered yet: nothing to read early after
        } else if (early_skip > 0) {
          --early_skip;
        } else if (st.early.want()) {
          co_await asio::post(sock.get_executor(), asio::use_awaitable);
          boost::system::error_code rec;
          const std::size_t n = sock.read_some(buffer.prepare(16 * 1024), rec);  // non-blocking (session)
          early = !rec;
          if (!rec) {
            buffer.commit(n);
            early_backoff = 1;
          } else if (would_block(rec)) {
            early_skip = early_backoff;
            early_backoff = std::min(2 * early_backoff, 64u);
          } else {
            co_return conn.timed_out || stopping_;
          }
          st.early.record(early);
        }
      }
      if (!early) {
        auto [ec, n] = co_await sock.async_read_some(buffer.prepare(16 * 1024), use_tuple);
        if (ec) co_return conn.timed_out || stopping_;  // idle timeout or shutdown: ours; else the peer's
        buffer.commit(n);
      }
    }
    conn.busy = true;
    // From the first byte, the whole request must arrive within request_timeout (slowloris).
    conn.deadline = st.now + request_timeout;
    if (first_request) {
      first_request = false;
      // h2c with prior knowledge (RFC 9113 3.3): the connection opens with the client preface.
      auto bytes = [&] { return std::string_view(static_cast<const char*>(buffer.data().data()), buffer.size()); };
      while (buffer.size() < h2_client_preface.size() && h2_client_preface.starts_with(bytes())) {
        auto [ec, n] = co_await sock.async_read_some(buffer.prepare(16 * 1024), use_tuple);
        if (ec) co_return conn.timed_out || stopping_;
        buffer.commit(n);
      }
      if (bytes().starts_with(h2_client_preface)) {
        co_await serve_h2(conn, sock, bytes());
        co_return false;  // run_h2 has closed the connection
      }
    }
    in.clear();
    bool keep_alive = false;
    const std::size_t plain = parse_plain_request(
        std::string_view(static_cast<const char*>(buffer.data().data()), buffer.size()), options_.limits, in,
        keep_alive);
    buffer.consume(plain);
    // Anything else (the request is incomplete, or more than plain) goes through Beast's parser. It parses
    // what the buffer holds and reads more until the request is complete. Driving the parser by hand (rather
    // than through Beast's composed read) keeps a request that arrived whole free of any extra completion hop.
    // The loop ends with the read's error (the connection is then dropped) or the parser's.
    request_reader parser(in, options_.limits);
    bool continue_sent = false;
    boost::system::error_code pec, rec;
    while (plain == 0 && !parser.is_done()) {
      if (buffer.size() > 0) {
        const std::size_t n = parser.put(buffer.data(), pec);
        buffer.consume(n);
        if (!pec) {
          if (parser.is_header_done() && !parser.is_done() && in.expect_continue && !continue_sent) {
            static constexpr std::string_view cont = "HTTP/1.1 100 Continue\r\n\r\n";
            continue_sent = true;
            auto [cec, cn] = co_await asio::async_write(sock, asio::buffer(cont), use_tuple);
            if (cec) {
              rec = cec;
              break;
            }
          }
          if (n > 0 || parser.is_done()) continue;
        } else if (pec == bhttp::error::need_more) {
          pec = {};
        } else {
          break;
        }
      }
      auto [ec, n] = co_await sock.async_read_some(buffer.prepare(16 * 1024), use_tuple);
      if (ec) {
        rec = ec;
        break;
      }
      buffer.commit(n);
    }
    if (rec) co_return false;  // closed, reset or too slow: nothing sensible to answer
    if (pec) {
      metrics_.http_errors.add();
      const auto& lim = options_.limits;
      std::string rejection;
      if (in.fault != framing_fault::none) {
        const auto [status, message] = framing_refusal(in.fault);
        rejection = refusal(status, message, remote);
      } else if (pec == bhttp::error::header_limit && in.too_many_fields) {
        rejection = refusal(431, limit_message(size_limit::header_fields, lim.max_header_count), remote);
      } else if (pec == bhttp::error::header_limit) {
        rejection = refusal(431, limit_message(size_limit::header_bytes, lim.max_header_bytes), remote);
      } else if (pec == bhttp::error::body_limit) {
        rejection = refusal(413, limit_message(size_limit::body_bytes, lim.max_body_bytes), remote);
      } else {
        rejection = refusal(400, "malformed HTTP request: " + pec.message(), remote);
      }
      conn.deadline = st.now + request_timeout;
      conn.timed_out = false;
      auto [jec, jn] = co_await asio::async_write(sock, asio::buffer(rejection), use_tuple);
      co_return !jec;
    }

    request req;
    req.verb = to_method(in.verb);
    req.target = in.target;
    req.body = in.body;
    req.remote = remote;
    reply rep;
    bool failed = false;
    conn.deadline = steady::time_point::max();  // the handler keeps its own deadline
    try {
      rep = co_await handler_(req);
    } catch (const std::exception&) {
      failed = true;  // a bug: the handler answers every expected failure itself
    }
    if (failed) {
      metrics_.http_errors.add();
      rep.status = 500;
      rep.content_type = "application/json";
      rep.body = internal_error_body;
    }
    const bool keep = (plain ? keep_alive : parser.keep_alive()) && !stopping_ && !failed;
    head.clear();
    const bool head_only = req.verb == method::head;
    append_head(head, rep.status, rep.content_type, rep.request_id, rep.body.size(), keep, in.version == 10);
    std::array<asio::const_buffer, 2> bufs{asio::buffer(head),
                                           head_only ? asio::const_buffer() : asio::buffer(rep.body)};
    conn.deadline = st.now + request_timeout;  // a reader that stops reading is cut off too
    // The answer waits behind the handlers already queued on this thread (the other requests that arrived
    // with this one), so the answers of a batch leave together: a client woken for one finds the rest there
    // (measured in docs/ARCHITECTURE.md).
    co_await asio::post(sock.get_executor(), asio::use_awaitable);
    // A plain socket (non-blocking, see session) takes the answer at once, with no completion hop; whatever
    // the kernel did not take then goes out asynchronously. TLS streams always write asynchronously.
    std::size_t sent = 0;
    if constexpr (std::is_same_v<Stream, tcp::socket>) {
      boost::system::error_code sec;
      sent = sock.write_some(bufs, sec);
      if (sec && !would_block(sec)) co_return false;
    }
    if (sent < asio::buffer_size(bufs)) {
      beast::buffers_suffix<std::array<asio::const_buffer, 2>> rest(bufs);
      rest.consume(sent);
      auto [wec, wn] = co_await asio::async_write(sock, rest, use_tuple);
      if (wec) co_return false;
    }
    if (!keep) co_return true;
  }
}

}  // namespace callrec::http
