// For a store whose work runs on threads of its own (the embedded store's writer): awaiting that work from a
// coroutine on an I/O thread, up to a deadline, without holding the thread.
//
// `start(done)` hands the work over; `done(result)` may then be called once, on any thread (or at once, on
// this one). The answer is posted back to the awaiting coroutine's executor. A deadline timer races it: past
// the deadline the coroutine resumes with errc::timeout and the late answer is dropped (the work itself is
// not undone). The coroutine frame may also be destroyed while it waits (a server shutting down); the shared
// state lives until both sides have let go.
#pragma once

#include <boost/asio/async_result.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <functional>
#include <memory>
#include <utility>

#include "core/clock.h"
#include "core/error.h"

namespace callrec {

// Called once, on any thread, with the outcome of work handed to a store thread. Must not block.
template <class T>
using completion = std::function<void(result<T>)>;

namespace detail {

template <class Handler, class T>
struct thread_op {
  thread_op(Handler h, const boost::asio::any_io_executor& ex, deadline due) : handler(std::move(h)), timer(ex, due) {}
  Handler handler;
  boost::asio::steady_timer timer;
  bool done = false;  // touched on the executor's thread only
  void complete(result<T> r) {
    if (done) return;
    done = true;
    timer.cancel();
    std::move(handler)(std::move(r));
  }
};

}  // namespace detail

// `timeout_message`: what the caller is told when the deadline comes first.
template <class T, class Start>
boost::asio::awaitable<result<T>> await_store_thread(Start start, deadline due, const char* timeout_message) {
  namespace asio = boost::asio;
  const auto ex = co_await asio::this_coro::executor;
  co_return co_await asio::async_initiate<const asio::use_awaitable_t<>, void(result<T>)>(
      [&](auto handler) {
        using op_t = detail::thread_op<decltype(handler), T>;
        auto op = std::make_shared<op_t>(std::move(handler), ex, due);
        op->timer.async_wait([op, timeout_message](boost::system::error_code ec) {
          if (!ec) op->complete(make_error(errc::timeout, timeout_message));
        });
        start(completion<T>([op, ex](result<T> r) {
          asio::post(ex, [op, r = std::move(r)]() mutable { op->complete(std::move(r)); });
        }));
      },
      asio::use_awaitable);
}

}  // namespace callrec
