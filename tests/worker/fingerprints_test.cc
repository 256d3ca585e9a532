#include "worker/fingerprints.h"

#include <fcntl.h>
#include <grp.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "common/manifest.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/worker/test_util.h"
#include "worker/materializer.h"
#include "worker/paths.h"

namespace deja::worker {
namespace {

using ::testing::HasSubstr;
using testing::MakeTempDir;
using testing::ReadFile;
using testing::RemoveTempDir;
using testing::WriteFile;

// Sets the file's mtime 10 s back, so a fingerprint of it is never racy
// (a file written in the current clock tick gets none).
void Age(const std::string& path) {
  struct timespec times[2];
  clock_gettime(CLOCK_REALTIME, &times[0]);
  times[0].tv_sec -= 10;
  times[1] = times[0];
  ASSERT_EQ(utimensat(AT_FDCWD, path.c_str(), times, AT_SYMLINK_NOFOLLOW), 0) << path;
}

class FingerprintsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    work_dir_ = MakeTempDir("fingerprints_test");
    src_ = paths::WorkspaceDir(work_dir_, "src");
    WriteFile(src_ + "/out/result.txt", "forty-two\n", 0644);
    WriteFile(src_ + "/data/big.bin", std::string(300000, 'x'), 0600);
    WriteFile(src_ + "/logs/stdout", "hello\n");
    for (const char* rel : {"/out/result.txt", "/data/big.bin", "/logs/stdout"}) Age(src_ + rel);
    auto manifest = BuildManifest(src_);
    ASSERT_TRUE(manifest.ok()) << manifest.status();
    manifest_ = *manifest;
  }
  void TearDown() override { RemoveTempDir(work_dir_); }

  // Files VerifyWithFingerprints had to hash with the store's record of src.
  int Hashed(const FingerprintStore& store, absl::Status* status = nullptr) {
    int hashed = -1;
    absl::Status st =
        VerifyWithFingerprints(src_, manifest_, store.Get("src"), FileClockNow(), nullptr, &hashed);
    if (status != nullptr) *status = st;
    EXPECT_TRUE(status != nullptr || st.ok()) << st;
    return hashed;
  }

  std::string work_dir_, src_;
  deja::v1::Manifest manifest_;
};

TEST_F(FingerprintsTest, SealMakesFilesReadOnlyAndLetsVerificationSkipHashing) {
  FingerprintStore store(work_dir_);
  ASSERT_TRUE(store.Load().ok());
  EXPECT_EQ(Hashed(store), 3);  // nothing recorded yet

  ASSERT_TRUE(store.Seal("src", manifest_, FileClockNow()).ok());
  struct stat st;
  ASSERT_EQ(stat((src_ + "/out/result.txt").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0444u);
  ASSERT_EQ(stat((src_ + "/data/big.bin").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0400u);
  EXPECT_EQ(store.Get("src").size(), 3u);
  EXPECT_EQ(Hashed(store), 0);
}

TEST_F(FingerprintsTest, SealingCopiesAFileThatSharesItsInodeInsteadOfChangingIt) {
  // A job hard-linked a file from outside its workspace (as root it could
  // link /etc/hostname): sealing must leave that file's mode alone.
  const std::string outside = work_dir_ + "/outside.txt";
  WriteFile(outside, "shared\n", 0644);
  ASSERT_EQ(link(outside.c_str(), (src_ + "/out/linked.txt").c_str()), 0);
  auto manifest = BuildManifest(src_);
  ASSERT_TRUE(manifest.ok()) << manifest.status();
  manifest_ = *manifest;

  FingerprintStore store(work_dir_);
  ASSERT_TRUE(store.Load().ok());
  ASSERT_TRUE(store.Seal("src", manifest_, FileClockNow()).ok());

  struct stat out_st, in_st;
  ASSERT_EQ(stat(outside.c_str(), &out_st), 0);
  EXPECT_EQ(out_st.st_mode & 0777, 0644u);
  EXPECT_EQ(out_st.st_nlink, 1u);
  EXPECT_EQ(ReadFile(outside), "shared\n");
  ASSERT_EQ(stat((src_ + "/out/linked.txt").c_str(), &in_st), 0);
  EXPECT_EQ(in_st.st_mode & 0777, 0444u);
  EXPECT_NE(in_st.st_ino, out_st.st_ino);
  EXPECT_EQ(ReadFile(src_ + "/out/linked.txt"), "shared\n");
  absl::Status verified;
  Hashed(store, &verified);
  EXPECT_TRUE(verified.ok()) << verified;
}

TEST_F(FingerprintsTest, SealingNeverChangesAFileThroughASymlinkedDirectory) {
  // After the manifest was taken, something still running swapped a
  // directory of the workspace for a symlink to one outside it.
  const std::string elsewhere = work_dir_ + "/elsewhere";
  WriteFile(elsewhere + "/result.txt", "not the job's\n", 0644);
  std::filesystem::remove_all(src_ + "/out");
  ASSERT_EQ(symlink(elsewhere.c_str(), (src_ + "/out").c_str()), 0);

  FingerprintStore store(work_dir_);
  ASSERT_TRUE(store.Load().ok());
  ASSERT_TRUE(store.Seal("src", manifest_, FileClockNow()).ok());

  struct stat st;
  ASSERT_EQ(stat((elsewhere + "/result.txt").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0644u);
  EXPECT_EQ(store.Get("src").count("out/result.txt"), 0u);
}

TEST_F(FingerprintsTest, AFileWrittenAfterHashingStartedGetsNoFingerprint) {
  FingerprintStore store(work_dir_);
  ASSERT_TRUE(store.Load().ok());
  // Hashing "started" before every file was last written: all are racy.
  ASSERT_TRUE(store.Seal("src", manifest_, timespec{0, 0}).ok());
  EXPECT_TRUE(store.Get("src").empty());
  EXPECT_EQ(Hashed(store), 3);
}

TEST_F(FingerprintsTest, AModifiedFileIsHashedAndFailsVerification) {
  FingerprintStore store(work_dir_);
  ASSERT_TRUE(store.Load().ok());
  ASSERT_TRUE(store.Seal("src", manifest_, FileClockNow()).ok());
  // Same size, other bytes, written through the sealed file (as root or
  // its owner after a chmod).
  const std::string path = src_ + "/data/big.bin";
  chmod(path.c_str(), 0600);
  {
    int fd = open(path.c_str(), O_WRONLY);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(pwrite(fd, "y", 1, 1000), 1);
    close(fd);
  }
  absl::Status status;
  EXPECT_EQ(Hashed(store, &status), 1);
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(status.message(), HasSubstr("data/big.bin: content changed"));
}

TEST_F(FingerprintsTest, AChmodAloneCostsAHashButStillVerifies) {
  FingerprintStore store(work_dir_);
  ASSERT_TRUE(store.Load().ok());
  ASSERT_TRUE(store.Seal("src", manifest_, FileClockNow()).ok());
  chmod((src_ + "/out/result.txt").c_str(), 0644);  // ctime changes
  EXPECT_EQ(Hashed(store), 1);
}

TEST_F(FingerprintsTest, ARecordWithAnotherDigestIsNotTrusted) {
  FingerprintStore store(work_dir_);
  ASSERT_TRUE(store.Load().ok());
  ASSERT_TRUE(store.Seal("src", manifest_, FileClockNow()).ok());
  Fingerprints recorded = store.Get("src");
  recorded["out/result.txt"].digest = std::string(32, '0');
  ASSERT_TRUE(store.Put("src", recorded).ok());
  EXPECT_EQ(Hashed(store), 1);
}

TEST_F(FingerprintsTest, RecordsSurviveARestartAndGoWithTheirWorkspace) {
  {
    FingerprintStore store(work_dir_);
    ASSERT_TRUE(store.Load().ok());
    ASSERT_TRUE(store.Seal("src", manifest_, FileClockNow()).ok());
    ASSERT_TRUE(store.Put("gone", store.Get("src")).ok());  // no jobs/gone
    ASSERT_TRUE(store.Put("src", store.Get("src")).ok());   // superseded record
  }
  const std::string log = paths::FingerprintsPath(work_dir_);
  const size_t before = ReadFile(log).size();
  FingerprintStore store(work_dir_);
  ASSERT_TRUE(store.Load().ok());
  EXPECT_EQ(store.JobCount(), 1u);
  EXPECT_EQ(store.Get("src").size(), 3u);
  EXPECT_TRUE(store.Get("gone").empty());
  EXPECT_LT(ReadFile(log).size(), before / 2);  // compacted
  EXPECT_EQ(Hashed(store), 0);
}

TEST_F(FingerprintsTest, ATornOrCorruptTailIsDropped) {
  {
    FingerprintStore store(work_dir_);
    ASSERT_TRUE(store.Load().ok());
    ASSERT_TRUE(store.Seal("src", manifest_, FileClockNow()).ok());
  }
  const std::string log = paths::FingerprintsPath(work_dir_);
  std::string bytes = ReadFile(log);
  // A second record cut short, as by a crash mid-append.
  std::string torn = bytes.substr(0, bytes.size() / 2);
  WriteFile(log, bytes + torn);
  {
    FingerprintStore store(work_dir_);
    ASSERT_TRUE(store.Load().ok());
    EXPECT_EQ(store.Get("src").size(), 3u);
    EXPECT_EQ(ReadFile(log), bytes);
  }
  // A flipped byte inside the only record: its checksum fails.
  bytes[bytes.size() / 2] ^= 1;
  WriteFile(log, bytes);
  FingerprintStore store(work_dir_);
  ASSERT_TRUE(store.Load().ok());
  EXPECT_EQ(store.JobCount(), 0u);
  EXPECT_EQ(Hashed(store), 3);
}

TEST_F(FingerprintsTest, AReuseOfAModifiedSealedSourceFailsAndLeavesNothing) {
  FingerprintStore store(work_dir_);
  ASSERT_TRUE(store.Load().ok());
  ASSERT_TRUE(store.Seal("src", manifest_, FileClockNow()).ok());
  Materializer materializer(work_dir_, nullptr, &store);
  ASSERT_TRUE(materializer.Materialize("src", manifest_, "first").ok());

  const std::string path = src_ + "/out/result.txt";
  chmod(path.c_str(), 0644);
  WriteFile(path, "forty-six\n", 0444);  // the same size
  auto result = materializer.Materialize("src", manifest_, "second");
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(result.status().message(), HasSubstr("out/result.txt"));
  EXPECT_FALSE(std::filesystem::exists(paths::WorkspaceDir(work_dir_, "second")));
}

// The deployment case: a non-root worker hard-links the sealed source, which
// changes the sources' ctimes; the materializer records them again, so the
// next reuse still hashes nothing. Runs the worker side in a child process
// as nobody (needs root to switch; skipped otherwise).
TEST_F(FingerprintsTest, AfterAHardLinkReuseTheSourceStillVerifiesWithoutHashing) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to switch to an unprivileged user";
  constexpr uid_t kNobody = 65534;
  ASSERT_EQ(chmod(work_dir_.c_str(), 0755), 0);
  for (const auto& e : std::filesystem::recursive_directory_iterator(work_dir_)) {
    ASSERT_EQ(lchown(e.path().c_str(), kNobody, kNobody), 0);
  }
  ASSERT_EQ(chown(work_dir_.c_str(), kNobody, kNobody), 0);
  for (const char* rel : {"/out/result.txt", "/data/big.bin", "/logs/stdout"}) Age(src_ + rel);
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    // Exit codes name the first check that failed.
    if (setgroups(0, nullptr) != 0 || setresgid(kNobody, kNobody, kNobody) != 0 ||
        setresuid(kNobody, kNobody, kNobody) != 0) {
      _exit(10);
    }
    FingerprintStore store(work_dir_);
    if (!store.Load().ok() || !store.Seal("src", manifest_, FileClockNow()).ok()) _exit(11);
    Materializer materializer(work_dir_, nullptr, &store);
    auto first = materializer.Materialize("src", manifest_, "first");
    if (!first.ok() || first->method != CopyMethod::kHardlink) _exit(12);
    int hashed = -1;
    if (!VerifyWithFingerprints(src_, manifest_, store.Get("src"), FileClockNow(), nullptr, &hashed)
             .ok() ||
        hashed != 0) {
      _exit(13);
    }
    if (!materializer.Materialize("src", manifest_, "second").ok()) _exit(14);
    _exit(0);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  struct stat a, b;
  ASSERT_EQ(stat((src_ + "/data/big.bin").c_str(), &a), 0);
  ASSERT_EQ(stat((paths::WorkspaceDir(work_dir_, "second") + "/data/big.bin").c_str(), &b), 0);
  EXPECT_EQ(a.st_ino, b.st_ino);
  EXPECT_EQ(b.st_mode & 0777, 0400u);
}

}  // namespace
}  // namespace deja::worker
