// encode/decode of call_state: compact JSON, versioned, for the stores. decode reads bytes that may be corrupt:
// every field is checked for type and range, and any failure is an error value (errc::internal: the stored
// data is broken, the client is not to blame), never an assert or an exception.
//
// Format (version 2), keys in this order:
//   {"v":2,"id":callId,"caller":user,"media":0|1,"type":0|1,"room":roomId,"timeout":sec,"start":ms,"accept":ms,
//    "end":ms,"clock":ms,"result":null|0..6,"init":n,"members":[[user,status,ring_deadline_ms,last_seen_ms,invited],
//    ...],"eids":[[user,eventId] or eventId,...]}
// Version 1 (stores written before eventIds were scoped to the acting user) is the same with every eids entry
// a plain eventId: such an entry matches every user (applied_event_id), and is written back as it was read.
// Enumerations are stored as their numeric values (call_state.h, records/record.h): append-only.
#include <boost/json.hpp>

#include "calls/call_state.h"

namespace callrec::calls {
namespace {

constexpr std::int64_t format_version = 2;
constexpr std::size_t legacy_max_event_id_bytes = 128;  // version 1 took eventIds of up to 128 bytes
constexpr std::size_t field_count = 15;
constexpr std::int64_t max_member_status = static_cast<std::int64_t>(member_status::cancelled);
// Bounds of the stored times. Event times are 1..max_event_ts_ms (apply_event refuses others); a ringing deadline
// adds at most max_timeout_sec; a fired heartbeat timer (clock, end) adds at most a heartbeat window (< 2^31 s).
// Anything beyond is corrupt. Within them no later arithmetic overflows, and the machine keeps a decoded state
// within them, so what decode accepts can always be encoded and decoded again.
constexpr std::int64_t max_ring_deadline_ms = max_event_ts_ms + std::int64_t{max_timeout_sec} * 1000;
constexpr std::int64_t max_state_time_ms = max_event_ts_ms + std::int64_t{2147483647} * 1000;

namespace json = boost::json;

error corrupt(std::string what) { return make_error(errc::internal, "stored call state is corrupt: " + what); }

std::optional<std::int64_t> as_int(const json::value& v, std::int64_t lo, std::int64_t hi) {
  std::int64_t n = 0;
  if (const auto* i = v.if_int64()) {
    n = *i;
  } else if (const auto* u = v.if_uint64()) {
    if (*u > static_cast<std::uint64_t>(hi)) return std::nullopt;
    n = static_cast<std::int64_t>(*u);
  } else {
    return std::nullopt;
  }
  if (n < lo || n > hi) return std::nullopt;
  return n;
}

// Reads the fields of one object in turn; the first problem is kept and later reads are no-ops.
class reader {
 public:
  explicit reader(const json::object& o) : o_(o) {}

  std::int64_t integer(std::string_view key, std::int64_t lo, std::int64_t hi) {
    const json::value* v = field(key);
    if (!v) return lo;
    const auto n = as_int(*v, lo, hi);
    if (!n) fail(std::string(key) + " is not an integer in " + std::to_string(lo) + ".." + std::to_string(hi));
    return n.value_or(lo);
  }

  std::string text(std::string_view key, std::size_t max_bytes) {
    const json::value* v = field(key);
    if (!v) return {};
    const auto* s = v->if_string();
    if (!s || s->size() > max_bytes) {
      fail(std::string(key) + " is not a string of at most " + std::to_string(max_bytes) + " bytes");
      return {};
    }
    return std::string(s->data(), s->size());
  }

  const json::array* array(std::string_view key, std::size_t min_size, std::size_t max_size) {
    const json::value* v = field(key);
    if (!v) return nullptr;
    const auto* a = v->if_array();
    if (!a || a->size() < min_size || a->size() > max_size) {
      fail(std::string(key) + " is not an array of " + std::to_string(min_size) + ".." + std::to_string(max_size) +
           " elements");
      return nullptr;
    }
    return a;
  }

  const json::value* field(std::string_view key) {
    if (problem_) return nullptr;
    const json::value* v = o_.if_contains(key);
    if (!v) fail("field " + std::string(key) + " is missing");
    return v;
  }

  void fail(std::string what) {
    if (!problem_) problem_ = std::move(what);
  }
  const std::optional<std::string>& problem() const { return problem_; }

 private:
  const json::object& o_;
  std::optional<std::string> problem_;
};

std::optional<member> decode_member(const json::value& v) {
  const auto* a = v.if_array();
  if (!a || a->size() != 5) return std::nullopt;
  const auto* user = (*a)[0].if_string();
  const auto status = as_int((*a)[1], 0, max_member_status);
  const auto ring = as_int((*a)[2], 0, max_ring_deadline_ms);
  const auto seen = as_int((*a)[3], 0, max_event_ts_ms);
  const auto* invited = (*a)[4].if_bool();
  if (!user || !status || !ring || !seen || !invited) return std::nullopt;
  member m;
  m.user_id.assign(user->data(), user->size());
  if (!valid_user_id(m.user_id)) return std::nullopt;
  m.status = static_cast<member_status>(*status);
  m.ring_deadline_ms = *ring;
  m.last_seen_ms = *seen;
  m.invited = *invited;
  return m;
}

// An eids entry: [user, eventId], or (version 1 entries, kept in later versions) a plain eventId of any user.
std::optional<applied_event_id> decode_event_id(const json::value& v, std::int64_t version) {
  applied_event_id out;
  if (const auto* legacy = v.if_string()) {
    if (legacy->empty() || legacy->size() > legacy_max_event_id_bytes) return std::nullopt;
    out.event_id.assign(legacy->data(), legacy->size());
    return out;
  }
  const auto* pair = v.if_array();
  if (version < 2 || !pair || pair->size() != 2) return std::nullopt;
  const auto* user = (*pair)[0].if_string();
  const auto* id = (*pair)[1].if_string();
  if (!user || !id) return std::nullopt;
  out.user_id.assign(user->data(), user->size());
  out.event_id.assign(id->data(), id->size());
  if (!valid_user_id(out.user_id) || !valid_event_id(out.event_id)) return std::nullopt;
  return out;
}

}  // namespace

std::string encode(const call_state& s) {
  json::object o;
  o.reserve(field_count);
  o["v"] = format_version;
  o["id"] = s.call_id;
  o["caller"] = s.caller;
  o["media"] = static_cast<std::int64_t>(s.media);
  o["type"] = static_cast<std::int64_t>(s.type);
  o["room"] = s.room_id;
  o["timeout"] = s.timeout_sec;
  o["start"] = s.start_ms;
  o["accept"] = s.accept_ms;
  o["end"] = s.end_ms;
  o["clock"] = s.clock_ms;
  if (s.result) {
    o["result"] = static_cast<std::int64_t>(*s.result);
  } else {
    o["result"] = nullptr;
  }
  o["init"] = s.initial_callees;
  json::array members;
  members.reserve(s.members.size());
  for (const member& m : s.members) {
    members.push_back(json::array{json::string_view(m.user_id), static_cast<std::int64_t>(m.status), m.ring_deadline_ms,
                                  m.last_seen_ms, m.invited});
  }
  o["members"] = std::move(members);
  json::array ids;
  ids.reserve(s.event_ids.size());
  for (const applied_event_id& id : s.event_ids) {
    if (id.user_id.empty()) {
      ids.emplace_back(json::string_view(id.event_id));  // a version 1 entry: any user
    } else {
      ids.push_back(json::array{json::string_view(id.user_id), json::string_view(id.event_id)});
    }
  }
  o["eids"] = std::move(ids);
  return json::serialize(o);
}

result<call_state> decode(std::string_view bytes) {
  json::parse_options options;
  options.allow_invalid_utf8 = true;  // ids and rooms are stored as the bytes they were given
  boost::system::error_code ec;
  const json::value v = json::parse(bytes, ec, {}, options);
  if (ec) return corrupt("not JSON (" + ec.message() + ")");
  const auto* o = v.if_object();
  if (!o) return corrupt("not a JSON object");
  if (o->size() != field_count) return corrupt("expected " + std::to_string(field_count) + " fields");

  reader r(*o);
  const std::int64_t version = r.integer("v", 0, format_version);
  if (!r.problem() && version < 1) return corrupt("unknown version " + std::to_string(version));
  call_state s;
  s.call_id = r.text("id", max_call_id_bytes);
  s.caller = r.text("caller", max_user_id_bytes);
  s.media = static_cast<media_type>(r.integer("media", 0, static_cast<std::int64_t>(media_type::video)));
  s.type = static_cast<call_type>(r.integer("type", 0, static_cast<std::int64_t>(call_type::group)));
  s.room_id = r.text("room", max_room_id_bytes);
  s.timeout_sec = static_cast<std::int32_t>(r.integer("timeout", 1, max_timeout_sec));
  s.start_ms = r.integer("start", 1, max_event_ts_ms);
  s.accept_ms = r.integer("accept", 0, max_event_ts_ms);
  s.end_ms = r.integer("end", 0, max_state_time_ms);
  s.clock_ms = r.integer("clock", 0, max_state_time_ms);
  if (const json::value* res = r.field("result"); res && !res->is_null()) {
    const auto n = as_int(*res, 0, call_result_count - 1);
    if (!n) r.fail("result is neither null nor a call result");
    s.result = static_cast<call_result>(n.value_or(0));
  }
  const std::int64_t init = r.integer("init", 1, static_cast<std::int64_t>(max_callees));
  s.initial_callees = static_cast<std::uint32_t>(init);
  if (const json::array* members = r.array("members", 2, max_callees + 1)) {
    s.members.reserve(members->size());
    for (const json::value& m : *members) {
      auto decoded = decode_member(m);
      if (!decoded) {
        r.fail("members[" + std::to_string(s.members.size()) + "] is malformed");
        break;
      }
      s.members.push_back(std::move(*decoded));
    }
  }
  if (const json::array* ids = r.array("eids", 0, max_event_ids)) {
    s.event_ids.reserve(ids->size());
    for (const json::value& id : *ids) {
      auto decoded = decode_event_id(id, version);
      if (!decoded) {
        r.fail("eids[" + std::to_string(s.event_ids.size()) + "] is malformed");
        break;
      }
      s.event_ids.push_back(std::move(*decoded));
    }
  }
  if (r.problem()) return corrupt(*r.problem());

  // What the state machine relies on.
  if (!valid_call_id(s.call_id)) return corrupt("id is not a valid call id");
  if (s.members[0].user_id != s.caller) return corrupt("members[0] is not the caller");
  if (std::size_t{s.initial_callees} > s.members.size() - 1) return corrupt("init exceeds the callees");
  if (s.result.has_value() != (s.end_ms != 0)) return corrupt("result and end disagree");
  if (s.clock_ms < s.start_ms) return corrupt("clock is before start");
  for (std::size_t i = 1; i < s.members.size(); ++i) {
    for (std::size_t j = 0; j < i; ++j) {
      if (s.members[i].user_id == s.members[j].user_id) return corrupt("a user appears twice in members");
    }
  }
  return s;
}

}  // namespace callrec::calls
