// The REST hub's one entry point, for HTTP/1.1 and HTTP/2 alike: finds the route, runs the checks of SPEC 1
// in their order (path and method, query parameters, app, UserSig, administrator, entitlement, rate limit,
// body), then the route, and answers in the envelope with a request id, metrics and an access log line.
// A request that never waits (the embedded store's reads, a refusal) completes without suspending.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <span>
#include <string>
#include <string_view>

#include <boost/json/monotonic_resource.hpp>
#include <boost/json/value.hpp>

#include "api/parse_buffer.h"
#include "api/query.h"
#include "api/route.h"
#include "auth/usersig_cache.h"
#include "http/server.h"
#include "obs/access_log.h"
#include "ops/core.h"

namespace callrec::api {

class dispatcher {
 public:
  // `routes` and everything `core` refers to outlive the dispatcher. `budget`: how long a request may take
  // (SPEC 1: 3 s); past it the request answers 101001.
  dispatcher(const ops::core& core, std::span<const route> routes, obs::access_log& log,
             std::chrono::milliseconds budget = std::chrono::seconds(3));

  boost::asio::awaitable<http::reply> handle(const http::request& req);

 private:
  // What the checks of an API request established.
  struct request_checks {
    hub_params params;         // who.identifier views it
    ops::caller who;
    std::size_t api = 0;       // the route's metrics id
    std::uint32_t sdkappid = 0;
  };

  // The route of a path: exactly its path, or its path without the /v1 prefix; null when none.
  const route* find(std::string_view path) const noexcept;
  // SPEC 1's checks up to the rate limit, in order: false with the refusal in `out` at the first that fails.
  bool check(const http::request& req, std::string_view path, std::string_view query, const route* r, deadline t0,
             http::reply& rep, request_checks& call, answer& out);
  // An operational route (GET /healthz ...): its answer as it is, with no envelope.
  boost::asio::awaitable<void> serve_open(const route& r, deadline t0, http::reply& rep);
  // Refusals written into `out`; they return true (refused).
  static bool refuse_rate(const route& r, std::uint32_t sdkappid, answer& out);
  static bool refuse_empty_body(answer& out);
  // A request body parsed as JSON, in a per-thread buffer: only for a body that needs the parser.
  struct parsed_body {
    parse_buffer buf;
    boost::json::monotonic_resource resource{buf.data(), parse_buffer::size};
    // Made on the resource, so the parsed value is moved in, not copied onto the heap (a value assigned from
    // one with other storage copies itself).
    boost::json::value value = boost::json::value(boost::json::storage_ptr(&resource));
    // The body as a JSON object; null with a 70009 refusal in `out` when it is not one.
    const boost::json::object* parse(std::string_view text, answer& out);
  };
  // The envelope, the request metrics and the access log line of an answered API request.
  void finish(const http::request& req, std::size_t api, std::uint32_t sdkappid, answer out,
              std::chrono::steady_clock::time_point t0, http::reply& rep);

  const ops::core& core_;
  std::span<const route> routes_;
  obs::access_log& log_;
  std::chrono::milliseconds budget_;
  auth::usersig_verifier verifier_;
  std::string unknown_path_hint_;  // "; expected /v1/... or /v1/...": the API routes
};

}  // namespace callrec::api
