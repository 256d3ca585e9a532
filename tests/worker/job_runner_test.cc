#include "worker/job_runner.h"

#include <dirent.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/fakes/poll_until.h"
#include "worker/paths.h"

namespace deja::worker {
namespace {

using ::deja::testing::PollUntil;
using ::testing::HasSubstr;
using ::testing::Not;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Live (non-zombie) processes whose process group is `pgid`.
std::vector<pid_t> GroupMembers(pid_t pgid) {
  std::vector<pid_t> members;
  DIR* proc = opendir("/proc");
  if (proc == nullptr) return members;
  while (dirent* entry = readdir(proc)) {
    const std::string name = entry->d_name;
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    const std::string stat = ReadFile(absl::StrCat("/proc/", name, "/stat"));
    const size_t close_paren = stat.rfind(')');
    if (close_paren == std::string::npos) continue;
    // After "(comm) ": state ppid pgrp ...
    std::vector<std::string> fields = absl::StrSplit(stat.substr(close_paren + 2), ' ');
    if (fields.size() < 3 || fields[0] == "Z") continue;
    if (std::stol(fields[2]) == pgid) members.push_back(std::stoi(name));
  }
  closedir(proc);
  return members;
}

class JobRunnerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = std::filesystem::temp_directory_path().string() + "/job_runner_test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    work_dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(work_dir_); }

  JobLaunch Launch(std::vector<std::string> argv, std::map<std::string, std::string> env = {}) {
    JobLaunch launch;
    launch.job_id = "job-1";
    launch.workspace = paths::WorkspaceDir(work_dir_, "job-1");
    launch.argv = std::move(argv);
    launch.env = std::move(env);
    return launch;
  }

  JobOutcome Run(std::vector<std::string> argv, std::map<std::string, std::string> env = {}) {
    auto runner = JobRunner::Start(Launch(std::move(argv), std::move(env)), &clock_);
    return runner->Wait();
  }

  std::string Stdout() { return ReadFile(paths::StdoutPath(work_dir_, "job-1")); }
  std::string Stderr() { return ReadFile(paths::StderrPath(work_dir_, "job-1")); }

  RealClock clock_;
  std::string work_dir_;
};

TEST_F(JobRunnerTest, CapturesStdoutAndStderrIntoLogs) {
  JobOutcome outcome = Run({"sh", "-c", "echo to-out; echo to-err >&2; cat"});
  EXPECT_EQ(outcome.exit_code, 0);
  EXPECT_EQ(outcome.error, "");
  EXPECT_EQ(Stdout(), "to-out\n");  // and stdin was /dev/null: cat ended at once
  EXPECT_EQ(Stderr(), "to-err\n");
  struct stat st;
  ASSERT_EQ(stat(paths::StdoutPath(work_dir_, "job-1").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0644u);
  ASSERT_EQ(stat(paths::StderrPath(work_dir_, "job-1").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0644u);
}

TEST_F(JobRunnerTest, RunsInTheWorkspaceAndRemovesAnEarlierAttempt) {
  const std::string ws = paths::WorkspaceDir(work_dir_, "job-1");
  std::filesystem::create_directories(ws + "/old");
  std::ofstream(ws + "/old/stale") << "from attempt 1";
  JobOutcome outcome = Run({"sh", "-c", "pwd; ls"});
  EXPECT_EQ(outcome.exit_code, 0);
  EXPECT_EQ(Stdout(), ws + "\nlogs\n");
  EXPECT_FALSE(std::filesystem::exists(ws + "/old"));
}

TEST_F(JobRunnerTest, ReportsExitCodes) {
  EXPECT_EQ(Run({"true"}).exit_code, 0);
  EXPECT_EQ(Run({"sh", "-c", "exit 3"}).exit_code, 3);
  JobOutcome killed = Run({"sh", "-c", "kill -KILL $$"});
  EXPECT_EQ(killed.exit_code, -SIGKILL);
  EXPECT_EQ(killed.error, "");
  EXPECT_FALSE(killed.cancelled);
}

TEST_F(JobRunnerTest, GivesTheJobACleanEnvironment) {
  ASSERT_EQ(setenv("DEJA_TEST_WORKER_SECRET", "leaked", 1), 0);
  JobOutcome outcome = Run({"env"}, {{"APP_VAR", "from-app"}, {"DEJA_JOB_ID", "overridden"}});
  unsetenv("DEJA_TEST_WORKER_SECRET");
  ASSERT_EQ(outcome.exit_code, 0);
  std::vector<std::string> lines = absl::StrSplit(Stdout(), '\n', absl::SkipEmpty());
  const std::string ws = paths::WorkspaceDir(work_dir_, "job-1");
  EXPECT_THAT(lines, ::testing::UnorderedElementsAre(absl::StrCat("PATH=", kDefaultJobPath),
                                                     "HOME=" + ws, "DEJA_WORKSPACE=" + ws,
                                                     "DEJA_JOB_ID=overridden", "APP_VAR=from-app"));
  EXPECT_THAT(Stdout(), Not(HasSubstr("DEJA_TEST_WORKER_SECRET")));
}

TEST_F(JobRunnerTest, FindsTheCommandOnTheJobsPathNotTheWorkers) {
  const std::string bin = work_dir_ + "/bin";
  std::filesystem::create_directories(bin);
  std::ofstream(bin + "/deja-test-tool") << "#!/bin/sh\necho tool ran with $1\n";
  chmod((bin + "/deja-test-tool").c_str(), 0755);
  JobOutcome outcome = Run({"deja-test-tool", "x"}, {{"PATH", bin + ":/usr/bin:/bin"}});
  EXPECT_EQ(outcome.exit_code, 0) << outcome.error;
  EXPECT_EQ(Stdout(), "tool ran with x\n");
}

TEST_F(JobRunnerTest, CommandNotFoundIs127WithAnErrorInTheLog) {
  JobOutcome outcome = Run({"deja-no-such-command", "arg"});
  EXPECT_EQ(outcome.exit_code, 127);
  EXPECT_TRUE(outcome.never_started);
  EXPECT_EQ(outcome.error, "deja-no-such-command: No such file or directory");
  EXPECT_EQ(Stderr(), outcome.error + "\n");
  EXPECT_EQ(Stdout(), "");
}

TEST_F(JobRunnerTest, LeaderExitKillsStrayChildren) {
  JobOutcome outcome = Run({"sh", "-c", "sleep 1000 & echo $! > child.pid; exit 0"});
  EXPECT_EQ(outcome.exit_code, 0);
  const pid_t child = std::stoi(ReadFile(paths::WorkspaceDir(work_dir_, "job-1") + "/child.pid"));
  EXPECT_TRUE(PollUntil([&] {
    const std::string stat = ReadFile(absl::StrCat("/proc/", child, "/stat"));
    return stat.empty() || stat.find(") Z ") != std::string::npos;
  })) << "pid "
      << child << " outlived its job";
}

TEST_F(JobRunnerTest, CancelKillsTheWholeProcessGroup) {
  auto runner =
      JobRunner::Start(Launch({"sh", "-c", "sleep 1000 & sleep 1000 & echo ready; wait"}), &clock_);
  const pid_t pgid = runner->WaitForSpawn();
  ASSERT_GT(pgid, 0);
  ASSERT_TRUE(PollUntil([&] { return Stdout() == "ready\n"; }));
  EXPECT_GE(GroupMembers(pgid).size(), 3u);

  runner->Cancel();
  JobOutcome outcome = runner->Wait();
  EXPECT_EQ(outcome.exit_code, -SIGTERM);
  EXPECT_TRUE(outcome.cancelled);
  EXPECT_TRUE(PollUntil([&] { return GroupMembers(pgid).empty(); }));
}

TEST_F(JobRunnerTest, CancelEscalatesToSigkillAfterTheGrace) {
  JobLaunch launch =
      Launch({"sh", "-c", "trap '' TERM; sleep 1000 & sleep 1000 & echo ready; wait"});
  launch.cancel_grace = absl::Milliseconds(100);
  auto runner = JobRunner::Start(std::move(launch), &clock_);
  const pid_t pgid = runner->WaitForSpawn();
  ASSERT_TRUE(PollUntil([&] { return Stdout() == "ready\n"; }));

  runner->Cancel();
  JobOutcome outcome = runner->Wait();
  EXPECT_EQ(outcome.exit_code, -SIGKILL);
  EXPECT_TRUE(PollUntil([&] { return GroupMembers(pgid).empty(); }));
}

TEST_F(JobRunnerTest, CancelBeforeTheSpawnStillStopsTheJob) {
  auto runner = JobRunner::Start(Launch({"sleep", "1000"}), &clock_);
  runner->Cancel();
  JobOutcome outcome = runner->Wait();
  EXPECT_EQ(outcome.exit_code, -SIGTERM);
}

TEST_F(JobRunnerTest, CallbacksRunInOrderOnce) {
  std::vector<std::string> events;
  absl::Mutex mu;
  auto runner = JobRunner::Start(
      Launch({"sh", "-c", "exit 4"}), &clock_,
      [&](pid_t pid, absl::Time) {
        absl::MutexLock lock(&mu);
        events.push_back(pid > 0 ? "started" : "bad pid");
      },
      [&](const JobOutcome& outcome) {
        absl::MutexLock lock(&mu);
        events.push_back(absl::StrCat("exit ", outcome.exit_code));
      });
  runner->Wait();
  runner.reset();
  EXPECT_THAT(events, ::testing::ElementsAre("started", "exit 4"));
}

TEST_F(JobRunnerTest, DestructorKillsARunningJob) {
  pid_t pgid;
  {
    auto runner = JobRunner::Start(Launch({"sh", "-c", "sleep 1000 & wait"}), &clock_);
    pgid = runner->WaitForSpawn();
    ASSERT_GT(pgid, 0);
  }
  EXPECT_TRUE(PollUntil([&] { return GroupMembers(pgid).empty(); }));
}

}  // namespace
}  // namespace deja::worker
