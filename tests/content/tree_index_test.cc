// TreeIndex (scheduler/content/tree_index.h): what lies below a directory
// blob, read from a real BlobStore, and kept within its bound.
#include "scheduler/content/tree_index.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "common/hash.h"
#include "common/tree.h"
#include "tests/content/test_util.h"

namespace deja {
namespace {

using testing::ContentServer;
using testing::TempDir;

DirEntry File(const std::string& name, const std::string& bytes) {
  DirEntry entry;
  entry.name = name;
  entry.digest = HashBytes(bytes);
  entry.size = bytes.size();
  return entry;
}

class TreeIndexTest : public ::testing::Test {
 protected:
  // Stores a directory blob and returns its entry.
  DirEntry Dir(const std::string& name, std::vector<DirEntry> entries) {
    const std::string bytes = EncodeDirectory(std::move(entries));
    EXPECT_TRUE(server_.store().Put(bytes).ok());
    return DirectoryEntry(name, bytes);
  }

  TempDir tmp_;
  ContentServer server_{tmp_.path()};
};

TEST_F(TreeIndexTest, EveryBlobBelowATreeIsHeldAndNothingElse) {
  DirEntry link;
  link.name = "link";
  link.kind = DirEntry::Kind::kSymlink;
  link.target = "a.txt";
  const DirEntry sub = Dir("sub", {File("deep.txt", "deep")});
  const DirEntry root = Dir("root", {File("a.txt", "a"), sub, link});
  const DirEntry other = Dir("other", {File("b.txt", "b")});
  TreeIndex index(&server_.store());
  for (const DirEntry& below : {File("a.txt", "a"), sub, File("deep.txt", "deep")}) {
    auto holds = index.Holds(root.digest, below.digest);
    ASSERT_TRUE(holds.ok()) << holds.status();
    EXPECT_TRUE(*holds) << below.name;
  }
  for (const std::string& outside : {root.digest, other.digest, File("b.txt", "b").digest}) {
    auto holds = index.Holds(root.digest, outside);
    ASSERT_TRUE(holds.ok()) << holds.status();
    EXPECT_FALSE(*holds) << outside;
  }
  // A tree the store lacks, or a blob that is no directory.
  EXPECT_EQ(index.Holds(HashBytes("no such tree"), root.digest).status().code(),
            absl::StatusCode::kNotFound);
  ASSERT_TRUE(server_.store().Put("not a directory").ok());
  EXPECT_EQ(index.Holds(HashBytes("not a directory"), root.digest).status().code(),
            absl::StatusCode::kDataLoss);
}

TEST_F(TreeIndexTest, AKeptTreeIsNotReadAgainAndTheBoundEvictsTheLeastRecent) {
  const DirEntry one = Dir("one", {File("1", "1"), File("2", "2")});
  const DirEntry two = Dir("two", {File("3", "3"), File("4", "4")});
  TreeIndex index(&server_.store(), /*max_entries=*/3);
  ASSERT_TRUE(*index.Holds(one.digest, File("1", "1").digest));
  // Kept: answered with its blob gone from the store.
  ASSERT_EQ(unlink(server_.store().PathOf(one.digest).c_str()), 0);
  EXPECT_TRUE(*index.Holds(one.digest, File("2", "2").digest));
  // Two more entries go over the bound of 3: `one` is evicted, and read
  // again it is missing.
  ASSERT_TRUE(*index.Holds(two.digest, File("3", "3").digest));
  EXPECT_EQ(index.Holds(one.digest, File("2", "2").digest).status().code(),
            absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace deja
