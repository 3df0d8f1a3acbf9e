#include "api/envelope.h"

#include <charconv>
#include <cstdint>
#include <random>

#include "obs/access_log.h"

namespace callrec::api {

std::string make_envelope(int error_code, std::string_view message, std::string_view request_id,
                          std::string data_json) {
  thread_local std::string head;  // reused: its capacity saves an allocation per answer
  head.clear();
  head += "{\"errorCode\":";
  char digits[16];
  head.append(digits, static_cast<std::size_t>(std::to_chars(digits, digits + sizeof digits, error_code).ptr - digits));
  head += ",\"errorMessage\":";
  obs::append_json_string(head, message);
  head += ",\"requestId\":\"";
  head += request_id;
  head += '"';
  if (data_json.empty()) return head + '}';
  head += ",\"data\":";
  data_json.insert(0, head);
  data_json += '}';
  return data_json;
}

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
}  // namespace

http::request_id new_request_id() {
  thread_local id_generator gen;
  static constexpr char hex[] = "0123456789abcdef";
  char id[32];
  for (int half = 0; half < 2; ++half) {
    std::uint64_t v = gen.next();
    for (int i = 0; i < 16; ++i) {
      id[half * 16 + i] = hex[v & 15];
      v >>= 4;
    }
  }
  return std::string_view(id, sizeof id);
}

}  // namespace callrec::api
