// BlobStore on its own: writers, commit checks, layout, Has, temp files.
#include "scheduler/content/blob_store.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <string>

#include "absl/strings/match.h"
#include "common/hash.h"
#include "tests/content/test_util.h"

namespace deja {
namespace {

using testing::ContentServer;
using testing::ReadFile;
using testing::Ref;
using testing::TempDir;
using testing::WriteFile;

class BlobStoreTest : public ::testing::Test {
 protected:
  TempDir tmp_;
  ContentServer server_{tmp_.path()};
  BlobStore& store_ = server_.store();
};

TEST_F(BlobStoreTest, CommitMakesTheBlobVisibleAtItsPath) {
  const std::string data = "hello";
  const std::string digest = HashBytes(data);
  auto writer = store_.BeginWrite(Ref(digest, data.size()));
  ASSERT_TRUE(writer.ok()) << writer.status();
  ASSERT_TRUE((*writer)->Append("hel").ok());
  ASSERT_TRUE((*writer)->Append("lo").ok());
  EXPECT_FALSE(store_.Has(Ref(digest, data.size()))) << "nothing visible before Commit";
  EXPECT_EQ(server_.TempFiles().size(), 1u);
  auto already = (*writer)->Commit();
  ASSERT_TRUE(already.ok()) << already.status();
  EXPECT_FALSE(*already);
  EXPECT_EQ(store_.PathOf(digest), store_.dir() + "/" + digest.substr(0, 2) + "/" + digest);
  EXPECT_EQ(ReadFile(store_.PathOf(digest)), data);
  EXPECT_TRUE(store_.Has(Ref(digest, data.size())));
  EXPECT_FALSE(store_.Has(Ref(digest, data.size() + 1))) << "another size is another blob";
  auto meta = store_.GetMeta(digest);
  ASSERT_TRUE(meta.ok()) << meta.status();
  EXPECT_EQ(meta->size(), data.size());
  EXPECT_GT(meta->created_at_ms(), 0);
  EXPECT_TRUE(server_.TempFiles().empty());
}

TEST_F(BlobStoreTest, AnAbandonedWriterLeavesNothing) {
  const std::string digest = HashBytes("abc");
  {
    auto writer = store_.BeginWrite(Ref(digest, 3));
    ASSERT_TRUE(writer.ok());
    ASSERT_TRUE((*writer)->Append("ab").ok());
    EXPECT_EQ(server_.TempFiles().size(), 1u);
  }
  EXPECT_TRUE(server_.TempFiles().empty());
  EXPECT_TRUE(server_.BlobFiles().empty());
  EXPECT_FALSE(server_.HasMeta(digest));
}

TEST_F(BlobStoreTest, CommitRejectsShortLongAndWrongBytes) {
  const std::string digest = HashBytes("abcdef");
  {
    auto writer = store_.BeginWrite(Ref(digest, 6));
    ASSERT_TRUE((*writer)->Append("abc").ok());
    auto got = (*writer)->Commit();
    EXPECT_EQ(got.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_TRUE(absl::StrContains(got.status().message(), "truncated: got 3 of 6 bytes"))
        << got.status();
  }
  {
    auto writer = store_.BeginWrite(Ref(digest, 6));
    auto appended = (*writer)->Append("abcdefg");
    EXPECT_EQ(appended.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_TRUE(absl::StrContains(appended.message(), "expected 6 bytes")) << appended;
    EXPECT_FALSE((*writer)->Commit().ok()) << "a failed writer stays failed";
  }
  {
    auto writer = store_.BeginWrite(Ref(digest, 6));
    ASSERT_TRUE((*writer)->Append("abcdeX").ok());
    auto got = (*writer)->Commit();
    EXPECT_EQ(got.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_TRUE(absl::StrContains(got.status().message(), digest)) << got.status();
    EXPECT_TRUE(absl::StrContains(got.status().message(), HashBytes("abcdeX"))) << got.status();
  }
  EXPECT_TRUE(server_.TempFiles().empty());
  EXPECT_TRUE(server_.BlobFiles().empty());
  EXPECT_FALSE(server_.HasMeta(digest));
}

TEST_F(BlobStoreTest, RejectsMalformedDigestsBeforeTouchingPaths) {
  for (const std::string& bad :
       {std::string("../../../../etc/passwd"), std::string("ABCDEF0123456789ABCDEF0123456789"),
        std::string("abc"), std::string(32, 'g'), std::string()}) {
    auto writer = store_.BeginWrite(Ref(bad, 1));
    EXPECT_EQ(writer.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_EQ(store_.OpenForRead(bad).status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_FALSE(store_.Has(Ref(bad, 1))) << bad;
  }
}

TEST_F(BlobStoreTest, HasIsFalseOnceTheFileIsGoneOrDamaged) {
  const std::string digest = HashBytes("data");
  auto writer = store_.BeginWrite(Ref(digest, 4));
  ASSERT_TRUE((*writer)->Append("data").ok());
  ASSERT_TRUE((*writer)->Commit().ok());
  ASSERT_TRUE(store_.Has(Ref(digest, 4)));
  WriteFile(store_.PathOf(digest), "dat");
  EXPECT_FALSE(store_.Has(Ref(digest, 4)));
  ASSERT_EQ(unlink(store_.PathOf(digest).c_str()), 0);
  EXPECT_FALSE(store_.Has(Ref(digest, 4)));
  EXPECT_EQ(store_.OpenForRead(digest).status().code(), absl::StatusCode::kNotFound);
  // Uploading it again repairs it.
  auto again = store_.BeginWrite(Ref(digest, 4));
  ASSERT_TRUE((*again)->Append("data").ok());
  auto already = (*again)->Commit();
  ASSERT_TRUE(already.ok());
  EXPECT_FALSE(*already);
  EXPECT_TRUE(store_.Has(Ref(digest, 4)));
}

TEST_F(BlobStoreTest, OpenDeletesStaleTempFiles) {
  WriteFile(store_.dir() + "/tmp/0123.abcdef", "left by a crash");
  auto reopened = BlobStore::Open(store_.dir(), server_.meta());
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  EXPECT_TRUE(server_.TempFiles().empty());
}

TEST_F(BlobStoreTest, PutStoresBytesInHandOnce) {
  const std::string digest = HashBytes("a directory blob");
  ASSERT_TRUE(store_.Put("a directory blob").ok());
  EXPECT_TRUE(store_.Has(Ref(digest, 16)));
  EXPECT_TRUE(server_.HasMeta(digest));
  EXPECT_EQ(ReadFile(store_.PathOf(digest)), "a directory blob");
  ASSERT_TRUE(store_.Put("a directory blob").ok()) << "already there: nothing to do";
  EXPECT_EQ(server_.BlobFiles().size(), 1u);
  EXPECT_TRUE(server_.TempFiles().empty());
}

TEST_F(BlobStoreTest, TheEmptyBlob) {
  const std::string digest = HashBytes("");
  auto writer = store_.BeginWrite(Ref(digest, 0));
  ASSERT_TRUE(writer.ok());
  auto already = (*writer)->Commit();
  ASSERT_TRUE(already.ok()) << already.status();
  EXPECT_TRUE(store_.Has(Ref(digest, 0)));
}

}  // namespace
}  // namespace deja
