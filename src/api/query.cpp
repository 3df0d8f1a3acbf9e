#include "api/query.h"

#include <array>
#include <optional>

#include "records/record.h"

namespace callrec::api {
namespace {

int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::optional<std::uint64_t> parse_decimal(std::string_view s, std::uint64_t max) noexcept {
  if (s.empty() || s.size() > 20) return std::nullopt;
  std::uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    if (v > (max - static_cast<std::uint64_t>(c - '0')) / 10) return std::nullopt;
    v = v * 10 + static_cast<std::uint64_t>(c - '0');
  }
  return v;
}

error bad_param(std::string message) { return make_error(errc::invalid_param, std::move(message)); }

}  // namespace

target_parts split_target(std::string_view target) noexcept {
  auto q = target.find('?');
  if (q == std::string_view::npos) return {target, {}};
  return {target.substr(0, q), target.substr(q + 1)};
}

std::optional<std::string> percent_decode(std::string_view s) {
  if (s.find('%') == std::string_view::npos) return std::string(s);  // the usual case: nothing to decode
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '%') {
      if (i + 2 >= s.size()) return std::nullopt;
      int hi = hex_value(s[i + 1]);
      int lo = hex_value(s[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      out += static_cast<char>(hi * 16 + lo);
      i += 2;
    } else {
      out += c;
    }
  }
  return out;
}

result<hub_params> parse_hub_query(std::string_view query) {
  static constexpr std::array<std::string_view, 5> names{"sdkappid", "identifier", "usersig", "random", "contenttype"};
  // Values are views into the query; only one with a %-escape is decoded, into its own string.
  std::array<std::optional<std::string_view>, 5> values;
  std::array<std::string, 5> decoded;
  std::size_t pos = 0;
  while (pos <= query.size()) {
    auto amp = query.find('&', pos);
    std::string_view item = query.substr(pos, amp == std::string_view::npos ? std::string_view::npos : amp - pos);
    pos = amp == std::string_view::npos ? query.size() + 1 : amp + 1;
    if (item.empty()) continue;
    auto eq = item.find('=');
    std::string_view key = item.substr(0, eq);
    std::string_view raw = eq == std::string_view::npos ? std::string_view{} : item.substr(eq + 1);
    for (std::size_t i = 0; i < names.size(); ++i) {
      if (key != names[i]) continue;
      if (values[i]) return bad_param("query parameter " + std::string(key) + " is given more than once");
      if (raw.find('%') == std::string_view::npos) {
        values[i] = raw;
        continue;
      }
      auto d = percent_decode(raw);
      if (!d) return bad_param("query parameter " + std::string(key) + " has a malformed %-escape");
      decoded[i] = std::move(*d);
      values[i] = decoded[i];
    }
  }
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (!values[i] || values[i]->empty()) return bad_param("missing query parameter " + std::string(names[i]));
  }
  hub_params p;
  auto appid = parse_decimal(*values[0], 4294967295ULL);
  if (!appid) return bad_param("query parameter sdkappid must be a decimal unsigned 32-bit integer");
  p.sdkappid = static_cast<std::uint32_t>(*appid);
  if (!valid_user_id(*values[1])) {
    return bad_param("query parameter identifier must be 1..32 printable ASCII characters without spaces");
  }
  p.identifier = *values[1];
  if (values[2]->size() > 4096) return bad_param("query parameter usersig is longer than 4096 bytes");
  if (decoded[2].empty()) {
    p.usersig_in_query = *values[2];
  } else {
    p.usersig_decoded = std::move(decoded[2]);
  }
  auto random = parse_decimal(*values[3], 4294967295ULL);
  if (!random) return bad_param("query parameter random must be a decimal integer in 0..4294967295");
  p.random = static_cast<std::uint32_t>(*random);
  if (*values[4] != "json") return bad_param("query parameter contenttype must be json");
  return p;
}

}  // namespace callrec::api
