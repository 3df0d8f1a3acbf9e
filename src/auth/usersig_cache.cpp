#include "auth/usersig_cache.h"

#include <functional>

namespace callrec::auth {

// The last 32 characters and the length. A token ends with its zlib stream's Adler-32 of the claims (in base64),
// so two tokens differ there; equal tails only share a bucket, where the whole token is compared. Hashing all
// of a ~200-byte token cost more than the rest of the lookup.
std::size_t usersig_verifier::token_hash::operator()(std::string_view s) const noexcept {
  const std::string_view tail = s.size() > 32 ? s.substr(s.size() - 32) : s;
  return std::hash<std::string_view>{}(tail) ^ (s.size() * 0x9e3779b97f4a7c15ULL);
}

usersig_verifier::usersig_verifier(std::size_t capacity)
    : per_shard_capacity_(capacity / shard_count > 0 ? capacity / shard_count : 1) {}

result<usersig_claims> usersig_verifier::verify(std::string_view token, std::string_view key, std::uint32_t sdkappid,
                                                std::string_view identifier, std::int64_t now_s) {
  const bool cacheable = token.size() <= max_cached_token_size;
  shard& s = shard_for(cacheable ? token_hash{}(token) : 0);
  if (cacheable) {
    std::unique_lock lock(s.mutex);
    if (auto it = s.entries.find(token); it != s.entries.end()) {
      const entry& e = it->second;
      // A token carries one (sdkappid, identifier): other values, or another key, mean a full verification,
      // which answers exactly as the uncached path does. Both keys come from the configuration, neither from
      // the client, so a plain comparison leaks nothing.
      if (e.claims.sdkappid == sdkappid && e.claims.identifier == identifier && e.key == key) {
        ++s.hits;
        const std::int64_t expires_at = usersig_expires_at(e.claims);
        if (now_s > expires_at) {
          s.entries.erase(it);  // it will not become valid again
          lock.unlock();
          return make_error(errc::usersig_expired, "usersig: expired at " + std::to_string(expires_at) + " (now " +
                                                       std::to_string(now_s) + ")");
        }
        return e.claims;
      }
    }
    ++s.misses;
  }

  result<usersig_claims> verified = verify_usersig(token, key, sdkappid, identifier, now_s);
  if (verified && cacheable) {
    const std::lock_guard lock(s.mutex);
    if (s.entries.size() >= per_shard_capacity_ && s.entries.find(token) == s.entries.end()) {
      s.entries.erase(s.entries.begin());  // arbitrary victim: the map keeps no recency
    }
    s.entries.insert_or_assign(std::string(token), entry{*verified, std::string(key)});
  }
  return verified;
}

std::size_t usersig_verifier::size() const {
  std::size_t n = 0;
  for (const shard& s : shards_) {
    const std::lock_guard lock(s.mutex);
    n += s.entries.size();
  }
  return n;
}

std::uint64_t usersig_verifier::hits() const {
  std::uint64_t n = 0;
  for (const shard& s : shards_) {
    const std::lock_guard lock(s.mutex);
    n += s.hits;
  }
  return n;
}

std::uint64_t usersig_verifier::misses() const {
  std::uint64_t n = 0;
  for (const shard& s : shards_) {
    const std::lock_guard lock(s.mutex);
    n += s.misses;
  }
  return n;
}

void usersig_verifier::clear() {
  for (shard& s : shards_) {
    const std::lock_guard lock(s.mutex);
    s.entries.clear();
  }
}

}  // namespace callrec::auth
