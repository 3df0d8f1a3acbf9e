// The X-Request-Id of an answer, as a value type that needs no allocation, and the generator of new ones.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string_view>
#include <type_traits>

namespace callrec::http {

// An X-Request-Id value, held inline: no allocation per request. Longer values are cut to `capacity`.
class request_id {
 public:
  static constexpr std::size_t capacity = 32;
  request_id() = default;
  // From anything that is a string_view (a literal, a std::string): cut to `capacity`.
  template <class S, class = std::enable_if_t<std::is_convertible_v<const S&, std::string_view>>>
  request_id(const S& s) noexcept {  // NOLINT(google-explicit-constructor): a value type
    const std::string_view v = s;
    len_ = static_cast<std::uint8_t>(std::min(v.size(), capacity));
    std::copy_n(v.data(), len_, buf_);
  }
  operator std::string_view() const noexcept { return {buf_, len_}; }  // NOLINT(google-explicit-constructor)
  bool empty() const noexcept { return len_ == 0; }

 private:
  char buf_[capacity] = {};
  std::uint8_t len_ = 0;
};

// 128 random bits as 32 lowercase hex digits (SPEC 1); thread-safe (a generator per thread, seeded by the OS).
request_id new_request_id();

}  // namespace callrec::http
