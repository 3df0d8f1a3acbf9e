// Test support: runs coroutines of the code under test (store ports, operations, the dispatcher) from a plain
// test body. An io_context on a thread of its own; run() waits for one coroutine, spawn() starts one and
// calls back when it is done. One thread: coroutines start in the order they were spawned (a test that
// queues updates without waiting relies on it).
#pragma once

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <functional>
#include <future>
#include <optional>
#include <thread>

namespace callrec::testing {

class io_runner {
 public:
  io_runner() { start(); }
  ~io_runner() { stop(); }
  io_runner(const io_runner&) = delete;
  io_runner& operator=(const io_runner&) = delete;

  // Waits for `a` to complete and returns its value (an exception it throws is thrown here).
  template <class T>
  T run(boost::asio::awaitable<T> a) {
    return boost::asio::co_spawn(*ctx_, std::move(a), boost::asio::use_future).get();
  }
  // Starts `a`; `then` runs with its value on the runner's thread.
  template <class T>
  void spawn(boost::asio::awaitable<T> a, std::function<void(T)> then) {
    boost::asio::co_spawn(*ctx_, std::move(a), [then = std::move(then)](std::exception_ptr e, T v) {
      if (e) std::rethrow_exception(e);
      then(std::move(v));
    });
  }
  boost::asio::io_context& context() { return *ctx_; }
  // Returns once every coroutine spawned before has started and run to its first wait.
  void flush() {
    run([]() -> boost::asio::awaitable<bool> { co_return true; }());
  }

  // Ends the thread after the work in flight (a test forks with no thread running, then starts again).
  void stop() {
    if (!thread_.joinable()) return;
    guard_.reset();
    thread_.join();
    ctx_.reset();
  }
  void start() {
    if (thread_.joinable()) return;
    ctx_.emplace(1);
    guard_.emplace(boost::asio::make_work_guard(*ctx_));
    thread_ = std::thread([this] { ctx_->run(); });
  }

 private:
  std::optional<boost::asio::io_context> ctx_;
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> guard_;
  std::thread thread_;
};

}  // namespace callrec::testing
