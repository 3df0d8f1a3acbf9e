// The store contract suite: written once, run against every store. A backend is a factory that opens (or
// reopens) the store kept under a directory; each test gets a fresh directory. A new backend joins with one
// INSTANTIATE_TEST_SUITE_P(<Name>, store_contract, ::testing::Values(<its store_backend>), backend_name).
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <functional>
#include <limits>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "store/store.h"
#include "core/thread_completion.h"
#include "support/io_runner.h"

namespace callrec::testing_store {

struct store_backend {
  std::string name;
  // Opens the store kept under `dir` (the same dir gives the same data); fails the test on error.
  std::function<std::unique_ptr<store>(const std::filesystem::path& dir)> open;
  // Why the backend cannot run here (its server is not configured), or "" when it can: the suite skips.
  std::function<std::string()> unavailable = [] { return std::string(); };
};

inline std::string backend_name(const ::testing::TestParamInfo<store_backend>& info) { return info.param.name; }

// A deadline no test reaches.
inline deadline far() { return std::chrono::steady_clock::now() + std::chrono::seconds(60); }

// Counts completions and keeps their errors; waits with a deadline, never sleeps.
class done_latch {
 public:
  completion<void> make() {
    return [this](result<void> r) {
      std::lock_guard lock(mu_);
      ++calls_;
      if (!r) errors_.push_back(r.error());
      cv_.notify_all();
    };
  }
  // True when `n` completions arrived within the deadline.
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

  // The ports, awaited from the test body.
  result<std::optional<call_record>> get(std::uint32_t sdkappid, std::string_view call_id,
                                         std::int64_t oldest_ts = std::numeric_limits<std::int64_t>::min());
  result<record_page> find(const record_filter& f);
  result<void> update(std::uint32_t sdkappid, std::vector<std::string> call_ids, update_fn fn);
  // Starts an update without waiting for it; `done` runs once it is durable or failed.
  void update_then(std::uint32_t sdkappid, std::vector<std::string> call_ids, update_fn fn, completion<void> done);
  // Due calls with no lease: what is due, every time it is asked.
  result<std::vector<due_call>> due_now(std::int64_t now_ms, std::size_t limit);
  result<std::vector<due_call>> claim(std::int64_t now_ms, std::size_t limit, std::chrono::milliseconds lease);
  result<store_stats> stats();
  result<void> ping();
  result<retention_report> retain(const retention_policy& policy);
  // Inserts records through update_calls (each update finishes up to `per_update` calls of one app), all
  // queued at once, and waits until every one is durable.
  void insert(const std::vector<call_record>& records, std::size_t per_update = 20);

  std::filesystem::path dir_;
  testing::io_runner io_;
  std::unique_ptr<store> store_;
};

}  // namespace callrec::testing_store
