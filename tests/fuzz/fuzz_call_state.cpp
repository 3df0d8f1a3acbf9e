// libFuzzer target for the call state machine and its codec (the stores decode states from disk, the API feeds it
// reported events). For any bytes:
//  1. decode(bytes) answers a value; a state it accepts encodes back to bytes that decode to the same state.
//  2. The bytes read as a program of events and timer sweeps (below) applied to an empty call, and to the decoded
//     state if any: nothing crashes, every intermediate state survives encode/decode unchanged, the states the
//     machine built from nothing keep its invariants, and running the same program twice gives the same state.
//
// Program: byte 0 picks the heartbeat window; then each step is an opcode byte (kind = op % 12, 11 = advance_to),
// a user byte, a flags byte, two bytes of signed time delta, then for start_call/invite_user a callee count and
// that many user bytes, and for start_call a timeout byte. Missing bytes read as 0.
#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "calls/call_state.h"

namespace {

using namespace callrec;
using namespace callrec::calls;

void check(bool ok) {
  if (!ok) std::abort();
}

class byte_reader {
 public:
  byte_reader(const std::uint8_t* data, std::size_t size) : data_(data), size_(size) {}
  bool done() const { return pos_ >= size_; }
  std::uint8_t next() { return pos_ < size_ ? data_[pos_++] : 0; }

 private:
  const std::uint8_t* data_;
  std::size_t size_;
  std::size_t pos_ = 0;
};

// Users the program can name: a few valid ids, one id that is not valid, and the empty id.
constexpr std::array<std::string_view, 8> users = {"alice", "bob", "carol", "dave", "erin", "u5", "has space", ""};
constexpr std::array<std::int32_t, 8> heartbeats = {0, 1, 30, 60, 3600, -1, 2147483647, 60};
constexpr std::int64_t base_ts_ms = 1'700'000'000'000;

// States built by the machine from nothing keep these (the unit tests check more of them).
void check_invariants(const call_state& s, const call_settings& settings) {
  check(s.members.size() >= 2 && s.members[0].user_id == s.caller);
  check(s.members.size() - 1 <= max_callees && s.event_ids.size() <= max_event_ids);
  check(s.clock_ms >= s.start_ms);
  check(s.accept_ms == 0 || (s.accept_ms >= s.start_ms && s.accept_ms <= s.clock_ms));
  const auto connected = std::count_if(s.members.begin(), s.members.end(),
                                       [](const member& m) { return m.status == member_status::connected; });
  if (ended(s)) {
    check(s.end_ms == s.clock_ms && s.end_ms >= s.accept_ms && connected == 0);
    check(!next_deadline_ms(s, settings).has_value());
  } else {
    check(s.end_ms == 0);
    check(s.accept_ms == 0 ? s.members[0].status == member_status::connected : connected >= 2);
  }
  const call_record r = to_record(s, 1);
  check(r.total_user_number() == s.members.size());
}

void check_round_trip(const call_state& s) {
  const std::string bytes = encode(s);
  const auto back = decode(bytes);
  check(back.has_value());
  check(back.value() == s);
  check(encode(back.value()) == bytes);
}

// Runs the program on `state`; returns it at the end.
std::optional<call_state> run(const std::uint8_t* data, std::size_t size, std::optional<call_state> state,
                              bool from_nothing) {
  byte_reader in(data, size);
  const call_settings settings{heartbeats[in.next() % heartbeats.size()]};
  std::int64_t now = state ? state->clock_ms : base_ts_ms;
  for (int steps = 0; !in.done() && steps < 400; ++steps) {
    const std::uint8_t op = in.next();
    const std::uint8_t user = in.next();
    const std::uint8_t flags = in.next();
    const auto delta = static_cast<std::int16_t>(std::uint16_t(in.next()) << 8 | in.next());
    now += std::int64_t{delta} * 61;  // about +-33 minutes, so both ringing and heartbeat timers matter
    if (flags & 0x80) now = (flags & 0x40) ? max_event_ts_ms + delta : delta;  // out-of-range times
    if (op % 12 == 11) {
      if (state) advance_to(*state, now, settings);
    } else {
      call_event ev;
      ev.call_id = state ? state->call_id : "call-1";
      ev.kind = static_cast<event_kind>(op % 12);
      ev.user_id = users[user % users.size()];
      ev.ts_ms = now;
      if (flags & 0x01) ev.event_id = "e" + std::to_string((flags >> 1) & 0x07);
      if (ev.kind == event_kind::start_call || ev.kind == event_kind::invite_user) {
        const std::size_t n = in.next() % 5;
        for (std::size_t k = 0; k < n; ++k) ev.callees.emplace_back(users[in.next() % users.size()]);
      }
      if (ev.kind == event_kind::start_call) {
        if (op & 0x10) ev.type = static_cast<call_type>((op >> 5) & 1);
        if (op & 0x40) ev.media = media_type::video;
        const std::uint8_t timeout = in.next();
        if (timeout != 0) ev.timeout_sec = timeout == 0xff ? 3601 : std::int32_t{timeout} - 8;
      }
      const event_outcome o = apply_event(state, ev, settings, (flags & 0x10) != 0);
      check(o.status != event_status::refused || (o.code != errc::ok && !o.message.empty()));
      check(o.status == event_status::refused || o.code == errc::ok);
    }
    if (state) {
      check_round_trip(*state);
      if (from_nothing) check_invariants(*state, settings);
      (void)next_deadline_ms(*state, settings);
    }
  }
  return state;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);

  const auto decoded = decode(bytes);
  if (decoded.has_value()) {
    check_round_trip(decoded.value());
    (void)run(data, size, decoded.value(), false);
  } else {
    check(decoded.error().code == errc::internal && !decoded.error().message.empty());
  }

  const auto first = run(data, size, std::nullopt, true);
  const auto second = run(data, size, std::nullopt, true);
  check(first == second);  // deterministic
  return 0;
}
