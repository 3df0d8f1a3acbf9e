#include "api/query.h"

#include <array>
#include <cstring>
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
  hub_params p;
  if (auto r = parse_hub_query(query, p); !r) return r.error();
  return p;
}

result<void> parse_hub_query(std::string_view query, hub_params& p) {
  // The five parameters have five different lengths: a parameter is found by its length and one compare.
  enum : int { sdkappid, identifier, usersig, random, contenttype, count };
  static constexpr std::array<std::string_view, count> names{"sdkappid", "identifier", "usersig", "random",
                                                             "contenttype"};
  auto index_of = [](std::string_view key) -> int {
    int i;
    switch (key.size()) {
      case 8: i = sdkappid; break;
      case 10: i = identifier; break;
      case 7: i = usersig; break;
      case 6: i = random; break;
      case 11: i = contenttype; break;
      default: return -1;
    }
    return key == names[static_cast<std::size_t>(i)] ? i : -1;
  };
  // Values view the query; one with a %-escape is decoded into its own string (rare: a usersig holds only
  // [A-Za-z0-9*_-], and Tencent's clients escape nothing).
  std::array<std::string_view, count> values{};
  std::array<bool, count> seen{};
  std::optional<std::array<std::string, count>> decoded;  // made only for a value with a %-escape
  const char* it = query.data();
  const char* const end = it + query.size();
  while (it < end) {
    const char* amp = static_cast<const char*>(std::memchr(it, '&', static_cast<std::size_t>(end - it)));
    if (!amp) amp = end;
    const std::string_view item(it, static_cast<std::size_t>(amp - it));
    it = amp + 1;
    const auto eq = item.find('=');
    const int i = index_of(item.substr(0, eq));
    if (i < 0) continue;  // unknown parameters are ignored (proxies add some)
    const auto k = static_cast<std::size_t>(i);
    if (seen[k]) return bad_param("query parameter " + std::string(names[k]) + " is given more than once");
    seen[k] = true;
    std::string_view raw = eq == std::string_view::npos ? std::string_view{} : item.substr(eq + 1);
    if (raw.find('%') != std::string_view::npos) {
      auto d = percent_decode(raw);
      if (!d) return bad_param("query parameter " + std::string(names[k]) + " has a malformed %-escape");
      if (!decoded) decoded.emplace();
      (*decoded)[k] = std::move(*d);
      raw = (*decoded)[k];
    }
    values[k] = raw;
  }
  for (std::size_t k = 0; k < count; ++k) {
    if (!seen[k] || values[k].empty()) return bad_param("missing query parameter " + std::string(names[k]));
  }
  auto appid = parse_decimal(values[sdkappid], 4294967295ULL);
  if (!appid) return bad_param("query parameter sdkappid must be a decimal unsigned 32-bit integer");
  p.sdkappid = static_cast<std::uint32_t>(*appid);
  if (!valid_user_id(values[identifier])) {
    return bad_param("query parameter identifier must be 1..32 printable ASCII characters without spaces");
  }
  p.identifier = values[identifier];
  if (values[usersig].size() > 4096) return bad_param("query parameter usersig is longer than 4096 bytes");
  auto rnd = parse_decimal(values[random], 4294967295ULL);
  if (!rnd) return bad_param("query parameter random must be a decimal integer in 0..4294967295");
  p.random = static_cast<std::uint32_t>(*rnd);
  if (values[contenttype] != "json") return bad_param("query parameter contenttype must be json");
  if (!decoded || (*decoded)[usersig].empty()) {
    p.usersig_in_query = values[usersig];
  } else {
    p.usersig_decoded = std::move((*decoded)[usersig]);  // values[usersig] viewed it: not used past here
  }
  return {};
}

}  // namespace callrec::api
