// Hand-written JSON output for the hot paths (envelope, records, access log), and the one way a message
// quotes bytes that came from a client.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace callrec {

// Appends s as a JSON string literal, quotes included, escaped exactly as JavaScript's JSON.stringify does
// (the UserSig generators' bytes depend on it). Whatever the bytes, the output is valid UTF-8 JSON: a byte
// sequence that is not UTF-8 (a stray continuation byte, a truncated, overlong or surrogate sequence, a code
// point past U+10FFFF) becomes one U+FFFD per maximal ill-formed part, as a UTF-8 decoder replaces it. Text
// that is UTF-8 is copied unchanged.
void append_json_string(std::string& out, std::string_view s);

// Client bytes as a message may quote them (SPEC 1: errorMessage names what was wrong): at most `max_bytes`,
// cut at a UTF-8 character boundary with "..." appended when longer. Bytes that are not UTF-8 stay as they are
// here; append_json_string replaces them when the message is written.
std::string clip(std::string_view s, std::size_t max_bytes = 64);

// The length of the prefix of s that is printable ASCII (0x20..0x7e) other than '"' and '\\': text a JSON
// string holds as it is. Eight bytes at a time.
std::size_t plain_json_prefix(std::string_view s) noexcept;

// The length of the well-formed UTF-8 sequence at the start of s (1..4), or 0 when s starts with bytes that
// are not UTF-8 (or is empty).
std::size_t utf8_sequence_length(std::string_view s) noexcept;

}  // namespace callrec
