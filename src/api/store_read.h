// Awaiting a store read (store::async_*) from an I/O thread, up to the request's deadline. (A store that
// answers inline, store::reads_inline, is read without one: hub::answer_now.)
//
// The read starts asynchronously; one that is still pending suspends the coroutine on a timer set to the
// deadline: whichever comes first, the answer (posted back from the store's thread) or the deadline, resumes
// it. A read that missed the deadline is left to finish on its own; its late answer is dropped. The coroutine
// frame may also be destroyed while suspended (a server shutting down); the shared state outlives whichever
// side lets go of it last.
#pragma once

#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <optional>
#include <utility>

#include "core/error.h"
#include "store/store.h"

namespace callrec::api {

namespace detail {

template <class T>
class read_state {
 public:
  enum : int { pending, waiting, done };

  // One reference for the awaiting coroutine, one for the store's completion.
  std::atomic<int> refs{2};
  std::atomic<int> state{pending};
  std::optional<result<T>> value;                      // written once, before `state` becomes done
  std::optional<boost::asio::steady_timer> timer;      // the pending path only; used on the executor only
  std::optional<boost::asio::any_io_executor> executor;  // set before `state` becomes waiting

  void release() {
    if (refs.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }

  // Any thread, once.
  void complete(result<T> r) {
    value.emplace(std::move(r));
    if (state.exchange(done, std::memory_order_acq_rel) == waiting) {
      // Wake the coroutine on its own thread. If the executor is shut down first, the handler is destroyed
      // unrun, and the holder still lets go of the state.
      boost::asio::post(*executor, [h = holder{this}]() { h.self->timer->cancel(); });
    } else {
      release();
    }
  }

  struct holder {
    read_state* self;
    explicit holder(read_state* s) : self(s) {}
    holder(holder&& o) noexcept : self(std::exchange(o.self, nullptr)) {}
    holder(const holder&) = delete;
    holder& operator=(const holder&) = delete;
    holder& operator=(holder&&) = delete;
    ~holder() {
      if (self) self->release();
    }
  };
};

}  // namespace detail

// A store read in flight, begun by the constructor: `start(done)` begins the asynchronous read. When the
// answer is there, ready() is true. Otherwise `co_await wait(deadline)` first. Then take() gives the answer,
// or errc::internal (101001) if the deadline came first.
template <class T>
class store_read {
  using state_t = detail::read_state<T>;

 public:
  template <class Start>
  explicit store_read(Start&& start) : own_{nullptr} {
    own_.self = new state_t;
    state_t* s = own_.self;
    try {
      start(read_done<T>([s](result<T> r) { s->complete(std::move(r)); }));
    } catch (...) {
      own_.self = nullptr;
      s->release();  // a read that failed to start never completes: its reference goes with it
      s->release();  // nor is it awaited
      throw;
    }
  }
  bool ready() const { return own_.self->state.load(std::memory_order_acquire) == state_t::done; }

  // Suspends until the store answers or `deadline` passes.
  boost::asio::awaitable<void> wait(std::chrono::steady_clock::time_point deadline) {
    if (ready()) co_return;
    state_t* st = own_.self;
    st->executor.emplace(co_await boost::asio::this_coro::executor);
    st->timer.emplace(*st->executor, deadline);
    int expected = state_t::pending;
    if (st->state.compare_exchange_strong(expected, state_t::waiting, std::memory_order_acq_rel)) {
      boost::system::error_code ec;
      co_await st->timer->async_wait(boost::asio::redirect_error(boost::asio::use_awaitable, ec));
    }
  }

  result<T> take() {
    if (ready()) return std::move(*own_.self->value);
    return make_error(errc::internal, "the store did not answer within the request deadline; retry");
  }

 private:
  typename state_t::holder own_;  // the shared state of an asynchronous read
};

}  // namespace callrec::api
