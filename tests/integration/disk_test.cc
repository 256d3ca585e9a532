// Disk pressure on a worker (issue 12, finding 6), on a real full disk: the
// worker's work dir is a 64 MiB tmpfs and it keeps 16 MiB free.
#include <sys/mount.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/fakes/poll_until.h"
#include "tests/integration/cluster.h"

namespace deja::testing {
namespace {

using deja::v1::JobSpec;
using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr uint64_t kMiB = 1 << 20;

JobSpec Write(int mib, const std::string& tag) {
  JobSpec spec;
  spec.set_project("disk");
  spec.mutable_app()->set_name("write");
  for (const char* w : {"sh", "-c"}) spec.mutable_app()->add_command(w);
  spec.mutable_app()->add_command(absl::StrCat("head -c ", mib * kMiB, " /dev/zero > data"));
  (*spec.mutable_params())["tag"] = tag;
  return spec;
}

// A tmpfs of `bytes` mounted at `dir` for the test's life.
class Tmpfs {
 public:
  Tmpfs(const std::string& dir, uint64_t bytes) : dir_(dir) {
    std::filesystem::create_directories(dir);
    mounted_ = mount("tmpfs", dir.c_str(), "tmpfs", 0, absl::StrCat("size=", bytes).c_str()) == 0;
  }
  ~Tmpfs() {
    if (mounted_) umount2(dir_.c_str(), MNT_DETACH);
  }
  bool mounted() const { return mounted_; }

 private:
  std::string dir_;
  bool mounted_ = false;
};

deja::v1::DiskStatus DiskOf(Cluster& c, const std::string& worker_id) {
  auto workers = c.client().ListWorkers();
  if (workers.ok()) {
    for (const auto& w : *workers) {
      if (w.worker_id() == worker_id) return w.disk();
    }
  }
  return {};
}

TEST(DiskTest, AFullWorkerDiskRefusesJobsThenEvictsTheOldestWorkspacesToStayUsable) {
  if (geteuid() != 0) GTEST_SKIP() << "mounting a tmpfs needs root";
  Cluster c;
  Tmpfs disk(c.WorkDir("w1"), 64 * kMiB);
  ASSERT_TRUE(disk.mounted()) << "mount tmpfs: " << std::strerror(errno);
  // Something else fills the disk: 52 of 64 MiB.
  const std::string filler = c.WorkDir("w1") + "/filler";
  {
    std::ofstream out(filler);
    out << std::string(52 * kMiB, 'f');
  }
  c.StartWorker("w1", 1, {absl::StrCat("--min_free_disk=", 16 * kMiB)});
  ASSERT_TRUE(c.WaitForWorkers(1));

  // Nothing to evict: it refuses jobs, says why, and gets none.
  ASSERT_TRUE(PollUntil([&] { return !DiskOf(c, "w1").refusing().empty(); }));
  EXPECT_THAT(DiskOf(c, "w1").refusing(), StartsWith("disk full: "));
  EXPECT_THAT(DiskOf(c, "w1").refusing(), HasSubstr("below --min_free_disk 16.0 MiB"));
  CommandResult workers = RunCommand(DEJA_CLI_BIN, {"workers"}, c.CliEnv());
  EXPECT_THAT(workers.out, HasSubstr("disk full: ")) << workers.err;
  auto waiting = c.client().Submit(Write(4, "waiting"));
  ASSERT_TRUE(waiting.ok()) << waiting.status();
  EXPECT_EQ(c.client().GetJob(waiting->job().job_id())->state(), deja::v1::QUEUED);

  // Space comes back: it takes jobs again.
  std::filesystem::remove(filler);
  auto done = c.client().WaitForJob(waiting->job().job_id(), absl::Seconds(30));
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_EQ(done->state(), deja::v1::SUCCEEDED) << done->message();
  EXPECT_EQ(done->attempt(), 1u);

  // Two large successes: after the second, less than 16 MiB is free, so the
  // workspace that expires first goes (and with it its reuse).
  auto a = c.client().Submit(Write(24, "a"));
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_EQ(c.client().WaitForJob(a->job().job_id(), absl::Seconds(30))->state(),
            deja::v1::SUCCEEDED);
  auto b = c.client().Submit(Write(24, "b"));
  ASSERT_TRUE(b.ok()) << b.status();
  auto b_done = c.client().WaitForJob(b->job().job_id(), absl::Seconds(30));
  ASSERT_TRUE(b_done.ok()) << b_done.status();
  EXPECT_EQ(b_done->state(), deja::v1::SUCCEEDED) << b_done->message();
  ASSERT_TRUE(PollUntil([&] {
    auto job = c.client().GetJob(waiting->job().job_id());
    return job.ok() && job->workspace_expired();
  })) << "the oldest kept workspace was evicted";
  ASSERT_TRUE(PollUntil([&] {
    auto job = c.client().GetJob(a->job().job_id());
    return job.ok() && job->workspace_expired();
  }));
  EXPECT_FALSE(c.client().GetJob(b->job().job_id())->workspace_expired());
  EXPECT_TRUE(DiskOf(c, "w1").refusing().empty());
  EXPECT_GE(DiskOf(c, "w1").free_bytes(), 16 * kMiB);
  auto again = c.client().Submit(Write(24, "a"));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_FALSE(again->reused()) << "its memo entry went with the workspace";
}

}  // namespace
}  // namespace deja::testing
