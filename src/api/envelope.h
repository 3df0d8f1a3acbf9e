// The v1 answer envelope: {"errorCode","errorMessage","requestId","data"} (SPEC section 1). Pure.
#pragma once

#include <string>
#include <string_view>

#include "http/request_id.h"

namespace callrec::api {

// data_json: the serialized `data` object, or empty to leave `data` out. The envelope is built around it in
// place: reserve envelope_room bytes beyond the data, and a record costs no second buffer and copy.
inline constexpr std::size_t envelope_room = 128;
std::string make_envelope(int error_code, std::string_view message, std::string_view request_id,
                          std::string data_json);

using http::new_request_id;

}  // namespace callrec::api
