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
// Writes into space made once at the end of a string (no capacity check or call per piece), then trims it.
class raw_writer {
 public:
  raw_writer(std::string& out, std::size_t bound) : out_(out) {
    const std::size_t at = out.size();
    out.resize(at + bound);
    p_ = out.data() + at;
  }
  ~raw_writer() { out_.resize(static_cast<std::size_t>(p_ - out_.data())); }
  raw_writer(const raw_writer&) = delete;
  raw_writer& operator=(const raw_writer&) = delete;

  void lit(std::string_view s) noexcept {
    std::memcpy(p_, s.data(), s.size());
    p_ += s.size();
  }
  void integer(std::int64_t v) noexcept { p_ = std::to_chars(p_, p_ + 24, v).ptr; }
  // A JSON string: at most 6 bytes a byte of `s`, plus the quotes (see bound()).
  void str(std::string_view s) {
    if (plain_json_prefix(s) == s.size()) {
      *p_++ = '"';
      if (!s.empty()) std::memcpy(p_, s.data(), s.size());
      p_ += s.size();
      *p_++ = '"';
      return;
    }
    std::string escaped;
    append_json_string(escaped, s);
    lit(escaped);
  }
  // Room for a JSON string of `bytes` bytes, escaped at worst (\u00XX a byte).
  static constexpr std::size_t bound(std::size_t bytes) noexcept { return 6 * bytes + 2; }

 private:
  std::string& out_;
  char* p_;
};

// The record's JSON object, for call_record and record_fields alike; `callees(w)` writes the array's
// `callee_count` elements, whose texts are `callee_bytes` long in all.
template <class Record, class Callees>
void append_record(std::string& out, const Record& r, std::size_t callee_count, std::size_t callee_bytes,
                   Callees&& callees) {
  using namespace std::string_view_literals;  // literal lengths known at compile time: no strlen
  const std::size_t bound = 240 + raw_writer::bound(r.call_id.size()) + raw_writer::bound(r.room_id.size()) +
                            raw_writer::bound(r.caller.size()) + 6 * callee_bytes + 3 * callee_count;
  raw_writer w(out, bound);
  w.lit("{\"callId\":"sv);
  w.str(r.call_id);
  w.lit(",\"sdkAppId\":"sv);
  w.integer(r.sdkappid);
  w.lit(",\"mediaType\":\""sv);
  w.lit(to_string(r.media));
  w.lit("\",\"roomId\":"sv);
  w.str(r.room_id);
  w.lit(",\"startCallTs\":"sv);
  w.integer(r.start_ts);
  w.lit(",\"acceptTs\":"sv);
  w.integer(r.accept_ts);
  w.lit(",\"endTs\":"sv);
  w.integer(r.end_ts);
  w.lit(",\"caller\":"sv);
  w.str(r.caller);
  w.lit(",\"totalUserNumber\":"sv);
  w.integer(static_cast<std::int64_t>(callee_count) + 1);
  w.lit(",\"callType\":\""sv);
  w.lit(to_string(r.type));
  w.lit("\",\"callResult\":\""sv);
  w.lit(to_string(r.result));
  w.lit("\",\"callees\":["sv);
  callees(w);
  w.lit("]}"sv);
}

}  // namespace

void append_record_json(std::string& out, const call_record& r) {
  std::size_t bytes = 0;
  for (const auto& c : r.callees) bytes += c.size();
  append_record(out, r, r.callees.size(), bytes, [&r](raw_writer& w) {
    for (std::size_t i = 0; i < r.callees.size(); ++i) {
      if (i) w.lit(",");
      w.str(r.callees[i]);
    }
  });
}

void append_record_json(std::string& out, const record_fields& r) {
  append_record(out, r, callee_count(r.callees), r.callees.size(), [&r](raw_writer& w) {
    bool first = true;
    for_each_callee(r.callees, [&](std::string_view c) {
      if (!first) w.lit(",");
      first = false;
      w.str(c);
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
