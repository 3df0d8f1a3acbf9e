#include "auth/base64.h"

#include <array>
#include <cstdint>

namespace callrec::auth {
namespace {

constexpr std::string_view standard_chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
constexpr std::string_view usersig_chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789*-";

constexpr std::uint8_t invalid = 0xff;

using decode_table = std::array<std::uint8_t, 256>;

constexpr decode_table make_table(std::string_view chars) {
  decode_table t{};
  for (auto& v : t) v = invalid;
  for (std::size_t i = 0; i < chars.size(); ++i) t[static_cast<unsigned char>(chars[i])] = static_cast<std::uint8_t>(i);
  return t;
}

constexpr decode_table standard_table = make_table(standard_chars);
constexpr decode_table usersig_table = make_table(usersig_chars);

// For the 4-character loop: the 6-bit value of a character already shifted to its place in the 24-bit group, or a
// flag bit above the group for a character outside the alphabet, so a group costs four loads and one test.
constexpr std::uint32_t bad_char = 1u << 24;
struct quad_tables {
  std::array<std::array<std::uint32_t, 256>, 4> t;
};
constexpr quad_tables make_quad_tables(const decode_table& d) {
  quad_tables q{};
  for (std::size_t pos = 0; pos < 4; ++pos) {
    for (std::size_t c = 0; c < 256; ++c) {
      q.t[pos][c] = d[c] == invalid ? bad_char : std::uint32_t{d[c]} << (18 - 6 * pos);
    }
  }
  return q;
}
constexpr quad_tables standard_quads = make_quad_tables(standard_table);
constexpr quad_tables usersig_quads = make_quad_tables(usersig_table);

constexpr std::string_view chars_of(base64_alphabet a) {
  return a == base64_alphabet::standard ? standard_chars : usersig_chars;
}
constexpr const decode_table& table_of(base64_alphabet a) {
  return a == base64_alphabet::standard ? standard_table : usersig_table;
}
constexpr char pad_of(base64_alphabet a) { return a == base64_alphabet::standard ? '=' : '_'; }

// The significant characters of `text` (padding stripped), or npos when the padding is malformed.
std::size_t significant_length(std::string_view text, char pad) {
  std::size_t n = text.size();
  std::size_t pads = 0;
  while (n > 0 && text[n - 1] == pad) {
    --n;
    ++pads;
  }
  if (pads > 2 || n % 4 == 1) return std::string_view::npos;
  return n;
}

}  // namespace

std::string base64_encode(std::string_view bytes, base64_alphabet alphabet) {
  const std::string_view chars = chars_of(alphabet);
  const char pad = pad_of(alphabet);
  std::string out;
  out.resize((bytes.size() + 2) / 3 * 4);
  char* o = out.data();
  const auto* in = reinterpret_cast<const unsigned char*>(bytes.data());
  std::size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const std::uint32_t v = (std::uint32_t{in[i]} << 16) | (std::uint32_t{in[i + 1]} << 8) | in[i + 2];
    *o++ = chars[(v >> 18) & 63];
    *o++ = chars[(v >> 12) & 63];
    *o++ = chars[(v >> 6) & 63];
    *o++ = chars[v & 63];
  }
  const std::size_t rest = bytes.size() - i;
  if (rest == 1) {
    const std::uint32_t v = std::uint32_t{in[i]} << 16;
    *o++ = chars[(v >> 18) & 63];
    *o++ = chars[(v >> 12) & 63];
    *o++ = pad;
    *o++ = pad;
  } else if (rest == 2) {
    const std::uint32_t v = (std::uint32_t{in[i]} << 16) | (std::uint32_t{in[i + 1]} << 8);
    *o++ = chars[(v >> 18) & 63];
    *o++ = chars[(v >> 12) & 63];
    *o++ = chars[(v >> 6) & 63];
    *o++ = pad;
  }
  return out;
}

std::optional<std::size_t> base64_decoded_size(std::string_view text, base64_alphabet alphabet) {
  const std::size_t n = significant_length(text, pad_of(alphabet));
  if (n == std::string_view::npos) return std::nullopt;
  const decode_table& t = table_of(alphabet);
  for (std::size_t i = 0; i < n; ++i) {
    if (t[static_cast<unsigned char>(text[i])] == invalid) return std::nullopt;
  }
  return n / 4 * 3 + (n % 4 == 0 ? 0 : n % 4 - 1);
}

std::optional<std::size_t> base64_decode_into(std::string_view text, base64_alphabet alphabet, unsigned char* out,
                                              std::size_t out_capacity) noexcept {
  const std::size_t n = significant_length(text, pad_of(alphabet));
  if (n == std::string_view::npos) return std::nullopt;
  const std::size_t size = n / 4 * 3 + (n % 4 == 0 ? 0 : n % 4 - 1);
  if (size > out_capacity) return std::nullopt;
  const decode_table& t = table_of(alphabet);
  const quad_tables& q = alphabet == base64_alphabet::standard ? standard_quads : usersig_quads;
  const auto* in = reinterpret_cast<const unsigned char*>(text.data());
  std::size_t i = 0;
  unsigned char* o = out;
  for (; i + 4 <= n; i += 4) {
    const std::uint32_t v = q.t[0][in[i]] | q.t[1][in[i + 1]] | q.t[2][in[i + 2]] | q.t[3][in[i + 3]];
    if (v & bad_char) return std::nullopt;
    *o++ = static_cast<unsigned char>(v >> 16);
    *o++ = static_cast<unsigned char>(v >> 8);
    *o++ = static_cast<unsigned char>(v);
  }
  const std::size_t rest = n - i;  // 0, 2 or 3 (1 was refused above)
  if (rest >= 2) {
    const std::uint32_t a = t[in[i]], b = t[in[i + 1]], c = rest == 3 ? t[in[i + 2]] : 0;
    if ((a | b | c) > 63) return std::nullopt;
    const std::uint32_t v = (a << 18) | (b << 12) | (c << 6);
    *o++ = static_cast<unsigned char>(v >> 16);
    if (rest == 3) *o++ = static_cast<unsigned char>(v >> 8);
  }
  return size;
}

std::optional<std::string> base64_decode(std::string_view text, base64_alphabet alphabet) {
  const auto size = base64_decoded_size(text, alphabet);
  if (!size) return std::nullopt;
  std::string out(*size, '\0');
  if (!base64_decode_into(text, alphabet, reinterpret_cast<unsigned char*>(out.data()), out.size())) {
    return std::nullopt;
  }
  return out;
}

}  // namespace callrec::auth
