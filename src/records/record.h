// The call record (SPEC section 4) and its enumerations, with their wire spellings.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "records/fields.h"

namespace callrec {

enum class media_type : std::uint8_t { audio = 0, video = 1 };
enum class call_type : std::uint8_t { single = 0, group = 1 };
enum class call_result : std::uint8_t {
  cancel = 0,
  reject = 1,
  not_answer = 2,
  normal_end = 3,
  call_busy = 4,
  interrupt = 5,
  offline = 6,
};
inline constexpr int call_result_count = 7;

std::string_view to_string(media_type v) noexcept;
std::string_view to_string(call_type v) noexcept;
std::string_view to_string(call_result v) noexcept;
std::optional<media_type> parse_media_type(std::string_view s) noexcept;
std::optional<call_type> parse_call_type(std::string_view s) noexcept;
std::optional<call_result> parse_call_result(std::string_view s) noexcept;

struct call_record {
  std::string call_id;
  std::uint32_t sdkappid = 0;
  media_type media = media_type::audio;
  std::string room_id;
  std::int64_t start_ts = 0;   // unix seconds
  std::int64_t accept_ts = 0;  // unix seconds, 0 if nobody accepted
  std::int64_t end_ts = 0;     // unix seconds
  std::string caller;
  std::vector<std::string> callees;  // invitation order
  call_type type = call_type::single;
  call_result result = call_result::not_answer;

  std::uint32_t total_user_number() const noexcept { return 1 + static_cast<std::uint32_t>(callees.size()); }
  bool operator==(const call_record&) const = default;
};


}  // namespace callrec
