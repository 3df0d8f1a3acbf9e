#include "records/record.h"

#include <array>

namespace callrec {
namespace {
constexpr std::array<std::string_view, 2> media_names{"audio", "video"};
constexpr std::array<std::string_view, 2> type_names{"single", "group"};
constexpr std::array<std::string_view, call_result_count> result_names{
    "cancel", "reject", "not_answer", "normal_end", "call_busy", "interrupt", "offline"};

template <class E, std::size_t N>
std::optional<E> parse_name(const std::array<std::string_view, N>& names, std::string_view s) noexcept {
  for (std::size_t i = 0; i < N; ++i) {
    if (names[i] == s) return static_cast<E>(i);
  }
  return std::nullopt;
}
}  // namespace

std::string_view to_string(media_type v) noexcept { return media_names[static_cast<std::size_t>(v)]; }
std::string_view to_string(call_type v) noexcept { return type_names[static_cast<std::size_t>(v)]; }
std::string_view to_string(call_result v) noexcept { return result_names[static_cast<std::size_t>(v)]; }
std::optional<media_type> parse_media_type(std::string_view s) noexcept { return parse_name<media_type>(media_names, s); }
std::optional<call_type> parse_call_type(std::string_view s) noexcept { return parse_name<call_type>(type_names, s); }
std::optional<call_result> parse_call_result(std::string_view s) noexcept {
  return parse_name<call_result>(result_names, s);
}

bool valid_call_id(std::string_view s) noexcept {
  if (s.empty() || s.size() > max_call_id_bytes) return false;
  for (unsigned char c : s) {
    if (c < 0x20 || c == 0x7f) return false;
  }
  return true;
}

bool valid_user_id(std::string_view s) noexcept {
  if (s.empty() || s.size() > max_user_id_bytes) return false;
  for (unsigned char c : s) {
    if (c <= 0x20 || c >= 0x7f) return false;
  }
  return true;
}

bool valid_event_id(std::string_view s) noexcept { return !s.empty() && s.size() <= max_event_id_bytes; }

namespace {
// TRTC's string-room alphabet: letters, digits, space and !#$%&()+-:;<=.>?@[]^_{}|~,
constexpr std::array<bool, 256> room_alphabet = [] {
  std::array<bool, 256> t{};
  for (int c = '0'; c <= '9'; ++c) t[static_cast<std::size_t>(c)] = true;
  for (int c = 'a'; c <= 'z'; ++c) t[static_cast<std::size_t>(c)] = t[static_cast<std::size_t>(c - 'a' + 'A')] = true;
  for (char c : std::string_view(" !#$%&()+-:;<=.>?@[]^_{}|~,")) t[static_cast<unsigned char>(c)] = true;
  return t;
}();
}  // namespace

bool valid_room_id(std::string_view s) noexcept {
  if (s.empty() || s.size() > max_room_id_bytes) return false;
  for (unsigned char c : s) {
    if (!room_alphabet[c]) return false;
  }
  return true;
}

}  // namespace callrec
