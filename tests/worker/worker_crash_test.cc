// The Worker against crashes and faults (issue 12), with the fake scheduler
// of worker_fixture.h: cut off from the scheduler, restarted with results
// not acknowledged or commands that had exited, a full disk. The daemon's
// watchdog process is tested with real daemons (tests/integration) and the
// torture test (tests/torture).
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>

#include "absl/cleanup/cleanup.h"
#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/fakes/poll_until.h"
#include "tests/worker/worker_fixture.h"
#include "worker/leftovers.h"
#include "worker/paths.h"

namespace deja::worker {
namespace {

using ::deja::testing::PollUntil;
using ::deja::worker::testing::MakeTempDir;
using ::deja::worker::testing::ReadFile;
using ::deja::worker::testing::RemoveTempDir;
using ::deja::worker::testing::RunningWorker;
using ::deja::worker::testing::WorkerTest;
using ::deja::worker::testing::WriteFile;
using ::testing::HasSubstr;

// Issue 12: a worker cut off from the scheduler past the cut-off (its
// --worker_timeout less two heartbeats) stops its jobs itself, before the
// scheduler runs them elsewhere, and reports them handed back.
TEST_F(WorkerTest, AWorkerCutOffFromTheSchedulerStopsItsJobsAndHandsThemBack) {
  scheduler_.SetWorkerTimeout(absl::Seconds(1), /*answer_heartbeats=*/false);
  StartWorker("w-a");
  scheduler_.Assign("w-a", Run("job-1", "sleep 30"));
  auto result = AwaitResult("job-1");
  ASSERT_TRUE(result.has_value());
  EXPECT_TRUE(result->handed_back());
  EXPECT_EQ(result->exit_code(), -SIGKILL);
  EXPECT_THAT(result->error(), HasSubstr("stopped it: no word from the scheduler for over"));
}

TEST_F(WorkerTest, AWorkerWhoseHeartbeatsAreAnsweredKeepsItsJobs) {
  // A cut-off of 2.6 s: only a heartbeat ack delayed that long (none is)
  // could stop the job.
  scheduler_.SetWorkerTimeout(absl::Seconds(3), /*answer_heartbeats=*/true);
  StartWorker("w-a");
  scheduler_.Assign("w-a", Run("job-1", "sleep 3; echo done"));  // past the cut-off
  auto result = AwaitResult("job-1");
  ASSERT_TRUE(result.has_value());
  EXPECT_FALSE(result->handed_back()) << result->error();
  EXPECT_EQ(result->exit_code(), 0) << result->error();
}

// Issue 12, finding 2: a result not acknowledged died with its worker, and
// the scheduler ran the command again.
TEST_F(WorkerTest, AResultNotAcknowledgedSurvivesARestartAndGoesOnceAcked) {
  const std::string dir = MakeTempDir("worker_test_results");
  {
    StartWorker("w-a", nullptr, dir);
    scheduler_.Assign("w-a", Run("job-1", "echo once >> ../../ledger"));
    ASSERT_TRUE(AwaitResult("job-1").has_value());
    workers_.clear();  // stopped before any ack; the work dir stays
  }
  scheduler_.Forget("w-a");
  RunningWorker& again = StartWorker("w-a", nullptr, dir);
  auto reg = scheduler_.Registered("w-a");
  ASSERT_TRUE(reg.has_value());
  ASSERT_EQ(reg->held_size(), 1);
  EXPECT_EQ(reg->held(0).job_id(), "job-1");
  auto result = AwaitResult("job-1");  // sent again after the Register
  ASSERT_TRUE(result.has_value());
  EXPECT_EQ(result->exit_code(), 0);
  EXPECT_EQ(ReadFile(dir + "/ledger"), "once\n");

  const std::string kept = paths::MetaDir(again.work_dir) + "/results/job-1.1";
  EXPECT_TRUE(std::filesystem::exists(kept));
  scheduler_.Ack("w-a", "job-1", 1, 0);
  EXPECT_TRUE(PollUntil([&] { return !std::filesystem::exists(kept); }));
  workers_.clear();
  RemoveTempDir(dir);
}

// Issue 12, finding 2: the worker died right after a command exited, before
// it could report it. Its next life finishes the attempt (manifest,
// outputs) from the record, and kills what is left of any other group.
TEST_F(WorkerTest, TheNextLifeReportsACommandThatExitedAndKillsLeftovers) {
  const std::string dir = MakeTempDir("worker_test_exited");
  ASSERT_TRUE(paths::MakeDirs(paths::WorkspaceDir(dir, "job-done") + "/logs").ok());
  WriteFile(paths::WorkspaceDir(dir, "job-done") + "/out.txt", "made\n");
  deja::v1::RunningRecord done;
  done.set_job_id("job-done");
  done.set_attempt(3);
  done.set_pgid(999'999'999);  // long gone
  done.set_start_ticks(1);
  done.add_outputs("*.txt");
  done.set_exited(true);
  done.set_exit_code(0);
  ASSERT_TRUE(RecordRunning(dir, done).ok());

  // A group still running from the previous life.
  pid_t leftover = fork();
  ASSERT_GE(leftover, 0);
  if (leftover == 0) {
    setpgid(0, 0);
    execlp("sleep", "sleep", "1000", nullptr);
    _exit(127);
  }
  setpgid(leftover, leftover);
  deja::v1::RunningRecord running;
  running.set_job_id("job-running");
  running.set_attempt(1);
  running.set_pgid(leftover);
  ASSERT_TRUE(PollUntil(
      [&] { return ReadFile("/proc/" + std::to_string(leftover) + "/comm") == "sleep\n"; }));
  ASSERT_TRUE(RecordRunning(dir, running).ok());
  int status = 0;
  absl::Notification reaped;
  std::thread reaper([&] {  // as init would
    waitpid(leftover, &status, 0);
    reaped.Notify();
  });
  absl::Cleanup join_reaper = [&] {
    // If the test failed before the worker killed it (the pid is not
    // reaped yet, so it is still the leftover's).
    if (!reaped.WaitForNotificationWithTimeout(absl::Seconds(10))) kill(leftover, SIGKILL);
    reaper.join();
  };

  StartWorker("w-a", nullptr, dir);
  auto result = AwaitResult("job-done");
  ASSERT_TRUE(result.has_value());
  EXPECT_EQ(result->attempt(), 3u);
  EXPECT_EQ(result->exit_code(), 0);
  EXPECT_TRUE(result->error().empty()) << result->error();
  ASSERT_EQ(result->outputs_size(), 1);
  EXPECT_EQ(result->outputs(0).path(), "out.txt");
  EXPECT_EQ(store_.Get(result->outputs(0).digest()), "made\n");
  struct stat st;  // sealed, as after any success
  ASSERT_EQ(stat((paths::WorkspaceDir(dir, "job-done") + "/out.txt").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0222, 0u);
  std::move(join_reaper).Invoke();
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
  EXPECT_FALSE(scheduler_.Result("job-running").has_value());
  EXPECT_TRUE(ReadRunning(dir, /*remove_strays=*/false).empty());
  workers_.clear();
  RemoveTempDir(dir);
}

// Issue 12, finding 7: a job that failed on a full disk said only "exited
// with code 1".
TEST_F(WorkerTest, AJobThatFailsOnAFullDiskSaysSo) {
  const std::string dir = MakeTempDir("worker_test_full");
  if (mount("tmpfs", dir.c_str(), "tmpfs", 0, "size=4m") != 0) {
    RemoveTempDir(dir);
    GTEST_SKIP() << "cannot mount a tmpfs here: " << std::strerror(errno);
  }
  absl::Cleanup unmount = [&] {
    workers_.clear();
    umount2(dir.c_str(), MNT_DETACH);
    RemoveTempDir(dir);
  };
  StartWorker("w-a", nullptr, dir);
  scheduler_.Assign("w-a", Run("job-1", "head -c 8000000 /dev/zero > big"));
  auto result = AwaitResult("job-1");
  ASSERT_TRUE(result.has_value());
  EXPECT_EQ(result->exit_code(), 1);
  EXPECT_THAT(result->error(),
              HasSubstr("command exited with code 1 with the worker's disk full (no space left "
                        "on device under " +
                        dir + ")"));
}

// A worker below --min_free_disk with nothing to evict takes no job: one
// sent before the scheduler heard it is handed back, not failed.
TEST_F(WorkerTest, AWorkerWhoseDiskIsFullHandsBackWhatItIsSent) {
  StartWorker("w-a", nullptr, "", /*min_free_disk=*/uint64_t{1} << 62);
  scheduler_.Assign("w-a", Run("job-1", "echo never"));
  auto result = AwaitResult("job-1");
  ASSERT_TRUE(result.has_value());
  EXPECT_TRUE(result->handed_back());
  EXPECT_TRUE(result->never_started());
  EXPECT_THAT(result->error(), HasSubstr("has its disk full: "));
  EXPECT_THAT(result->error(), HasSubstr("below --min_free_disk 4096.0 PiB"));
  EXPECT_FALSE(std::filesystem::exists(paths::WorkspaceDir(workers_[0]->work_dir, "job-1")));
}

// Found by the torture test: a worker told to stop (SIGTERM) while its
// stream was down connected again while it waited for its jobs to end, and
// was sent new work that it then killed on its way out.
TEST_F(WorkerTest, AWorkerThatIsLeavingOpensNoNewStream) {
  RunningWorker& w = StartWorker("w-a");
  w.worker->Leave("SIGTERM");
  scheduler_.Forget("w-a");
  scheduler_.Close("w-a");
  // A worker that is not leaving is back within its first backoff (tens of
  // milliseconds): two seconds without a Register is a worker that stays out.
  EXPECT_FALSE(
      PollUntil([&] { return scheduler_.Registered("w-a").has_value(); }, absl::Seconds(2)));
}

}  // namespace
}  // namespace deja::worker
