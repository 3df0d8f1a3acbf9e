#include "records/wire.h"

#include "core/json_text.h"

#include <boost/json/value.hpp>
#include <charconv>
#include <cstring>
#include <string_view>
#include <cmath>
#include <limits>

namespace callrec {
namespace {

void append_int(std::string& out, std::int64_t v) {
  char buf[24];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);  // two digits a step; cannot fail in 24 bytes
  out.append(buf, static_cast<std::size_t>(r.ptr - buf));
}

error wrong_type(std::string_view field, std::string_view expected) {
  return make_error(errc::bad_body, std::string(field) + " must be " + std::string(expected));
}
error invalid(std::string_view field, std::string_view problem) {
  return make_error(errc::invalid_param, std::string(field) + " " + std::string(problem));
}

constexpr char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

std::string base64url(std::string_view in) {
  std::string out;
  std::uint32_t acc = 0;
  int bits = 0;
  for (unsigned char c : in) {
    acc = (acc << 8) | c;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out += b64url[(acc >> bits) & 63];
    }
  }
  if (bits > 0) out += b64url[(acc << (6 - bits)) & 63];
  return out;
}

std::optional<std::string> unbase64url(std::string_view in) {
  std::string out;
  std::uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    int v;
    if (c >= 'A' && c <= 'Z') v = c - 'A';
    else if (c >= 'a' && c <= 'z') v = c - 'a' + 26;
    else if (c >= '0' && c <= '9') v = c - '0' + 52;
    else if (c == '-') v = 62;
    else if (c == '_') v = 63;
    else return std::nullopt;
    acc = (acc << 6) | static_cast<std::uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xff);
    }
  }
  return out;
}

}  // namespace

namespace {

// The record's JSON object, for call_record and record_fields alike; `callees(out)` writes the array's
// `callee_count` elements.
template <class Record, class Callees>
void append_record(std::string& out, const Record& r, std::size_t callee_count, Callees&& callees) {
  using namespace std::string_view_literals;  // literal lengths known at compile time: no strlen
  out += "{\"callId\":"sv;
  append_json_string(out, r.call_id);
  out += ",\"sdkAppId\":"sv;
  append_int(out, r.sdkappid);
  out += ",\"mediaType\":\""sv;
  out += to_string(r.media);
  out += "\",\"roomId\":"sv;
  append_json_string(out, r.room_id);
  out += ",\"startCallTs\":"sv;
  append_int(out, r.start_ts);
  out += ",\"acceptTs\":"sv;
  append_int(out, r.accept_ts);
  out += ",\"endTs\":"sv;
  append_int(out, r.end_ts);
  out += ",\"caller\":"sv;
  append_json_string(out, r.caller);
  out += ",\"totalUserNumber\":"sv;
  append_int(out, static_cast<std::int64_t>(callee_count) + 1);
  out += ",\"callType\":\""sv;
  out += to_string(r.type);
  out += "\",\"callResult\":\""sv;
  out += to_string(r.result);
  out += "\",\"callees\":["sv;
  callees(out);
  out += "]}"sv;
}

}  // namespace

void append_record_json(std::string& out, const call_record& r) {
  append_record(out, r, r.callees.size(), [&r](std::string& o) {
    for (std::size_t i = 0; i < r.callees.size(); ++i) {
      if (i) o += ',';
      append_json_string(o, r.callees[i]);
    }
  });
}

void append_record_json(std::string& out, const record_fields& r) {
  append_record(out, r, callee_count(r.callees), [&r](std::string& o) {
    bool first = true;
    for_each_callee(r.callees, [&](std::string_view c) {
      if (!first) o += ',';
      first = false;
      append_json_string(o, c);
    });
  });
}

call_record to_record(const record_fields& f) {
  call_record r;
  r.call_id = f.call_id;
  r.sdkappid = f.sdkappid;
  r.media = f.media;
  r.room_id = f.room_id;
  r.start_ts = f.start_ts;
  r.accept_ts = f.accept_ts;
  r.end_ts = f.end_ts;
  r.caller = f.caller;
  r.callees.reserve(callee_count(f.callees));  // one allocation, not log2(n)
  for_each_callee(f.callees, [&r](std::string_view c) { r.callees.emplace_back(c); });
  r.type = f.type;
  r.result = f.result;
  return r;
}

std::optional<std::string_view> plain_call_id_body(std::string_view body) noexcept {
  const char* p = body.data();
  const char* const end = p + body.size();
  auto ws = [&] {
    while (p != end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) ++p;
  };
  auto take = [&](char c) {
    if (p == end || *p != c) return false;
    ++p;
    return true;
  };
  constexpr std::string_view key = "\"callId\"";
  ws();
  if (!take('{')) return std::nullopt;
  ws();
  if (static_cast<std::size_t>(end - p) < key.size() || std::memcmp(p, key.data(), key.size()) != 0) {
    return std::nullopt;
  }
  p += key.size();
  ws();
  if (!take(':')) return std::nullopt;
  ws();
  if (!take('"')) return std::nullopt;
  const std::string_view id(p, plain_json_prefix(std::string_view(p, static_cast<std::size_t>(end - p))));
  p += id.size();
  if (!take('"')) return std::nullopt;
  ws();
  if (!take('}')) return std::nullopt;
  ws();
  if (p != end) return std::nullopt;
  return id;
}

result<std::string> parse_room_id(const boost::json::value& v) {
  if (v.is_string()) {
    std::string room(v.get_string());
    if (!valid_room_id(room)) return make_error(errc::invalid_param, must_be("roomId", rule::room_id));
    return room;
  }
  if (v.is_number()) {
    const auto n = json_integer(v);
    if (!n || !valid_room_number(*n)) return make_error(errc::invalid_param, must_be("roomId", rule::room_id));
    return std::to_string(*n);  // numeric rooms as decimal text
  }
  return make_error(errc::bad_body, "roomId must be a string or an integer");
}

std::optional<std::int64_t> json_integer(const boost::json::value& v) {
  if (v.is_int64()) return v.get_int64();
  if (v.is_uint64()) {
    if (v.get_uint64() > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) return std::nullopt;
    return static_cast<std::int64_t>(v.get_uint64());
  }
  if (v.is_double()) {
    double d = v.get_double();
    if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9.0e15) return static_cast<std::int64_t>(d);
  }
  return std::nullopt;
}

std::string encode_cursor(const record_cursor& c) {
  return base64url(std::to_string(c.start_ts) + ":" + c.call_id);
}

std::optional<record_cursor> decode_cursor(std::string_view s) {
  if (s.empty() || s.size() > 200) return std::nullopt;
  auto raw = unbase64url(s);
  if (!raw) return std::nullopt;
  auto colon = raw->find(':');
  // At most 18 digits: any of them fits an int64 (19 could overflow it; a unix time needs 10).
  if (colon == std::string::npos || colon == 0 || colon > 18) return std::nullopt;
  std::int64_t ts = 0;
  for (std::size_t i = 0; i < colon; ++i) {
    char c = (*raw)[i];
    if (c < '0' || c > '9') return std::nullopt;
    ts = ts * 10 + (c - '0');
  }
  record_cursor out{ts, raw->substr(colon + 1)};
  if (!valid_call_id(out.call_id)) return std::nullopt;
  return out;
}

result<filter_request> parse_filter_request(const boost::json::object& body, std::uint32_t sdkappid,
                                            std::int32_t retention_days, std::int64_t now_s) {
  filter_request req;
  record_filter& f = req.filter;
  f.sdkappid = sdkappid;

  auto get_int = [&](std::string_view name, bool required, std::int64_t& out) -> result<bool> {
    auto it = body.find(name);
    if (it == body.end() || it->value().is_null()) {
      if (required) return invalid(name, "is required");
      return false;
    }
    auto v = json_integer(it->value());
    if (!v) {
      if (it->value().is_number()) return invalid(name, "must be a whole number in range");
      return wrong_type(name, "an integer");
    }
    out = *v;
    return true;
  };
  auto get_string = [&](std::string_view name, std::optional<std::string>& out) -> result<void> {
    auto it = body.find(name);
    if (it == body.end() || it->value().is_null()) return {};
    if (!it->value().is_string()) return wrong_type(name, "a string");
    out = std::string(it->value().get_string());
    return {};
  };

  std::int64_t start = 0;
  if (auto r = get_int("startTimestamp", true, start); !r) return r.error();
  if (start < 0) return invalid("startTimestamp", "must be a unix time in seconds (>= 0)");
  std::int64_t end = now_s;
  auto has_end = get_int("endTimestamp", false, end);
  if (!has_end) return has_end.error();
  if (*has_end && end < 0) return invalid("endTimestamp", "must be a unix time in seconds (>= 0)");
  if (end < start) return invalid("endTimestamp", "must be >= startTimestamp");

  std::optional<std::string> s;
  if (auto r = get_string("callResult", s); !r) return r.error();
  if (s) {
    f.result = parse_call_result(*s);
    if (!f.result) {
      return invalid("callResult",
                     "must be one of cancel, reject, not_answer, normal_end, call_busy, interrupt, offline");
    }
  }
  s.reset();
  if (auto r = get_string("callType", s); !r) return r.error();
  if (s) {
    f.type = parse_call_type(*s);
    if (!f.type) return invalid("callType", "must be single or group");
  }
  s.reset();
  if (auto r = get_string("mediaType", s); !r) return r.error();
  if (s) {
    f.media = parse_media_type(*s);
    if (!f.media) return invalid("mediaType", "must be audio or video");
  }
  if (auto r = get_string("userId", f.user_id); !r) return r.error();
  if (f.user_id && !valid_user_id(*f.user_id)) return make_error(errc::invalid_param, must_be("userId", rule::user_id));
  if (auto r = get_string("caller", f.caller); !r) return r.error();
  if (f.caller && !valid_user_id(*f.caller)) return make_error(errc::invalid_param, must_be("caller", rule::user_id));
  if (auto it = body.find("roomId"); it != body.end() && !it->value().is_null()) {
    auto room = parse_room_id(it->value());
    if (!room) return std::move(room).error();
    f.room_id = std::move(*room);
  }
  s.reset();
  if (auto r = get_string("order", s); !r) return r.error();
  if (s) {
    if (*s == "desc") f.descending = true;
    else if (*s != "asc") return invalid("order", "must be asc or desc");
  }

  std::int64_t per_page = 100;
  auto has_per_page = get_int("numberPerPage", false, per_page);
  if (!has_per_page) return has_per_page.error();
  if (per_page < 1 || per_page > 1000) return invalid("numberPerPage", "must be between 1 and 1000");
  f.limit = static_cast<std::uint32_t>(per_page);

  std::int64_t page = 1;
  auto has_page = get_int("page", false, page);
  if (!has_page) return has_page.error();
  if (page < 1 || page > 100000000) return invalid("page", "must be between 1 and 100000000");
  req.page = static_cast<std::uint64_t>(page);

  s.reset();
  if (auto r = get_string("cursor", s); !r) return r.error();
  if (s && !s->empty()) {
    f.after = decode_cursor(*s);
    if (!f.after) return invalid("cursor", "is not a cursor returned by a previous answer (nextCursor)");
  } else {
    f.offset = (req.page - 1) * f.limit;
  }

  const std::int64_t oldest = now_s - static_cast<std::int64_t>(retention_days) * 86400;
  f.start_ts = std::max(start, oldest);
  f.end_ts = end;
  req.empty_window = f.end_ts < f.start_ts;
  return req;
}

}  // namespace callrec
