// MemoIndex alone: the compact index, the full entries kept until
// committed, reads back from the store with the hot cache, expiry, and the
// operator's list and evict.
#include "scheduler/core/memo_index.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "scheduler/core/keys.h"
#include "tests/scheduler/mem_store.h"

namespace deja {
namespace {

using deja::v1::MemoEntry;

// MemStore counting its memo reads.
class CountingStore : public MemStore {
 public:
  absl::StatusOr<MemoEntry> ReadMemo(const std::string& memo_id) const override {
    ++reads;
    return MemStore::ReadMemo(memo_id);
  }
  mutable int reads = 0;
};

MemoEntry Entry(const std::string& hash, const std::string& source, int64_t created_ms = 1000,
                int64_t expires_ms = 0) {
  MemoEntry entry;
  entry.set_project("p");
  entry.set_job_hash(hash);
  entry.set_app_name("app-" + hash);
  entry.set_source_job_id(source);
  entry.set_worker_id("w1");
  entry.set_created_at_ms(created_ms);
  entry.set_expires_at_ms(expires_ms);
  return entry;
}

TEST(MemoIndexTest, PutIsFoundAndReadAndDropForgetsIt) {
  MemoIndex memo(nullptr);
  Effects fx;
  memo.Put(Entry("h1", "j7"), &fx);
  const std::string id = MemoId("p", "h1");
  ASSERT_NE(memo.Find(id), nullptr);
  EXPECT_EQ(memo.Find(id)->source_seq, 7u);
  EXPECT_TRUE(memo.HasSource(id, 7));
  EXPECT_FALSE(memo.HasSource(id, 8));
  EXPECT_EQ(memo.Read(id)->source_job_id(), "j7");
  EXPECT_TRUE(fx.memo_puts.contains(id));

  memo.Drop(id, &fx);
  EXPECT_EQ(memo.Find(id), nullptr);
  EXPECT_EQ(memo.Read(id).status().code(), absl::StatusCode::kNotFound);
  EXPECT_FALSE(fx.memo_puts.contains(id)) << "a drop cancels the put of the same round";
  EXPECT_TRUE(fx.memo_deletes.contains(id));
  EXPECT_EQ(memo.size(), 0u);
}

TEST(MemoIndexTest, ACommittedEntryIsReadBackOnceThenFromTheHotCache) {
  CountingStore store;
  MemoIndex memo(&store);
  Effects fx;
  memo.Put(Entry("h1", "j7"), &fx);
  const std::string id = MemoId("p", "h1");
  EXPECT_EQ(memo.Read(id)->source_job_id(), "j7");
  EXPECT_EQ(store.reads, 0) << "uncommitted: served from memory";
  ASSERT_TRUE(store.Commit(fx).ok());
  memo.Committed(fx);

  EXPECT_EQ(memo.Read(id)->source_job_id(), "j7");
  EXPECT_EQ(memo.Read(id)->source_job_id(), "j7");
  EXPECT_EQ(store.reads, 1) << "the second read hits the hot cache";

  Effects other;
  memo.Put(Entry("h2", "j8"), &other);  // any change clears the cache
  EXPECT_EQ(memo.Read(id)->source_job_id(), "j7");
  EXPECT_EQ(store.reads, 2);
}

TEST(MemoIndexTest, ExpiryIsRoundedUpToTheSecond) {
  MemoIndex memo(nullptr);
  Effects fx;
  memo.Put(Entry("h1", "j1", 1000, /*expires_ms=*/10'500), &fx);
  memo.Put(Entry("h2", "j2", 1000, /*expires_ms=*/0), &fx);  // never
  Effects tick;
  memo.DropExpired(absl::FromUnixMillis(10'999), &tick);
  EXPECT_NE(memo.Find(MemoId("p", "h1")), nullptr) << "expires at 11 s in the index";
  memo.DropExpired(absl::FromUnixSeconds(11), &tick);
  EXPECT_EQ(memo.Find(MemoId("p", "h1")), nullptr);
  EXPECT_TRUE(tick.memo_deletes.contains(MemoId("p", "h1")));
  EXPECT_NE(memo.Find(MemoId("p", "h2")), nullptr);
}

TEST(MemoIndexTest, ForEachSkipsStoredVersionsAnUncommittedChangeReplaced) {
  MemStore store;
  MemoIndex memo(&store);
  Effects first;
  memo.Put(Entry("h1", "j1"), &first);
  memo.Put(Entry("h2", "j2"), &first);
  ASSERT_TRUE(store.Commit(first).ok());
  memo.Committed(first);

  Effects second;  // not committed
  memo.Put(Entry("h1", "j5"), &second);
  memo.Drop(MemoId("p", "h2"), &second);
  std::vector<std::string> sources;
  ASSERT_TRUE(memo.ForEach([&](const MemoEntry& e) { sources.push_back(e.source_job_id()); }).ok());
  EXPECT_EQ(sources, std::vector<std::string>{"j5"});
}

TEST(MemoIndexTest, ListIsOldestFirstAndEvictNeedsExactlyOneSelector) {
  MemoIndex memo(nullptr);
  Effects fx;
  memo.Put(Entry("h1", "j1", 3000), &fx);
  memo.Put(Entry("h2", "j2", 1000), &fx);
  memo.Put(Entry("h3", "j3", 2000), &fx);
  deja::v1::ListMemoRequest list;
  list.set_limit(2);
  auto listed = memo.List(list);
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 2u);
  EXPECT_EQ((*listed)[0].job_hash(), "h3");
  EXPECT_EQ((*listed)[1].job_hash(), "h1");

  deja::v1::EvictMemoRequest none;
  EXPECT_EQ(memo.Evict(none, &fx).status().message(),
            "evict: give exactly one of job_hash, app_name or before_ms");
  deja::v1::EvictMemoRequest before;
  before.set_before_ms(2500);
  auto evicted = memo.Evict(before, &fx);
  ASSERT_TRUE(evicted.ok());
  EXPECT_EQ(evicted->evicted_size(), 2);
  EXPECT_EQ(memo.size(), 1u);
  EXPECT_NE(memo.Find(MemoId("p", "h1")), nullptr);
}

}  // namespace
}  // namespace deja
