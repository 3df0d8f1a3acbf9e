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
#include <utility>

#include "records/wire.h"

namespace callrec {

// The document of a record (appended to `out`), and back: false when `doc` is not a whole document or holds
// an enumeration out of range. The fields view `doc`.
void encode_doc(std::string& out, const record_fields& r);
bool decode_doc(std::string_view doc, record_fields& r);

// The call a document names (views into `doc`); false when its head is not whole.
bool doc_call(std::string_view doc, std::uint32_t& sdkappid, std::string_view& call_id);

// True when `doc` is the document of the record of (sdkappid, call_id).
bool doc_names(std::string_view doc, std::uint32_t sdkappid, std::string_view call_id);

// A record as a store read it. Cheap to make from a document: decoded once, its bytes (about 80) copied into
// an inline buffer (no allocation up to inline_bytes), the fields kept as offsets into them; a copy or move is
// a copy of the bytes in use. The JSON of the answer is written straight from the fields.
class stored_record {
  struct key {};  // only from_doc makes one

 public:
  // nullopt when `doc` is not a whole document (corrupt data).
  static std::optional<stored_record> from_doc(std::string_view doc);
  static stored_record from_record(const call_record& r);

  stored_record(key, std::string_view doc, const record_fields& decoded);
  stored_record(const stored_record& o) : layout_(o.layout_) {
    if (o.heap_) {
      copy_bytes(o.doc());
    } else {
      inline_ = o.inline_;  // a fixed-size copy: a few vector moves, cheaper than a copy of size_ bytes
      size_ = o.size_;
    }
  }
  stored_record(stored_record&& o) noexcept : layout_(o.layout_) {
    if (o.heap_) {
      heap_ = std::exchange(o.heap_, nullptr);
      size_ = std::exchange(o.size_, 0u);
    } else {
      inline_ = o.inline_;
      size_ = o.size_;
    }
  }
  stored_record& operator=(stored_record o) noexcept {
    std::swap(heap_, o.heap_);
    std::swap(size_, o.size_);
    inline_ = o.inline_;
    layout_ = o.layout_;
    return *this;
  }
  ~stored_record() { delete[] heap_; }

  std::string_view doc() const noexcept { return std::string_view(heap_ ? heap_ : inline_.data(), size_); }
  // The fields, viewing this object's bytes: valid while it lives unchanged.
  record_fields fields() const noexcept;
  call_record to_record() const;

 private:
  static constexpr std::size_t inline_bytes = 96;
  struct text {
    std::uint16_t at = 0, size = 0;  // within doc(), which is shorter than 64 KiB (from_doc checks)
  };
  // The fields of record_fields, with the texts as offsets into the bytes.
  struct layout {
    text call_id, room_id, caller, callees;
    std::uint32_t sdkappid = 0;
    media_type media = media_type::audio;
    call_type type = call_type::single;
    call_result result = call_result::not_answer;
    std::int64_t start_ts = 0, accept_ts = 0, end_ts = 0;
  };
  void copy_bytes(std::string_view doc);

  std::array<char, inline_bytes> inline_;
  char* heap_ = nullptr;  // the bytes when longer than inline_bytes (a large group call)
  std::uint32_t size_ = 0;
  layout layout_;
};

}  // namespace callrec
