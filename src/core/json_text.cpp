#include "core/json_text.h"

#include <array>
#include <cstdint>
#include <cstring>

namespace callrec {

namespace {

// 1 for the bytes a JSON string must escape ('"', '\\', the control characters), 2 for the bytes that start
// or continue a multi-byte sequence (checked for UTF-8). ASCII text costs one table look-up a byte.
constexpr std::array<std::uint8_t, 256> byte_class = [] {
  std::array<std::uint8_t, 256> t{};
  for (int c = 0; c < 0x20; ++c) t[c] = 1;
  t['"'] = 1;
  t['\\'] = 1;
  for (int c = 0x80; c < 0x100; ++c) t[c] = 2;
  return t;
}();

// Unicode's table 3-7 of well-formed sequences: for a lead byte, the sequence length and the range of the
// second byte (the others are 80..BF).
struct lead_rule {
  std::uint8_t length, lo, hi;
};
constexpr lead_rule rule_of(unsigned char c) noexcept {
  if (c >= 0xc2 && c <= 0xdf) return {2, 0x80, 0xbf};
  if (c == 0xe0) return {3, 0xa0, 0xbf};
  if (c == 0xed) return {3, 0x80, 0x9f};  // no surrogates
  if (c >= 0xe1 && c <= 0xef) return {3, 0x80, 0xbf};
  if (c == 0xf0) return {4, 0x90, 0xbf};
  if (c == 0xf4) return {4, 0x80, 0x8f};  // up to U+10FFFF
  if (c >= 0xf1 && c <= 0xf3) return {4, 0x80, 0xbf};
  return {0, 0, 0};
}

// For bytes that are not UTF-8 at the start of s: how many to replace with one U+FFFD (the maximal prefix of
// a well-formed sequence, at least 1).
std::size_t ill_formed_length(std::string_view s) noexcept {
  const lead_rule r = rule_of(static_cast<unsigned char>(s[0]));
  if (r.length == 0 || s.size() < 2) return 1;
  const auto b1 = static_cast<unsigned char>(s[1]);
  if (b1 < r.lo || b1 > r.hi) return 1;
  std::size_t n = 2;
  while (n < r.length && n < s.size() && (static_cast<unsigned char>(s[n]) & 0xc0) == 0x80) ++n;
  return n;
}

constexpr std::string_view replacement = "\xef\xbf\xbd";  // U+FFFD in UTF-8

}  // namespace

std::size_t utf8_sequence_length(std::string_view s) noexcept {
  if (s.empty()) return 0;
  const auto c = static_cast<unsigned char>(s[0]);
  if (c < 0x80) return 1;
  const lead_rule r = rule_of(c);
  if (r.length == 0 || s.size() < r.length) return 0;
  const auto b1 = static_cast<unsigned char>(s[1]);
  if (b1 < r.lo || b1 > r.hi) return 0;
  for (std::size_t i = 2; i < r.length; ++i) {
    if ((static_cast<unsigned char>(s[i]) & 0xc0) != 0x80) return 0;
  }
  return r.length;
}

namespace {

// Whether any of the 8 bytes of `x` needs a look (byte_class != 0): a control character, '"', '\\', or a
// byte >= 0x80. The "has less" and "has zero byte" tests of Bit Twiddling Hacks, exact as a yes/no.
constexpr bool word_needs_look(std::uint64_t x) noexcept {
  constexpr std::uint64_t ones = 0x0101010101010101ULL, high = 0x8080808080808080ULL;
  const std::uint64_t control = (x - ones * 0x20) & ~x;
  const std::uint64_t quote = x ^ (ones * '"'), backslash = x ^ (ones * '\\');
  const std::uint64_t zero_quote = (quote - ones) & ~quote, zero_backslash = (backslash - ones) & ~backslash;
  return ((control | zero_quote | zero_backslash | x) & high) != 0;
}

}  // namespace

// Whether s needs nothing escaped, checked, or replaced (printable ASCII but '"' and '\\').
bool plain_ascii(std::string_view s) noexcept {
  std::size_t i = 0;
  for (; s.size() - i >= 8; i += 8) {
    std::uint64_t x;
    std::memcpy(&x, s.data() + i, 8);
    if (word_needs_look(x)) return false;
  }
  for (; i < s.size(); ++i) {
    if (byte_class[static_cast<unsigned char>(s[i])] != 0) return false;
  }
  return true;
}

void append_json_string(std::string& out, std::string_view s) {
  static constexpr char hex[] = "0123456789abcdef";
  if (plain_ascii(s)) {
    // The usual case (ids, names, numbers as text): the quotes and the bytes in one write.
    const std::size_t at = out.size();
    out.resize(at + s.size() + 2);
    char* p = out.data() + at;
    *p = '"';
    if (!s.empty()) std::memcpy(p + 1, s.data(), s.size());
    p[s.size() + 1] = '"';
    return;
  }
  out += '"';
  std::size_t run = 0;  // start of the bytes not yet copied
  for (std::size_t i = 0; i < s.size();) {
    // Eight plain bytes at a time: ids, names and numbers rarely need anything.
    while (s.size() - i >= 8) {
      std::uint64_t x;
      std::memcpy(&x, s.data() + i, 8);
      if (word_needs_look(x)) break;
      i += 8;
    }
    if (i == s.size()) break;
    const auto c = static_cast<unsigned char>(s[i]);
    const std::uint8_t cls = byte_class[c];
    if (cls == 0) {
      ++i;
      continue;
    }
    if (cls == 2) {
      if (const std::size_t n = utf8_sequence_length(s.substr(i))) {
        i += n;  // well-formed: part of the plain run
        continue;
      }
      out.append(s.data() + run, i - run);
      out += replacement;
      i += ill_formed_length(s.substr(i));
      run = i;
      continue;
    }
    out.append(s.data() + run, i - run);  // the plain bytes before it, in one copy
    run = i + 1;
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        out += "\\u00";
        out += hex[c >> 4];
        out += hex[c & 15];
    }
    ++i;
  }
  out.append(s.data() + run, s.size() - run);
  out += '"';
}

std::size_t plain_json_prefix(std::string_view s) noexcept {
  constexpr std::uint64_t ones = 0x0101010101010101ULL, high = 0x8080808080808080ULL;
  std::size_t i = 0;
  for (; s.size() - i >= 8; i += 8) {
    std::uint64_t x;
    std::memcpy(&x, s.data() + i, 8);
    const std::uint64_t del = x ^ (ones * 0x7f);
    if (word_needs_look(x) || (((del - ones) & ~del & high) != 0)) break;
  }
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c > 0x7e || c == '"' || c == '\\') break;
    ++i;
  }
  return i;
}

std::string clip(std::string_view s, std::size_t max_bytes) {
  if (s.size() <= max_bytes) return std::string(s);
  std::size_t cut = max_bytes;
  // Back off over continuation bytes (at most 3) so a character is not split.
  for (int k = 0; k < 3 && cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xc0) == 0x80; ++k) --cut;
  std::string out(s.substr(0, cut));
  out += "...";
  return out;
}

}  // namespace callrec
