// Fuzzes the HTTP/2 server core: the input follows the client preface; the first byte picks where it is split
// in two reads. Half the requests are answered inside the sink (re-entrantly), the rest after the read.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "http/h2_session.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace callrec::http;
  h2_limits limits;
  limits.max_concurrent_streams = 16;
  limits.max_header_bytes = 2048;
  limits.max_body_bytes = 4096;
  limits.initial_window_size = 8192;
  auto now = std::chrono::steady_clock::time_point{} + std::chrono::hours(1);
  std::vector<std::int32_t> deferred;
  h2_server_session* self = nullptr;
  h2_server_session session(
      limits, "fuzz",
      [&](std::int32_t id, const request& req) {
        if ((id / 2) % 2 == 0) {
          self->submit_reply(id, reply{200, "text/plain", std::string(req.body), "rid"});
        } else {
          deferred.push_back(id);
        }
      },
      now);
  self = &session;
  std::string out;
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const std::size_t split = size > 0 ? std::min<std::size_t>(data[0], size) : 0;
  session.receive(h2_client_preface, now);
  for (std::string_view part : {input.substr(0, split), input.substr(split)}) {
    session.receive(part, now);
    for (auto id : deferred) session.submit_reply(id, reply{404, "application/json", "{}", ""});
    deferred.clear();
    while (session.take_output(out) > 0) out.clear();
    now += std::chrono::seconds(11);  // crosses rate windows and the request timeout
    session.tick(now);
    (void)session.blocked_on_peer_window();
    (void)session.done();
  }
  session.shutdown();
  while (session.take_output(out) > 0) out.clear();
  return 0;
}
