#include "ops/records.h"

#include "core/json_text.h"

namespace callrec::ops {

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// The answer of a lookup, built outside the coroutine: its temporaries stay out of the frame, which then fits
// Asio's recycled frames (ARCHITECTURE.md).
result<stored_record> found_or_not(result<std::optional<stored_record>>& found, std::string_view call_id) {
  if (!found) return std::move(found).error();
  if (!*found) {
    return make_error(errc::not_found, "no record of call " + clip(call_id) + " (or older than the retention window)");
  }
  return std::move(**found);
}

}  // namespace

awaitable<result<stored_record>> get_record(const core& c, const caller& who, std::string_view call_id) {
  const auto t0 = std::chrono::steady_clock::now();
  auto found = co_await c.storage.get_record(who.app->id(), call_id, who.app->oldest_kept(who.now_ms / 1000), who.due);
  c.metrics.store_read_seconds.observe(seconds_since(t0));
  co_return found_or_not(found, call_id);
}

awaitable<result<record_page>> find_records(const core& c, const caller& who, const record_filter& filter) {
  const auto t0 = std::chrono::steady_clock::now();
  auto page = co_await c.storage.find_records(filter, who.due);
  c.metrics.store_read_seconds.observe(seconds_since(t0));
  co_return page;
}

}  // namespace callrec::ops
