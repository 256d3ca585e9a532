#include "worker/blob_cache.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/fakes/fake_content_store.h"
#include "tests/fakes/poll_until.h"
#include "tests/worker/test_util.h"
#include "worker/paths.h"

namespace deja::worker {
namespace {

using ::deja::testing::FakeStoreServer;
using ::deja::testing::PollUntil;
using ::deja::worker::testing::MakeTempDir;
using ::deja::worker::testing::ReadFile;
using ::deja::worker::testing::RemoveTempDir;
using ::testing::HasSubstr;

class BlobCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir("blob_cache_test");
    blobs_dir_ = paths::CacheBlobsDir(dir_);
  }
  void TearDown() override { RemoveTempDir(dir_); }

  std::unique_ptr<BlobCache> Open(uint64_t max_bytes) {
    auto cache = BlobCache::Open(blobs_dir_, max_bytes, &server_.client());
    EXPECT_TRUE(cache.ok()) << cache.status();
    return cache.ok() ? *std::move(cache) : nullptr;
  }

  // Fetches and releases at once.
  void Use(BlobCache& cache, const deja::v1::BlobRef& ref) {
    auto pin = cache.Fetch(ref);
    ASSERT_TRUE(pin.ok()) << pin.status();
  }

  std::string PathOf(const deja::v1::BlobRef& ref) {
    return paths::CachedBlobPath(blobs_dir_, ref.digest());
  }

  FakeStoreServer server_;
  std::string dir_, blobs_dir_;
};

TEST_F(BlobCacheTest, FetchDownloadsOnceIntoAReadOnlyFile) {
  const std::string data = "the input bytes\n";
  const deja::v1::BlobRef ref = server_.store().Put(data);
  auto cache = Open(1 << 20);
  {
    auto pin = cache->Fetch(ref);
    ASSERT_TRUE(pin.ok()) << pin.status();
    EXPECT_EQ(pin->path(), PathOf(ref));
    EXPECT_EQ(pin->path(),
              absl::StrCat(blobs_dir_, "/", ref.digest().substr(0, 2), "/", ref.digest()));
    EXPECT_EQ(ReadFile(pin->path()), data);
    struct stat st;
    ASSERT_EQ(stat(pin->path().c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0444u);
  }
  Use(*cache, ref);
  EXPECT_EQ(server_.store().downloads(ref.digest()), 1);
  const BlobCache::Stats stats = cache->GetStats();
  EXPECT_EQ(stats.hits, 1u);
  EXPECT_EQ(stats.downloads, 1u);
  EXPECT_EQ(stats.blobs, 1u);
  EXPECT_EQ(stats.bytes, data.size());
}

TEST_F(BlobCacheTest, EvictsTheLeastRecentlyUsedBlobUnderTheByteBound) {
  const auto a = server_.store().Put(std::string(40, 'a'));
  const auto b = server_.store().Put(std::string(40, 'b'));
  const auto c = server_.store().Put(std::string(40, 'c'));
  auto cache = Open(100);
  Use(*cache, a);
  Use(*cache, b);
  Use(*cache, a);  // a is now more recent than b
  Use(*cache, c);  // 120 bytes > 100: b goes
  EXPECT_TRUE(cache->Contains(a.digest()));
  EXPECT_FALSE(cache->Contains(b.digest()));
  EXPECT_TRUE(cache->Contains(c.digest()));
  EXPECT_FALSE(std::filesystem::exists(PathOf(b)));
  EXPECT_EQ(cache->GetStats().bytes, 80u);
  EXPECT_EQ(cache->GetStats().evictions, 1u);
  Use(*cache, b);  // back again: downloaded a second time, a goes now
  EXPECT_EQ(server_.store().downloads(b.digest()), 2);
  EXPECT_FALSE(cache->Contains(a.digest()));
}

TEST_F(BlobCacheTest, PinnedBlobsAreNotEvicted) {
  const auto a = server_.store().Put(std::string(40, 'a'));
  const auto b = server_.store().Put(std::string(40, 'b'));
  const auto c = server_.store().Put(std::string(40, 'c'));
  auto cache = Open(50);
  auto pin_a = cache->Fetch(a);
  ASSERT_TRUE(pin_a.ok()) << pin_a.status();
  Use(*cache, b);  // over the bound: a is the oldest but pinned, so b goes
  Use(*cache, c);
  EXPECT_TRUE(cache->Contains(a.digest()));
  EXPECT_EQ(ReadFile(pin_a->path()), std::string(40, 'a'));
  EXPECT_FALSE(cache->Contains(b.digest()));
  EXPECT_FALSE(cache->Contains(c.digest()));

  auto pin_b = cache->Fetch(b);
  ASSERT_TRUE(pin_b.ok());
  EXPECT_EQ(cache->GetStats().bytes, 80u);  // over the bound while both are pinned
  pin_a->Release();                         // a is the least recently used unpinned blob now
  EXPECT_FALSE(cache->Contains(a.digest()));
  EXPECT_TRUE(cache->Contains(b.digest()));
  EXPECT_EQ(cache->GetStats().bytes, 40u);
}

TEST_F(BlobCacheTest, ABlobLargerThanTheCacheIsFetchedAndEvictedFirst) {
  const auto small = server_.store().Put("small");
  const auto big = server_.store().Put(std::string(1000, 'B'));
  auto cache = Open(100);
  Use(*cache, small);
  {
    auto pin = cache->Fetch(big);
    ASSERT_TRUE(pin.ok()) << pin.status();
    EXPECT_EQ(ReadFile(pin->path()), std::string(1000, 'B'));
    EXPECT_TRUE(cache->Contains(small.digest()));  // not evicted to make useless room
  }
  EXPECT_FALSE(cache->Contains(big.digest()));
  EXPECT_FALSE(std::filesystem::exists(PathOf(big)));
  EXPECT_TRUE(cache->Contains(small.digest()));
  EXPECT_EQ(cache->GetStats().bytes, 5u);
}

TEST_F(BlobCacheTest, ConcurrentFetchesOfOneBlobDownloadOnce) {
  const std::string data(300 * 1024, 'x');
  const auto ref = server_.store().Put(data);
  auto cache = Open(1 << 20);
  server_.store().HoldDownloads(true);
  constexpr int kThreads = 8;
  std::vector<std::thread> threads;
  std::vector<std::string> seen(kThreads);
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      auto pin = cache->Fetch(ref);
      seen[i] = pin.ok() ? ReadFile(pin->path()) : pin.status().ToString();
    });
  }
  // One download is held at the store; every other fetch waits for it.
  EXPECT_TRUE(PollUntil([&] {
    return server_.store().downloads(ref.digest()) == 1 &&
           cache->GetStats().waiting == kThreads - 1;
  }));
  server_.store().HoldDownloads(false);
  for (auto& t : threads) t.join();
  for (const std::string& s : seen) EXPECT_EQ(s, data);
  EXPECT_EQ(server_.store().downloads(ref.digest()), 1);
  EXPECT_EQ(cache->GetStats().downloads, 1u);
  EXPECT_EQ(cache->GetStats().waiting, 0u);
}

TEST_F(BlobCacheTest, MissingAndCorruptBlobsAreErrorsNamingTheDigest) {
  auto cache = Open(1 << 20);
  const auto absent = ::deja::testing::RefOf("never stored");
  auto pin = cache->Fetch(absent);
  ASSERT_EQ(pin.status().code(), absl::StatusCode::kNotFound) << pin.status();
  EXPECT_THAT(std::string(pin.status().message()), HasSubstr(absent.digest()));

  const auto corrupt = ::deja::testing::RefOf("the real bytes");
  server_.store().PutCorrupt(corrupt.digest(), "other bytes!!!");  // same size
  pin = cache->Fetch(corrupt);
  ASSERT_EQ(pin.status().code(), absl::StatusCode::kDataLoss) << pin.status();
  EXPECT_THAT(std::string(pin.status().message()), HasSubstr(corrupt.digest()));
  EXPECT_FALSE(cache->Contains(corrupt.digest()));
  EXPECT_FALSE(std::filesystem::exists(PathOf(corrupt)));
  EXPECT_EQ(cache->GetStats().bytes, 0u);

  deja::v1::BlobRef bad;
  bad.set_digest("../../etc/passwd");
  EXPECT_EQ(cache->Fetch(bad).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(BlobCacheTest, AModifiedCachedFileIsFetchedAgain) {
  const auto ref = server_.store().Put("pristine");
  auto cache = Open(1 << 20);
  Use(*cache, ref);
  const std::string path = PathOf(ref);
  ASSERT_EQ(chmod(path.c_str(), 0644), 0);
  testing::WriteFile(path, "tainted!", 0444);  // same size
  // A write moves mtime; pin it far from the download's, whatever the
  // clock granularity.
  struct timespec times[2] = {{12345, 0}, {12345, 0}};
  ASSERT_EQ(utimensat(AT_FDCWD, path.c_str(), times, 0), 0);
  auto pin = cache->Fetch(ref);
  ASSERT_TRUE(pin.ok()) << pin.status();
  EXPECT_EQ(ReadFile(pin->path()), "pristine");
  EXPECT_EQ(server_.store().downloads(ref.digest()), 2);
}

TEST_F(BlobCacheTest, ReopeningRebuildsTheIndexInLastUseOrder) {
  const auto a = server_.store().Put(std::string(40, 'a'));
  const auto b = server_.store().Put(std::string(40, 'b'));
  const auto c = server_.store().Put(std::string(40, 'c'));
  {
    auto cache = Open(1 << 20);
    Use(*cache, a);
    Use(*cache, b);
    Use(*cache, c);
  }
  // Last uses as the files say: b is the oldest.
  auto set_time = [&](const deja::v1::BlobRef& ref, time_t t) {
    struct timespec times[2] = {{t, 0}, {t, 0}};
    ASSERT_EQ(utimensat(AT_FDCWD, PathOf(ref).c_str(), times, 0), 0);
  };
  set_time(a, 1000000);
  set_time(b, 500000);
  set_time(c, 2000000);
  const std::string leftover = PathOf(a) + ".part-abcdef";
  testing::WriteFile(leftover, "half a download");

  auto cache = Open(100);
  EXPECT_TRUE(cache->Contains(a.digest()));
  EXPECT_FALSE(cache->Contains(b.digest()));
  EXPECT_TRUE(cache->Contains(c.digest()));
  EXPECT_FALSE(std::filesystem::exists(leftover));
  EXPECT_EQ(cache->GetStats().bytes, 80u);
  Use(*cache, a);
  EXPECT_EQ(server_.store().downloads(a.digest()), 1);  // served from disk
}

}  // namespace
}  // namespace deja::worker
