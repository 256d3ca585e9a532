#include "worker/materializer.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/hash.h"
#include "common/manifest.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "worker/paths.h"

namespace deja::worker {
namespace {

using ::testing::HasSubstr;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void WriteFile(const std::string& path, const std::string& data, mode_t mode = 0644) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream(path, std::ios::binary | std::ios::trunc) << data;
  chmod(path.c_str(), mode);
}

class MaterializerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl =
        std::filesystem::temp_directory_path().string() + "/materializer_test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    work_dir_ = tmpl;
    src_ = paths::WorkspaceDir(work_dir_, "src");
    dst_ = paths::WorkspaceDir(work_dir_, "dst");

    std::string big(3 * 1024 * 1024 + 17, '\0');  // several copy chunks
    std::mt19937 rng(42);
    for (char& c : big) c = static_cast<char>(rng());
    WriteFile(src_ + "/out/result.txt", "forty-two\n", 0644);
    WriteFile(src_ + "/bin/run.sh", "#!/bin/sh\necho hi\n", 0755);
    WriteFile(src_ + "/deep/a/b/big.bin", big, 0600);
    WriteFile(src_ + "/empty", "", 0444);
    WriteFile(src_ + "/logs/stdout", "job said hello\n");
    WriteFile(src_ + "/logs/stderr", "job complained\n");
    auto manifest = BuildManifest(src_);
    ASSERT_TRUE(manifest.ok()) << manifest.status();
    manifest_ = *manifest;
    // The symlink's entry is written by hand: BuildManifest (common/) records
    // symlinks under their target's path (fs::relative resolves them).
    const std::string target = "out/result.txt";
    ASSERT_EQ(symlink(target.c_str(), (src_ + "/latest").c_str()), 0);
    deja::v1::FileEntry* link = manifest_.add_files();
    link->set_path("latest");
    link->set_size(target.size());
    link->set_mode(S_IFLNK | 0777);
    link->set_digest(HashBytes(target));
    ASSERT_EQ(manifest_.files_size(), 7);
  }
  void TearDown() override { std::filesystem::remove_all(work_dir_); }

  std::string work_dir_, src_, dst_;
  deja::v1::Manifest manifest_;
};

TEST_F(MaterializerTest, CopiesEveryFileByteIdenticalWithModesAndLogs) {
  Materializer materializer(work_dir_);
  auto result = materializer.Materialize("src", manifest_, "dst");
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->files, 7u);
  EXPECT_EQ(result->bytes, ManifestBytes(manifest_) - std::string("out/result.txt").size())
      << "regular files only, not symlink targets";

  EXPECT_TRUE(VerifyManifest(dst_, manifest_).ok());
  for (const auto& entry : manifest_.files()) {
    const std::string path = dst_ + "/" + entry.path();
    struct stat st;
    ASSERT_EQ(lstat(path.c_str(), &st), 0) << path;
    EXPECT_EQ(st.st_mode & S_IFMT, entry.mode() & S_IFMT) << path;
    if (S_ISREG(st.st_mode)) {
      mode_t expected = entry.mode() & 07777;
      if (result->method == CopyMethod::kHardlink) expected &= ~0222u;
      EXPECT_EQ(st.st_mode & 07777, expected) << path;
    }
  }
  EXPECT_EQ(ReadFile(dst_ + "/logs/stdout"), "job said hello\n");
  EXPECT_EQ(ReadFile(dst_ + "/logs/stderr"), "job complained\n");
  EXPECT_EQ(std::filesystem::read_symlink(dst_ + "/latest"), "out/result.txt");
  EXPECT_EQ(ReadFile(dst_ + "/REUSED"),
            absl::StrCat("source_job=src\nsource_workspace=", src_,
                         "\nmethod=", CopyMethodName(result->method), "\n"));
}

TEST_F(MaterializerTest, PlainCopyFallbackWorks) {
  Materializer materializer(work_dir_, {.allow_reflink = false, .allow_hardlink = false});
  auto result = materializer.Materialize("src", manifest_, "dst");
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->method, CopyMethod::kCopy);
  EXPECT_TRUE(VerifyManifest(dst_, manifest_).ok());
  EXPECT_THAT(ReadFile(dst_ + "/REUSED"), HasSubstr("method=copy\n"));
  struct stat st;
  ASSERT_EQ(stat((dst_ + "/bin/run.sh").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0755u);
}

// Writing the copy must never change the source: either the copy is not
// writable, or it is a separate inode.
void ExpectWritingCopyLeavesSourceAlone(const std::string& src, const std::string& dst,
                                        const deja::v1::Manifest& manifest) {
  for (const auto& entry : manifest.files()) {
    if ((entry.mode() & S_IFMT) != S_IFREG) continue;
    const std::string path = dst + "/" + entry.path();
    int fd = open(path.c_str(), O_WRONLY);
    if (fd < 0) {
      EXPECT_EQ(errno, EACCES) << path;
      continue;
    }
    ASSERT_EQ(write(fd, "CLOBBERED", 9), 9);
    close(fd);
    auto digest = HashFile(src + "/" + entry.path());
    ASSERT_TRUE(digest.ok());
    EXPECT_EQ(*digest, entry.digest()) << entry.path() << " changed through its copy";
  }
  EXPECT_TRUE(VerifyManifest(src, manifest).ok());
}

TEST_F(MaterializerTest, WritingTheCopyLeavesTheSourceUnchanged) {
  Materializer materializer(work_dir_);
  ASSERT_TRUE(materializer.Materialize("src", manifest_, "dst").ok());
  ExpectWritingCopyLeavesSourceAlone(src_, dst_, manifest_);
}

// Runs in the death-test child: drops to nobody, materializes with hard
// links allowed, returns 0 when all is well, else the number of the failed check.
int HardLinkAsNobody(const std::string& work_dir, const std::string& src, const std::string& dst,
                     const deja::v1::Manifest& manifest) {
  constexpr uid_t kNobody = 65534;
  if (setgid(kNobody) != 0 || setuid(kNobody) != 0) return 10;
  Materializer materializer(work_dir, {.allow_reflink = false, .allow_hardlink = true});
  auto result = materializer.Materialize("src", manifest, "dst");
  if (!result.ok()) return 11;
  if (result->method != CopyMethod::kHardlink) return 12;
  struct stat s, d;
  const std::string rel = "/out/result.txt";
  if (stat((src + rel).c_str(), &s) != 0 || stat((dst + rel).c_str(), &d) != 0) return 13;
  if (s.st_ino != d.st_ino) return 14;
  if ((s.st_mode & 0222) != 0) return 15;  // the shared inode is read-only
  if (open((dst + rel).c_str(), O_WRONLY) >= 0 || errno != EACCES) return 16;
  if (ReadFile(dst + "/REUSED").find("method=hardlink\n") == std::string::npos) return 17;
  if (!VerifyManifest(src, manifest).ok()) return 18;
  if (!VerifyManifest(dst, manifest).ok()) return 19;
  return 0;
}

// As root permission bits protect nothing, so a hard link is only used by a
// non-root worker; exercise that path in a child that drops to nobody.
TEST_F(MaterializerTest, HardLinksAsNonRootAreReadOnlyOnBothSides) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to switch to an unprivileged user";
  constexpr uid_t kNobody = 65534;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(work_dir_)) {
    lchown(entry.path().c_str(), kNobody, kNobody);
  }
  lchown(work_dir_.c_str(), kNobody, kNobody);
  EXPECT_EXIT(_exit(HardLinkAsNobody(work_dir_, src_, dst_, manifest_)),
              ::testing::ExitedWithCode(0), "");
}

TEST_F(MaterializerTest, ReplacesAnEarlierAttemptsWorkspace) {
  WriteFile(dst_ + "/leftover", "from an earlier attempt");
  Materializer materializer(work_dir_);
  ASSERT_TRUE(materializer.Materialize("src", manifest_, "dst").ok());
  EXPECT_FALSE(std::filesystem::exists(dst_ + "/leftover"));
}

class VerificationFailureTest : public MaterializerTest {
 protected:
  void ExpectDataLossAndNoWorkspace(const std::string& what) {
    WriteFile(dst_ + "/leftover", "from an earlier attempt");
    Materializer materializer(work_dir_);
    auto result = materializer.Materialize("src", manifest_, "dst");
    ASSERT_FALSE(result.ok());
    EXPECT_EQ(result.status().code(), absl::StatusCode::kDataLoss) << result.status();
    EXPECT_THAT(std::string(result.status().message()), HasSubstr(what));
    EXPECT_FALSE(std::filesystem::exists(dst_));
  }
};

TEST_F(VerificationFailureTest, MissingFile) {
  std::filesystem::remove(src_ + "/out/result.txt");
  ExpectDataLossAndNoWorkspace("out/result.txt: missing");
}

TEST_F(VerificationFailureTest, ChangedSize) {
  WriteFile(src_ + "/logs/stdout", "job said hello, and more\n");
  ExpectDataLossAndNoWorkspace("logs/stdout: size changed");
}

TEST_F(VerificationFailureTest, ChangedContent) {
  WriteFile(src_ + "/out/result.txt", "forty-one\n");
  ExpectDataLossAndNoWorkspace("out/result.txt: content changed");
}

TEST_F(VerificationFailureTest, MissingWorkspace) {
  std::filesystem::remove_all(src_);
  ExpectDataLossAndNoWorkspace("is missing");
}

TEST_F(VerificationFailureTest, SymlinkedParentDirectory) {
  // out/ replaced by a symlink to a directory with the same files: reading
  // through it would leave the workspace.
  std::filesystem::rename(src_ + "/out", work_dir_ + "/elsewhere");
  ASSERT_EQ(symlink((work_dir_ + "/elsewhere").c_str(), (src_ + "/out").c_str()), 0);
  ExpectDataLossAndNoWorkspace("parent out is not a directory");
}

TEST_F(MaterializerTest, RejectsPathsThatEscapeTheWorkspace) {
  deja::v1::Manifest evil = manifest_;
  evil.mutable_files(0)->set_path("../src/out/result.txt");
  Materializer materializer(work_dir_);
  auto result = materializer.Materialize("src", evil, "dst");
  EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument) << result.status();
  EXPECT_FALSE(std::filesystem::exists(dst_));
}

TEST_F(MaterializerTest, RejectsBadJobIds) {
  Materializer materializer(work_dir_);
  EXPECT_EQ(materializer.Materialize("src", manifest_, "../x").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(materializer.Materialize("src", manifest_, "src").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(materializer.Materialize("", manifest_, "dst").status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace deja::worker
