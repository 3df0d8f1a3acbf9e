// The PostgreSQL store: the application core's store ports over one PostgreSQL database, shared by any number
// of stateless nodes (SPEC 8). libpq's non-blocking API is driven by Asio, so no thread ever blocks on the
// database: writes on a thread of the store's own, reads on the I/O thread that serves the request (its own
// pool, see attach). Connections prepare their statements once and send each transaction as pipelines (two
// round trips for a group of updates, one for a read).
//
// Many nodes: an update takes a transaction-scoped advisory lock per call (in one global order, so two nodes
// never deadlock), reads the calls' live state and whether they have a record, runs the update function and
// writes what it produced, all in one transaction. Timers are claimed with FOR UPDATE SKIP LOCKED and a lease
// column, so each fires on one node, and a dead node's claims run out and are taken by the others.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "store/store.h"

namespace callrec::pg {

struct pg_store_options {
  std::string conninfo;         // a libpq URL (postgresql://...) or key=value string
  // The store thread's pool (writes, timers, retention, and the reads of callers not attached), per node; each
  // attached I/O thread has a read pool of half this size (at least one). Each connection is a PostgreSQL backend
  // process: on the 2-core bench machine 4 gave random filter pages a p99 of 5.6 ms where 8 gave 7.3 ms (and far
  // longer tails while warming up), when one pool served every read.
  std::size_t connections = 4;
  int writers = 2;              // group-commit transactions in flight at once
  std::size_t max_group = 64;   // at most this many update_calls per transaction
  // Records kept in memory after a lookup (about 200 bytes each): they never change once written, so
  // get_record_by_callId answers a record read before without a round trip.
  std::size_t cached_records = 100000;
  // How long open_pg_store waits for the database to accept connections before it gives up.
  std::chrono::seconds connect_wait{10};
};

result<std::unique_ptr<store>> open_pg_store(const pg_store_options& options);

}  // namespace callrec::pg
