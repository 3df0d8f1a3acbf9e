// The rate limits of SPEC 3, as one table: each limit's name (its key in `rate_limits = {...}` of an app),
// its default and what it counts. The configuration reads rates against this table, the route table names a
// limit by its index, and a rate limiter keeps one bucket per (app, limit). A new limit is a row here.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace callrec::limits {

enum class unit : std::uint8_t {
  request,  // one token per request
  event,    // one token per event of a batch: admitted while a token is left, charged the batch's size
};

struct limit_def {
  std::string_view name;
  double default_per_second;
  unit counts;
};

inline constexpr std::array<limit_def, 4> table{{
    {"get_record_by_callId", 20, unit::request},
    {"get_records_by_filter", 200, unit::request},
    {"callback", 10, unit::request},  // the callback/* APIs (SPEC 9a): configurable now, no route uses it yet
    {"events", 2000, unit::event},
}};
inline constexpr std::size_t count = table.size();

// A limit, by its index in `table`.
using limit_id = std::uint8_t;

constexpr std::optional<limit_id> find(std::string_view name) noexcept {
  for (std::size_t i = 0; i < count; ++i) {
    if (table[i].name == name) return static_cast<limit_id>(i);
  }
  return std::nullopt;
}
// The id of a name that is in the table (a compile-time error otherwise, when used in a constant expression).
consteval limit_id id(std::string_view name) {
  const auto found = find(name);
  if (!found) throw "no such limit in limits::table";
  return *found;
}

// An app's rates, per second, one per limit of `table`.
using rates = std::array<double, count>;
constexpr rates default_rates() noexcept {
  rates r{};
  for (std::size_t i = 0; i < count; ++i) r[i] = table[i].default_per_second;
  return r;
}

}  // namespace callrec::limits
