#include "http/h2_session.h"

#include <nghttp2/nghttp2.h>

#include <algorithm>
#include <array>
#include <boost/asio/ip/tcp.hpp>
#include <charconv>
#include <cstring>
#include <unordered_map>


namespace callrec::http {

namespace asio = boost::asio;
using steady = std::chrono::steady_clock;

h2_limits h2_limits::from(const http_limits& http) {
  h2_limits l;
  l.max_header_bytes = http.max_header_bytes;
  l.max_header_count = http.max_header_count;
  l.max_body_bytes = http.max_body_bytes;
  l.idle_timeout_ms = http.h2_idle_timeout_sec.value_or(http.idle_timeout_sec) * 1000;
  l.request_timeout_ms = http.request_timeout_sec * 1000;
  l.max_concurrent_streams = http.h2_max_concurrent_streams;
  l.initial_window_size = http.h2_initial_window_bytes;
  // One stream may use its whole window: the connection window is never smaller than a stream's.
  l.connection_window_size = std::max(l.connection_window_size, http.h2_initial_window_bytes);
  l.max_frame_size = http.h2_max_frame_bytes;
  l.rate_window_ms = 10'000;  // the [limits] counts are per 10 s
  l.max_peer_resets_per_window = http.h2_max_resets_per_10s;
  l.max_pings_per_window = http.h2_max_pings_per_10s;
  l.max_settings_per_window = http.h2_max_settings_per_10s;
  l.stall_timeout_ms = http.h2_stall_timeout_sec * 1000;
  return l;
}

namespace {

// A count of events in a fixed window; `over` adds one and says whether the window's allowance is exceeded.
struct window_count {
  steady::time_point start{};
  std::uint32_t n = 0;
  bool over(steady::time_point now, std::chrono::milliseconds window, std::uint32_t max) {
    if (now - start >= window) {
      start = now;
      n = 0;
    }
    return ++n > max;
  }
};

nghttp2_nv make_nv(std::string_view name, std::string_view value) {
  // nghttp2 copies names and values on submit (no NO_COPY flags), so views into temporaries are fine.
  return nghttp2_nv{reinterpret_cast<std::uint8_t*>(const_cast<char*>(name.data())),
                    reinterpret_cast<std::uint8_t*>(const_cast<char*>(value.data())), name.size(), value.size(),
                    NGHTTP2_NV_FLAG_NONE};
}

method to_method(std::string_view m) {
  if (m == "GET") return method::get;
  if (m == "POST") return method::post;
  if (m == "HEAD") return method::head;
  return method::other;
}

}  // namespace

struct h2_server_session::impl {
  struct stream {
    std::string method_name, path, body;
    request req;  // what the handler sees; views into the strings above
    steady::time_point started;
    std::uint64_t header_bytes = 0;
    std::uint32_t header_fields = 0;
    unsigned reject_status = 0;  // 413 / 431: we answer ourselves, the handler never sees the request
    bool request_done = false;   // END_STREAM received (or the stream was given up)
    bool answered = false;       // a response was submitted
    bool handler_running = false;
    bool closed = false;  // nghttp2 closed the stream while its handler runs: dropped when the reply comes
    std::string resp_body;
    std::size_t resp_sent = 0;
  };

  impl(const h2_limits& l, std::string r, request_sink s, steady::time_point t)
      : lim(l), remote(std::move(r)), sink(std::move(s)), now(t), idle_since(t) {}

  h2_limits lim;
  std::string remote;
  request_sink sink;
  refusal_sink refusals;  // optional
  nghttp2_session* session = nullptr;
  std::unordered_map<std::int32_t, std::unique_ptr<stream>> streams;
  std::size_t open_count = 0;
  steady::time_point now;
  steady::time_point idle_since;
  window_count resets, pings, settings, empties;
  bool fatal = false;   // nghttp2 can no longer be used for input (callback failure or library error)
  bool broken = false;  // nor for output
  std::string reason;
  h2_abuse abuse = h2_abuse::none;
  std::uint64_t streams_opened = 0;

  std::chrono::milliseconds window() const { return std::chrono::milliseconds(lim.rate_window_ms); }

  stream* find(std::int32_t id) {
    auto it = streams.find(id);
    return it == streams.end() ? nullptr : it->second.get();
  }

  // Ends the connection from inside a callback: GOAWAY ENHANCE_YOUR_CALM, no more input processed.
  int fail(h2_abuse kind, std::string why) {
    if (!fatal) {
      fatal = true;
      abuse = kind;
      reason = std::move(why);
      nghttp2_session_terminate_session(session, NGHTTP2_ENHANCE_YOUR_CALM);
    }
    return NGHTTP2_ERR_CALLBACK_FAILURE;
  }

  void respond(std::int32_t id, stream& st, unsigned status, std::string_view content_type, std::string_view request_id,
               std::string body, bool head_only) {
    st.answered = true;
    st.resp_body = std::move(body);
    st.resp_sent = 0;
    if (status < 100 || status > 999) status = 500;
    char status_text[4];
    std::to_chars(status_text, status_text + 3, status);
    const std::string length = std::to_string(st.resp_body.size());
    std::array<nghttp2_nv, 4> nva{make_nv(":status", std::string_view(status_text, 3)),
                                  make_nv("content-type", content_type), make_nv("content-length", length),
                                  make_nv("x-request-id", request_id)};
    const std::size_t nvlen = request_id.empty() ? 3 : 4;
    const bool has_body = !head_only && !st.resp_body.empty() && status != 204 && status != 304;
    nghttp2_data_provider provider{};
    provider.source.ptr = &st;
    provider.read_callback = &impl::read_body;
    if (nghttp2_submit_response(session, id, nva.data(), nvlen, has_body ? &provider : nullptr) != 0) {
      nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, id, NGHTTP2_INTERNAL_ERROR);
    }
  }

  void reject(std::int32_t id, stream& st) {
    if (st.answered) return;
    std::string message;
    if (st.reject_status == 413) {
      message = limit_message(size_limit::body_bytes, lim.max_body_bytes);
    } else if (st.header_bytes > lim.max_header_bytes) {
      message = limit_message(size_limit::header_bytes, lim.max_header_bytes);
    } else {
      message = limit_message(size_limit::header_fields, lim.max_header_count);
    }
    st.body.clear();
    st.body.shrink_to_fit();
    const request_id rid = new_request_id();
    if (refusals) refusals(refusal_event{st.reject_status, message, remote, rid});
    respond(id, st, st.reject_status, "application/json", rid, refusal_body(message, rid), false);
  }

  void dispatch(std::int32_t id, stream& st) {
    st.req.verb = to_method(st.method_name);
    st.req.target = st.path;
    st.req.body = st.body;
    st.req.remote = remote;
    st.handler_running = true;
    try {
      sink(id, st.req);
    } catch (const std::exception&) {
      st.handler_running = false;
      respond(id, st, 500, "application/json", {}, std::string(internal_error_body), false);
    }
  }

  // nghttp2 callbacks (C): no exception may leave them.

  static ssize_t read_body(nghttp2_session*, std::int32_t, std::uint8_t* buf, std::size_t length,
                           std::uint32_t* data_flags, nghttp2_data_source* source, void*) {
    auto& st = *static_cast<stream*>(source->ptr);
    const std::size_t n = std::min(length, st.resp_body.size() - st.resp_sent);
    std::memcpy(buf, st.resp_body.data() + st.resp_sent, n);
    st.resp_sent += n;
    if (st.resp_sent == st.resp_body.size()) *data_flags |= NGHTTP2_DATA_FLAG_EOF;
    return static_cast<ssize_t>(n);
  }

  static int on_begin_frame(nghttp2_session*, const nghttp2_frame_hd* hd, void* user) {
    auto& self = *static_cast<impl*>(user);
    const bool may_be_empty_flood =
        hd->type == NGHTTP2_DATA || hd->type == NGHTTP2_HEADERS || hd->type == NGHTTP2_CONTINUATION;
    if (may_be_empty_flood && hd->length == 0 && !(hd->flags & NGHTTP2_FLAG_END_STREAM) &&
        self.empties.over(self.now, self.window(), self.lim.max_empty_frames_per_window)) {
      return self.fail(h2_abuse::empty_frames, "empty frame flood");
    }
    return 0;
  }

  static int on_begin_headers(nghttp2_session*, const nghttp2_frame* frame, void* user) {
    auto& self = *static_cast<impl*>(user);
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
    try {
      auto st = std::make_unique<stream>();
      st->started = self.now;
      self.streams[frame->hd.stream_id] = std::move(st);
      ++self.open_count;
      ++self.streams_opened;
    } catch (const std::exception&) {
      return NGHTTP2_ERR_CALLBACK_FAILURE;
    }
    return 0;
  }

  static int on_header(nghttp2_session*, const nghttp2_frame* frame, const std::uint8_t* name, std::size_t namelen,
                       const std::uint8_t* value, std::size_t valuelen, std::uint8_t, void* user) {
    auto& self = *static_cast<impl*>(user);
    if (frame->hd.type != NGHTTP2_HEADERS) return 0;
    stream* st = self.find(frame->hd.stream_id);
    if (!st || st->reject_status) return 0;
    st->header_bytes += namelen + valuelen + 32;
    if (st->header_bytes > self.lim.max_header_bytes || ++st->header_fields > self.lim.max_header_count) {
      st->reject_status = 431;
      return 0;
    }
    const std::string_view n(reinterpret_cast<const char*>(name), namelen);
    const std::string_view v(reinterpret_cast<const char*>(value), valuelen);
    try {
      if (n == ":method") {
        st->method_name.assign(v);
      } else if (n == ":path") {
        st->path.assign(v);
      } else if (n == "content-length") {
        std::uint64_t length = 0;
        auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), length);
        if (ec != std::errc{} || length > self.lim.max_body_bytes)
          st->reject_status = 413;
        else  // reserved up to one window only: a header alone must not make us allocate max_body_bytes
          st->body.reserve(static_cast<std::size_t>(std::min<std::uint64_t>(length, self.lim.initial_window_size)));
      }
    } catch (const std::exception&) {
      return NGHTTP2_ERR_CALLBACK_FAILURE;
    }
    return 0;
  }

  static int on_data_chunk(nghttp2_session*, std::uint8_t, std::int32_t stream_id, const std::uint8_t* data,
                           std::size_t len, void* user) {
    auto& self = *static_cast<impl*>(user);
    stream* st = self.find(stream_id);
    if (!st || st->reject_status || st->request_done) return 0;  // discarded; nghttp2 still reopens the window
    if (st->body.size() + len > self.lim.max_body_bytes) {
      st->reject_status = 413;
      return 0;
    }
    try {
      st->body.append(reinterpret_cast<const char*>(data), len);
    } catch (const std::exception&) {
      return NGHTTP2_ERR_CALLBACK_FAILURE;
    }
    return 0;
  }

  static int on_frame_recv(nghttp2_session*, const nghttp2_frame* frame, void* user) {
    auto& self = *static_cast<impl*>(user);
    switch (frame->hd.type) {
      case NGHTTP2_RST_STREAM:
        if (self.resets.over(self.now, self.window(), self.lim.max_peer_resets_per_window)) {
          return self.fail(h2_abuse::rapid_reset, "rapid reset: too many streams reset by the client");
        }
        return 0;
      case NGHTTP2_PING:
        if (!(frame->hd.flags & NGHTTP2_FLAG_ACK) &&
            self.pings.over(self.now, self.window(), self.lim.max_pings_per_window)) {
          return self.fail(h2_abuse::ping_flood, "PING flood");
        }
        return 0;
      case NGHTTP2_SETTINGS:
        if (!(frame->hd.flags & NGHTTP2_FLAG_ACK) &&
            self.settings.over(self.now, self.window(), self.lim.max_settings_per_window)) {
          return self.fail(h2_abuse::settings_flood, "SETTINGS flood");
        }
        return 0;
      case NGHTTP2_HEADERS:
      case NGHTTP2_DATA:
        break;
      default:
        return 0;
    }
    stream* st = self.find(frame->hd.stream_id);
    if (!st || st->request_done) return 0;
    const bool end = (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
    if (st->reject_status) {
      if (end) st->request_done = true;
      self.reject(frame->hd.stream_id, *st);
      return 0;
    }
    if (end) {
      st->request_done = true;
      self.dispatch(frame->hd.stream_id, *st);
    }
    return 0;
  }

  static int on_frame_send(nghttp2_session* session, const nghttp2_frame* frame, void* user) {
    auto& self = *static_cast<impl*>(user);
    if ((frame->hd.type != NGHTTP2_DATA && frame->hd.type != NGHTTP2_HEADERS) ||
        !(frame->hd.flags & NGHTTP2_FLAG_END_STREAM)) {
      return 0;
    }
    // A rejection answered before the request ended: tell the client to stop sending (RFC 9113 8.1).
    stream* st = self.find(frame->hd.stream_id);
    if (st && st->reject_status && !st->request_done) {
      st->request_done = true;
      nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, frame->hd.stream_id, NGHTTP2_NO_ERROR);
    }
    return 0;
  }

  static int on_stream_close(nghttp2_session*, std::int32_t stream_id, std::uint32_t, void* user) {
    auto& self = *static_cast<impl*>(user);
    auto it = self.streams.find(stream_id);
    if (it == self.streams.end()) return 0;
    if (--self.open_count == 0) self.idle_since = self.now;
    if (it->second->handler_running) {
      it->second->closed = true;  // the request's views stay valid until the handler is done
    } else {
      self.streams.erase(it);
    }
    return 0;
  }
};

void h2_server_session::on_refusal(refusal_sink sink) { impl_->refusals = std::move(sink); }

h2_server_session::h2_server_session(const h2_limits& limits, std::string remote, request_sink on_request,
                                     time_point now)
    : impl_(std::make_unique<impl>(limits, std::move(remote), std::move(on_request), now)) {
  auto& lim = impl_->lim;
  // Values the protocol allows (RFC 9113 6.5.2); a bad value would make nghttp2 refuse the SETTINGS.
  lim.initial_window_size = std::min<std::uint32_t>(lim.initial_window_size, NGHTTP2_MAX_WINDOW_SIZE);
  lim.connection_window_size = std::clamp<std::uint32_t>(lim.connection_window_size, 65535, NGHTTP2_MAX_WINDOW_SIZE);
  lim.max_frame_size = std::clamp<std::uint32_t>(lim.max_frame_size, 16384, 16777215);
  lim.max_write_bytes = std::max<std::uint32_t>(lim.max_write_bytes, 1024);

  nghttp2_session_callbacks* cbs = nullptr;
  nghttp2_option* opt = nullptr;
  if (nghttp2_session_callbacks_new(&cbs) != 0 || nghttp2_option_new(&opt) != 0) throw std::bad_alloc();
  nghttp2_session_callbacks_set_on_begin_frame_callback(cbs, &impl::on_begin_frame);
  nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, &impl::on_begin_headers);
  nghttp2_session_callbacks_set_on_header_callback(cbs, &impl::on_header);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, &impl::on_data_chunk);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, &impl::on_frame_recv);
  nghttp2_session_callbacks_set_on_frame_send_callback(cbs, &impl::on_frame_send);
  nghttp2_session_callbacks_set_on_stream_close_callback(cbs, &impl::on_stream_close);

  nghttp2_option_set_max_outbound_ack(opt, lim.max_outbound_ack);
  nghttp2_option_set_max_settings(opt, lim.max_settings_entries);
  nghttp2_option_set_max_deflate_dynamic_table_size(opt, lim.max_deflate_table_size);
  nghttp2_option_set_max_continuations(opt, lim.max_continuations);
  nghttp2_option_set_no_closed_streams(opt, 1);  // closed streams are forgotten at once (rapid reset memory)
  // nghttp2's own reset limiter backs ours up; twice as lenient so ours (which says why) acts first.
  const std::uint64_t per_second = std::max<std::uint64_t>(
      1, std::uint64_t{lim.max_peer_resets_per_window} * 1000 / std::max<std::uint32_t>(lim.rate_window_ms, 1));
  nghttp2_option_set_stream_reset_rate_limit(opt, std::uint64_t{lim.max_peer_resets_per_window} * 2, per_second * 2);

  const int rv = nghttp2_session_server_new2(&impl_->session, cbs, impl_.get(), opt);
  nghttp2_session_callbacks_del(cbs);
  nghttp2_option_del(opt);
  if (rv != 0) throw std::bad_alloc();

  const std::array<nghttp2_settings_entry, 5> iv{{
      {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, lim.max_concurrent_streams},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, lim.initial_window_size},
      {NGHTTP2_SETTINGS_MAX_FRAME_SIZE, lim.max_frame_size},
      {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, lim.max_header_bytes},
      {NGHTTP2_SETTINGS_HEADER_TABLE_SIZE, lim.header_table_size},
  }};
  nghttp2_submit_settings(impl_->session, NGHTTP2_FLAG_NONE, iv.data(), iv.size());
  nghttp2_session_set_local_window_size(impl_->session, NGHTTP2_FLAG_NONE, 0,
                                        static_cast<std::int32_t>(lim.connection_window_size));
}

h2_server_session::~h2_server_session() { nghttp2_session_del(impl_->session); }

bool h2_server_session::receive(std::string_view bytes, time_point now) {
  auto& d = *impl_;
  d.now = now;
  if (d.fatal) return false;
  const auto rv =
      nghttp2_session_mem_recv(d.session, reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
  if (rv < 0 && !d.fatal) {
    d.fatal = true;
    d.reason = nghttp2_strerror(static_cast<int>(rv));
    if (rv == NGHTTP2_ERR_FLOODED) d.abuse = h2_abuse::flood;
    nghttp2_session_terminate_session(d.session,
                                      rv == NGHTTP2_ERR_FLOODED ? NGHTTP2_ENHANCE_YOUR_CALM : NGHTTP2_PROTOCOL_ERROR);
  }
  return !d.fatal;
}

std::size_t h2_server_session::take_output(std::string& out) {
  auto& d = *impl_;
  const std::size_t before = out.size();
  while (!d.broken && out.size() - before < d.lim.max_write_bytes) {
    const std::uint8_t* data = nullptr;
    const auto n = nghttp2_session_mem_send(d.session, &data);
    if (n < 0) {
      d.broken = true;
      if (d.reason.empty()) d.reason = nghttp2_strerror(static_cast<int>(n));
      break;
    }
    if (n == 0) break;
    out.append(reinterpret_cast<const char*>(data), static_cast<std::size_t>(n));
  }
  return out.size() - before;
}

void h2_server_session::submit_reply(std::int32_t stream_id, reply r) {
  auto& d = *impl_;
  auto it = d.streams.find(stream_id);
  if (it == d.streams.end()) return;
  auto& st = *it->second;
  st.handler_running = false;
  if (st.closed || d.broken) {
    d.streams.erase(it);
    return;
  }
  d.respond(stream_id, st, r.status, r.content_type, r.request_id, std::move(r.body), st.req.verb == method::head);
}

bool h2_server_session::tick(time_point now) {
  auto& d = *impl_;
  d.now = now;
  if (d.fatal || d.broken) return false;
  bool changed = false;
  const auto request_timeout = std::chrono::milliseconds(d.lim.request_timeout_ms);
  for (auto& [id, st] : d.streams) {
    if (!st->request_done && !st->closed && now - st->started > request_timeout) {
      st->request_done = true;
      nghttp2_submit_rst_stream(d.session, NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL);
      changed = true;
    }
  }
  if (d.open_count == 0 && now - d.idle_since > std::chrono::milliseconds(d.lim.idle_timeout_ms) && d.reason.empty()) {
    d.reason = "idle";
    shutdown();
    changed = true;
  }
  return changed;
}

void h2_server_session::shutdown() {
  auto& d = *impl_;
  if (d.fatal || d.broken) return;
  nghttp2_submit_goaway(d.session, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(d.session),
                        NGHTTP2_NO_ERROR, nullptr, 0);
}

void h2_server_session::terminate(std::uint32_t error_code, std::string_view reason, h2_abuse abuse) {
  auto& d = *impl_;
  if (d.fatal || d.broken) return;
  d.fatal = true;
  d.reason.assign(reason);
  d.abuse = abuse;
  nghttp2_session_terminate_session(d.session, error_code);
}

bool h2_server_session::done() const {
  const auto& d = *impl_;
  return d.broken || (!nghttp2_session_want_read(d.session) && !nghttp2_session_want_write(d.session));
}

bool h2_server_session::wants_read() const {
  const auto& d = *impl_;
  return !d.fatal && !d.broken && nghttp2_session_want_read(d.session);
}

bool h2_server_session::blocked_on_peer_window() const {
  const auto& d = *impl_;
  if (d.broken || nghttp2_session_want_write(d.session)) return false;
  for (const auto& [id, st] : d.streams) {
    if (st->answered && !st->closed && st->resp_sent < st->resp_body.size() && st->req.verb != method::head) {
      return true;
    }
  }
  return false;
}

std::size_t h2_server_session::open_streams() const noexcept { return impl_->open_count; }

std::string_view h2_server_session::close_reason() const noexcept { return impl_->reason; }
h2_abuse h2_server_session::abuse() const noexcept { return impl_->abuse; }
std::uint64_t h2_server_session::streams_opened() const noexcept { return impl_->streams_opened; }

std::string_view to_string(h2_abuse a) noexcept {
  switch (a) {
    case h2_abuse::none:
      return "none";
    case h2_abuse::rapid_reset:
      return "rapid_reset";
    case h2_abuse::ping_flood:
      return "ping_flood";
    case h2_abuse::settings_flood:
      return "settings_flood";
    case h2_abuse::empty_frames:
      return "empty_frames";
    case h2_abuse::flood:
      return "flood";
    case h2_abuse::stall:
      return "stall";
  }
  return "other";
}

void h2_control::shutdown() {
  requested_ = true;
  if (on_shutdown_) on_shutdown_();
}

void h2_control::attach(const h2_server_session* session, std::function<void()> on_shutdown) {
  session_ = session;
  on_shutdown_ = std::move(on_shutdown);
}

void h2_control::detach() {
  session_ = nullptr;
  on_shutdown_ = nullptr;
}

// The TLS instantiation is left to the code that includes <boost/asio/ssl.hpp> (and compiles Asio's SSL
// implementation); plain TCP is compiled once, here.
template asio::awaitable<void> run_h2<asio::ip::tcp::socket>(asio::ip::tcp::socket&, std::string_view, const handler&,
                                                             const h2_limits&, std::string_view, h2_control*,
                                                             obs::metrics*, const refusal_sink*);

}  // namespace callrec::http
