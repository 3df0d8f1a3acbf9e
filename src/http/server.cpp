#include "http/server.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <list>
#include <optional>

#include "http/request_parser.h"
#include "obs/access_log.h"

namespace callrec::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

struct server::connection {
  explicit connection(tcp::socket s) : stream(std::move(s)) {}
  beast::tcp_stream stream;
  bool busy = false;  // a request is being read or answered; only touched on the connection's thread
  std::list<std::shared_ptr<connection>>::iterator self;
};

struct server::per_thread {
  explicit per_thread(asio::io_context& ctx) : acceptor(ctx) {}
  tcp::acceptor acceptor;
  std::list<std::shared_ptr<connection>> connections;  // owned by this thread
};

server::server(server_options options, handler h, obs::metrics& metrics)
    : options_(std::move(options)), handler_(std::move(h)), metrics_(metrics) {
  std::uint32_t n = options_.threads == 0 ? std::max(1u, std::thread::hardware_concurrency()) : options_.threads;
  for (std::uint32_t i = 0; i < n; ++i) {
    contexts_.push_back(std::make_unique<asio::io_context>(1));
    threads_state_.push_back(std::make_unique<per_thread>(*contexts_.back()));
  }
}

server::~server() { stop(0); }

result<void> server::start() {
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
  }
  for (std::size_t i = 0; i < contexts_.size(); ++i) {
    threads_.emplace_back([ctx = contexts_[i].get()] {
      auto guard = asio::make_work_guard(*ctx);
      ctx->run();
    });
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
      for (auto& c : st->connections) {
        if (!c->busy) c->stream.socket().close(ec);  // idle: nothing in flight
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
    auto conn = std::make_shared<connection>(std::move(sock));
    st.connections.push_front(conn);
    conn->self = st.connections.begin();
    asio::co_spawn(*contexts_[index], session(index, conn), asio::detached);
  }
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

// An HTTP-level rejection (the request never reached the API): a status and a JSON envelope.
bhttp::response<bhttp::string_body> transport_error(unsigned status, std::string_view message) {
  bhttp::response<bhttp::string_body> res{static_cast<bhttp::status>(status), 11};
  res.set(bhttp::field::content_type, "application/json");
  res.set(bhttp::field::connection, "close");
  std::string body = "{\"errorCode\":70001,\"errorMessage\":";
  obs::append_json_string(body, message);
  body += "}";
  res.body() = std::move(body);
  res.keep_alive(false);
  res.prepare_payload();
  return res;
}

}  // namespace

asio::awaitable<void> server::session(std::size_t index, std::shared_ptr<connection> conn) {
  auto& stream = conn->stream;
  beast::flat_buffer buffer;
  std::string remote;
  {
    boost::system::error_code ec;
    auto ep = stream.socket().remote_endpoint(ec);
    if (!ec) remote = ep.address().to_string() + ":" + std::to_string(ep.port());
  }
  const auto idle = std::chrono::seconds(options_.limits.idle_timeout_sec);
  const auto request_timeout = std::chrono::seconds(options_.limits.request_timeout_sec);

  for (;;) {
    conn->busy = false;
    if (stopping_) break;
    if (buffer.size() == 0) {
      // Idle keep-alive: wait for the first byte of the next request.
      stream.expires_after(idle);
      auto [ec, n] = co_await stream.async_read_some(buffer.prepare(16 * 1024), use_tuple);
      if (ec) break;
      buffer.commit(n);
    }
    conn->busy = true;
    // From the first byte, the whole request must arrive within request_timeout (slowloris).
    stream.expires_after(request_timeout);
    request_parser parser;
    configure_parser(parser, options_.limits);
    auto [hec, hn] = co_await bhttp::async_read_header(stream, buffer, parser, use_tuple);
    std::optional<bhttp::response<bhttp::string_body>> rejection;
    if (hec) {
      metrics_.http_errors.add();
      if (hec == bhttp::error::header_limit) {
        rejection = transport_error(431, "request header exceeds " + std::to_string(options_.limits.max_header_bytes) +
                                             " bytes");
      } else if (hec == bhttp::error::body_limit) {
        rejection = transport_error(413, "request body exceeds " + std::to_string(options_.limits.max_body_bytes) +
                                             " bytes");
      } else if (hec != beast::error::timeout && hec != asio::error::eof && hec != bhttp::error::end_of_stream &&
                 hec != asio::error::connection_reset && hec != asio::error::operation_aborted) {
        rejection = transport_error(400, "malformed HTTP request: " + hec.message());
      }
    } else {
      auto& head = parser.get();
      auto expect = head[bhttp::field::expect];
      if (!parser.is_done() && beast::iequals(expect, "100-continue")) {
        bhttp::response<bhttp::empty_body> cont{bhttp::status::continue_, head.version()};
        auto [cec, cn] = co_await bhttp::async_write(stream, cont, use_tuple);
        if (cec) break;
      }
      if (!parser.is_done()) {
        auto [bec, bn] = co_await bhttp::async_read(stream, buffer, parser, use_tuple);
        if (bec) {
          metrics_.http_errors.add();
          if (bec == bhttp::error::body_limit) {
            rejection = transport_error(
                413, "request body exceeds " + std::to_string(options_.limits.max_body_bytes) + " bytes");
          } else {
            break;  // timeout or broken connection: nothing sensible to answer
          }
        }
      }
    }
    if (rejection) {
      stream.expires_after(request_timeout);
      co_await bhttp::async_write(stream, *rejection, use_tuple);
      break;
    }
    if (hec) break;

    auto& msg = parser.get();
    request req;
    req.verb = to_method(msg.method());
    req.target = std::string_view(msg.target().data(), msg.target().size());
    req.body = msg.body();
    req.remote = remote;
    reply rep;
    bool failed = false;
    try {
      rep = co_await handler_(req);
    } catch (const std::exception&) {
      failed = true;  // a bug: the handler answers every expected failure itself
    }
    if (failed) {
      metrics_.http_errors.add();
      auto res = transport_error(500, "internal error");
      co_await bhttp::async_write(stream, res, use_tuple);
      break;
    }
    bhttp::response<bhttp::string_body> res{static_cast<bhttp::status>(rep.status), msg.version()};
    res.set(bhttp::field::content_type, rep.content_type);
    if (!rep.request_id.empty()) res.set("X-Request-Id", rep.request_id);
    const bool keep = msg.keep_alive() && !stopping_;
    res.keep_alive(keep);
    res.body() = std::move(rep.body);
    res.prepare_payload();
    if (req.verb == method::head) res.body().clear();
    stream.expires_after(request_timeout);
    auto [wec, wn] = co_await bhttp::async_write(stream, res, use_tuple);
    if (wec || !keep) break;
  }
  boost::system::error_code ec;
  stream.socket().shutdown(tcp::socket::shutdown_send, ec);
  stream.socket().close(ec);
  threads_state_[index]->connections.erase(conn->self);
  connections_.fetch_sub(1, std::memory_order_relaxed);
}

}  // namespace callrec::http
