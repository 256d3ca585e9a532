// Inputs on the client: flag parsing, hashing into InputRefs, and uploading
// only what the store lacks (to an in-process fake content store, which
// checks digests like the real one).
#include "client/inputs.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <set>
#include <string>

#include "absl/strings/match.h"
#include "client/cli_format.h"
#include "client/hash_cache.h"
#include "common/hash.h"
#include "tests/fakes/fake_content_store.h"
#include "tests/fakes/file_util.h"
#include "tests/fakes/temp_dir.h"

namespace deja {
namespace {

using testing::FakeStoreServer;
using testing::TempDir;
using testing::WriteFile;

TEST(ParseInputFlagTest, NamePathAndWorkspacePath) {
  auto plain = ParseInputFlag("data=./x");
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_EQ(plain->name, "data");
  EXPECT_EQ(plain->local_path, "./x");
  EXPECT_EQ(plain->workspace_path, "");
  auto placed = ParseInputFlag("data=/srv/set:in/data");
  ASSERT_TRUE(placed.ok()) << placed.status();
  EXPECT_EQ(placed->local_path, "/srv/set");
  EXPECT_EQ(placed->workspace_path, "in/data");
  auto colon = ParseInputFlag("d=/a:b:c/d");
  ASSERT_TRUE(colon.ok());
  EXPECT_EQ(colon->local_path, "/a:b");
  EXPECT_EQ(colon->workspace_path, "c/d");
}

TEST(ParseInputFlagTest, RejectsBadFlagsNamingThem) {
  for (std::string bad :
       {"nopath", "=x", "1abc=x", "a b=x", "a=", "a=x:/abs", "a=x:../up", "a=x:", "a=:ws"}) {
    auto parsed = ParseInputFlag(bad);
    ASSERT_FALSE(parsed.ok()) << bad;
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_TRUE(absl::StrContains(parsed.status().message(), "--input \"" + bad + "\""))
        << parsed.status();
  }
}

class InputsTest : public ::testing::Test {
 protected:
  std::vector<InputFlag> Flags(const std::vector<std::string>& args) {
    std::vector<InputFlag> flags;
    for (const std::string& arg : args) {
      auto flag = ParseInputFlag(arg);
      EXPECT_TRUE(flag.ok()) << flag.status();
      if (flag.ok()) flags.push_back(*flag);
    }
    return flags;
  }
  FileHasher Hasher() {
    return [this](const std::string& path, const struct stat&) {
      ++hashed_;
      return HashFile(path);
    };
  }

  TempDir tmp_;
  int hashed_ = 0;
};

TEST_F(InputsTest, FileAndDirectoryRefs) {
  WriteFile(tmp_.Sub("model.bin"), "weights");
  WriteFile(tmp_.Sub("set/a"), "aaa");
  WriteFile(tmp_.Sub("set/sub/b"), "bb");
  auto prepared = PrepareInputs(
      Flags({"model=" + tmp_.Sub("model.bin"), "set=" + tmp_.Sub("set") + ":data/set"}), Hasher());
  ASSERT_TRUE(prepared.ok()) << prepared.status();
  ASSERT_EQ(prepared->refs.size(), 2u);
  const auto& model = prepared->refs[0];
  EXPECT_EQ(model.name(), "model");
  EXPECT_EQ(model.kind(), "file");
  EXPECT_EQ(model.digest(), HashBytes("weights"));
  EXPECT_EQ(model.size(), 7u);
  EXPECT_EQ(model.path(), "");
  const auto& set = prepared->refs[1];
  EXPECT_EQ(set.kind(), "dir");
  EXPECT_EQ(set.path(), "data/set");
  EXPECT_EQ(set.total_bytes(), 5u);
  auto tree = DigestTree(tmp_.Sub("set"), Hasher());
  ASSERT_TRUE(tree.ok());
  EXPECT_EQ(set.digest(), tree->digest);
  EXPECT_EQ(set.size(), tree->size);
}

TEST_F(InputsTest, ASymlinkNamedOnTheCommandLineIsFollowed) {
  WriteFile(tmp_.Sub("real"), "content");
  ASSERT_EQ(symlink(tmp_.Sub("real").c_str(), tmp_.Sub("link").c_str()), 0);
  auto prepared = PrepareInputs(Flags({"x=" + tmp_.Sub("link")}), Hasher());
  ASSERT_TRUE(prepared.ok()) << prepared.status();
  EXPECT_EQ(prepared->refs[0].digest(), HashBytes("content"));
}

TEST_F(InputsTest, ErrorsNameTheFlag) {
  auto missing = PrepareInputs(Flags({"x=" + tmp_.Sub("nope")}), Hasher());
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(absl::StrContains(missing.status().message(), "--input \"x=")) << missing.status();
  WriteFile(tmp_.Sub("f"), "1");
  auto twice = PrepareInputs(Flags({"x=" + tmp_.Sub("f"), "x=" + tmp_.Sub("f")}), Hasher());
  EXPECT_EQ(twice.status().code(), absl::StatusCode::kInvalidArgument);
  ASSERT_EQ(mkfifo(tmp_.Sub("fifo").c_str(), 0644), 0);
  auto fifo = PrepareInputs(Flags({"x=" + tmp_.Sub("fifo")}), Hasher());
  EXPECT_EQ(fifo.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(InputsTest, UploadsEachDistinctBlobOnceAndNothingTheSecondTime) {
  FakeStoreServer server;
  // Three files, two with the same content; an empty directory; and a file
  // input with content the directory already has.
  WriteFile(tmp_.Sub("set/a"), "same");
  WriteFile(tmp_.Sub("set/b"), "same");
  WriteFile(tmp_.Sub("set/sub/c"), "other");
  ASSERT_EQ(mkdir(tmp_.Sub("set/empty").c_str(), 0755), 0);
  WriteFile(tmp_.Sub("single"), "same");
  auto flags = Flags({"set=" + tmp_.Sub("set"), "single=" + tmp_.Sub("single")});
  auto prepared = PrepareInputs(flags, Hasher());
  ASSERT_TRUE(prepared.ok()) << prepared.status();
  // Blobs: "same", "other", and the directories set/, set/sub/, set/empty/.
  std::set<std::string> digests;
  for (const TreeBlob& blob : prepared->blobs) digests.insert(blob.digest);
  EXPECT_EQ(digests.size(), prepared->blobs.size()) << "each blob once";
  EXPECT_EQ(prepared->blobs.size(), 5u);

  uint64_t last_done = 0, last_total = 0;
  auto first = UploadMissing(server.client(), prepared->blobs, [&](uint64_t done, uint64_t total) {
    EXPECT_GE(done, last_done);
    last_done = done;
    last_total = total;
  });
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->offered, 5u);
  EXPECT_EQ(first->blobs, 5u);
  uint64_t bytes = 0;
  for (const TreeBlob& blob : prepared->blobs) bytes += blob.size;
  EXPECT_EQ(first->bytes, bytes);
  EXPECT_EQ(last_done, bytes);
  EXPECT_EQ(last_total, bytes);
  EXPECT_EQ(server.store().uploads(), 5);
  for (const TreeBlob& blob : prepared->blobs) {
    EXPECT_TRUE(server.store().Has(blob.digest)) << blob.digest;
  }
  EXPECT_EQ(FormatUploadReport(*first), "uploaded 5 blobs (" + cli::FormatBytes(bytes) + ")");

  auto second = UploadMissing(server.client(), prepared->blobs);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->blobs, 0u);
  EXPECT_EQ(second->bytes, 0u);
  EXPECT_EQ(FormatUploadReport(*second), "inputs already in the store");

  // One blob lost by the store (what it holds under that digest is no
  // longer the blob): only that one goes up again.
  server.store().PutCorrupt(HashBytes("other"), "");
  auto third = UploadMissing(server.client(), prepared->blobs);
  ASSERT_TRUE(third.ok()) << third.status();
  EXPECT_EQ(third->blobs, 1u);
  EXPECT_EQ(third->bytes, 5u);
  EXPECT_EQ(FormatUploadReport(*third), "uploaded 1 blob (5 B)");
}

TEST_F(InputsTest, WithTheHashCacheASecondRunOnlyStats) {
  WriteFile(tmp_.Sub("set/a"), "1");
  WriteFile(tmp_.Sub("set/b"), "2");
  for (const char* f : {"set/a", "set/b"}) {
    testing::SetMtime(tmp_.Sub(f), absl::Now() - absl::Hours(1));
  }
  // Setting the mtime changed the ctime just now: look from a minute later,
  // when the files are no longer "just modified".
  FakeClock clock(absl::Now() + absl::Minutes(1));
  HashCacheOptions options;
  options.clock = &clock;
  options.hash_file = Hasher();
  auto cache = HashCache::Load(tmp_.Sub("hashes"), options);
  auto first = PrepareInputs(Flags({"set=" + tmp_.Sub("set")}), cache->AsFileHasher());
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(hashed_, 2);
  ASSERT_TRUE(cache->Save().ok());
  auto reloaded = HashCache::Load(tmp_.Sub("hashes"), options);
  auto second = PrepareInputs(Flags({"set=" + tmp_.Sub("set")}), reloaded->AsFileHasher());
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(hashed_, 2);
  EXPECT_EQ(second->refs[0].digest(), first->refs[0].digest());
}

TEST(FormatInputTimingTest, SaysWhatWasHashedAndWhatCameFromTheCache) {
  EXPECT_EQ(FormatInputTiming({.elapsed = absl::Microseconds(152301),
                               .hashed_files = 1,
                               .hashed_bytes = uint64_t{1} << 30}),
            "inputs: 152.301 ms; hashed 1 file, 1.0 GiB (7.05 GB/s); 0 files, 0 B from the "
            "hash cache");
  EXPECT_EQ(FormatInputTiming({.elapsed = absl::Microseconds(98),
                               .hashed_files = 0,
                               .hashed_bytes = 0,
                               .cached_files = 2,
                               .cached_bytes = 2048}),
            "inputs: 0.098 ms; hashed 0 files, 0 B; 2 files, 2.0 KiB from the hash cache");
  EXPECT_EQ(FormatInputTiming({}),
            "inputs: 0.000 ms; hashed 0 files, 0 B; 0 files, 0 B from the hash cache");
}

TEST_F(InputsTest, AFileChangedAfterHashingIsRejectedByTheStore) {
  FakeStoreServer server;
  WriteFile(tmp_.Sub("f"), "before");
  auto prepared = PrepareInputs(Flags({"f=" + tmp_.Sub("f")}), Hasher());
  ASSERT_TRUE(prepared.ok());
  WriteFile(tmp_.Sub("f"), "after!");
  auto report = UploadMissing(server.client(), prepared->blobs);
  EXPECT_EQ(report.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(report.status().message(), tmp_.Sub("f"))) << report.status();
  EXPECT_FALSE(server.store().Has(HashBytes("before")));
  EXPECT_FALSE(server.store().Has(HashBytes("after!")));
}

}  // namespace
}  // namespace deja
