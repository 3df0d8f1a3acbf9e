#include "auth/usersig.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <zlib.h>

#include <array>
#include <boost/json/basic_parser_impl.hpp>
#include <charconv>
#include <cstring>
#include <functional>
#include <limits>
#include <memory>
#include <stdexcept>
#include <unordered_map>

#include "auth/base64.h"
#include "core/json_text.h"

namespace callrec::auth {
namespace {

namespace json = boost::json;

constexpr std::size_t sha256_size = 32;
constexpr std::size_t sha256_block_size = 64;
using digest = std::array<unsigned char, sha256_size>;

error invalid(std::string message) { return make_error(errc::usersig_invalid, std::move(message)); }

// ---------------------------------------------------------------------------------------------------------------
// HMAC-SHA256. OpenSSL 3 fetches algorithms by name, which is slow per call: SHA-256 is fetched once, and for each
// secret key the inner and outer states (after the ipad/opad block) are computed once per thread and copied per call.

const EVP_MD* sha256_md() {
  static EVP_MD* const md = EVP_MD_fetch(nullptr, "SHA2-256", nullptr);  // process lifetime, never freed
  return md;
}

struct md_ctx_free {
  void operator()(EVP_MD_CTX* ctx) const noexcept { EVP_MD_CTX_free(ctx); }
};
using md_ctx_ptr = std::unique_ptr<EVP_MD_CTX, md_ctx_free>;

struct string_hash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};

// Per-thread HMAC-SHA256 with precomputed key states; only ever used by its own thread.
class hmac_sha256 {
 public:
  // Writes HMAC-SHA256(key, message) to `out`; false only when OpenSSL fails (no SHA-256 provider, no memory).
  bool compute(std::string_view key, std::string_view message, digest& out) {
    const key_state* state = state_for(key);
    if (state == nullptr || !work_) return false;
    digest inner;
    unsigned int n = 0;
    return EVP_MD_CTX_copy_ex(work_.get(), state->inner.get()) == 1 &&
           EVP_DigestUpdate(work_.get(), message.data(), message.size()) == 1 &&
           EVP_DigestFinal_ex(work_.get(), inner.data(), &n) == 1 &&
           EVP_MD_CTX_copy_ex(work_.get(), state->outer.get()) == 1 &&
           EVP_DigestUpdate(work_.get(), inner.data(), inner.size()) == 1 &&
           EVP_DigestFinal_ex(work_.get(), out.data(), &n) == 1;
  }

 private:
  struct key_state {
    md_ctx_ptr inner;  // SHA-256 after absorbing key ^ ipad
    md_ctx_ptr outer;  // SHA-256 after absorbing key ^ opad
  };

  // Apps are few; the bound only stops a thread from holding states for an unbounded number of keys.
  static constexpr std::size_t max_keys = 1024;

  const key_state* state_for(std::string_view key) {
    if (auto it = keys_.find(key); it != keys_.end()) return &it->second;
    const EVP_MD* md = sha256_md();
    if (md == nullptr) return nullptr;
    std::array<unsigned char, sha256_block_size> block{};
    if (key.size() > block.size()) {
      unsigned int n = 0;
      if (EVP_Digest(key.data(), key.size(), block.data(), &n, md, nullptr) != 1) return nullptr;
    } else {
      std::memcpy(block.data(), key.data(), key.size());
    }
    key_state state{md_ctx_ptr(EVP_MD_CTX_new()), md_ctx_ptr(EVP_MD_CTX_new())};
    const bool ok = state.inner && state.outer && absorb_padded(state.inner.get(), md, block, 0x36) &&
                    absorb_padded(state.outer.get(), md, block, 0x5c);
    OPENSSL_cleanse(block.data(), block.size());
    if (!ok) return nullptr;
    if (keys_.size() >= max_keys) keys_.clear();
    return &keys_.emplace(std::string(key), std::move(state)).first->second;
  }

  static bool absorb_padded(EVP_MD_CTX* ctx, const EVP_MD* md, const std::array<unsigned char, 64>& block,
                            unsigned char pad) {
    std::array<unsigned char, sha256_block_size> padded;
    for (std::size_t i = 0; i < padded.size(); ++i) padded[i] = block[i] ^ pad;
    const bool ok =
        EVP_DigestInit_ex(ctx, md, nullptr) == 1 && EVP_DigestUpdate(ctx, padded.data(), padded.size()) == 1;
    OPENSSL_cleanse(padded.data(), padded.size());
    return ok;
  }

  std::unordered_map<std::string, key_state, string_hash, std::equal_to<>> keys_;
  md_ctx_ptr work_{EVP_MD_CTX_new()};
};

bool compute_hmac(std::string_view key, std::string_view message, digest& out) {
  thread_local hmac_sha256 hmac;
  return hmac.compute(key, message, out);
}

// ---------------------------------------------------------------------------------------------------------------
// zlib inflate into a caller's buffer, with a per-thread stream that is reset rather than re-initialised.

enum class inflate_status { ok, not_zlib, truncated, too_large, trailing_data, internal };

class inflater {
 public:
  inflater() { ready_ = inflateInit(&stream_) == Z_OK; }
  ~inflater() {
    if (ready_) inflateEnd(&stream_);
  }
  inflater(const inflater&) = delete;
  inflater& operator=(const inflater&) = delete;

  inflate_status run(const unsigned char* in, std::size_t in_size, unsigned char* out, std::size_t out_capacity,
                     std::size_t& out_size) {
    if (!ready_ || inflateReset(&stream_) != Z_OK) return inflate_status::internal;
    stream_.next_in = const_cast<unsigned char*>(in);  // zlib's API is not const-correct; it does not write
    stream_.avail_in = static_cast<uInt>(in_size);
    stream_.next_out = out;
    stream_.avail_out = static_cast<uInt>(out_capacity);
    // Z_FINISH in one call: the output buffer doubles as the window, so zlib allocates none.
    const int rc = inflate(&stream_, Z_FINISH);
    out_size = out_capacity - stream_.avail_out;
    switch (rc) {
      case Z_STREAM_END:
        return stream_.avail_in == 0 ? inflate_status::ok : inflate_status::trailing_data;
      case Z_OK:
      case Z_BUF_ERROR:
        return stream_.avail_out == 0 ? inflate_status::too_large : inflate_status::truncated;
      case Z_MEM_ERROR:
        return inflate_status::internal;
      default:  // Z_DATA_ERROR, Z_NEED_DICT, Z_STREAM_ERROR
        return inflate_status::not_zlib;
    }
  }

 private:
  z_stream stream_{};
  bool ready_ = false;
};

// ---------------------------------------------------------------------------------------------------------------
// The JSON payload, read with a SAX handler: no DOM is built, only the top-level TLS.* values are kept (copied into
// an arena inside the handler), and a TLS.* key given twice is refused rather than resolved one way or the other.

enum field : std::uint8_t { f_ver, f_identifier, f_sdkappid, f_time, f_expire, f_userbuf, f_sig, field_count };
constexpr std::array<std::string_view, field_count> field_names = {
    "TLS.ver", "TLS.identifier", "TLS.sdkappid", "TLS.time", "TLS.expire", "TLS.userbuf", "TLS.sig"};

enum class value_kind : std::uint8_t { absent, string, int64, uint64, null, other };

struct field_value {
  value_kind kind = value_kind::absent;
  std::int64_t i = 0;
  std::uint64_t u = 0;
  std::string_view s;  // into the handler's arena
};

class payload_handler {
 public:
  static constexpr std::size_t max_array_size = std::size_t(-1);
  static constexpr std::size_t max_object_size = std::size_t(-1);
  static constexpr std::size_t max_string_size = std::size_t(-1);
  static constexpr std::size_t max_key_size = std::size_t(-1);

  payload_handler() noexcept {}  // user-provided on purpose: the arena is not zero-filled

  std::array<field_value, field_count> values;
  bool root_is_object = false;
  int duplicate = -1;  // the TLS.* field given twice, if any

  bool on_document_begin(json::error_code&) { return true; }
  bool on_document_end(json::error_code&) { return true; }
  bool on_object_begin(json::error_code&) {
    if (depth_ == 0) root_is_object = true;
    return open_container();
  }
  bool on_object_end(std::size_t, json::error_code&) { return close_container(); }
  bool on_array_begin(json::error_code&) { return open_container(); }
  bool on_array_end(std::size_t, json::error_code&) { return close_container(); }

  bool on_key_part(json::string_view s, std::size_t, json::error_code&) {
    if (depth_ == 1) append_key(s);
    return true;
  }
  bool on_key(json::string_view s, std::size_t, json::error_code& ec) {
    if (depth_ != 1) return true;
    append_key(s);
    current_ = -1;
    if (!key_too_long_) {
      const std::string_view key(key_.data(), key_size_);
      for (std::size_t f = 0; f < field_count; ++f) {
        if (key == field_names[f]) current_ = static_cast<int>(f);
      }
    }
    key_size_ = 0;
    key_too_long_ = false;
    if (current_ >= 0 && values[static_cast<std::size_t>(current_)].kind != value_kind::absent) {
      duplicate = current_;
      ec = json::error::syntax;
      return false;
    }
    return true;
  }

  bool on_string_part(json::string_view s, std::size_t, json::error_code& ec) {
    return !tracked() || append_string(s, ec);
  }
  bool on_string(json::string_view s, std::size_t, json::error_code& ec) {
    if (!tracked()) return true;
    if (!append_string(s, ec)) return false;
    field_value& v = values[static_cast<std::size_t>(current_)];
    v.kind = value_kind::string;
    v.s = std::string_view(arena_.data() + string_start_, arena_used_ - string_start_);
    string_start_ = arena_used_;
    return true;
  }

  bool on_number_part(json::string_view, json::error_code&) { return true; }
  bool on_int64(std::int64_t i, json::string_view, json::error_code&) {
    if (tracked()) set(value_kind::int64).i = i;
    return true;
  }
  bool on_uint64(std::uint64_t u, json::string_view, json::error_code&) {
    if (tracked()) set(value_kind::uint64).u = u;
    return true;
  }
  bool on_double(double, json::string_view, json::error_code&) {
    if (tracked()) set(value_kind::other);
    return true;
  }
  bool on_bool(bool, json::error_code&) {
    if (tracked()) set(value_kind::other);
    return true;
  }
  bool on_null(json::error_code&) {
    if (tracked()) set(value_kind::null);
    return true;
  }
  bool on_comment_part(json::string_view, json::error_code&) { return true; }
  bool on_comment(json::string_view, json::error_code&) { return true; }

 private:
  // A value belonging to a TLS.* key of the top-level object.
  bool tracked() const noexcept { return depth_ == 1 && current_ >= 0; }
  field_value& set(value_kind kind) {
    field_value& v = values[static_cast<std::size_t>(current_)];
    v.kind = kind;
    return v;
  }
  bool open_container() {
    if (tracked()) set(value_kind::other);
    ++depth_;
    return true;
  }
  bool close_container() {
    --depth_;
    return true;
  }
  void append_key(json::string_view s) {
    if (key_too_long_ || s.size() > key_.size() - key_size_) {
      key_too_long_ = true;  // longer than any TLS.* name: not one of ours
      return;
    }
    std::memcpy(key_.data() + key_size_, s.data(), s.size());
    key_size_ += s.size();
  }
  bool append_string(json::string_view s, json::error_code& ec) {
    // Cannot overflow (unescaped strings are shorter than the payload they came from); checked all the same.
    if (s.size() > arena_.size() - arena_used_) {
      ec = json::error::string_too_large;
      return false;
    }
    std::memcpy(arena_.data() + arena_used_, s.data(), s.size());
    arena_used_ += s.size();
    return true;
  }

  int depth_ = 0;
  int current_ = -1;  // the TLS.* field whose value is being read at depth 1, or -1
  std::array<char, 16> key_;
  std::size_t key_size_ = 0;
  bool key_too_long_ = false;
  std::array<char, max_usersig_payload_size> arena_;
  std::size_t arena_used_ = 0;
  std::size_t string_start_ = 0;
};

// An integer field: a JSON integer, or a string holding one (some generators emit those). `text` is the decimal
// text the generator signed: the JSON string itself, or the number printed into `digits`.
struct integer_field {
  std::int64_t value = 0;
  std::string_view text;
  std::array<char, 24> digits;
};

enum class integer_status { ok, not_integer, out_of_range };

integer_status read_integer(const field_value& v, std::int64_t lo, std::int64_t hi, integer_field& f) {
  switch (v.kind) {
    case value_kind::int64:
      f.value = v.i;
      break;
    case value_kind::uint64:
      if (v.u > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
        return integer_status::out_of_range;
      }
      f.value = static_cast<std::int64_t>(v.u);
      break;
    case value_kind::string: {
      const char* last = v.s.data() + v.s.size();
      const auto [end, ec] = std::from_chars(v.s.data(), last, f.value);
      if (ec == std::errc::result_out_of_range) return integer_status::out_of_range;
      if (ec != std::errc{} || end != last) return integer_status::not_integer;
      if (f.value < lo || f.value > hi) return integer_status::out_of_range;
      f.text = v.s;
      return integer_status::ok;
    }
    default:
      return integer_status::not_integer;  // doubles included: no generator emits them
  }
  if (f.value < lo || f.value > hi) return integer_status::out_of_range;
  const auto [end, ec] = std::to_chars(f.digits.data(), f.digits.data() + f.digits.size(), f.value);
  (void)ec;  // 24 chars always hold an int64
  f.text = std::string_view(f.digits.data(), static_cast<std::size_t>(end - f.digits.data()));
  return integer_status::ok;
}

std::optional<error> read_integer_field(const field_value& v, field name, std::int64_t lo, std::int64_t hi,
                                        integer_field& f) {
  const std::string_view n = field_names[name];
  if (v.kind == value_kind::absent) return invalid("usersig: " + std::string(n) + " missing");
  switch (read_integer(v, lo, hi, f)) {
    case integer_status::ok:
      return std::nullopt;
    case integer_status::not_integer:
      return invalid("usersig: " + std::string(n) + " is not an integer");
    case integer_status::out_of_range:
      break;
  }
  return invalid("usersig: " + std::string(n) + " out of range");
}

void append_content(std::string& out, std::string_view identifier, std::string_view sdkappid, std::string_view time,
                    std::string_view expire, const std::string_view* userbuf_base64) {
  out.clear();
  out.append("TLS.identifier:").append(identifier);
  out.append("\nTLS.sdkappid:").append(sdkappid);
  out.append("\nTLS.time:").append(time);
  out.append("\nTLS.expire:").append(expire);
  out.push_back('\n');
  if (userbuf_base64 != nullptr) out.append("TLS.userbuf:").append(*userbuf_base64).push_back('\n');
}

// Decodes a token. When `signed_content` is given, also writes there the exact content the generator signed, and
// the signature to `sig`, for verify_usersig.
result<usersig_claims> decode(std::string_view token, std::string* signed_content, digest* sig) {
  if (token.empty()) return invalid("usersig: empty");
  if (token.size() > max_usersig_token_size) {
    return invalid("usersig: too long (" + std::to_string(token.size()) + " bytes, at most " +
                   std::to_string(max_usersig_token_size) + ")");
  }

  // Token -> zlib stream.
  std::array<unsigned char, max_usersig_token_size / 4 * 3 + 3> compressed;
  const auto compressed_size =
      base64_decode_into(token, base64_alphabet::usersig, compressed.data(), compressed.size());
  if (!compressed_size) return invalid("usersig: not base64");

  // zlib stream -> JSON text, capped against decompression bombs. One spare byte: Boost.JSON 1.81's basic_parser
  // marks suspension with its own address, so input ending exactly where the parser object begins on the stack
  // reads as "incomplete" (boostorg/json#814); the end of the text must stay inside this array.
  std::array<unsigned char, max_usersig_payload_size + 1> payload;
  std::size_t payload_size = 0;
  thread_local inflater zlib;
  switch (zlib.run(compressed.data(), *compressed_size, payload.data(), max_usersig_payload_size, payload_size)) {
    case inflate_status::ok:
      break;
    case inflate_status::not_zlib:
      return invalid("usersig: not a zlib stream");
    case inflate_status::truncated:
      return invalid("usersig: truncated zlib stream");
    case inflate_status::too_large:
      return invalid("usersig: payload larger than " + std::to_string(max_usersig_payload_size) + " bytes");
    case inflate_status::trailing_data:
      return invalid("usersig: data after the zlib stream");
    case inflate_status::internal:
      return make_error(errc::internal, "usersig: zlib failure");
  }

  // JSON text -> the TLS.* fields.
  json::basic_parser<payload_handler> parser{json::parse_options{}};
  json::error_code ec;
  const char* text = reinterpret_cast<const char*>(payload.data());
  const std::size_t used = parser.write_some(false, text, payload_size, ec);
  const payload_handler& h = parser.handler();
  if (h.duplicate >= 0) {
    return invalid("usersig: " + std::string(field_names[static_cast<std::size_t>(h.duplicate)]) + " given twice");
  }
  if (ec || used != payload_size) return invalid("usersig: payload is not JSON");
  if (!h.root_is_object) return invalid("usersig: payload is not a JSON object");
  const auto& v = h.values;

  if (v[f_ver].kind == value_kind::absent) return invalid("usersig: TLS.ver missing");
  if (v[f_ver].kind != value_kind::string || v[f_ver].s != "2.0") return invalid("usersig: TLS.ver is not \"2.0\"");
  if (v[f_identifier].kind == value_kind::absent) return invalid("usersig: TLS.identifier missing");
  if (v[f_identifier].kind != value_kind::string) return invalid("usersig: TLS.identifier is not a string");

  integer_field appid_field, time_field, expire_field;
  constexpr std::int64_t int64_min = std::numeric_limits<std::int64_t>::min();
  constexpr std::int64_t int64_max = std::numeric_limits<std::int64_t>::max();
  if (auto e =
          read_integer_field(v[f_sdkappid], f_sdkappid, 0, std::numeric_limits<std::uint32_t>::max(), appid_field)) {
    return std::move(*e);
  }
  if (auto e = read_integer_field(v[f_time], f_time, int64_min, int64_max, time_field)) return std::move(*e);
  if (auto e = read_integer_field(v[f_expire], f_expire, int64_min, int64_max, expire_field)) return std::move(*e);

  std::optional<std::string> userbuf_bytes;
  const std::string_view userbuf_text = v[f_userbuf].s;
  if (v[f_userbuf].kind != value_kind::absent && v[f_userbuf].kind != value_kind::null) {  // null: as absent
    if (v[f_userbuf].kind != value_kind::string) return invalid("usersig: TLS.userbuf is not a string");
    userbuf_bytes = base64_decode(userbuf_text, base64_alphabet::standard);
    if (!userbuf_bytes) return invalid("usersig: TLS.userbuf is not base64");
  }

  if (v[f_sig].kind == value_kind::absent) return invalid("usersig: TLS.sig missing");
  if (v[f_sig].kind != value_kind::string) return invalid("usersig: TLS.sig is not a string");
  const std::string_view sig_text = v[f_sig].s;
  digest sig_bytes;
  if (base64_decoded_size(sig_text, base64_alphabet::standard) != sha256_size ||
      !base64_decode_into(sig_text, base64_alphabet::standard, sig_bytes.data(), sig_bytes.size())) {
    return invalid("usersig: TLS.sig is not a base64 HMAC-SHA256");
  }

  const std::string_view id_text = v[f_identifier].s;
  if (signed_content != nullptr) {
    append_content(*signed_content, id_text, appid_field.text, time_field.text, expire_field.text,
                   userbuf_bytes ? &userbuf_text : nullptr);
    *sig = sig_bytes;
  }
  return usersig_claims{std::string(id_text), static_cast<std::uint32_t>(appid_field.value), time_field.value,
                        expire_field.value, std::move(userbuf_bytes)};
}

// zlib deflate at the default level (as the generators use), with a per-thread stream: deflateInit allocates and
// clears ~270 KiB, deflateReset does not.
class deflater {
 public:
  deflater() { ready_ = deflateInit(&stream_, Z_DEFAULT_COMPRESSION) == Z_OK; }
  ~deflater() {
    if (ready_) deflateEnd(&stream_);
  }
  deflater(const deflater&) = delete;
  deflater& operator=(const deflater&) = delete;

  std::string run(std::string_view data) {
    if (!ready_ || deflateReset(&stream_) != Z_OK) throw std::runtime_error("usersig: zlib deflate unavailable");
    std::string out(deflateBound(&stream_, static_cast<uLong>(data.size())), '\0');
    stream_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));  // zlib does not write it
    stream_.avail_in = static_cast<uInt>(data.size());
    stream_.next_out = reinterpret_cast<Bytef*>(out.data());
    stream_.avail_out = static_cast<uInt>(out.size());
    if (deflate(&stream_, Z_FINISH) != Z_STREAM_END) throw std::runtime_error("usersig: zlib deflate failed");
    out.resize(out.size() - stream_.avail_out);
    return out;
  }

 private:
  z_stream stream_{};
  bool ready_ = false;
};

std::string deflate_default(std::string_view data) {
  thread_local deflater zlib;
  return zlib.run(data);
}

}  // namespace

std::int64_t usersig_expires_at(const usersig_claims& claims) noexcept {
  std::int64_t end = 0;
  if (__builtin_add_overflow(claims.time, claims.expire, &end)) {
    return claims.expire > 0 ? std::numeric_limits<std::int64_t>::max() : std::numeric_limits<std::int64_t>::min();
  }
  return end;
}

result<usersig_claims> decode_usersig(std::string_view token) { return decode(token, nullptr, nullptr); }

std::string usersig_signature(std::string_view key, const usersig_claims& claims) {
  std::array<char, 24> appid, time, expire;
  const auto print = [](std::array<char, 24>& buf, auto value) {
    return std::string_view(
        buf.data(),
        static_cast<std::size_t>(std::to_chars(buf.data(), buf.data() + buf.size(), value).ptr - buf.data()));
  };
  std::string content;
  std::string userbuf_base64;
  std::string_view userbuf_view;
  if (claims.userbuf) {
    userbuf_base64 = base64_encode(*claims.userbuf);
    userbuf_view = userbuf_base64;
  }
  append_content(content, claims.identifier, print(appid, claims.sdkappid), print(time, claims.time),
                 print(expire, claims.expire), claims.userbuf ? &userbuf_view : nullptr);
  digest mac;
  if (!compute_hmac(key, content, mac)) throw std::runtime_error("usersig: HMAC-SHA256 unavailable (OpenSSL)");
  return base64_encode(std::string_view(reinterpret_cast<const char*>(mac.data()), mac.size()));
}

result<usersig_claims> verify_usersig(std::string_view token, std::string_view key, std::uint32_t sdkappid,
                                      std::string_view identifier, std::int64_t now_s) {
  thread_local std::string content;  // reused: its capacity saves an allocation per call
  digest sig;
  result<usersig_claims> claims = decode(token, &content, &sig);
  if (!claims) return claims;

  digest expected;
  if (!compute_hmac(key, content, expected)) return make_error(errc::internal, "usersig: HMAC-SHA256 unavailable");
  if (CRYPTO_memcmp(expected.data(), sig.data(), sig.size()) != 0) return invalid("usersig: signature mismatch");

  if (claims->identifier != identifier) return invalid("usersig: issued for another identifier");
  if (claims->sdkappid != sdkappid) return invalid("usersig: issued for another sdkappid");
  if (now_s > usersig_expires_at(*claims)) {
    return make_error(errc::usersig_expired, "usersig: expired at " + std::to_string(usersig_expires_at(*claims)) +
                                                 " (now " + std::to_string(now_s) + ")");
  }
  return claims;
}

std::string make_usersig(std::string_view key, std::uint32_t sdkappid, std::string_view identifier, std::int64_t now_s,
                         std::int64_t expire_s, std::optional<std::string> userbuf) {
  usersig_claims claims{std::string(identifier), sdkappid, now_s, expire_s, std::move(userbuf)};
  const std::string sig = usersig_signature(key, claims);

  // Field order and number formatting of the npm package tls-sig-api-v2 (JSON.stringify).
  std::string doc = "{\"TLS.ver\":\"2.0\",\"TLS.identifier\":";
  append_json_string(doc, claims.identifier);
  doc.append(",\"TLS.sdkappid\":").append(std::to_string(claims.sdkappid));
  doc.append(",\"TLS.time\":").append(std::to_string(claims.time));
  doc.append(",\"TLS.expire\":").append(std::to_string(claims.expire));
  if (claims.userbuf) {
    doc.append(",\"TLS.userbuf\":");
    append_json_string(doc, base64_encode(*claims.userbuf));
  }
  doc.append(",\"TLS.sig\":");
  append_json_string(doc, sig);
  doc.push_back('}');
  return base64_encode(deflate_default(doc), base64_alphabet::usersig);
}

}  // namespace callrec::auth
