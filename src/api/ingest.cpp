#include "api/ingest.h"

#include <boost/asio/async_result.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>
#include <future>
#include <map>
#include <memory>
#include <unordered_map>

#include "core/json_text.h"
#include "records/wire.h"

namespace callrec::api {

namespace asio = boost::asio;
namespace json = boost::json;

namespace {

calls::event_outcome refused(errc code, std::string message) {
  return calls::event_outcome{calls::event_status::refused, code, std::move(message)};
}

batch_entry refuse(errc code, std::string message) {
  batch_entry e;
  e.outcome = refused(code, std::move(message));
  return e;
}

}  // namespace

batch_entry parse_event(const json::value& v, bool is_admin, std::string_view identifier, std::int64_t now_ms) {
  const json::object* o = v.if_object();
  if (!o) return refuse(errc::bad_body, "event must be a JSON object");
  calls::call_event ev;

  auto str_field = [&](std::string_view name, std::string& out, bool required) -> std::optional<batch_entry> {
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
  batch_entry e;
  e.event = std::move(ev);
  return e;
}

namespace {

// Marks a touched live call for writing: its record if it ended, else its state with the next deadline.
void settle(call_slot& s, std::uint32_t sdkappid, const calls::call_settings& settings, obs::metrics& metrics) {
  s.changed = true;
  if (calls::ended(*s.state)) {
    s.finished = calls::to_record(*s.state, sdkappid);
    metrics.records_written.add();
  } else {
    s.deadline_ms = calls::next_deadline_ms(*s.state, settings);
  }
}

// The work handed to the store thread. Owned jointly so a request that gave up (deadline) leaves it valid.
struct batch_work {
  std::vector<batch_entry> entries;
  calls::call_settings settings;
  std::uint32_t sdkappid = 0;
  bool is_admin = false;
  obs::metrics* metrics = nullptr;

  void apply(std::vector<call_slot>& slots) {
    std::unordered_map<std::string_view, call_slot*> by_id;
    by_id.reserve(slots.size());
    for (auto& s : slots) by_id.emplace(s.call_id, &s);
    for (auto& e : entries) {
      if (!e.event) continue;
      call_slot& slot = *by_id.at(e.event->call_id);
      if (slot.ended) {
        e.outcome = calls::event_outcome{calls::event_status::late, errc::ok, {}};
        continue;
      }
      e.outcome = calls::apply_event(slot.state, *e.event, settings, is_admin);
    }
    for (auto& s : slots) {
      // Persist every touched live call: timers may have advanced it even when its events were refused.
      if (s.state) settle(s, sdkappid, settings, *metrics);
    }
  }
};

// Bridges store::update_calls (callback on a store thread) to a coroutine, with a deadline.
template <class Handler>
struct update_op : std::enable_shared_from_this<update_op<Handler>> {
  update_op(Handler h, asio::any_io_executor ex) : handler(std::move(h)), timer(ex) {}
  Handler handler;
  asio::steady_timer timer;
  bool done = false;  // only touched on the executor's thread
  void complete(result<void> r) {
    if (done) return;
    done = true;
    timer.cancel();
    std::move(handler)(std::move(r));
  }
};

asio::awaitable<result<void>> await_update(store& st, std::uint32_t sdkappid, std::vector<std::string> ids,
                                           store::update_fn fn, std::chrono::milliseconds timeout) {
  auto ex = co_await asio::this_coro::executor;
  co_return co_await asio::async_initiate<decltype(asio::use_awaitable), void(result<void>)>(
      [&](auto handler) {
        using op_t = update_op<decltype(handler)>;
        auto op = std::make_shared<op_t>(std::move(handler), ex);
        op->timer.expires_after(timeout);
        op->timer.async_wait([op](boost::system::error_code ec) {
          if (!ec) op->complete(make_error(errc::internal, "deadline exceeded while storing the events; retry"));
        });
        st.update_calls(sdkappid, std::move(ids), std::move(fn), [op, ex](result<void> r) {
          asio::post(ex, [op, r = std::move(r)]() mutable { op->complete(std::move(r)); });
        });
      },
      asio::use_awaitable);
}

}  // namespace

asio::awaitable<result<std::vector<batch_entry>>> ingest::report(std::uint32_t sdkappid, calls::call_settings settings,
                                                                 bool is_admin, std::vector<batch_entry> entries,
                                                                 std::chrono::milliseconds timeout) {
  auto work = std::make_shared<batch_work>();
  work->entries = std::move(entries);
  work->settings = settings;
  work->sdkappid = sdkappid;
  work->is_admin = is_admin;
  work->metrics = &metrics_;
  std::vector<std::string> ids;
  ids.reserve(work->entries.size());
  for (const auto& e : work->entries) {
    if (e.event) ids.push_back(e.event->call_id);
  }
  if (!ids.empty()) {
    // Named arguments, awaitable made first: GCC 12 destroys temporaries of a co_await expression twice.
    store::update_fn fn = [work](std::vector<call_slot>& slots) { work->apply(slots); };
    const auto queued = std::chrono::steady_clock::now();
    auto pending = await_update(store_, sdkappid, std::move(ids), std::move(fn), timeout);
    auto r = co_await std::move(pending);
    metrics_.store_commit_seconds.observe(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - queued).count());
    if (!r) {
      // Explicit result objects: GCC 12 double-destroys implicitly converted co_return operands.
      result<std::vector<batch_entry>> failed(r.error());
      co_return failed;
    }
  }
  std::uint64_t applied = 0, dup = 0, late = 0, ref = 0;
  for (const auto& e : work->entries) {
    switch (e.outcome.status) {
      case calls::event_status::applied: ++applied; break;
      case calls::event_status::duplicate: ++dup; break;
      case calls::event_status::late: ++late; break;
      case calls::event_status::refused: ++ref; break;
    }
  }
  metrics_.events_applied.add(applied);
  metrics_.events_duplicate.add(dup);
  metrics_.events_late.add(late);
  metrics_.events_refused.add(ref);
  result<std::vector<batch_entry>> done(std::move(work->entries));
  co_return done;
}

std::size_t ingest::fire_due_timers(std::int64_t now_ms,
                                    const std::function<calls::call_settings(std::uint32_t)>& settings) {
  auto due = store_.due_calls(now_ms, 2048);
  if (!due || due->empty()) return 0;
  std::map<std::uint32_t, std::vector<std::string>> by_app;
  for (auto& d : *due) by_app[d.sdkappid].push_back(std::move(d.call_id));
  std::vector<std::future<result<void>>> waits;
  std::vector<std::size_t> fired(by_app.size(), 0);  // per update; counted once its commit succeeded
  std::size_t advanced = 0;
  for (auto& [app_id, ids] : by_app) {
    const std::uint32_t app = app_id;  // a plain copy: lambdas cannot capture structured bindings in C++20
    auto cs = settings(app);
    auto promise = std::make_shared<std::promise<result<void>>>();
    waits.push_back(promise->get_future());
    auto fn = [cs, app, now_ms, this, n = &fired[waits.size() - 1]](std::vector<call_slot>& slots) {
      for (auto& s : slots) {
        if (!s.state) continue;
        if (calls::advance_to(*s.state, now_ms, cs)) ++*n;
        settle(s, app, cs, metrics_);  // also rewrites a deadline that was stale in the store's index
      }
    };
    store_.update_calls(app, std::move(ids), fn, [promise](result<void> r) { promise->set_value(std::move(r)); });
  }
  // A timer has fired once its outcome is committed (a record readable, a deadline moved), not before.
  for (std::size_t i = 0; i < waits.size(); ++i) {
    if (waits[i].get()) {
      metrics_.timers_fired.add(fired[i]);
      advanced += fired[i];
    }
  }
  return advanced;
}

}  // namespace callrec::api
