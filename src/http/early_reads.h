// When an HTTP/1.1 thread reads early (see serve_http1). After an answer, Asio would try the next read at once
// and nearly always find nothing yet (a recv that returns EAGAIN, per request), then wait for epoll. Reading
// instead once the other handlers queued on the thread have run (one post) often finds the next request
// already there when the client runs on another core of a loopback: one recv and no wait. A miss costs a
// post and a recv more (with the client sharing the server's cores, most early reads miss), so a thread reads
// early only while most of its early reads find a request (in windows of 256), and otherwise tries one
// answer in 64 to see whether that has changed. One per I/O thread, used on that thread only.
#pragma once

#include <cstdint>

namespace callrec::http {

class early_reads {
 public:
  static constexpr std::uint32_t window = 256;  // early reads per verdict
  static constexpr std::uint32_t probe_every = 64;  // while off, one answer in this many reads early

  // Whether the answer just sent should be followed by an early read.
  bool want() noexcept { return on_ || ++since_probe_ % probe_every == 0; }
  // The outcome of an early read: `hit` when it found bytes.
  void record(bool hit) noexcept {
    hits_ += hit ? 1 : 0;
    if (++tries_ < window) return;
    on_ = hits_ * 2 > tries_;
    tries_ = hits_ = 0;
  }
  bool on() const noexcept { return on_; }

 private:
  bool on_ = true;
  std::uint32_t tries_ = 0, hits_ = 0, since_probe_ = 0;
};

}  // namespace callrec::http
