// The call id lookup (store/sqlite/record_docs.h) over a real SQLite file with the store's schema, and its
// in-memory index. Hash collisions cannot be produced with real call ids, so the tests put other calls'
// entries under a call's hash by hand. Lookups answer the record's JSON.
#include "store/sqlite/record_docs.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <algorithm>
#include <atomic>
#include <thread>
#include <map>
#include <random>
#include <set>
#include <string>

#include "records/wire.h"
#include "store/sqlite/schema.h"

namespace callrec::sqlite {
namespace {

constexpr std::uint32_t app = 1400000001;

record_fields fields_of(std::string_view call_id, std::uint32_t sdkappid = app) {
  return record_fields{call_id, sdkappid, media_type::video, "room-1", 1700000000, 1700000005, 1700000060,
                       "alice", "bob carol", call_type::group, call_result::normal_end};
}
std::string doc_of(std::string_view call_id, std::uint32_t sdkappid = app) {
  std::string out;
  encode_doc(out, fields_of(call_id, sdkappid));
  return out;
}
std::string json_of(std::string_view call_id) {
  std::string out;
  append_record_json(out, fields_of(call_id));
  return out;
}

class record_docs_test : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("callrec-docs-" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    auto c = connection::open((dir_ / "d.db").string(), SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
    ASSERT_TRUE(c) << c.error().message;
    db_ = std::move(*c);
    ASSERT_TRUE(ensure_schema(*db_));
  }
  void TearDown() override {
    db_.reset();
    std::filesystem::remove_all(dir_);
  }
  // Stores another call's document and indexes it under `call_id`'s hash, as a colliding call would be.
  std::int64_t collide(std::string_view call_id, std::string_view other_call) {
    auto put = put_doc(*db_, index_, app, other_call, 0, doc_of(other_call));
    EXPECT_TRUE(put && *put);
    const std::int64_t key = (*put)->key;
    index_.erase(call_hash(app, other_call), key);
    index_.insert(call_hash(app, call_id), key);
    return key;
  }
  std::optional<std::string> read(std::string_view call_id) {
    auto r = read_doc(*db_, index_, app, call_id, 0);
    EXPECT_TRUE(r) << r.error().message;
    if (!r || !*r) return std::nullopt;
    std::string out;
    append_record_json(out, (*r)->fields());
    return out;
  }

  std::filesystem::path dir_;
  std::unique_ptr<connection> db_;
  doc_index index_;
};

TEST(doc_bucket, is_stable_aligned_and_spreads) {
  std::set<std::int64_t> seen;
  for (int i = 0; i < 1000; ++i) {
    const auto b = doc_bucket(app, "call-" + std::to_string(i));
    EXPECT_EQ(b % doc_bucket_size, 0);
    seen.insert(b);
  }
  EXPECT_EQ(seen.size(), 1000u);
  EXPECT_NE(doc_bucket(1, "same"), doc_bucket(2, "same"));  // the app is part of the key
  EXPECT_NE(doc_bucket(app, std::string(200, 'x')), doc_bucket(app, std::string(201, 'x')));  // long ids too
}

TEST(doc_bucket, known_values) {
  // SipHash-1-3 with the fixed key, top 60 bits: pinned, because the keys are stored.
  EXPECT_EQ(doc_bucket(1400000001, "sim-fcd8c05e3a24a245-499999"), -478190104433426352);
  EXPECT_EQ(doc_bucket(88888888, "2ae7d549"), -2422434526419826080);
}

TEST(record_doc, round_trips_and_refuses_what_is_not_whole) {
  record_fields f = fields_of("call-1");
  f.accept_ts = 0;
  f.start_ts = -5;  // zigzag: negative values survive
  std::string doc;
  encode_doc(doc, f);
  record_fields back;
  ASSERT_TRUE(decode_doc(doc, back));
  std::string a, b;
  append_record_json(a, f);
  append_record_json(b, back);
  EXPECT_EQ(a, b);
  EXPECT_TRUE(doc_names(doc, app, "call-1"));
  EXPECT_FALSE(doc_names(doc, app, "call-2"));
  EXPECT_FALSE(doc_names(doc, app + 1, "call-1"));
  for (std::size_t n = 0; n < doc.size(); ++n) {
    EXPECT_FALSE(decode_doc(doc.substr(0, n), back)) << "prefix of " << n << " bytes";
  }
  EXPECT_FALSE(decode_doc(doc + "x", back));  // trailing bytes
  std::string bad = doc;
  bad[5 + 1 + 6 + 2] = 7;  // the result (after the app's 5-byte varint, the id's length and 6 bytes, media, type)
  EXPECT_FALSE(decode_doc(bad, back));
  EXPECT_FALSE(doc_names("", app, "call-1"));
  EXPECT_FALSE(doc_names(std::string(20, '\xff'), app, "call-1"));  // a varint that never ends
}

TEST_F(record_docs_test, a_record_goes_in_and_comes_out) {
  auto put = put_doc(*db_, index_, app, "c1", 1700000000, doc_of("c1"));
  ASSERT_TRUE(put) << put.error().message;
  ASSERT_TRUE(*put);
  EXPECT_EQ(read("c1"), json_of("c1"));
  EXPECT_EQ(read("c2"), std::nullopt);
  auto again = put_doc(*db_, index_, app, "c1", 1700000001, doc_of("c1"));  // the first record of a call stays
  ASSERT_TRUE(again);
  EXPECT_FALSE(*again);
  auto found = find_doc(*db_, index_, app, "c1");
  ASSERT_TRUE(found && *found);
  EXPECT_EQ((*found)->key, (*put)->key);
  EXPECT_EQ((*found)->start_ts, 1700000000);
  auto removed = delete_doc(*db_, index_, app, "c1");
  ASSERT_TRUE(removed && *removed);
  EXPECT_EQ(read("c1"), std::nullopt);
  EXPECT_EQ(index_.size(), 0u);
}

TEST_F(record_docs_test, keys_follow_the_order_of_arrival_and_the_index_comes_back_from_the_table) {
  std::vector<std::int64_t> keys;
  for (int i = 0; i < 50; ++i) {
    const std::string id = "k" + std::to_string(i);
    auto put = put_doc(*db_, index_, app, id, i, doc_of(id));
    ASSERT_TRUE(put && *put);
    keys.push_back((*put)->key);
  }
  for (std::size_t i = 1; i < keys.size(); ++i) EXPECT_EQ(keys[i], keys[i - 1] + 1);
  doc_index fresh;
  ASSERT_TRUE(load_doc_index(*db_, fresh));
  EXPECT_EQ(fresh.size(), 50u);
  auto found = find_doc(*db_, fresh, app, "k17");
  ASSERT_TRUE(found && *found);
  EXPECT_EQ((*found)->key, keys[17]);
}

TEST_F(record_docs_test, colliding_entries_are_told_apart_by_the_document) {
  const std::int64_t other = collide("mine", "other-0");
  collide("mine", "other-1");
  auto put = put_doc(*db_, index_, app, "mine", 5, doc_of("mine"));
  ASSERT_TRUE(put && *put) << "the colliding documents name other calls";
  EXPECT_EQ(read("mine"), json_of("mine"));
  // A document of the same call id in another app is another call.
  EXPECT_FALSE(doc_names(doc_of("mine", 7), app, "mine"));
  // An entry whose row is gone (a key this snapshot does not see) is passed over.
  sqlite3_stmt* del = db_->cached("DELETE FROM record_docs WHERE key = ?");
  {
    stmt_use q(del);
    q.bind(1, other);
    ASSERT_EQ(q.step(), SQLITE_DONE);
  }
  EXPECT_EQ(read("mine"), json_of("mine"));
}

// The open-addressing table against a plain multimap, through inserts, erases (which shift entries back) and
// growth, with hashes chosen to collide in their fingerprint and their home slot.
TEST(doc_index, agrees_with_a_multimap_through_erases_and_growth) {
  doc_index index;
  std::multimap<std::uint64_t, std::int64_t> model;
  std::mt19937_64 rng(7);
  std::vector<std::uint64_t> hashes;
  for (int i = 0; i < 300; ++i) hashes.push_back(rng());
  for (int i = 0; i < 60; ++i) hashes.push_back(hashes[static_cast<std::size_t>(i)]);  // the same call again
  for (int i = 0; i < 60; ++i) hashes.push_back(hashes[static_cast<std::size_t>(i)] ^ 1);  // same fingerprint, another call
  std::int64_t key = 0;
  for (int round = 0; round < 20000; ++round) {
    const std::uint64_t h = hashes[rng() % hashes.size()];
    if (rng() % 3 != 0 || model.empty()) {
      index.insert(h, ++key);
      model.emplace(h, key);
    } else {
      auto it = model.begin();
      std::advance(it, static_cast<long>(rng() % model.size()));
      index.erase(it->first, it->second);
      model.erase(it);
    }
    if (round % 97 == 0) {
      for (const std::uint64_t probe : {h, hashes[rng() % hashes.size()]}) {
        std::vector<std::int64_t> got, want;
        index.candidates(probe, got);
        // Exactly the entries whose fingerprint (the hash's top 28 bits) matches: the call's own among them.
        for (const auto& [hash, k] : model) {
          if (hash >> 36 == probe >> 36) want.push_back(k);
        }
        std::sort(got.begin(), got.end());
        std::sort(want.begin(), want.end());
        EXPECT_EQ(got, want) << "round " << round;
      }
    }
  }
  EXPECT_EQ(index.size(), model.size());
}

// Lookups on other threads while the writer inserts (growing the table several times) and erases: every key
// present before they started is found every time.
TEST(doc_index, readers_find_what_is_there_while_the_table_grows_and_shrinks) {
  doc_index index;
  std::mt19937_64 rng(11);
  std::vector<std::pair<std::uint64_t, std::int64_t>> fixed;
  std::int64_t key = 0;
  for (int i = 0; i < 2000; ++i) {
    fixed.emplace_back(rng(), ++key);
    index.insert(fixed.back().first, fixed.back().second);
  }
  const std::size_t first_bytes = index.bytes();
  std::atomic<bool> stop{false};
  std::atomic<int> missed{0};
  std::atomic<long> lookups{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 3; ++t) {
    readers.emplace_back([&, t] {
      std::vector<std::int64_t> got;
      for (std::size_t i = static_cast<std::size_t>(t); !stop.load(std::memory_order_relaxed); i += 7) {
        const auto& [hash, k] = fixed[i % fixed.size()];
        got.clear();
        index.candidates(hash, got);
        if (std::find(got.begin(), got.end(), k) == got.end()) ++missed;
        ++lookups;
      }
    });
  }
  std::vector<std::pair<std::uint64_t, std::int64_t>> churn;
  for (int i = 0; i < 200000; ++i) {
    churn.emplace_back(rng(), ++key);
    index.insert(churn.back().first, churn.back().second);
    if (i % 3 == 2) {  // erase an earlier one: entries of the fixed set get shifted back
      const auto victim = churn[rng() % churn.size()];
      index.erase(victim.first, victim.second);
    }
  }
  stop = true;
  for (auto& r : readers) r.join();
  EXPECT_EQ(missed.load(), 0);
  EXPECT_GT(lookups.load(), 0);
  EXPECT_GT(index.bytes(), 10 * first_bytes) << "the table grew, several times";
}

}  // namespace
}  // namespace callrec::sqlite
