#include "api/events_v1.h"

#include <boost/json.hpp>

#include "core/json_text.h"
#include "records/wire.h"

namespace callrec::api {

namespace json = boost::json;

namespace {

calls::event_outcome refused(errc code, std::string message) {
  return calls::event_outcome{calls::event_status::refused, code, std::move(message)};
}

ops::batch_entry refuse(errc code, std::string message) {
  ops::batch_entry e;
  e.outcome = refused(code, std::move(message));
  return e;
}

}  // namespace

ops::batch_entry parse_event(const json::value& v, bool is_admin, std::string_view identifier, std::int64_t now_ms) {
  const json::object* o = v.if_object();
  if (!o) return refuse(errc::bad_body, "event must be a JSON object");
  calls::call_event ev;

  auto str_field = [&](std::string_view name, std::string& out, bool required) -> std::optional<ops::batch_entry> {
    auto it = o->find(name);
    if (it == o->end() || it->value().is_null()) {
      if (required) return refuse(errc::invalid_param, std::string(name) + " is required");
      return std::nullopt;
    }
    if (!it->value().is_string()) return refuse(errc::bad_body, std::string(name) + " must be a string");
    out = std::string(it->value().get_string());
    return std::nullopt;
  };

  if (auto r = str_field("callId", ev.call_id, true)) return *r;
  if (!valid_call_id(ev.call_id)) return refuse(errc::invalid_param, must_be("callId", rule::call_id));

  std::string kind;
  if (auto r = str_field("event", kind, true)) return *r;
  auto k = calls::parse_event_kind(kind);
  if (!k) return refuse(errc::invalid_param, "event '" + clip(kind) + "' is not a known event name");
  ev.kind = *k;

  std::string user;
  if (auto r = str_field("userId", user, false)) return *r;
  if (is_admin) {
    if (user.empty()) return refuse(errc::invalid_param, "userId is required when an administrator reports");
  } else {
    if (user.empty()) user = std::string(identifier);
    if (user != identifier) {
      return refuse(errc::not_admin, "a user can report only their own events (userId must equal identifier)");
    }
  }
  if (!valid_user_id(user)) return refuse(errc::invalid_param, must_be("userId", rule::user_id));
  ev.user_id = std::move(user);

  if (auto it = o->find("eventId"); it != o->end() && !it->value().is_null()) {
    if (auto r = str_field("eventId", ev.event_id, false)) return *r;
    if (!valid_event_id(ev.event_id)) return refuse(errc::invalid_param, must_be("eventId", rule::event_id));
  }

  ev.ts_ms = now_ms;
  if (auto it = o->find("ts"); it != o->end() && !it->value().is_null()) {
    if (!is_admin) return refuse(errc::invalid_param, "ts is accepted from administrators only");
    auto ts = json_integer(it->value());
    if (!ts) {
      if (it->value().is_number()) return refuse(errc::invalid_param, "ts must be a whole number of unix milliseconds");
      return refuse(errc::bad_body, "ts must be an integer (unix milliseconds)");
    }
    if (*ts <= 0 || *ts > now_ms + 300000) {
      return refuse(errc::invalid_param, "ts must be unix milliseconds, not more than 5 minutes in the future");
    }
    ev.ts_ms = *ts;
  }

  if (auto it = o->find("callees"); it != o->end() && !it->value().is_null()) {
    const json::array* arr = it->value().if_array();
    if (!arr) return refuse(errc::bad_body, "callees must be an array of user ids");
    if (arr->size() > max_callees) {
      return refuse(errc::invalid_param,
                    "callees lists " + std::to_string(arr->size()) + " users; " + std::string(rule::callees));
    }
    for (std::size_t k = 0; k < arr->size(); ++k) {
      const auto& c = (*arr)[k];
      if (!c.is_string()) return refuse(errc::bad_body, "callees must be an array of strings");
      if (!valid_user_id(c.get_string())) {
        return refuse(errc::invalid_param, must_be("callees[" + std::to_string(k) + "]", rule::user_id));
      }
      ev.callees.emplace_back(c.get_string());
    }
  }
  std::string s;
  if (auto r = str_field("mediaType", s, false)) return *r;
  if (!s.empty()) {
    ev.media = parse_media_type(s);
    if (!ev.media) return refuse(errc::invalid_param, "mediaType must be audio or video");
  }
  s.clear();
  if (auto r = str_field("callType", s, false)) return *r;
  if (!s.empty()) {
    ev.type = parse_call_type(s);
    if (!ev.type) return refuse(errc::invalid_param, "callType must be single or group");
  }
  if (auto it = o->find("roomId"); it != o->end() && !it->value().is_null()) {
    auto room = parse_room_id(it->value());
    if (!room) return refuse(room.error().code, room.error().message);
    ev.room_id = std::move(*room);
  }
  if (auto it = o->find("timeoutSec"); it != o->end() && !it->value().is_null()) {
    auto t = json_integer(it->value());
    if (!t) return refuse(errc::bad_body, "timeoutSec must be an integer (seconds)");
    if (*t < 1 || *t > 3600) return refuse(errc::invalid_param, "timeoutSec must be between 1 and 3600");
    ev.timeout_sec = static_cast<std::int32_t>(*t);
  }
  ops::batch_entry e;
  e.event = std::move(ev);
  return e;
}

}  // namespace callrec::api
