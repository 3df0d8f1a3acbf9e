// Fuzzes the JSON body decoders: a body parsed as the hub does, then read as a get_records_by_filter
// request, a get_record_by_callId request and an events/report batch; and the plain callId reader against
// the parser (differential). Every refusal's message, and the raw input itself, written as a JSON string
// must parse back (valid UTF-8 JSON whatever the bytes) and a message must stay bounded.
#include <boost/json.hpp>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "api/events_v1.h"
#include "core/json_text.h"
#include "records/wire.h"

namespace {

// Traps unless `text` written by append_json_string parses back as a JSON string.
void check_json_string(std::string_view text) {
  std::string out;
  callrec::append_json_string(out, text);
  boost::system::error_code ec;
  const auto v = boost::json::parse(out, ec);
  if (ec || !v.is_string()) __builtin_trap();
}

void check_message(const std::string& message) {
  if (message.size() > 1024) __builtin_trap();
  check_json_string(message);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  namespace json = boost::json;
  std::string_view in(reinterpret_cast<const char*>(data), size);
  check_json_string(in);
  boost::system::error_code ec;
  json::parse_options opt;
  opt.max_depth = 32;
  json::value v = json::parse(in, ec, {}, opt);
  // The hub reads a plain {"callId":"..."} body without the parser: the parser must read the same.
  if (auto id = callrec::plain_call_id_body(in)) {
    if (ec || !v.is_object() || v.get_object().size() != 1) __builtin_trap();
    const auto* got = v.get_object().if_contains("callId");
    if (!got || !got->is_string() || std::string_view(got->get_string()) != *id) __builtin_trap();
  }
  if (ec || !v.is_object()) return 0;
  const auto& body = v.get_object();
  auto f = callrec::parse_filter_request(body, 1400000001, 7, 1700000000);
  if (f && !f->empty_window && f->filter.start_ts > f->filter.end_ts) __builtin_trap();
  if (!f) check_message(f.error().message);
  if (auto it = body.find("cursor"); it != body.end() && it->value().is_string()) {
    auto c = callrec::decode_cursor(it->value().get_string());
    if (c && callrec::decode_cursor(callrec::encode_cursor(*c)) != c) __builtin_trap();
  }
  if (auto it = body.find("events"); it != body.end() && it->value().is_array()) {
    for (const auto& e : it->value().get_array()) {
      for (bool admin : {true, false}) {
        const auto entry = callrec::api::parse_event(e, admin, admin ? "administrator" : "alice", 1700000000000);
        if (!entry.event) check_message(entry.outcome.message);
        if (entry.event && !entry.event->room_id.empty() && !callrec::valid_room_id(entry.event->room_id)) {
          __builtin_trap();  // the parser and the call state take the same roomIds (SPEC 4)
        }
      }
    }
  }
  return 0;
}
