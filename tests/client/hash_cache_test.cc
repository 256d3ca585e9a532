// The CLI's persistent hash cache: a changed file is rehashed, an unchanged
// one is not, the cache survives reloads, corrupt files and old entries.
#include "client/hash_cache.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdlib>
#include <string>

#include "absl/strings/match.h"
#include "common/hash.h"
#include "tests/fakes/file_util.h"
#include "tests/fakes/temp_dir.h"

namespace deja {
namespace {

using testing::ReadFile;
using testing::SetMtime;
using testing::TempDir;
using testing::WriteFile;

class HashCacheTest : public ::testing::Test {
 protected:
  HashCacheOptions Options() {
    HashCacheOptions options;
    options.clock = &clock_;
    options.hash_file = [this](const std::string& path, const struct stat&) {
      ++calls_;
      return HashFile(path);
    };
    return options;
  }

  std::unique_ptr<HashCache> Load(std::string* warning = nullptr) {
    return HashCache::Load(cache_path_, Options(), warning);
  }

  // A file last modified an hour ago: old enough to be cached.
  std::string OldFile(const std::string& name, const std::string& content) {
    std::string path = tmp_.Sub(name);
    WriteFile(path, content);
    SetMtime(path, absl::Now() - absl::Hours(1));
    return path;
  }

  absl::StatusOr<std::string> DigestOf(HashCache& cache, const std::string& path) {
    struct stat st;
    EXPECT_EQ(stat(path.c_str(), &st), 0) << path;
    return cache.Digest(path, st);
  }

  TempDir tmp_;
  std::string cache_path_ = tmp_.Sub("cache/deja/hashes");
  // A minute ahead of the files' real timestamps, so that files written by
  // the test are not "just modified" unless a test says so.
  FakeClock clock_{absl::Now() + absl::Minutes(1)};
  int calls_ = 0;
};

TEST_F(HashCacheTest, ReusesTheDigestOfAnUnchangedFile) {
  auto cache = Load();
  std::string path = OldFile("a", "hello");
  auto first = DigestOf(*cache, path);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(*first, HashBytes("hello"));
  auto second = DigestOf(*cache, path);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(*second, *first);
  EXPECT_EQ(calls_, 1);
  EXPECT_EQ(cache->hits(), 1u);
  EXPECT_EQ(cache->misses(), 1u);
  EXPECT_EQ(cache->hit_bytes(), 5u);
  EXPECT_EQ(cache->miss_bytes(), 5u);
}

TEST_F(HashCacheTest, NoticesATouchedFile) {
  auto cache = Load();
  std::string path = OldFile("a", "hello");
  ASSERT_TRUE(DigestOf(*cache, path).ok());
  SetMtime(path, absl::Now() - absl::Minutes(30));
  ASSERT_TRUE(DigestOf(*cache, path).ok());
  EXPECT_EQ(calls_, 2);
}

TEST_F(HashCacheTest, NoticesAResizedFile) {
  auto cache = Load();
  std::string path = OldFile("a", "hello");
  ASSERT_TRUE(DigestOf(*cache, path).ok());
  // Same mtime as before, other size.
  struct stat before;
  ASSERT_EQ(stat(path.c_str(), &before), 0);
  WriteFile(path, "hello, world");
  SetMtime(path, absl::TimeFromTimespec(before.st_mtim));
  auto digest = DigestOf(*cache, path);
  ASSERT_TRUE(digest.ok());
  EXPECT_EQ(*digest, HashBytes("hello, world"));
  EXPECT_EQ(calls_, 2);
}

TEST_F(HashCacheTest, NoticesAReplacedFileWithTheOldMtime) {
  // Same size, the old mtime restored, renamed into place (as tar or
  // rsync -t do): the inode and ctime still tell.
  auto cache = Load();
  std::string path = OldFile("a", "aaaa");
  ASSERT_TRUE(DigestOf(*cache, path).ok());
  struct stat before;
  ASSERT_EQ(stat(path.c_str(), &before), 0);
  WriteFile(path + ".new", "bbbb");
  SetMtime(path + ".new", absl::TimeFromTimespec(before.st_mtim));
  ASSERT_EQ(rename((path + ".new").c_str(), path.c_str()), 0);
  auto digest = DigestOf(*cache, path);
  ASSERT_TRUE(digest.ok());
  EXPECT_EQ(*digest, HashBytes("bbbb"));
}

TEST_F(HashCacheTest, DoesNotCacheAFileModifiedJustNow) {
  auto cache = Load();
  std::string path = tmp_.Sub("fresh");
  WriteFile(path, "still being written?");
  SetMtime(path, clock_.Now());
  ASSERT_TRUE(DigestOf(*cache, path).ok());
  ASSERT_TRUE(DigestOf(*cache, path).ok());
  EXPECT_EQ(calls_, 2);
  clock_.Advance(absl::Seconds(10));
  ASSERT_TRUE(DigestOf(*cache, path).ok());
  ASSERT_TRUE(DigestOf(*cache, path).ok());
  EXPECT_EQ(calls_, 3);
}

TEST_F(HashCacheTest, PersistsAcrossReloads) {
  std::string a = OldFile("a", "one");
  std::string b = OldFile("b", "two");
  {
    auto cache = Load();
    ASSERT_TRUE(DigestOf(*cache, a).ok());
    ASSERT_TRUE(DigestOf(*cache, b).ok());
    ASSERT_TRUE(cache->Save().ok());
  }
  EXPECT_EQ(calls_, 2);
  std::string warning;
  auto cache = Load(&warning);
  EXPECT_EQ(warning, "");
  EXPECT_EQ(cache->size(), 2u);
  auto digest = DigestOf(*cache, a);
  ASSERT_TRUE(digest.ok());
  EXPECT_EQ(*digest, HashBytes("one"));
  EXPECT_EQ(calls_, 2) << "served from the reloaded file";
  // No temp file left beside it.
  EXPECT_EQ(testing::FilesUnder(tmp_.Sub("cache/deja")).size(), 1u);
}

TEST_F(HashCacheTest, SaveWithoutChangesWritesNothing) {
  auto cache = Load();
  ASSERT_TRUE(cache->Save().ok());
  struct stat st;
  EXPECT_NE(stat(cache_path_.c_str(), &st), 0) << "no file for an empty, unchanged cache";
}

TEST_F(HashCacheTest, SurvivesACorruptFile) {
  for (const std::string& garbage : {std::string("not a cache at all"), std::string()}) {
    WriteFile(cache_path_, garbage);
    std::string warning;
    auto cache = Load(&warning);
    EXPECT_TRUE(absl::StrContains(warning, cache_path_)) << warning;
    EXPECT_FALSE(absl::StrContains(warning, "\n")) << "one line";
    EXPECT_EQ(cache->size(), 0u);
    std::string path = OldFile("a", "x");
    auto digest = DigestOf(*cache, path);
    ASSERT_TRUE(digest.ok());
    EXPECT_EQ(*digest, HashBytes("x"));
    ASSERT_TRUE(cache->Save().ok());
    std::string again;
    auto reloaded = Load(&again);
    EXPECT_EQ(again, "") << "the corrupt file was replaced";
    EXPECT_EQ(reloaded->size(), 1u);
  }
}

TEST_F(HashCacheTest, DetectsATruncatedFile) {
  {
    auto cache = Load();
    ASSERT_TRUE(DigestOf(*cache, OldFile("a", "one")).ok());
    ASSERT_TRUE(DigestOf(*cache, OldFile("b", "two")).ok());
    ASSERT_TRUE(cache->Save().ok());
  }
  std::string good = ReadFile(cache_path_);
  WriteFile(cache_path_, good.substr(0, good.size() - 20));
  std::string warning;
  EXPECT_EQ(Load(&warning)->size(), 0u);
  EXPECT_TRUE(absl::StrContains(warning, "truncated")) << warning;
}

TEST_F(HashCacheTest, AFlippedRecordIsNeverServedAndIsReplacedOnSave) {
  const std::string a = OldFile("a", "one");
  const std::string b = OldFile("b", "two");
  {
    auto cache = Load();
    ASSERT_TRUE(DigestOf(*cache, a).ok());
    ASSERT_TRUE(DigestOf(*cache, b).ok());
    ASSERT_TRUE(cache->Save().ok());
  }
  std::string flipped = ReadFile(cache_path_);
  flipped[16 + 40] ^= 1;  // a digest byte of the first record
  WriteFile(cache_path_, flipped);
  std::string warning;
  auto cache = Load(&warning);
  EXPECT_EQ(warning, "") << "records are checked when read, not on load";
  EXPECT_EQ(cache->size(), 1u);
  EXPECT_EQ(*DigestOf(*cache, a), HashBytes("one"));
  EXPECT_EQ(*DigestOf(*cache, b), HashBytes("two"));
  EXPECT_EQ(calls_, 3) << "the flipped record's file is hashed again, the other one is not";
  ASSERT_TRUE(cache->Save().ok());
  auto reloaded = Load();
  EXPECT_EQ(reloaded->size(), 2u);
  EXPECT_EQ(*DigestOf(*reloaded, a), HashBytes("one"));
  EXPECT_EQ(*DigestOf(*reloaded, b), HashBytes("two"));
  EXPECT_EQ(calls_, 3);
}

TEST_F(HashCacheTest, AHitOnTheDayItWasSavedWritesNothing) {
  const std::string a = OldFile("a", "one");
  {
    auto cache = Load();
    ASSERT_TRUE(DigestOf(*cache, a).ok());
    ASSERT_TRUE(cache->Save().ok());
  }
  struct stat before;
  ASSERT_EQ(stat(cache_path_.c_str(), &before), 0);
  auto cache = Load();
  ASSERT_TRUE(DigestOf(*cache, a).ok());
  EXPECT_EQ(cache->hits(), 1u);
  ASSERT_TRUE(cache->Save().ok());
  struct stat after;
  ASSERT_EQ(stat(cache_path_.c_str(), &after), 0);
  EXPECT_EQ(after.st_ino, before.st_ino) << "not rewritten";
  // The next day the entry's last use is refreshed: one rewrite.
  clock_.Advance(absl::Hours(24));
  ASSERT_TRUE(DigestOf(*cache, a).ok());
  ASSERT_TRUE(cache->Save().ok());
  ASSERT_EQ(stat(cache_path_.c_str(), &after), 0);
  EXPECT_NE(after.st_ino, before.st_ino);
  EXPECT_EQ(calls_, 1);
}

TEST_F(HashCacheTest, ManyEntriesAreFoundAfterReload) {
  std::vector<std::string> files;
  for (int i = 0; i < 100; ++i) {
    files.push_back(OldFile("f" + std::to_string(i), std::to_string(i)));
  }
  {
    auto cache = Load();
    for (const std::string& f : files) ASSERT_TRUE(DigestOf(*cache, f).ok());
    ASSERT_TRUE(cache->Save().ok());
  }
  auto cache = Load();
  EXPECT_EQ(cache->size(), 100u);
  for (int i = 0; i < 100; ++i) {
    EXPECT_EQ(*DigestOf(*cache, files[i]), HashBytes(std::to_string(i)));
  }
  EXPECT_EQ(calls_, 100) << "every lookup after the reload is a hit";
  EXPECT_FALSE(DigestOf(*cache, OldFile("new", "x")).value().empty());
  EXPECT_EQ(calls_, 101);
}

TEST_F(HashCacheTest, AFileOfTheOldFormatIsReplacedSilently) {
  WriteFile(cache_path_, std::string("DEJAHC01") + std::string(16, '\0'));
  std::string warning;
  auto cache = Load(&warning);
  EXPECT_EQ(warning, "");
  EXPECT_EQ(cache->size(), 0u);
  ASSERT_TRUE(DigestOf(*cache, OldFile("a", "x")).ok());
  ASSERT_TRUE(cache->Save().ok());
  EXPECT_EQ(ReadFile(cache_path_).substr(0, 8), "DEJAHC02");
  EXPECT_EQ(Load()->size(), 1u);
}

TEST_F(HashCacheTest, DropsEntriesUnusedForThirtyDays) {
  std::string a = OldFile("a", "one");
  std::string b = OldFile("b", "two");
  {
    auto cache = Load();
    ASSERT_TRUE(DigestOf(*cache, a).ok());
    clock_.Advance(absl::Hours(24 * 31));
    ASSERT_TRUE(DigestOf(*cache, b).ok());
    ASSERT_TRUE(cache->Save().ok());
  }
  auto cache = Load();
  EXPECT_EQ(cache->size(), 1u);
  ASSERT_TRUE(DigestOf(*cache, b).ok());
  EXPECT_EQ(calls_, 2);
  ASSERT_TRUE(DigestOf(*cache, a).ok());
  EXPECT_EQ(calls_, 3) << "a was dropped";
}

TEST_F(HashCacheTest, KeepsTheMostRecentlyUsedEntries) {
  HashCacheOptions options = Options();
  options.max_entries = 2;
  std::vector<std::string> files = {OldFile("a", "1"), OldFile("b", "2"), OldFile("c", "3")};
  {
    auto cache = HashCache::Load(cache_path_, options);
    for (const std::string& f : files) {
      ASSERT_TRUE(DigestOf(*cache, f).ok());
      clock_.Advance(absl::Hours(25));
    }
    ASSERT_TRUE(cache->Save().ok());
  }
  auto cache = HashCache::Load(cache_path_, options);
  EXPECT_EQ(cache->size(), 2u);
  ASSERT_TRUE(DigestOf(*cache, files[2]).ok());
  ASSERT_TRUE(DigestOf(*cache, files[1]).ok());
  EXPECT_EQ(calls_, 3);
  ASSERT_TRUE(DigestOf(*cache, files[0]).ok());
  EXPECT_EQ(calls_, 4) << "the least recently used entry was dropped";
}

TEST_F(HashCacheTest, AHasherErrorIsReturnedAndNotCached) {
  auto cache = Load();
  struct stat st = {};
  auto digest = cache->Digest(tmp_.Sub("missing"), st);
  EXPECT_EQ(digest.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(cache->size(), 0u);
}

TEST(HashCacheDefaultPathTest, FollowsTheEnvironment) {
  auto get = [](const char* name) {
    const char* v = std::getenv(name);
    return v == nullptr ? std::optional<std::string>() : std::optional<std::string>(v);
  };
  auto restore = [](const char* name, const std::optional<std::string>& value) {
    if (value.has_value()) {
      setenv(name, value->c_str(), 1);
    } else {
      unsetenv(name);
    }
  };
  auto saved_cache = get(kHashCacheEnv);
  auto saved_xdg = get("XDG_CACHE_HOME");
  auto saved_home = get("HOME");
  setenv(kHashCacheEnv, "/x/hashes", 1);
  setenv("XDG_CACHE_HOME", "/xdg", 1);
  setenv("HOME", "/home/u", 1);
  EXPECT_EQ(HashCache::DefaultPath(), "/x/hashes");
  unsetenv(kHashCacheEnv);
  EXPECT_EQ(HashCache::DefaultPath(), "/xdg/deja/hashes");
  unsetenv("XDG_CACHE_HOME");
  EXPECT_EQ(HashCache::DefaultPath(), "/home/u/.cache/deja/hashes");
  restore(kHashCacheEnv, saved_cache);
  restore("XDG_CACHE_HOME", saved_xdg);
  restore("HOME", saved_home);
}

}  // namespace
}  // namespace deja
