// Test support: a store that answers its API reads late, on a thread of its own, the way a store across the
// network does. In front of a real store: everything else passes straight through.
//
// While the gate is shut, async_get_record / async_find_records wait at it; open() lets them through (and any
// that come later). A test waits for reads to arrive at the gate with wait_held(), never with a sleep.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>

#include "store/store.h"

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

  result<std::optional<call_record>> get_record(std::uint32_t sdkappid, std::string_view call_id) override {
    return inner_->get_record(sdkappid, call_id);
  }
  result<record_page> find_records(const record_filter& filter) override { return inner_->find_records(filter); }
  void async_get_record(std::uint32_t sdkappid, std::string_view call_id,
                        read_done<std::optional<call_record>> done) override {
    enqueue([this, sdkappid, id = std::string(call_id), done = std::move(done)](bool closing) {
      if (closing) return done(make_error(errc::internal, "store closed"));
      done(inner_->get_record(sdkappid, id));
    });
  }
  void async_find_records(const record_filter& filter, read_done<record_page> done) override {
    enqueue([this, filter, done = std::move(done)](bool closing) {
      if (closing) return done(make_error(errc::internal, "store closed"));
      done(inner_->find_records(filter));
    });
  }
  bool reads_inline() const noexcept override { return false; }
  void update_calls(std::uint32_t sdkappid, std::vector<std::string> call_ids, update_fn fn, done_fn done) override {
    inner_->update_calls(sdkappid, std::move(call_ids), std::move(fn), std::move(done));
  }
  result<std::vector<due_call>> due_calls(std::int64_t now_ms, std::size_t limit) override {
    return inner_->due_calls(now_ms, limit);
  }
  result<std::uint64_t> purge_records(std::uint32_t sdkappid, std::int64_t before_ts, std::size_t limit) override {
    return inner_->purge_records(sdkappid, before_ts, limit);
  }
  result<store_stats> stats() override { return inner_->stats(); }
  result<void> ping() override { return inner_->ping(); }
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
