// `callrec simulate`: drives realistic call traffic through the HTTP API, for demos and benchmarks.
#pragma once

#include <cstdint>
#include <string>

namespace CLI {
class App;
}

namespace callrec::sim {

struct options {
  std::string url = "http://127.0.0.1:8080";
  std::uint32_t sdkappid = 1400000001;
  std::string key;
  std::string identifier = "administrator";
  std::string mode = "live";   // live: events as they happen (server clock); import: whole past calls with ts
  double rate = 20;            // new calls per second (0 with import: as fast as the server takes them)
  double duration = 10;        // seconds to run
  std::uint64_t calls = 0;     // stop after this many calls (0: no limit)
  std::uint32_t connections = 4;
  std::uint32_t batch = 100;   // events per request (at most 500)
  std::int64_t window = 86400; // import: spread call starts over the last `window` seconds
  double group_ratio = 0.2;
  // import: "realistic" (the default: outcomes, group calls, heartbeats, ~12 events a call) or "whole" (every call
  // a 1:1 call of exactly start_call, accept_call and hangup: batches of `batch` / 3 whole calls, the
  // benchmark's ingest load)
  std::string mix = "realistic";
  // import: print a progress line (calls/s and events/s) after each tenth of --calls, for the speed of the
  // load's beginning and end
  bool tenths = false;
  std::uint64_t seed = 1;
  bool quiet = false;
};

void add_options(CLI::App& cmd, options& o);
int run(const options& o);

}  // namespace callrec::sim
