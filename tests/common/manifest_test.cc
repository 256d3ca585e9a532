#include "common/manifest.h"

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "common/hash.h"
#include "gtest/gtest.h"

namespace deja {
namespace {

namespace fs = std::filesystem;

class ManifestTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() /
            ("deja-manifest-" + std::to_string(getpid()) + "-" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    fs::create_directories(root_ / "logs");
    Write("out.txt", "hello\n");
    Write("logs/stdout", "line\n");
    fs::create_symlink("out.txt", root_ / "link");
  }
  void TearDown() override { fs::remove_all(root_); }
  void Write(const std::string& rel, const std::string& content) {
    std::ofstream(root_ / rel, std::ios::binary | std::ios::trunc) << content;
  }

  fs::path root_;
};

TEST_F(ManifestTest, ListsEveryFileSortedWithSizeModeAndDigest) {
  auto manifest = BuildManifest(root_.string());
  ASSERT_TRUE(manifest.ok()) << manifest.status();
  ASSERT_EQ(manifest->files_size(), 3);
  EXPECT_EQ(manifest->files(0).path(), "link");
  EXPECT_TRUE(S_ISLNK(manifest->files(0).mode()));
  EXPECT_EQ(manifest->files(0).digest(), HashBytes("out.txt"));
  EXPECT_EQ(manifest->files(1).path(), "logs/stdout");
  EXPECT_EQ(manifest->files(2).path(), "out.txt");
  EXPECT_EQ(manifest->files(2).size(), 6u);
  EXPECT_TRUE(S_ISREG(manifest->files(2).mode()));
  EXPECT_EQ(manifest->files(2).digest(), HashBytes("hello\n"));
  EXPECT_EQ(ManifestBytes(*manifest), 6u + 5u + 7u);
}

TEST_F(ManifestTest, VerifiesAnUnchangedWorkspace) {
  auto manifest = BuildManifest(root_.string());
  ASSERT_TRUE(manifest.ok());
  EXPECT_TRUE(VerifyManifest(root_.string(), *manifest).ok());
  Write("extra", "ignored: only manifest files are copied");
  EXPECT_TRUE(VerifyManifest(root_.string(), *manifest).ok());
}

TEST_F(ManifestTest, CatchesAMissingFile) {
  auto manifest = BuildManifest(root_.string());
  fs::remove(root_ / "logs/stdout");
  absl::Status s = VerifyManifest(root_.string(), *manifest);
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(s.message().find("logs/stdout: missing"), absl::string_view::npos) << s;
}

TEST_F(ManifestTest, CatchesAChangedSize) {
  auto manifest = BuildManifest(root_.string());
  Write("out.txt", "hello world\n");
  absl::Status s = VerifyManifest(root_.string(), *manifest);
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(s.message().find("out.txt: size changed"), absl::string_view::npos) << s;
}

TEST_F(ManifestTest, CatchesChangedContentOfTheSameSize) {
  auto manifest = BuildManifest(root_.string());
  Write("out.txt", "HELLO\n");
  absl::Status s = VerifyManifest(root_.string(), *manifest);
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(s.message().find("out.txt: content changed"), absl::string_view::npos) << s;
}

TEST_F(ManifestTest, CatchesARetargetedSymlink) {
  auto manifest = BuildManifest(root_.string());
  fs::remove(root_ / "link");
  fs::create_symlink("logs", root_ / "link");
  EXPECT_EQ(VerifyManifest(root_.string(), *manifest).code(), absl::StatusCode::kDataLoss);
}

TEST(HashTest, FileDigestMatchesBytesDigest) {
  fs::path path = fs::temp_directory_path() / ("deja-hash-" + std::to_string(getpid()));
  std::string content(300000, 'x');
  std::ofstream(path, std::ios::binary) << content;
  auto digest = HashFile(path.string());
  ASSERT_TRUE(digest.ok());
  EXPECT_EQ(*digest, HashBytes(content));
  fs::remove(path);
  EXPECT_EQ(HashFile(path.string()).status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace deja
