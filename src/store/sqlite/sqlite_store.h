// The embedded store: one SQLite file in WAL mode. One writer thread owns the write connection and the
// in-memory live calls, and commits queued updates in groups; readers use pooled read-only connections
// and never block the writer.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "store/store.h"

namespace callrec::sqlite {

struct sqlite_store_options {
  std::string path;              // the database file; its directory must exist
  std::size_t max_group = 4096;  // at most this many update_calls per transaction
  // false: synchronous=NORMAL, a committed transaction survives a crash of the process but may be lost on
  // power loss; true: synchronous=FULL, every commit is fsynced before `done` runs.
  bool fsync_each_commit = false;
  const char* vfs = nullptr;  // a registered SQLite VFS to open the files with; null: the default
  // Rows of the user, caller and room lookups wait in index_queue until this many have gathered (or a read
  // needs them), then move over in one sorted batch. Larger batches cost fewer page writes a call, and a
  // longer pause of the writer while they move (about a second for 300,000 rows).
  std::size_t index_batch = 300000;
};

result<std::unique_ptr<store>> open_sqlite_store(const sqlite_store_options& options);

}  // namespace callrec::sqlite
