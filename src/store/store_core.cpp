#include "store/store_core.h"

#include <algorithm>
#include <unordered_set>

namespace callrec::store_core {

std::string join_callees(const std::vector<std::string>& callees) {
  std::string out;
  for (const auto& c : callees) {
    if (!out.empty()) out += ' ';
    out += c;
  }
  return out;
}


void unique_ids(std::vector<std::string>& ids) {
  if (ids.size() <= 32) {  // the usual batch: a quadratic scan beats hashing
    std::size_t n = 0;
    for (std::size_t i = 0; i < ids.size(); ++i) {
      const auto kept = ids.begin() + static_cast<std::ptrdiff_t>(n);
      if (std::find(ids.begin(), kept, ids[i]) == kept) {
        if (n != i) ids[n] = std::move(ids[i]);
        ++n;
      }
    }
    ids.resize(n);
    return;
  }
  std::unordered_set<std::string_view> seen;
  std::vector<std::string> unique;
  unique.reserve(ids.size());
  for (auto& id : ids) {
    if (seen.contains(id)) continue;
    unique.push_back(std::move(id));
    seen.insert(unique.back());  // `unique` never reallocates (reserved): the view stays valid
  }
  ids = std::move(unique);
}

result<void> check_record(const call_record& r, std::uint32_t sdkappid, std::string_view call_id) {
  auto bad = [&](std::string what) {
    return make_error(errc::internal, "internal error: a finished record is invalid",
                      "record of call " + std::string(call_id) + ": " + what);
  };
  if (r.call_id != call_id || r.sdkappid != sdkappid) return bad("it names another call or app (" + r.call_id + ")");
  if (!valid_user_id(r.caller)) return bad("its caller is not a valid user id");
  for (const auto& c : r.callees) {
    if (!valid_user_id(c)) return bad("a callee is not a valid user id");
  }
  if (static_cast<int>(r.media) > 1 || static_cast<int>(r.type) > 1 ||
      static_cast<int>(r.result) >= call_result_count || r.start_ts < buckets::min_second ||
      r.start_ts > buckets::max_second) {
    return bad("a value is out of range");
  }
  return {};
}

void add_counts(count_deltas& d, std::uint32_t sdkappid, std::int64_t start_ts, call_result result, call_type type,
                media_type media, std::int64_t delta) {
  for (int level = 0; level < buckets::span_count; ++level) {
    d[count_key{sdkappid, level, buckets::bucket_of(start_ts, level), static_cast<int>(result),
                static_cast<int>(type), static_cast<int>(media)}] += delta;
  }
}

search_driver driver_of(const record_filter& f) {
  if (f.user_id) return search_driver::user;
  if (f.caller) return search_driver::caller;
  if (f.room_id) return search_driver::room;
  return search_driver::time;
}

std::string_view index_column(search_driver d) { return d == search_driver::room ? "room_id" : "user_id"; }

std::string_view index_key(const record_filter& f, search_driver d) {
  switch (d) {
    case search_driver::room:
      return *f.room_id;
    case search_driver::user:
      return *f.user_id;
    case search_driver::caller:
      return *f.caller;
    default:
      return {};
  }
}

bool needs_records(const record_filter& f, search_driver d) {
  return f.result || f.type || f.media || (f.room_id && d != search_driver::room) ||
         (f.caller && d != search_driver::caller);
}

std::pair<std::int64_t, std::int64_t> fetch_window(const record_filter& f, std::int64_t first, std::int64_t last) {
  if (f.after) {
    if (f.descending) {
      last = std::min(last, f.after->start_ts);
    } else {
      first = std::max(first, f.after->start_ts);
    }
  }
  return {first, last};
}

offset_seek::offset_seek(const std::vector<buckets::segment>& segments, const std::vector<std::uint64_t>& counts,
                         std::uint64_t offset, bool descending)
    : offset_(offset), descending_(descending) {
  for (std::size_t k = 0; k < segments.size() && k < counts.size(); ++k) {
    const std::size_t i = descending ? segments.size() - 1 - k : k;
    if (offset_ >= counts[i]) {
      offset_ -= counts[i];
      continue;
    }
    target_ = segments[i];
    break;
  }
  // Past the end (the caller knows from the total), or an edge counted exactly: nothing to read.
  done_ = !target_ || target_->level == buckets::segment::exact;
}

std::optional<buckets::segment> offset_seek::next() const {
  if (done_) return std::nullopt;
  return target_;
}

void offset_seek::feed(const std::vector<std::pair<std::int64_t, std::uint64_t>>& bucket_counts) {
  if (done_) return;
  for (const auto& [bucket, n] : bucket_counts) {
    if (offset_ >= n) {
      offset_ -= n;
      continue;
    }
    if (target_->level + 1 == buckets::span_count) {
      target_ = buckets::segment{target_->level, bucket, bucket};
      done_ = true;
    } else {
      target_ = buckets::children(target_->level, bucket);
    }
    return;
  }
  done_ = true;  // the counts disagree with the segment's total: read from the segment's start
}

void offset_seek::narrow(std::int64_t& lo, std::int64_t& hi) const {
  if (!target_) return;
  if (descending_) {
    hi = target_->last_second();
  } else {
    lo = target_->first_second();
  }
}

}  // namespace callrec::store_core
