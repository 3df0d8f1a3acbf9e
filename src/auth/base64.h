// Base64 (RFC 4648 standard alphabet) and the UserSig variant of it, where `+` `/` `=` are written `*` `-` `_`.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace callrec::auth {

enum class base64_alphabet {
  standard,  // A-Z a-z 0-9 + /, padding =
  usersig,   // A-Z a-z 0-9 * -, padding _ (TLSSigAPIv2 tokens)
};

// Encodes with padding, as every official generator does.
std::string base64_encode(std::string_view bytes, base64_alphabet alphabet = base64_alphabet::standard);

// Exact size of the decoded bytes for `text`, or nullopt when it is not base64 of `alphabet`. Tolerant the way
// decoders of tokens must be: padding may be missing (or shorter than required), and the unused low bits of the
// last character are ignored. Strict otherwise: no whitespace, no characters outside the alphabet, padding only
// at the end and at most two.
std::optional<std::size_t> base64_decoded_size(std::string_view text, base64_alphabet alphabet);

// Decodes `text` into `out`, which must hold base64_decoded_size(text) bytes. Returns the number of bytes written,
// or nullopt when `text` is not base64 or `out_capacity` is too small.
std::optional<std::size_t> base64_decode_into(std::string_view text, base64_alphabet alphabet, unsigned char* out,
                                              std::size_t out_capacity) noexcept;

// Convenience form of base64_decode_into.
std::optional<std::string> base64_decode(std::string_view text, base64_alphabet alphabet = base64_alphabet::standard);

}  // namespace callrec::auth
