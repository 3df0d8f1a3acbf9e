// The access log: one JSON line per request (SPEC section 6). Lines are buffered and written by a
// background thread so request threads never block on the disk.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include "core/json_text.h"

namespace callrec::obs {

struct access_entry {
  std::string_view request_id;
  std::string_view api;
  std::uint32_t sdkappid = 0;
  int error_code = 0;
  double latency_ms = 0;
  unsigned status = 200;
  std::string_view remote;
};

class access_log {
 public:
  // target: "stdout", "off", or a file path (appended).
  explicit access_log(const std::string& target);
  ~access_log();
  access_log(const access_log&) = delete;
  access_log& operator=(const access_log&) = delete;

  bool enabled() const noexcept { return out_ != nullptr; }
  void write(const access_entry& e);
  void flush();

 private:
  void run();
  std::FILE* out_ = nullptr;
  bool owns_ = false;
  std::mutex mu_;
  std::condition_variable cv_;
  std::string buffer_;
  bool stop_ = false;
  std::thread writer_;
};

using callrec::append_json_string;

}  // namespace callrec::obs
