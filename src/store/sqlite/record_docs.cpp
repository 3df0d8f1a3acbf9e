#include "store/sqlite/record_docs.h"

#include <sys/mman.h>

#include <algorithm>
#include <bit>
#include <cstdio>
#include <cstring>
#include <atomic>
#include <mutex>
#include <new>
#include <string>
#include <vector>

#include "store/sqlite/schema.h"

namespace callrec::sqlite {
namespace {

// SipHash-1-3 (Aumasson and Bernstein) with a fixed key: keys must not change, and a keyed hash still makes
// call ids that share a bucket impractical to construct.
class siphash13 {
 public:
  std::uint64_t operator()(const unsigned char* p, std::size_t n) noexcept {
    const std::size_t words = n / 8;
    for (std::size_t i = 0; i < words; ++i) absorb(load(p + 8 * i, 8));
    absorb(load(p + 8 * words, n % 8) | (static_cast<std::uint64_t>(n) << 56));
    v2_ ^= 0xff;
    round();
    round();
    round();
    return v0_ ^ v1_ ^ v2_ ^ v3_;
  }

 private:
  static constexpr std::uint64_t k0 = 0x63616c6c7265632dULL, k1 = 0x7265636f72642d31ULL;  // "callrec-record-1"
  static std::uint64_t load(const unsigned char* p, std::size_t n) noexcept {  // little-endian, n <= 8
    std::uint64_t v = 0;
    for (std::size_t i = 0; i < n; ++i) v |= static_cast<std::uint64_t>(p[i]) << (8 * i);
    return v;
  }
  void absorb(std::uint64_t m) noexcept {
    v3_ ^= m;
    round();
    v0_ ^= m;
  }
  void round() noexcept {
    v0_ += v1_;
    v1_ = std::rotl(v1_, 13) ^ v0_;
    v0_ = std::rotl(v0_, 32);
    v2_ += v3_;
    v3_ = std::rotl(v3_, 16) ^ v2_;
    v0_ += v3_;
    v3_ = std::rotl(v3_, 21) ^ v0_;
    v2_ += v1_;
    v1_ = std::rotl(v1_, 17) ^ v2_;
    v2_ = std::rotl(v2_, 32);
  }
  std::uint64_t v0_ = k0 ^ 0x736f6d6570736575ULL, v1_ = k1 ^ 0x646f72616e646f6dULL;
  std::uint64_t v2_ = k0 ^ 0x6c7967656e657261ULL, v3_ = k1 ^ 0x7465646279746573ULL;
};

}  // namespace

std::uint64_t call_hash(std::uint32_t sdkappid, std::string_view call_id) noexcept {
  // The message: the app id's 4 bytes (little-endian), then the call id.
  unsigned char small[4 + 124];
  std::vector<unsigned char> large;
  unsigned char* msg = small;
  if (call_id.size() > sizeof small - 4) {
    large.resize(4 + call_id.size());
    msg = large.data();
  }
  for (int i = 0; i < 4; ++i) msg[i] = static_cast<unsigned char>(sdkappid >> (8 * i));
  std::memcpy(msg + 4, call_id.data(), call_id.size());
  return siphash13{}(msg, 4 + call_id.size());
}

std::int64_t doc_bucket(std::uint32_t sdkappid, std::string_view call_id) noexcept {
  return std::bit_cast<std::int64_t>(call_hash(sdkappid, call_id) & ~static_cast<std::uint64_t>(doc_bucket_size - 1));
}

// ---------------------------------------------------------------------------------------------------------
// doc_index: linear probing; an entry's home slot follows from its fingerprint, so entries can be moved back
// on erase (no tombstones) and placed again when the table grows.

namespace {
constexpr std::uint64_t key_mask = (std::uint64_t{1} << 36) - 1;
constexpr double max_load = 0.85;
}  // namespace

doc_index::slot_array::slot_array(std::size_t n) : size_(n) {
  if (n == 0) return;
  constexpr std::size_t huge = std::size_t{2} << 20;
  const std::size_t want = n * sizeof(std::uint64_t);
  if (want < huge) {
    map_bytes_ = want;
    map_ = ::mmap(nullptr, map_bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (map_ == MAP_FAILED) throw std::bad_alloc();
    data_ = static_cast<std::uint64_t*>(map_);
    return;
  }
  // A huge page must start at a multiple of its size: map one more, and use the aligned part.
  map_bytes_ = (want + huge - 1) / huge * huge + huge;
  map_ = ::mmap(nullptr, map_bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (map_ == MAP_FAILED) throw std::bad_alloc();
  const auto at = (reinterpret_cast<std::uintptr_t>(map_) + huge - 1) / huge * huge;
  data_ = reinterpret_cast<std::uint64_t*>(at);
  (void)::madvise(data_, (want + huge - 1) / huge * huge, MADV_HUGEPAGE);  // advice: fine to be refused
}

doc_index::slot_array::~slot_array() {
  if (map_) ::munmap(map_, map_bytes_);
}

// All reader locks, in order: the writer's.
class doc_index::write_guard {
 public:
  explicit write_guard(doc_index& d) : d_(d) {
    for (auto& l : d_.locks_) l.m.lock();
  }
  ~write_guard() {
    for (auto& l : d_.locks_) l.m.unlock();
  }
  write_guard(const write_guard&) = delete;
  write_guard& operator=(const write_guard&) = delete;

 private:
  doc_index& d_;
};

std::mutex& doc_index::my_lock() const noexcept {
  static std::atomic<std::size_t> threads{0};
  thread_local const std::size_t mine = threads.fetch_add(1, std::memory_order_relaxed) % lock_count;
  return locks_[mine].m;
}

void doc_index::place(std::uint64_t entry) {
  std::size_t i = home(entry >> 36);
  while (slots_[i] != 0) i = next(i);
  slots_[i] = entry;
}

void doc_index::grow_to(std::size_t capacity) {
  slot_array old(capacity);
  old.swap(slots_);
  for (std::size_t i = 0; i < old.size(); ++i) {
    if (old[i] != 0) place(old[i]);
  }
}

void doc_index::reserve(std::size_t n) {
  write_guard lock(*this);
  const auto want = static_cast<std::size_t>(static_cast<double>(n) / max_load) + 16;
  if (want > slots_.size()) grow_to(want);
}

void doc_index::insert(std::uint64_t hash, std::int64_t key) {
  write_guard lock(*this);
  if (static_cast<double>(size_ + 1) > static_cast<double>(slots_.size()) * max_load) {
    grow_to(std::max<std::size_t>(1024, slots_.size() + slots_.size() / 2));
  }
  place(fingerprint(hash) << 36 | (static_cast<std::uint64_t>(key) & key_mask));
  ++size_;
}

void doc_index::erase(std::uint64_t hash, std::int64_t key) {
  write_guard lock(*this);
  if (slots_.size() == 0) return;
  const std::uint64_t entry = fingerprint(hash) << 36 | (static_cast<std::uint64_t>(key) & key_mask);
  std::size_t i = home(fingerprint(hash));
  while (slots_[i] != entry) {
    if (slots_[i] == 0) return;
    i = next(i);
  }
  // Backward shift: each later entry of the run that may move to the hole does.
  for (std::size_t j = next(i);; j = next(j)) {
    if (slots_[j] == 0) break;
    const std::size_t k = home(slots_[j] >> 36);
    const bool stays = i <= j ? (i < k && k <= j) : (i < k || k <= j);
    if (stays) continue;
    slots_[i] = slots_[j];
    i = j;
  }
  slots_[i] = 0;
  --size_;
}

void doc_index::candidates(std::uint64_t hash, std::vector<std::int64_t>& out) const {
  std::lock_guard lock(my_lock());
  if (slots_.size() == 0) return;
  const std::uint64_t fp = fingerprint(hash);
  for (std::size_t i = home(fp); slots_[i] != 0; i = next(i)) {
    if ((slots_[i] >> 36) == fp) out.push_back(static_cast<std::int64_t>(slots_[i] & key_mask));
  }
}

void doc_index::prefetch(std::uint64_t hash) const noexcept {
  std::lock_guard lock(my_lock());
  if (slots_.size() != 0) __builtin_prefetch(slots_.address(home(fingerprint(hash))));
}

std::size_t doc_index::size() const {
  std::lock_guard lock(my_lock());
  return size_;
}

std::size_t doc_index::bytes() const {
  std::lock_guard lock(my_lock());
  return slots_.bytes();
}

// ---------------------------------------------------------------------------------------------------------
// Documents

namespace {

// The candidate keys of a call, in a buffer of the calling thread (lookups allocate nothing).
std::vector<std::int64_t>& candidate_keys(const doc_index& index, std::uint64_t hash) {
  thread_local std::vector<std::int64_t> keys;
  keys.clear();
  index.candidates(hash, keys);
  return keys;
}

// Reads the candidates' documents in turn and calls fn(key, start_ts, doc) for the one that names the call;
// false when none does. A candidate without a row is a key of a transaction this snapshot does not see (the
// writer indexes before it commits), and is passed over.
template <class Fn>
result<bool> with_doc(connection& db, const doc_index& index, std::uint64_t hash, std::uint32_t sdkappid,
                      std::string_view call_id, Fn&& fn) {
  const auto& keys = candidate_keys(index, hash);
  if (keys.empty()) return false;
  sqlite3_stmt* s = db.cached_static("SELECT start_ts, doc FROM record_docs WHERE key = ?");
  if (!s) return db.last_error("prepare");
  for (const std::int64_t key : keys) {
    stmt_use q(s);
    q.bind(1, key);
    const int rc = q.step();
    if (rc == SQLITE_ROW) {
      if (!doc_names(q.blob(1), sdkappid, call_id)) continue;
      fn(key, q.int64(0), q.blob(1));
      return true;
    }
    if (rc != SQLITE_DONE) return db.last_error("record lookup");
  }
  return false;
}

}  // namespace

result<std::optional<doc_found>> find_doc(connection& db, const doc_index& index, std::uint32_t sdkappid,
                                          std::string_view call_id) {
  std::optional<doc_found> out;
  auto found = with_doc(db, index, call_hash(sdkappid, call_id), sdkappid, call_id,
                        [&](std::int64_t key, std::int64_t start_ts, std::string_view) { out = doc_found{key, start_ts}; });
  if (!found) return std::move(found).error();
  return out;
}

result<std::optional<stored_record>> read_doc(connection& db, const doc_index& index, std::uint32_t sdkappid,
                                              std::string_view call_id, std::int64_t oldest_ts) {
  std::optional<stored_record> out;
  bool corrupt = false;
  auto found = with_doc(db, index, call_hash(sdkappid, call_id), sdkappid, call_id,
                        [&](std::int64_t, std::int64_t start_ts, std::string_view doc) {
                          if (start_ts < oldest_ts) return;  // outside the retention window
                          out = stored_record::from_doc(doc);
                          corrupt = !out;
                        });
  if (!found) return std::move(found).error();
  if (corrupt) return corrupt_record();
  return out;
}

result<std::optional<doc_entry>> put_doc(connection& db, doc_index& index, std::uint32_t sdkappid,
                                         std::string_view call_id, std::int64_t start_ts, std::string_view doc) {
  const std::uint64_t hash = call_hash(sdkappid, call_id);
  auto found = with_doc(db, index, hash, sdkappid, call_id, [](std::int64_t, std::int64_t, std::string_view) {});
  if (!found) return std::move(found).error();
  if (*found) return std::optional<doc_entry>();
  sqlite3_stmt* s = db.cached_static("INSERT INTO record_docs (start_ts, doc) VALUES (?, ?)");
  if (!s) return db.last_error("prepare");
  stmt_use q(s);
  q.bind(1, start_ts);
  q.bind_blob(2, doc);
  if (q.step() != SQLITE_DONE) return db.last_error("insert record");
  const std::int64_t key = sqlite3_last_insert_rowid(db.handle());
  if (key < 1 || key > doc_index::max_key) {
    return make_error(errc::internal, "storage failure: the record table is full",
                      "sqlite: record_docs key " + std::to_string(key) + " out of the index's range");
  }
  index.insert(hash, key);
  return std::optional<doc_entry>(doc_entry{hash, key});
}

result<std::optional<doc_entry>> delete_doc(connection& db, doc_index& index, std::uint32_t sdkappid,
                                            std::string_view call_id) {
  const std::uint64_t hash = call_hash(sdkappid, call_id);
  std::optional<doc_entry> gone;
  auto found = with_doc(db, index, hash, sdkappid, call_id,
                        [&](std::int64_t key, std::int64_t, std::string_view) { gone = doc_entry{hash, key}; });
  if (!found) return std::move(found).error();
  if (!gone) return gone;
  sqlite3_stmt* s = db.cached_static("DELETE FROM record_docs WHERE key = ?");
  if (!s) return db.last_error("prepare");
  stmt_use q(s);
  q.bind(1, gone->key);
  if (q.step() != SQLITE_DONE) return db.last_error("delete record");
  index.erase(hash, gone->key);
  return gone;
}

result<void> load_doc_index(connection& db, doc_index& index) {
  auto n = db.query_int("SELECT COUNT(*) FROM record_docs");
  if (!n) return std::move(n).error();
  index.reserve(static_cast<std::size_t>(*n));
  sqlite3_stmt* s = db.cached_static("SELECT key, doc FROM record_docs");
  if (!s) return db.last_error("prepare");
  stmt_use q(s);
  std::uint64_t done = 0;
  int rc;
  while ((rc = q.step()) == SQLITE_ROW) {
    std::uint32_t app = 0;
    std::string_view call_id;
    const std::int64_t key = q.int64(0);
    if (!doc_call(q.blob(1), app, call_id) || key < 1 || key > doc_index::max_key) return corrupt_record();
    index.insert(call_hash(app, call_id), key);
    if (++done % 1000000 == 0) {
      std::fprintf(stderr, "callrec: store: %llu of %lld records indexed\n", static_cast<unsigned long long>(done),
                   static_cast<long long>(*n));
    }
  }
  if (rc != SQLITE_DONE) return db.last_error("index records");
  return {};
}

}  // namespace callrec::sqlite
