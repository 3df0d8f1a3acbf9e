#include "http/request_id.h"

#include <array>
#include <cstring>
#include <random>

namespace callrec::http {

namespace {
// xoshiro256** seeded from the OS; one per thread.
struct id_generator {
  std::uint64_t s[4];
  id_generator() {
    std::random_device rd;
    for (auto& w : s) w = (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
  }
  static std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  std::uint64_t next() {
    std::uint64_t r = rotl(s[1] * 5, 7) * 9;
    std::uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return r;
  }
};

// Two hex digits for each byte value.
constexpr std::array<char, 512> hex_pairs = [] {
  constexpr char hex[] = "0123456789abcdef";
  std::array<char, 512> t{};
  for (int b = 0; b < 256; ++b) {
    t[static_cast<std::size_t>(2 * b)] = hex[b >> 4];
    t[static_cast<std::size_t>(2 * b + 1)] = hex[b & 15];
  }
  return t;
}();

}  // namespace

request_id new_request_id() {
  thread_local id_generator gen;
  char id[32];
  for (int half = 0; half < 2; ++half) {
    std::uint64_t v = gen.next();
    for (int i = 0; i < 8; ++i) {
      std::memcpy(id + half * 16 + 2 * i, &hex_pairs[2 * (v & 0xff)], 2);
      v >>= 8;
    }
  }
  return std::string_view(id, sizeof id);
}

}  // namespace callrec::http
