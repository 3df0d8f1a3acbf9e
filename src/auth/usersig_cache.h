// A verifier that remembers successful UserSig verifications, so a token presented again (an admin backend sends
// the same one with every request) costs a hash lookup instead of base64 + inflate + JSON + HMAC.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "auth/usersig.h"
#include "core/error.h"

namespace callrec::auth {

// Thread-safe: any number of threads may call verify concurrently (sharded locks, short critical sections).
class usersig_verifier {
 public:
  // `capacity` bounds the number of remembered tokens (memory: roughly capacity x (token + key + 150) bytes).
  explicit usersig_verifier(std::size_t capacity = 65536);

  // Same answers as verify_usersig(token, key, sdkappid, identifier, now_s), including the expiry check against
  // `now_s` (unix seconds) on every call. Only successes are remembered, keyed by the token; a hit also requires
  // the same key, sdkappid and identifier, else the token is verified in full.
  result<usersig_claims> verify(std::string_view token, std::string_view key, std::uint32_t sdkappid,
                                std::string_view identifier, std::int64_t now_s);

  // Remembered tokens, and lookups that were answered from them or not (tokens too long to keep are not counted).
  std::size_t size() const;
  std::uint64_t hits() const;
  std::uint64_t misses() const;
  void clear();

  // Tokens longer than this are verified every time: they are not what clients send, and bound the memory.
  static constexpr std::size_t max_cached_token_size = 1024;

 private:
  struct entry {
    usersig_claims claims;
    std::string key;  // the secret the token was verified with: a rotated key must not hit
  };
  struct token_hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept;
  };
  struct shard {
    mutable std::mutex mutex;
    std::unordered_map<std::string, entry, token_hash, std::equal_to<>> entries;
    std::uint64_t hits = 0;  // counted under the shard's lock: no shared counter for threads to fight over
    std::uint64_t misses = 0;
  };
  static constexpr std::size_t shard_count = 16;

  shard& shard_for(std::size_t hash) { return shards_[(hash >> 7) % shard_count]; }

  std::size_t per_shard_capacity_;
  std::array<shard, shard_count> shards_;
};

}  // namespace callrec::auth
