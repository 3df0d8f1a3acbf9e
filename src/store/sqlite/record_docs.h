// The embedded store's call-id lookup (get_record_by_callId): every record as one compact document in the
// rowid table record_docs, keyed by a 64-bit hash of (sdkappid, call id).
//
// A rowid b-tree's interior pages hold only integers, so a lookup is a shallow descent of integer compares
// and one column read: about half the cost of a covering index on (sdkappid, call_id, ...), whose interior
// pages hold whole rows and compare them field by field (docs/ARCHITECTURE.md has the measurement).
//
// Keys: the hash's upper 60 bits pick a bucket of 16 consecutive rowids [bucket, bucket + 15]; a record takes
// the first free rowid of its bucket. A document names its call first, so a lookup reads the bucket's rows in
// order and takes the one that names the call (nearly always the first and only one). A bucket that is full
// (16 calls of one bucket, which random call ids make vanishingly unlikely) refuses the record with an error.
//
// The document is the record's compact form (records/record_doc.h).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/error.h"
#include "records/record_doc.h"
#include "store/sqlite/sqlite_db.h"

namespace callrec::sqlite {

inline constexpr std::int64_t doc_bucket_size = 16;

// The first rowid of the bucket of (sdkappid, call_id). Stable across builds and machines: it is stored.
std::int64_t doc_bucket(std::uint32_t sdkappid, std::string_view call_id) noexcept;

// Where the record of a call is, or would go, in its bucket.
struct doc_slot {
  std::optional<std::int64_t> key;       // the row holding the call's record
  std::int64_t start_ts = 0;             // that record's start (its place in records), when found
  std::optional<std::int64_t> free_key;  // else the first free row of the bucket (none: the bucket is full)
};
result<doc_slot> find_doc(connection& db, std::uint32_t sdkappid, std::string_view call_id);

// The record of a call that started at or after oldest_ts, read from its document alone: nullopt when there is
// none. The read path of get_record_by_callId: one bucket read, no other table.
result<std::optional<stored_record>> read_doc(connection& db, std::uint32_t sdkappid, std::string_view call_id,
                                              std::int64_t oldest_ts);

// Stores the record's document in its bucket, unless the call already has one (then false). An error when
// the bucket is full.
result<bool> put_doc(connection& db, std::uint32_t sdkappid, std::string_view call_id, std::int64_t start_ts,
                     std::string_view doc);

// Removes the call's document, if any.
result<void> delete_doc(connection& db, std::uint32_t sdkappid, std::string_view call_id);

}  // namespace callrec::sqlite
