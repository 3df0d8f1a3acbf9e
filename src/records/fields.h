// The SPEC's field rules (sections 4 and 5), in one place: the limits, the checks, and the one phrase every
// message uses to name each rule, so the events parser, the call state machine and the filter refuse the
// same values with the same words. Pure.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace callrec {

inline constexpr std::size_t max_call_id_bytes = 64;
inline constexpr std::size_t max_user_id_bytes = 32;
inline constexpr std::size_t max_room_id_bytes = 64;
inline constexpr std::uint64_t max_room_number = 4294967294;  // a numeric roomId is 1..this
inline constexpr std::size_t max_event_id_bytes = 64;
inline constexpr std::size_t max_callees = 100;  // per call: start_call, invite_user and joins together

// What each rule asks for, as messages say it ("callId must be " + rule).
namespace rule {
inline constexpr std::string_view call_id = "1..64 bytes without control characters";
inline constexpr std::string_view user_id = "1..32 bytes of printable ASCII without spaces";
inline constexpr std::string_view room_id =
    "a number 1..4294967294 or 1..64 bytes of letters, digits, space and !#$%&()+-:;<=.>?@[]^_{}|~,";
inline constexpr std::string_view event_id = "1..64 bytes";
inline constexpr std::string_view callees = "at most 100 callees per call (start_call, invite_user and joins together)";
}  // namespace rule

// "<field> must be <rule>": the message of a value that breaks a rule.
inline std::string must_be(std::string_view field, std::string_view what) {
  std::string m(field);
  m += " must be ";
  m += what;
  return m;
}

bool valid_call_id(std::string_view s) noexcept;  // 1..64 bytes, no control characters
bool valid_user_id(std::string_view s) noexcept;  // 1..32 bytes of printable ASCII except space
bool valid_event_id(std::string_view s) noexcept;  // 1..64 bytes
// A roomId as text: 1..64 bytes of TRTC's string-room alphabet (a number's decimal text is one of them).
bool valid_room_id(std::string_view s) noexcept;
// A numeric roomId (JSON number): 1..4294967294.
constexpr bool valid_room_number(std::int64_t n) noexcept {
  return n >= 1 && static_cast<std::uint64_t>(n) <= max_room_number;
}

}  // namespace callrec
