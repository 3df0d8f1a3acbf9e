// The call id lookup's buckets (store/sqlite/record_docs.h), over a real SQLite file with the store's schema.
// Bucket collisions cannot be produced with real call ids, so the tests fill a bucket with other calls'
// documents by hand. Lookups answer the record's JSON.
#include "store/sqlite/record_docs.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
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
  // Puts another call's document at `key` directly, as a colliding call would have.
  void occupy(std::int64_t key, std::string_view other_call) {
    sqlite3_stmt* s = db_->cached("INSERT INTO record_docs (key, start_ts, doc) VALUES (?, 0, ?)");
    ASSERT_NE(s, nullptr);
    const std::string doc = doc_of(other_call);
    stmt_use q(s);
    q.bind(1, key);
    q.bind_blob(2, doc);
    ASSERT_EQ(q.step(), SQLITE_DONE);
  }
  std::optional<std::string> read(std::string_view call_id) {
    auto r = read_doc(*db_, app, call_id, 0);
    EXPECT_TRUE(r) << r.error().message;
    if (!r || !*r) return std::nullopt;
    std::string out;
    append_record_json(out, (*r)->fields());
    return out;
  }

  std::filesystem::path dir_;
  std::unique_ptr<connection> db_;
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
  auto put = put_doc(*db_, app, "c1", 1700000000, doc_of("c1"));
  ASSERT_TRUE(put) << put.error().message;
  EXPECT_TRUE(*put);
  EXPECT_EQ(read("c1"), json_of("c1"));
  EXPECT_EQ(read("c2"), std::nullopt);
  auto again = put_doc(*db_, app, "c1", 1700000001, doc_of("c1"));  // the first record of a call stays
  ASSERT_TRUE(again);
  EXPECT_FALSE(*again);
  auto slot = find_doc(*db_, app, "c1");
  ASSERT_TRUE(slot);
  EXPECT_EQ(slot->key, doc_bucket(app, "c1"));
  EXPECT_EQ(slot->start_ts, 1700000000);
  ASSERT_TRUE(delete_doc(*db_, app, "c1"));
  EXPECT_EQ(read("c1"), std::nullopt);
}

TEST_F(record_docs_test, a_shared_bucket_is_searched_and_its_gaps_reused) {
  const std::int64_t bucket = doc_bucket(app, "mine");
  occupy(bucket, "other-0");
  occupy(bucket + 1, "other-1");
  occupy(bucket + 3, "other-3");
  auto put = put_doc(*db_, app, "mine", 5, doc_of("mine"));
  ASSERT_TRUE(put) << put.error().message;
  EXPECT_EQ(find_doc(*db_, app, "mine")->key, bucket + 2);  // the first gap
  EXPECT_EQ(read("mine"), json_of("mine"));
  // A document of the same call id in another app is another call.
  EXPECT_FALSE(doc_names(doc_of("mine", 7), app, "mine"));
  // Removing a row before it does not hide it (no probe chain to break).
  sqlite3_stmt* del = db_->cached("DELETE FROM record_docs WHERE key = ?");
  {
    stmt_use q(del);
    q.bind(1, bucket + 1);
    ASSERT_EQ(q.step(), SQLITE_DONE);
  }
  EXPECT_EQ(read("mine"), json_of("mine"));
}

TEST_F(record_docs_test, a_full_bucket_refuses_the_record) {
  const std::int64_t bucket = doc_bucket(app, "late");
  for (int i = 0; i < doc_bucket_size; ++i) occupy(bucket + i, "other-" + std::to_string(i));
  auto put = put_doc(*db_, app, "late", 5, doc_of("late"));
  ASSERT_FALSE(put);
  EXPECT_NE(put.error().message.find("bucket"), std::string::npos) << put.error().message;
  EXPECT_EQ(read("late"), std::nullopt);
  // The neighbouring bucket is not touched.
  EXPECT_EQ(find_doc(*db_, app, "late")->free_key, std::nullopt);
}

}  // namespace
}  // namespace callrec::sqlite
