#include "api/envelope.h"

#include <charconv>
#include <cstdint>

#include "obs/access_log.h"

namespace callrec::api {

std::string make_envelope(int error_code, std::string_view message, std::string_view request_id,
                          std::string data_json) {
  thread_local std::string head;  // reused: its capacity saves an allocation per answer
  head.clear();
  head += "{\"errorCode\":";
  char digits[16];
  head.append(digits, static_cast<std::size_t>(std::to_chars(digits, digits + sizeof digits, error_code).ptr - digits));
  head += ",\"errorMessage\":";
  obs::append_json_string(head, message);
  head += ",\"requestId\":\"";
  head += request_id;
  head += '"';
  if (data_json.empty()) return head + '}';
  head += ",\"data\":";
  data_json.insert(0, head);
  data_json += '}';
  return data_json;
}

}  // namespace callrec::api
