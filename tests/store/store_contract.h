// The store contract suite: written once, run against every store. A backend is a factory that opens (or
// reopens) the store kept under a directory; each test gets a fresh directory. A new backend joins with one
// INSTANTIATE_TEST_SUITE_P(<Name>, store_contract, ::testing::Values(<its store_backend>), backend_name).
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "store/store.h"

namespace callrec::testing_store {

struct store_backend {
  std::string name;
  // Opens the store kept under `dir` (the same dir gives the same data); fails the test on error.
  std::function<std::unique_ptr<store>(const std::filesystem::path& dir)> open;
};

inline std::string backend_name(const ::testing::TestParamInfo<store_backend>& info) { return info.param.name; }

// Counts `done` calls and keeps their outcomes; waits with a deadline, never sleeps.
class done_latch {
 public:
  store::done_fn make() {
    return [this](result<void> r) {
      std::lock_guard lock(mu_);
      ++calls_;
      if (!r) errors_.push_back(r.error());
      cv_.notify_all();
    };
  }
  // True when `n` calls arrived within the deadline.
  bool wait_for(std::size_t n, std::chrono::seconds deadline = std::chrono::seconds(60)) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, deadline, [&] { return calls_ >= n; });
  }
  std::size_t calls() {
    std::lock_guard lock(mu_);
    return calls_;
  }
  std::vector<error> errors() {
    std::lock_guard lock(mu_);
    return errors_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::size_t calls_ = 0;
  std::vector<error> errors_;
};

class store_contract : public ::testing::TestWithParam<store_backend> {
 protected:
  void SetUp() override;
  void TearDown() override;

  std::unique_ptr<store> open() { return GetParam().open(dir_); }
  void reopen() {
    store_.reset();
    store_ = open();
    ASSERT_TRUE(store_);
  }

  // update_calls, waiting for its `done`.
  result<void> update(std::uint32_t sdkappid, std::vector<std::string> call_ids, store::update_fn fn);
  // Inserts records through update_calls (each update finishes up to `per_update` calls of one app), all
  // queued at once, and waits until every one is durable.
  void insert(const std::vector<call_record>& records, std::size_t per_update = 20);

  std::filesystem::path dir_;
  std::unique_ptr<store> store_;
};

}  // namespace callrec::testing_store
