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
  std::string_view detail;  // what went wrong beyond the client's message (a store's own error text); may be empty
};

// A request or connection the HTTP transport refused before the API saw it (http::refusal_event).
struct refusal_entry {
  unsigned status = 0;  // 400, 413, 431, 501; 0 for a TLS handshake that failed
  std::string_view reason;
  std::string_view remote;
  std::string_view request_id;  // empty when there is none
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
  // One line per refusal, at most refusal_lines_per_second on average (bursts of refusal_burst), so a flood
  // of bad requests cannot fill the disk: the refusals left out are counted, and the next line logged says
  // how many ("notLogged"). Every refusal is counted in the metrics regardless. Any thread.
  void write_refusal(const refusal_entry& e);
  void flush();

  static constexpr double refusal_lines_per_second = 10;
  static constexpr double refusal_burst = 50;

 private:
  void run();
  void append_line(const std::string& line);
  static void append_timestamp(std::string& line);
  std::FILE* out_ = nullptr;
  bool owns_ = false;
  std::mutex mu_;
  std::condition_variable cv_;
  std::string buffer_;
  bool stop_ = false;
  double refusal_tokens_ = refusal_burst;  // under mu_
  std::int64_t refusal_refill_ns_ = 0;     // steady clock of the last refill, under mu_
  std::uint64_t refusals_not_logged_ = 0;  // under mu_
  std::thread writer_;
};

using callrec::append_json_string;

}  // namespace callrec::obs
