// Hand-written JSON output for the hot paths (envelope, records, access log).
#pragma once

#include <string>
#include <string_view>

namespace callrec {

// Appends s as a JSON string literal, quotes included, escaped exactly as JavaScript's JSON.stringify does
// (the UserSig generators' bytes depend on it).
void append_json_string(std::string& out, std::string_view s);

}  // namespace callrec
