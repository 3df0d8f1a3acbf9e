// Test support: a store that answers its API reads late, on a thread of its own, the way a store across the
// network does. In front of a real store: everything else passes straight through.
//
// While the gate is shut, get_record / find_records wait at it (the awaiting coroutine is suspended, its
// thread free); open() lets them through (and any that come later). A test waits for reads to arrive at the
// gate with wait_held(), never with a sleep.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>

#include "store/store.h"
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include "core/thread_completion.h"

namespace callrec::testing {

class gated_store : public store {
 public:
  explicit gated_store(std::unique_ptr<store> inner) : inner_(std::move(inner)), worker_([this] { run(); }) {}
  ~gated_store() override { close(); }

  void shut() {
    std::lock_guard lk(mu_);
    open_ = false;
  }
  void open() {
    {
      std::lock_guard lk(mu_);
      open_ = true;
    }
    cv_.notify_all();
  }
  // Waits until at least `n` reads are held at the gate; false if they did not come within `limit`.
  bool wait_held(std::size_t n, std::chrono::seconds limit = std::chrono::seconds(20)) {
    std::unique_lock lk(mu_);
    return cv_.wait_for(lk, limit, [&] { return queue_.size() >= n; });
  }
  // Reads answered so far (late ones included).
  std::size_t answered() {
    std::lock_guard lk(mu_);
    return answered_;
  }

  awaitable<result<std::optional<stored_record>>> get_record(std::uint32_t sdkappid, std::string_view call_id,
                                                             std::int64_t oldest_ts, deadline due) override {
    using T = std::optional<stored_record>;
    co_return co_await await_store_thread<T>(
        [&](completion<T> done) {
          enqueue([this, sdkappid, id = std::string(call_id), oldest_ts, done = std::move(done)](bool closing) {
            if (closing) return done(make_error(errc::unavailable, "store closed"));
            done(run_inner(inner_->get_record(sdkappid, id, oldest_ts, far())));
          });
        },
        due, "the store did not answer within the request deadline; retry");
  }
  awaitable<result<record_page>> find_records(const record_filter& filter, deadline due) override {
    co_return co_await await_store_thread<record_page>(
        [&](completion<record_page> done) {
          enqueue([this, filter, done = std::move(done)](bool closing) {
            if (closing) return done(make_error(errc::unavailable, "store closed"));
            done(run_inner(inner_->find_records(filter, far())));
          });
        },
        due, "the store did not answer within the request deadline; retry");
  }
  awaitable<result<void>> update_calls(std::uint32_t sdkappid, std::vector<std::string> call_ids, update_fn fn,
                                       deadline due) override {
    // The awaitable is made first: GCC 12 destroys temporaries built inside a co_await expression twice.
    auto pending = inner_->update_calls(sdkappid, std::move(call_ids), std::move(fn), due);
    co_return co_await std::move(pending);
  }
  awaitable<result<std::vector<due_call>>> claim_due_calls(std::int64_t now_ms, std::size_t limit,
                                                          std::chrono::milliseconds lease) override {
    co_return co_await inner_->claim_due_calls(now_ms, limit, lease);
  }
  awaitable<result<void>> ping(deadline due) override { co_return co_await inner_->ping(due); }
  awaitable<result<store_stats>> stats() override { co_return co_await inner_->stats(); }
  awaitable<result<retention_report>> apply_retention(const retention_policy& policy, deadline due) override {
    co_return co_await inner_->apply_retention(policy, due);
  }
  // Completes the reads still held (with an error), then closes the store behind.
  void close() override {
    {
      std::lock_guard lk(mu_);
      if (closed_) return;
      closed_ = true;
    }
    cv_.notify_all();
    worker_.join();
    inner_->close();
  }

 private:
  static deadline far() { return std::chrono::steady_clock::now() + std::chrono::seconds(60); }
  // The inner store's reads complete without suspending: run one to its end on this (the worker's) thread.
  template <class T>
  static T run_inner(awaitable<T> a) {
    boost::asio::io_context ctx;
    auto f = boost::asio::co_spawn(ctx, std::move(a), boost::asio::use_future);
    ctx.run();
    return f.get();
  }
  void enqueue(std::function<void(bool closing)> job) {
    {
      std::lock_guard lk(mu_);
      if (!closed_) {
        queue_.push_back(std::move(job));
        cv_.notify_all();
        return;
      }
    }
    job(true);
  }
  void run() {
    std::unique_lock lk(mu_);
    for (;;) {
      cv_.wait(lk, [&] { return closed_ || (open_ && !queue_.empty()); });
      if (queue_.empty()) return;  // closed, nothing held
      auto job = std::move(queue_.front());
      queue_.pop_front();
      const bool closing = closed_;
      lk.unlock();
      job(closing);
      lk.lock();
      ++answered_;
    }
  }

  std::unique_ptr<store> inner_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void(bool)>> queue_;
  bool open_ = true;
  bool closed_ = false;
  std::size_t answered_ = 0;
  std::thread worker_;  // last: starts after the members it uses
};

}  // namespace callrec::testing
