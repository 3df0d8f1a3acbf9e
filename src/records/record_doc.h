// A record's compact document, the form stores keep and read records in, and a record read back from a store
// (stored_record): the document's bytes, owned, with the record's fields as views into them.
//
// The document: varint(sdkappid) varint(len) call_id, then media, call type, result (one byte each),
// zigzag varints of start, accept and end, then room id, caller and the space-joined callees, each as
// varint(len) bytes. About 80 bytes, against 250 for the record's JSON. It names its call first, so a store
// that keeps documents by a hash of the call id can tell which one it found (doc_names).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "records/wire.h"

namespace callrec {

// The document of a record (appended to `out`), and back: false when `doc` is not a whole document or holds
// an enumeration out of range. The fields view `doc`.
void encode_doc(std::string& out, const record_fields& r);
bool decode_doc(std::string_view doc, record_fields& r);

// True when `doc` is the document of the record of (sdkappid, call_id).
bool doc_names(std::string_view doc, std::uint32_t sdkappid, std::string_view call_id);

// A record as a store read it. Cheap to make from a document: one copy of about 80 bytes, held inline (no
// allocation) up to inline_bytes; the JSON of the answer is then written straight from the fields.
class stored_record {
 public:
  // nullopt when `doc` is not a whole document (corrupt data).
  static std::optional<stored_record> from_doc(std::string_view doc);
  static stored_record from_record(const call_record& r);

  std::string_view doc() const noexcept {
    return size_ <= inline_bytes ? std::string_view(inline_.data(), size_) : std::string_view(heap_);
  }
  // The fields, viewing this object's bytes: valid while it lives and is not moved.
  record_fields fields() const;
  call_record to_record() const;

 private:
  static constexpr std::size_t inline_bytes = 240;
  explicit stored_record(std::string_view doc);
  std::array<char, inline_bytes> inline_;
  std::size_t size_ = 0;
  std::string heap_;
};

}  // namespace callrec
