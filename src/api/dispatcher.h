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
  // The route of a path: exactly its path, or its path without the /v1 prefix; null when none.
  const route* find(std::string_view path) const noexcept;
  // The checks of SPEC 1 for an API route, then the route: the answer, with `sdkappid` set once known.
  boost::asio::awaitable<answer> run_api(const route& r, const http::request& req, std::string_view query,
                                         ops::caller& who, std::uint32_t& sdkappid);
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
