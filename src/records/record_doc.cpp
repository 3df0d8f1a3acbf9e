#include "records/record_doc.h"

#include <cstring>

namespace callrec {

namespace {

void put_varint(std::string& out, std::uint64_t v) {
  while (v >= 0x80) {
    out += static_cast<char>((v & 0x7f) | 0x80);
    v >>= 7;
  }
  out += static_cast<char>(v);
}

void put_text(std::string& out, std::string_view s) {
  put_varint(out, s.size());
  out += s;
}

std::uint64_t zigzag(std::int64_t v) {
  return (static_cast<std::uint64_t>(v) << 1) ^ static_cast<std::uint64_t>(v >> 63);
}
std::int64_t unzigzag(std::uint64_t v) { return static_cast<std::int64_t>(v >> 1) ^ -static_cast<std::int64_t>(v & 1); }

// Reads a document front to back; every read fails (and stays failed) past the end.
class doc_reader {
 public:
  explicit doc_reader(std::string_view d) : d_(d) {}
  bool ok() const { return ok_; }
  bool done() const { return ok_ && d_.empty(); }
  std::uint64_t varint() {
    if (!ok_) return 0;
    std::uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (d_.empty()) break;
      const auto b = static_cast<unsigned char>(d_.front());
      d_.remove_prefix(1);
      v |= static_cast<std::uint64_t>(b & 0x7f) << shift;
      if (!(b & 0x80)) return v;
    }
    ok_ = false;
    return 0;
  }
  std::string_view text() {
    const std::uint64_t n = varint();
    if (!ok_ || n > d_.size()) {
      ok_ = false;
      return {};
    }
    const std::string_view s = d_.substr(0, n);
    d_.remove_prefix(n);
    return s;
  }
  unsigned byte() {
    if (!ok_ || d_.empty()) {
      ok_ = false;
      return 0;
    }
    const auto b = static_cast<unsigned char>(d_.front());
    d_.remove_prefix(1);
    return b;
  }

 private:
  std::string_view d_;
  bool ok_ = true;
};

}  // namespace

void encode_doc(std::string& out, const record_fields& r) {
  put_varint(out, r.sdkappid);
  put_text(out, r.call_id);
  out += static_cast<char>(r.media);
  out += static_cast<char>(r.type);
  out += static_cast<char>(r.result);
  put_varint(out, zigzag(r.start_ts));
  put_varint(out, zigzag(r.accept_ts));
  put_varint(out, zigzag(r.end_ts));
  put_text(out, r.room_id);
  put_text(out, r.caller);
  put_text(out, r.callees);
}

bool decode_doc(std::string_view doc, record_fields& r) {
  doc_reader in(doc);
  const std::uint64_t app = in.varint();
  r.call_id = in.text();
  const unsigned media = in.byte(), type = in.byte(), result = in.byte();
  r.start_ts = unzigzag(in.varint());
  r.accept_ts = unzigzag(in.varint());
  r.end_ts = unzigzag(in.varint());
  r.room_id = in.text();
  r.caller = in.text();
  r.callees = in.text();
  if (!in.done() || app > 0xffffffffu || media > 1 || type > 1 || result >= call_result_count) return false;
  r.sdkappid = static_cast<std::uint32_t>(app);
  r.media = static_cast<media_type>(media);
  r.type = static_cast<call_type>(type);
  r.result = static_cast<call_result>(result);
  return true;
}

bool doc_call(std::string_view doc, std::uint32_t& sdkappid, std::string_view& call_id) {
  doc_reader in(doc);
  const std::uint64_t app = in.varint();
  call_id = in.text();
  sdkappid = static_cast<std::uint32_t>(app);
  return in.ok() && app <= UINT32_MAX;
}

bool doc_names(std::string_view doc, std::uint32_t sdkappid, std::string_view call_id) {
  std::uint32_t app = 0;
  std::string_view id;
  return doc_call(doc, app, id) && app == sdkappid && id == call_id;
}

void stored_record::copy_bytes(std::string_view doc) {
  char* to = inline_.data();
  if (doc.size() > inline_bytes) to = heap_ = new char[doc.size()];
  if (!doc.empty()) std::memcpy(to, doc.data(), doc.size());
  size_ = static_cast<std::uint32_t>(doc.size());
}

stored_record::stored_record(key, std::string_view doc, const record_fields& f) {
  copy_bytes(doc);
  auto at = [&](std::string_view v) {
    return text{static_cast<std::uint16_t>(v.empty() ? 0 : v.data() - doc.data()), static_cast<std::uint16_t>(v.size())};
  };
  layout_ = layout{at(f.call_id), at(f.room_id), at(f.caller), at(f.callees), f.sdkappid, f.media, f.type, f.result,
                   f.start_ts,    f.accept_ts,   f.end_ts};
}

record_fields stored_record::fields() const noexcept {
  const char* b = heap_ ? heap_ : inline_.data();
  auto view = [b](text t) { return std::string_view(b + t.at, t.size); };
  const layout& l = layout_;
  return record_fields{view(l.call_id), l.sdkappid, l.media, view(l.room_id), l.start_ts, l.accept_ts, l.end_ts,
                       view(l.caller),  view(l.callees), l.type, l.result};
}

std::optional<stored_record> stored_record::from_doc(std::string_view doc) {
  record_fields f;
  if (doc.size() > 0xffff || !decode_doc(doc, f)) return std::nullopt;  // a record is a few KiB at most
  return std::optional<stored_record>(std::in_place, key{}, doc, f);
}

stored_record stored_record::from_record(const call_record& r) {
  std::string callees;
  for (const auto& c : r.callees) {
    if (!callees.empty()) callees += ' ';
    callees += c;
  }
  std::string doc;
  encode_doc(doc, record_fields{r.call_id, r.sdkappid, r.media, r.room_id, r.start_ts, r.accept_ts, r.end_ts,
                                r.caller, callees, r.type, r.result});
  return *from_doc(doc);
}

call_record stored_record::to_record() const { return callrec::to_record(fields()); }

}  // namespace callrec
