// The worker's watchdog (worker/watchdog.h) with real processes: each test
// forks a daemon, which calls StartWatchdog as deja-worker's main does and
// so becomes the watchdog, while a body standing in for the worker runs in
// its child. A test binary of its own: it forks, so it must have no other
// thread (ctest runs each test in a process of its own).
#include "worker/watchdog.h"

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <functional>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/fakes/poll_until.h"
#include "tests/fakes/temp_dir.h"
#include "worker/leftovers.h"

namespace deja::worker {
namespace {

using ::deja::testing::PollUntil;
using ::deja::testing::ReadFile;
using ::deja::testing::TempDir;
using ::testing::HasSubstr;

extern "C" char** environ;

// Where a spawned process goes: a job's own process group (as JobRunner
// spawns), a session of its own (it left every group the watchdog could
// know), or the worker's group (a helper of the worker's, not a job).
enum class Group { kJob, kNewSession, kWorkers };

// Spawns `sh -c script` into `group`.
pid_t SpawnShell(const std::string& script, Group group = Group::kJob) {
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  posix_spawnattr_setflags(&attr, group == Group::kNewSession ? POSIX_SPAWN_SETSID
                                  : group == Group::kJob      ? POSIX_SPAWN_SETPGROUP
                                                              : 0);
  posix_spawnattr_setpgroup(&attr, 0);
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attr, &none);
  const char* argv[] = {"/bin/sh", "-c", script.c_str(), nullptr};
  pid_t pid = -1;
  posix_spawn(&pid, "/bin/sh", nullptr, &attr, const_cast<char**>(argv), environ);
  posix_spawnattr_destroy(&attr);
  return pid;
}

void Record(const std::string& work_dir, const std::string& job_id, pid_t pgid) {
  deja::v1::RunningRecord record;
  record.set_job_id(job_id);
  record.set_attempt(1);
  record.set_pgid(pgid);
  (void)RecordRunning(work_dir, record);
}

void Append(const std::string& path, const std::string& line) {
  FILE* f = fopen(path.c_str(), "a");
  if (f == nullptr) return;
  fprintf(f, "%s\n", line.c_str());
  fclose(f);
}

std::vector<pid_t> Pids(const std::string& path) {
  std::vector<pid_t> pids;
  for (absl::string_view line : absl::StrSplit(ReadFile(path), '\n', absl::SkipEmpty())) {
    pid_t pid = 0;
    if (absl::SimpleAtoi(line, &pid)) pids.push_back(pid);
  }
  return pids;
}

bool Gone(pid_t pid) {
  const char state = ProcessState(pid);
  return state == '\0' || state == 'Z';
}

// A worker that waits for SIGTERM (blocked, as deja-worker's main blocks
// it), appends its number to `got` and returns `exit_code`.
int AwaitSigterm(const std::string& got, int exit_code) {
  sigset_t term;
  sigemptyset(&term);
  sigaddset(&term, SIGTERM);
  int sig = 0;
  sigwait(&term, &sig);
  Append(got, absl::StrCat(sig));
  return exit_code;
}

// A daemon as deja-worker's main starts it: SIGTERM and SIGINT blocked,
// then StartWatchdog. `worker` runs in the worker process (the watchdog's
// child) and its return value is the worker's exit code. `dir/pids` gets
// the worker's pid first.
class Daemon {
 public:
  Daemon(const TempDir& dir, const std::function<int(const std::string& work_dir)>& worker)
      : work_dir_(dir.Sub("work")), pids_(dir.Sub("pids")) {
    pid_ = fork();
    if (pid_ != 0) return;
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    sigprocmask(SIG_BLOCK, &stop, nullptr);
    auto contact = StartWatchdog(work_dir_);  // returns in the worker only
    if (!contact.ok()) _exit(100);
    Append(pids_, absl::StrCat(getpid()));
    _exit(worker(work_dir_));
  }
  ~Daemon() {
    if (pid_ > 0) {
      if (worker_ > 0) kill(worker_, SIGKILL);
      Wait();
    }
  }

  pid_t pid() const { return pid_; }
  // The worker's pid, once it has written it; -1 if it never does.
  pid_t worker() {
    if (worker_ <= 0 && PollUntil([&] { return !Pids(pids_).empty(); })) worker_ = Pids(pids_)[0];
    return worker_;
  }
  // The pids the worker wrote after its own, once there are `n`.
  std::vector<pid_t> jobs(size_t n) {
    PollUntil([&] { return Pids(pids_).size() >= n + 1; });
    std::vector<pid_t> pids = Pids(pids_);
    return {pids.begin() + (pids.empty() ? 0 : 1), pids.end()};
  }
  const std::string& pids_file() const { return pids_; }
  const std::string& work_dir() const { return work_dir_; }
  // The watchdog's wait status.
  int Wait() {
    int status = 0;
    while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    pid_ = -1;
    return status;
  }

 private:
  std::string work_dir_;
  std::string pids_;
  pid_t pid_ = -1;
  pid_t worker_ = -1;
};

// Issue 12: a command spawned in the instant before its worker died, before
// the worker recorded its process group, ran on, and so did a process that
// left its job's group (setsid): only recorded groups were killed.
TEST(WatchdogTest, KillsEveryProcessBelowADeadWorkerRecordedOrNot) {
  TempDir dir;
  Daemon daemon(dir, [&](const std::string& work_dir) {
    const pid_t recorded = SpawnShell("exec sleep 1000");
    Record(work_dir, "j1", recorded);
    const pid_t unrecorded = SpawnShell("exec sleep 1000");
    const pid_t escaped =
        SpawnShell("sleep 1000 & echo $! >> " + dir.Sub("pids") + "; wait", Group::kNewSession);
    Append(dir.Sub("pids"), absl::StrCat(recorded, "\n", unrecorded, "\n", escaped));
    pause();
    return 0;
  });
  ASSERT_GT(daemon.worker(), 0);
  const std::vector<pid_t> jobs = daemon.jobs(4);
  ASSERT_EQ(jobs.size(), 4u);
  for (pid_t job : jobs) ASSERT_FALSE(Gone(job));

  kill(daemon.worker(), SIGKILL);
  const int status = daemon.Wait();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 128 + SIGKILL) << status;
  for (pid_t job : jobs) EXPECT_TRUE(PollUntil([&] { return Gone(job); })) << job;
  // The record stays for the worker's next life: that job was killed, not
  // completed.
  const std::vector<deja::v1::RunningRecord> records =
      ReadRunning(daemon.work_dir(), /*remove_strays=*/false);
  ASSERT_EQ(records.size(), 1u);
  EXPECT_FALSE(records[0].exited());
}

// Issue 12: a command that exited just before its worker died, before the
// worker could record the exit, was run again: the next life found it
// neither running nor exited.
TEST(WatchdogTest, RecordsTheExitOfACommandWhoseWorkerDiedBeforeItCould) {
  TempDir dir;
  Daemon daemon(dir, [&](const std::string& work_dir) {
    const pid_t done = SpawnShell("exit 7");
    Record(work_dir, "j1", done);
    // Exited, not reaped (as JobRunner waits): the worker dies before it
    // records the exit.
    siginfo_t info = {};
    waitid(P_PID, static_cast<id_t>(done), &info, WEXITED | WNOWAIT);
    kill(getpid(), SIGKILL);
    return 0;
  });
  const int status = daemon.Wait();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 128 + SIGKILL) << status;
  const std::vector<deja::v1::RunningRecord> records =
      ReadRunning(daemon.work_dir(), /*remove_strays=*/false);
  ASSERT_EQ(records.size(), 1u);
  EXPECT_TRUE(records[0].exited());
  EXPECT_EQ(records[0].exit_code(), 7);
  EXPECT_GT(records[0].finished_at_ms(), 0);
}

TEST(WatchdogTest, PassesTheDaemonsSignalsOnToTheWorkerAndEndsAsItDoes) {
  TempDir dir;
  Daemon daemon(dir, [&](const std::string&) { return AwaitSigterm(dir.Sub("got"), 3); });
  ASSERT_GT(daemon.worker(), 0);
  kill(daemon.pid(), SIGTERM);  // as docker stop or systemd do
  const int status = daemon.Wait();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 3) << status;
  EXPECT_EQ(ReadFile(dir.Sub("got")), absl::StrCat(SIGTERM, "\n"));
}

TEST(WatchdogTest, AWorkerWhoseWatchdogDiesIsToldToStop) {
  TempDir dir;
  Daemon daemon(dir, [&](const std::string&) { return AwaitSigterm(dir.Sub("got"), 0); });
  const pid_t worker = daemon.worker();
  ASSERT_GT(worker, 0);
  kill(daemon.pid(), SIGKILL);
  daemon.Wait();
  EXPECT_TRUE(PollUntil([&] { return ReadFile(dir.Sub("got")) == absl::StrCat(SIGTERM, "\n"); }));
  EXPECT_TRUE(PollUntil([&] { return Gone(worker); }));
}

// A worker's own helper (in its process group) is left alone: ASan's leak
// checker ptrace-stops the worker at exit from such a child, and stopping
// that child hung the worker.
TEST(WatchdogTest, AStoppedWorkersJobsStopWithItAndResumeWithIt) {
  TempDir dir;
  Daemon daemon(dir, [&](const std::string&) {
    // Not recorded: the watchdog stops the job processes below the worker.
    Append(dir.Sub("pids"), absl::StrCat(SpawnShell("exec sleep 1000")));
    Append(dir.Sub("pids"), absl::StrCat(SpawnShell("exec sleep 1000", Group::kWorkers)));
    pause();
    return 0;
  });
  const pid_t worker = daemon.worker();
  ASSERT_GT(worker, 0);
  const std::vector<pid_t> pids = daemon.jobs(2);
  ASSERT_EQ(pids.size(), 2u);
  const pid_t job = pids[0];
  const pid_t helper = pids[1];

  kill(worker, SIGSTOP);
  EXPECT_TRUE(PollUntil([&] { return ProcessState(job) == 'T'; }));
  // The job and the helper are stopped in one pass, if both are.
  EXPECT_FALSE(PollUntil([&] { return ProcessState(helper) == 'T'; }, absl::Milliseconds(200)));
  kill(worker, SIGCONT);
  EXPECT_TRUE(PollUntil([&] { return ProcessState(job) == 'S'; }));
  kill(helper, SIGKILL);
}

TEST(WatchdogTest, AWorkDirTakesOneWorker) {
  TempDir dir;
  ASSERT_TRUE(LockWorkDir(dir.Sub("work")).ok());
  const absl::Status second = LockWorkDir(dir.Sub("work"));
  EXPECT_EQ(second.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(second.message(),
              HasSubstr(absl::StrCat("--work_dir ", dir.Sub("work"),
                                     " is in use by another deja-worker (pid ", getpid(), ")")));
}

}  // namespace
}  // namespace deja::worker
