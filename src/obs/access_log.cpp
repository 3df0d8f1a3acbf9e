#include "obs/access_log.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>

namespace callrec::obs {

access_log::access_log(const std::string& target) {
  if (target == "off") return;
  if (target == "stdout") {
    out_ = stdout;
  } else {
    out_ = std::fopen(target.c_str(), "a");
    owns_ = out_ != nullptr;
    if (!out_) std::fprintf(stderr, "callrec: cannot open access log %s; logging to stdout\n", target.c_str());
    if (!out_) out_ = stdout;
  }
  writer_ = std::thread([this] { run(); });
}

access_log::~access_log() {
  if (!out_) return;
  {
    std::lock_guard lk(mu_);
    stop_ = true;
  }
  cv_.notify_one();
  writer_.join();
  if (owns_) std::fclose(out_);
}

void access_log::append_timestamp(std::string& line) {
  using namespace std::chrono;
  const auto ms = duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
  char ts[40];
  const auto secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  const std::size_t n = std::strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(ts + n, sizeof ts - n, ".%03dZ", static_cast<int>(ms % 1000));
  line += "{\"ts\":\"";
  line += ts;
  line += '"';
}

void access_log::append_line(const std::string& line) {
  bool wake = false;
  {
    std::lock_guard lk(mu_);
    buffer_ += line;
    wake = buffer_.size() > 256 * 1024;
  }
  if (wake) cv_.notify_one();
}

void access_log::write(const access_entry& e) {
  if (!out_) return;
  std::string line;
  line.reserve(256);
  append_timestamp(line);
  line += ",\"requestId\":";
  append_json_string(line, e.request_id);
  line += ",\"api\":";
  append_json_string(line, e.api);
  line += ",\"sdkappid\":";
  line += std::to_string(e.sdkappid);
  line += ",\"errorCode\":";
  line += std::to_string(e.error_code);
  line += ",\"status\":";
  line += std::to_string(e.status);
  char lat[32];
  std::snprintf(lat, sizeof lat, "%.3f", e.latency_ms);
  line += ",\"latencyMs\":";
  line += lat;
  line += ",\"remote\":";
  append_json_string(line, e.remote);
  if (!e.detail.empty()) {
    line += ",\"detail\":";
    append_json_string(line, e.detail);
  }
  line += "}\n";
  append_line(line);
}

void access_log::write_refusal(const refusal_entry& e) {
  if (!out_) return;
  std::uint64_t not_logged = 0;
  {
    std::lock_guard lk(mu_);
    const std::int64_t now =
        std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
            .count();
    if (refusal_refill_ns_ != 0) {
      refusal_tokens_ = std::min(refusal_burst, refusal_tokens_ + static_cast<double>(now - refusal_refill_ns_) *
                                                                      refusal_lines_per_second / 1e9);
    }
    refusal_refill_ns_ = now;
    if (refusal_tokens_ < 1) {
      ++refusals_not_logged_;
      return;
    }
    refusal_tokens_ -= 1;
    not_logged = refusals_not_logged_;
    refusals_not_logged_ = 0;
  }
  std::string line;
  line.reserve(256);
  append_timestamp(line);
  if (!e.request_id.empty()) {
    line += ",\"requestId\":";
    append_json_string(line, e.request_id);
  }
  if (e.status != 0) {
    line += ",\"api\":\"http\",\"errorCode\":70001,\"status\":";
    line += std::to_string(e.status);
  } else {
    line += ",\"api\":\"tls\"";
  }
  line += ",\"remote\":";
  append_json_string(line, e.remote);
  line += ",\"refused\":";
  append_json_string(line, e.reason);
  if (not_logged != 0) {
    line += ",\"notLogged\":";
    line += std::to_string(not_logged);
  }
  line += "}\n";
  append_line(line);
}

void access_log::flush() {
  std::string chunk;
  {
    std::lock_guard lk(mu_);
    chunk.swap(buffer_);
  }
  if (!chunk.empty()) std::fwrite(chunk.data(), 1, chunk.size(), out_);
  std::fflush(out_);
}

void access_log::run() {
  std::unique_lock lk(mu_);
  for (;;) {
    cv_.wait_for(lk, std::chrono::milliseconds(100), [this] { return stop_ || buffer_.size() > 256 * 1024; });
    std::string chunk;
    chunk.swap(buffer_);
    bool stopping = stop_;
    lk.unlock();
    if (!chunk.empty()) {
      std::fwrite(chunk.data(), 1, chunk.size(), out_);
      std::fflush(out_);
    }
    lk.lock();
    if (stopping && buffer_.empty()) return;
  }
}

}  // namespace callrec::obs
