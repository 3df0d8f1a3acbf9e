// The embedded store's call-id lookup (get_record_by_callId): every record as one compact document in the
// rowid table record_docs, found through an in-memory index from a 64-bit hash of (sdkappid, call id) to the
// document's key.
//
// Keys are handed out in order of arrival (the next rowid), so inserting a document appends to the table: a
// commit writes a page or two for all its records, where keys spread by hash (schema version 3) wrote a page
// for nearly every record once the table outgrew the cache, and the store slowed down as it grew. A rowid
// b-tree's interior pages hold only integers, so reading a document by key is a shallow descent of integer
// compares (docs/ARCHITECTURE.md has the measurements).
//
// The index (doc_index) keeps, for each document, 28 bits of its call's hash and its 36-bit key in one
// 64-bit slot of an open-addressing table: about 10 bytes a record, rebuilt from record_docs when the store
// opens. A lookup reads the documents of the keys whose hash bits match (nearly always one) and takes the one
// that names the call (a document names its call first).
//
// The document is the record's compact form (records/record_doc.h).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <array>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "records/record_doc.h"
#include "store/sqlite/sqlite_db.h"

namespace callrec::sqlite {

// SipHash-1-3 of (sdkappid, call_id) with a fixed key. Stable across builds and machines.
std::uint64_t call_hash(std::uint32_t sdkappid, std::string_view call_id) noexcept;

// Schema version 3 keyed documents by this (the hash's upper 60 bits: a bucket of 16 rowids); kept to make
// version-3 stores in tests.
inline constexpr std::int64_t doc_bucket_size = 16;
std::int64_t doc_bucket(std::uint32_t sdkappid, std::string_view call_id) noexcept;

// Hash -> document keys. One writer (insert, erase) and any number of readers (candidates) at once.
class doc_index {
 public:
  static constexpr std::int64_t max_key = (std::int64_t{1} << 36) - 1;

  // Room for n entries without growing.
  void reserve(std::size_t n);
  // Adds a document's key (1..max_key). The same (hash, key) must not be added twice.
  void insert(std::uint64_t hash, std::int64_t key);
  // Removes the entry of (hash, key), if present.
  void erase(std::uint64_t hash, std::int64_t key);
  // Appends to `out` the keys whose entries match `hash` (the document of the call, if any, is among them).
  void candidates(std::uint64_t hash, std::vector<std::int64_t>& out) const;
  // Starts loading the slot where candidates(hash) begins into the cache.
  void prefetch(std::uint64_t hash) const noexcept;
  std::size_t size() const;
  std::size_t bytes() const;  // the table's memory

 private:
  // Zeroed slots in anonymous memory of their own, on huge pages where the kernel has them (madvise): a probe
  // lands on a random slot of a table of 100 MB at 10M records, and with 4 KiB pages each probe also missed
  // the TLB.
  class slot_array {
   public:
    slot_array() = default;
    explicit slot_array(std::size_t n);
    slot_array(slot_array&& o) noexcept { swap(o); }
    slot_array& operator=(slot_array&& o) noexcept {
      swap(o);
      return *this;
    }
    ~slot_array();
    void swap(slot_array& o) noexcept {
      std::swap(data_, o.data_);
      std::swap(size_, o.size_);
      std::swap(map_, o.map_);
      std::swap(map_bytes_, o.map_bytes_);
    }
    std::uint64_t& operator[](std::size_t i) noexcept { return data_[i]; }
    std::uint64_t operator[](std::size_t i) const noexcept { return data_[i]; }
    const std::uint64_t* address(std::size_t i) const noexcept { return data_ + i; }
    std::size_t size() const noexcept { return size_; }
    std::size_t bytes() const noexcept { return map_bytes_; }

   private:
    std::uint64_t* data_ = nullptr;
    std::size_t size_ = 0;
    void* map_ = nullptr;
    std::size_t map_bytes_ = 0;
  };

  // Readers take one of several locks (picked by thread), the writer all of them: lookups on different threads
  // do not pass a lock's cache line back and forth, as they did on one shared_mutex.
  struct alignas(64) reader_lock {
    std::mutex m;
  };
  static constexpr std::size_t lock_count = 8;
  class write_guard;

  static std::uint64_t fingerprint(std::uint64_t hash) noexcept { return hash >> 36; }  // the top 28 bits
  std::size_t home(std::uint64_t fp) const noexcept { return static_cast<std::size_t>((fp * slots_.size()) >> 28); }
  std::size_t next(std::size_t i) const noexcept { return i + 1 == slots_.size() ? 0 : i + 1; }
  void place(std::uint64_t entry);  // without locking or growing
  void grow_to(std::size_t capacity);
  std::mutex& my_lock() const noexcept;

  mutable std::array<reader_lock, lock_count> locks_;
  slot_array slots_;  // 0: empty; else fingerprint << 36 | key
  std::size_t size_ = 0;
};

// Where the document of a call is.
struct doc_found {
  std::int64_t key = 0;
  std::int64_t start_ts = 0;  // the record's start (its place in records)
};
result<std::optional<doc_found>> find_doc(connection& db, const doc_index& index, std::uint32_t sdkappid,
                                          std::string_view call_id);

// The record of a call that started at or after oldest_ts, read from its document alone: nullopt when there is
// none. The read path of get_record_by_callId: an index probe and one row read by key.
result<std::optional<stored_record>> read_doc(connection& db, const doc_index& index, std::uint32_t sdkappid,
                                              std::string_view call_id, std::int64_t oldest_ts);

// An index entry: what the writer takes out again, or puts back, when its transaction rolls back.
struct doc_entry {
  std::uint64_t hash = 0;  // call_hash of the document's call
  std::int64_t key = 0;
};

// Appends the record's document and indexes it, unless the call already has one (then nullopt).
result<std::optional<doc_entry>> put_doc(connection& db, doc_index& index, std::uint32_t sdkappid,
                                         std::string_view call_id, std::int64_t start_ts, std::string_view doc);

// Removes the call's document, if any, and its index entry.
result<std::optional<doc_entry>> delete_doc(connection& db, doc_index& index, std::uint32_t sdkappid,
                                            std::string_view call_id);

// Fills `index` from record_docs (when the store opens); a line on stderr every million documents.
result<void> load_doc_index(connection& db, doc_index& index);

}  // namespace callrec::sqlite
