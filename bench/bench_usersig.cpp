// UserSig codec figures: decode only, full verification (uncached), and the caching verifier's hit path.
// Typical token: an administrator UserSig as the npm generator makes it (~190 characters).
#include <benchmark/benchmark.h>

#include <string>

#include "auth/usersig.h"
#include "auth/usersig_cache.h"

namespace {

constexpr std::string_view key = "5bd2850fff3ecb11d7c805251c51ee463a25727bddc2385f3fa8bfee1bb93b5e";
constexpr std::uint32_t sdkappid = 1400000001;
constexpr std::int64_t issued = 1700000000;

const std::string& admin_token() {
  static const std::string token = callrec::auth::make_usersig(key, sdkappid, "administrator", issued, 86400 * 180);
  return token;
}

void bm_decode_usersig(benchmark::State& state) {
  const std::string& token = admin_token();
  for (auto _ : state) {
    auto r = callrec::auth::decode_usersig(token);
    benchmark::DoNotOptimize(r);
  }
}
BENCHMARK(bm_decode_usersig);

void bm_verify_usersig(benchmark::State& state) {
  const std::string& token = admin_token();
  for (auto _ : state) {
    auto r = callrec::auth::verify_usersig(token, key, sdkappid, "administrator", issued + 60);
    if (!r) state.SkipWithError("verification failed");
    benchmark::DoNotOptimize(r);
  }
}
BENCHMARK(bm_verify_usersig);
BENCHMARK(bm_verify_usersig)->Threads(2);

// Tokens from the npm package (tests/data/usersig/npm_tokens.json): node's zlib chose a dynamic Huffman block for the
// first and a fixed one for the second; inflating a dynamic block costs building its decoding tables.
constexpr std::string_view npm_dynamic_block =
    "eJw9ytEKgjAYBeB3*W8L2bRRDLrToMibZlLdWZvyJ7OxjVFE7x456dyd75w3VHuRBGWBQ5oQmI8dpRo8tjhyIzUO6Lxt-"
    "MNOByf7xhiUwOmCxNC4eNQKOF1OSqKqp0H7c8ZY*leHHXB4*dP5kJuu3yldrW7XEOqtFrOsyNJcXFq2Ke91USpi5XENny9IVTSv";
constexpr std::string_view npm_fixed_block =
    "eJyrVgrxCdYrSy1SslIy0jNQ0gHzM1NS80oy0zLBwhWZiflZpXlQqeKU7MSCgswUJStDEwMIMITIlGTmpipZGZpDRQ0goqkVBZlFqUpWFmYmMKHizH"
    "QlKyXLSvMss0iT0uBQF5NsbX1n8yrP8iT9TAMv98xcv*DiZKfcyMTg4Ar-SO1yW6VaAAvaMTI_";

void bm_verify_npm_token(benchmark::State& state, std::string_view token, const char* identifier) {
  for (auto _ : state) {
    auto r = callrec::auth::verify_usersig(token, key, sdkappid, identifier, issued + 60);
    if (!r) state.SkipWithError("verification failed");
    benchmark::DoNotOptimize(r);
  }
}
BENCHMARK_CAPTURE(bm_verify_npm_token, dynamic_huffman, npm_dynamic_block, "administrator");
BENCHMARK_CAPTURE(bm_verify_npm_token, fixed_huffman, npm_fixed_block, "xiaojun");

void bm_verify_usersig_with_userbuf(benchmark::State& state) {
  const std::string token = callrec::auth::make_usersig(key, sdkappid, "xiaojun", issued, 300,
                                                        std::string("\x00\x00\x07xiaojun\x53\x72\x4a\x01", 14));
  for (auto _ : state) {
    auto r = callrec::auth::verify_usersig(token, key, sdkappid, "xiaojun", issued + 60);
    benchmark::DoNotOptimize(r);
  }
}
BENCHMARK(bm_verify_usersig_with_userbuf);

void bm_cached_verify(benchmark::State& state) {
  static callrec::auth::usersig_verifier verifier;
  const std::string& token = admin_token();
  for (auto _ : state) {
    auto r = verifier.verify(token, key, sdkappid, "administrator", issued + 60);
    if (!r) state.SkipWithError("verification failed");
    benchmark::DoNotOptimize(r);
  }
}
BENCHMARK(bm_cached_verify);
BENCHMARK(bm_cached_verify)->Threads(2);

void bm_make_usersig(benchmark::State& state) {
  for (auto _ : state) {
    auto t = callrec::auth::make_usersig(key, sdkappid, "administrator", issued, 86400);
    benchmark::DoNotOptimize(t);
  }
}
BENCHMARK(bm_make_usersig);

}  // namespace
