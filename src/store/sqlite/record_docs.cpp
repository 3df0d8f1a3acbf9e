#include "store/sqlite/record_docs.h"

#include <bit>
#include <cstring>
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

std::int64_t doc_bucket(std::uint32_t sdkappid, std::string_view call_id) noexcept {
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
  const std::uint64_t h = siphash13{}(msg, 4 + call_id.size());
  return std::bit_cast<std::int64_t>(h & ~static_cast<std::uint64_t>(doc_bucket_size - 1));
}

result<doc_slot> find_doc(connection& db, std::uint32_t sdkappid, std::string_view call_id) {
  sqlite3_stmt* s = db.cached_static("SELECT key, start_ts, doc FROM record_docs WHERE key BETWEEN ?1 AND ?1 + 15");
  if (!s) return db.last_error("prepare");
  const std::int64_t bucket = doc_bucket(sdkappid, call_id);
  stmt_use q(s);
  q.bind(1, bucket);
  doc_slot slot;
  std::int64_t next = bucket;  // rows come in key order: the first gap is the first free key
  int rc;
  while ((rc = q.step()) == SQLITE_ROW) {
    const std::int64_t key = q.int64(0);
    if (doc_names(q.blob(2), sdkappid, call_id)) {
      slot.key = key;
      slot.start_ts = q.int64(1);
      return slot;
    }
    if (!slot.free_key && key != next) slot.free_key = next;
    next = key + 1;
  }
  if (rc != SQLITE_DONE) return db.last_error("record lookup");
  if (!slot.free_key && next < bucket + doc_bucket_size) slot.free_key = next;
  return slot;
}

result<std::optional<stored_record>> read_doc(connection& db, std::uint32_t sdkappid, std::string_view call_id,
                                              std::int64_t oldest_ts) {
  sqlite3_stmt* s = db.cached_static("SELECT doc, start_ts FROM record_docs WHERE key BETWEEN ?1 AND ?1 + 15");
  if (!s) return db.last_error("prepare");
  stmt_use q(s);
  q.bind(1, doc_bucket(sdkappid, call_id));
  int rc;
  while ((rc = q.step()) == SQLITE_ROW) {
    const std::string_view doc = q.blob(0);
    if (doc_names(doc, sdkappid, call_id)) {
      if (q.int64(1) < oldest_ts) return std::optional<stored_record>();  // outside the retention window
      auto found = stored_record::from_doc(doc);
      if (!found) return corrupt_record();
      return found;
    }
  }
  if (rc != SQLITE_DONE) return db.last_error("get record");
  return std::optional<stored_record>();
}

result<bool> put_doc(connection& db, std::uint32_t sdkappid, std::string_view call_id, std::int64_t start_ts,
                     std::string_view doc) {
  auto slot = find_doc(db, sdkappid, call_id);
  if (!slot) return std::move(slot).error();
  if (slot->key) return false;
  if (!slot->free_key) {
    return make_error(errc::internal, "storage failure: the lookup bucket of call " + std::string(call_id) +
                                          " is full (16 calls share its hash); the record is not stored");
  }
  sqlite3_stmt* s = db.cached_static("INSERT INTO record_docs (key, start_ts, doc) VALUES (?, ?, ?)");
  if (!s) return db.last_error("prepare");
  stmt_use q(s);
  q.bind(1, *slot->free_key);
  q.bind(2, start_ts);
  q.bind_blob(3, doc);
  if (q.step() != SQLITE_DONE) return db.last_error("insert record");
  return true;
}

result<void> delete_doc(connection& db, std::uint32_t sdkappid, std::string_view call_id) {
  auto slot = find_doc(db, sdkappid, call_id);
  if (!slot) return std::move(slot).error();
  if (!slot->key) return {};
  sqlite3_stmt* s = db.cached_static("DELETE FROM record_docs WHERE key = ?");
  if (!s) return db.last_error("prepare");
  stmt_use q(s);
  q.bind(1, *slot->key);
  if (q.step() != SQLITE_DONE) return db.last_error("delete record");
  return {};
}

}  // namespace callrec::sqlite
