// A buffer for parsing a request body, taken from a per-thread list and given back.
#pragma once

#include <cstddef>
#include <memory>
#include <vector>

namespace callrec::api {

// Buffers for parsing request bodies, kept per thread and reused: a 4 KiB array in a coroutine frame would
// make every frame too large for Asio's per-thread frame recycling (a malloc and free each request). A frame
// may be destroyed on another thread (server shutdown); its buffer then joins that thread's list.
class parse_buffer {
 public:
  static constexpr std::size_t size = 4096;
  parse_buffer() {
    auto& pool = free_list();
    if (pool.empty()) {
      buf_ = std::make_unique<unsigned char[]>(size);
    } else {
      buf_ = std::move(pool.back());
      pool.pop_back();
    }
  }
  parse_buffer(const parse_buffer&) = delete;
  parse_buffer& operator=(const parse_buffer&) = delete;
  ~parse_buffer() {
    auto& pool = free_list();
    if (pool.size() < 64) pool.push_back(std::move(buf_));
  }
  unsigned char* data() { return buf_.get(); }

 private:
  static std::vector<std::unique_ptr<unsigned char[]>>& free_list() {
    thread_local std::vector<std::unique_ptr<unsigned char[]>> pool;
    return pool;
  }
  std::unique_ptr<unsigned char[]> buf_;
};

}  // namespace callrec::api
