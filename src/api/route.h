// A route of the REST hub: a row of the route table (routes.cpp). An API route is {path, rate limit, who may
// call it, parse, operation, render}: parse and render are pure functions of the v1 wire format, the operation
// is the application core's (ops/). The dispatcher runs the checks of SPEC 1 before it, and the envelope,
// metrics and access log after. An operational route (GET /healthz ...) is {path, operation, render}.
//
// A new endpoint is a row, its operation and its tests (plus, if it has a limit of its own, a row of
// limits::table).
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/json/object.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "core/error.h"
#include "limits/limits.h"
#include "ops/core.h"

namespace callrec::api {

template <class T>
using awaitable = boost::asio::awaitable<T>;

// What a route produced. API routes are answered in the envelope (code, message, data); operational routes
// as they are (status, content type, and `data` as the body).
struct answer {
  int code = 0;  // wire code
  std::string message = "Success";
  std::string data;    // the serialized `data` object (empty: none), or an operational route's body
  std::string detail;  // what the access log may say beyond the message (a store's own error text)
  unsigned status = 200;                                        // operational routes
  std::string_view content_type = "text/plain; charset=utf-8";  // operational routes
};

inline answer failure(const error& e) {
  answer a;
  a.code = wire_code(e.code);
  a.message = e.message;
  a.detail = e.detail;
  return a;
}

// What a route's parse step sees; everything stays valid while the route runs.
struct route_input {
  const ops::caller& who;
  const boost::json::object* body = nullptr;      // the request body as JSON (API routes)
  std::optional<std::string_view> plain_call_id;  // or a {"callId":"..."} body read without a JSON parser
};

// Who may call a route: nobody in particular (operational routes, GET and HEAD), any user of the app
// (reporting their own events), or an administrator of the app. API routes take POST.
enum class access : std::uint8_t { open, user, admin };

struct route;
// Writes the route's answer into `out` (an output parameter, not a returned value: the caller's coroutine
// frame holds no temporary answer, which keeps it small enough for Asio to recycle).
using route_fn = awaitable<void> (*)(const ops::core& core, const route& self, const route_input& in, answer& out);

struct route {
  std::string_view path;  // API routes: under /v1/ (also served without the version)
  std::string_view api;   // its name in metrics and the access log
  access who = access::admin;
  std::optional<limits::limit_id> limit;  // API routes: the rate limit charged before the body is read
  route_fn run = nullptr;                 // parse -> operation -> render, bound below
  // The body is usually exactly {"callId":"..."}: then it is read without a JSON parser (route_input).
  bool plain_call_id_body = false;
};

// An API route's steps: Parse(const route_input&) -> result<Req>; Operation(const ops::core&, const
// ops::caller&, Req&) -> awaitable<result<Res>>; Render(const Req&, const Res&) -> answer. A request with a
// cost() (an events batch) is charged that many tokens of an event limit once it is read.
template <auto Parse, auto Operation, auto Render>
awaitable<void> bind_api(const ops::core& core, const route& self, const route_input& in, answer& out) {
  auto req = Parse(in);
  if (!req) {
    out = failure(req.error());
    co_return;
  }
  if constexpr (requires { req->cost(); }) {
    if (self.limit && limits::table[*self.limit].counts == limits::unit::event) {
      core.limiter.charge(in.who.app->id(), *self.limit, static_cast<double>(req->cost()), in.who.now_ms);
    }
  }
  auto res = co_await Operation(core, in.who, *req);
  out = res ? Render(*req, *res) : failure(res.error());
}

// An operational route's steps: Operation(const ops::core&, const ops::caller&) -> awaitable<R>;
// Render(R) -> answer (with its status and content type).
template <auto Operation, auto Render>
awaitable<void> bind_open(const ops::core& core, const route&, const route_input& in, answer& out) {
  out = Render(co_await Operation(core, in.who));
}

}  // namespace callrec::api
