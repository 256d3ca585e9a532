// End-to-end tests: real daemons on port 0, gRPC only.
#include "tests/integration/cluster.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/hash.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace deja::testing {
namespace {

namespace fs = std::filesystem;
using deja::v1::Job;
using deja::v1::JobSpec;
using ::testing::HasSubstr;

JobSpec Shell(const std::string& script, const std::string& project = "it") {
  JobSpec spec;
  spec.set_project(project);
  spec.mutable_app()->set_name("sh");
  for (const char* w : {"sh", "-c"}) spec.mutable_app()->add_command(w);
  spec.mutable_app()->add_command(script);
  return spec;
}

Job Await(Cluster& c, const std::string& id, absl::Duration timeout = absl::Seconds(30)) {
  auto job = c.client().WaitForJob(id, timeout);
  EXPECT_TRUE(job.ok()) << job.status();
  return job.ok() ? *job : Job();
}

std::string SubmitId(Cluster& c, const JobSpec& spec, bool* reused = nullptr) {
  auto r = c.client().Submit(spec);
  EXPECT_TRUE(r.ok()) << r.status();
  if (!r.ok()) return "";
  if (reused != nullptr) *reused = r->reused();
  return r->job().job_id();
}

bool StateIs(Cluster& c, const std::string& id, deja::v1::JobState state) {
  auto job = c.client().GetJob(id);
  return job.ok() && job->state() == state;
}

// Regular files under `dir`, relative path -> content.
std::map<std::string, std::string> Files(const std::string& dir) {
  std::map<std::string, std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (e.is_regular_file()) {
      out[e.path().lexically_relative(dir).string()] = ReadFile(e.path().string());
    }
  }
  return out;
}

bool ProcessGone(pid_t pid) {
  if (kill(pid, 0) != 0 && errno == ESRCH) return true;
  std::string stat = ReadFile("/proc/" + std::to_string(pid) + "/stat");
  size_t paren = stat.rfind(')');
  return paren != std::string::npos && paren + 2 < stat.size() && stat[paren + 2] == 'Z';
}

TEST(ClusterTest, RunsAJobAndItsLogsComeBack) {
  Cluster c;
  c.StartWorker("w1");
  ASSERT_TRUE(c.WaitForWorkers(1));
  std::string id = SubmitId(c, Shell("echo out; echo err >&2; echo data > result.txt"));
  Job job = Await(c, id);
  EXPECT_EQ(job.state(), deja::v1::SUCCEEDED) << job.message();
  EXPECT_EQ(job.exit_code(), 0);
  EXPECT_EQ(job.worker_id(), "w1");
  EXPECT_EQ(*c.client().ReadLogs(id, deja::v1::LOG_STDOUT), "out\n");
  EXPECT_EQ(*c.client().ReadLogs(id, deja::v1::LOG_STDERR), "err\n");
  EXPECT_EQ(ReadFile(c.Workspace("w1", id) + "/result.txt"), "data\n");
  EXPECT_EQ(job.manifest().files(), 3u);
  auto files = c.client().ListJobFiles(id, "", 0);
  ASSERT_TRUE(files.ok()) << files.status();
  std::vector<std::string> paths;
  for (const auto& f : files->files()) paths.push_back(f.path());
  EXPECT_THAT(paths, ::testing::ElementsAre("logs/stderr", "logs/stdout", "result.txt"));
  EXPECT_EQ(files->next_page_token(), "");
}

TEST(ClusterTest, IdenticalJobIsReusedFromACopyOfTheWorkspace) {
  Cluster c;
  c.StartWorker("w1");
  ASSERT_TRUE(c.WaitForWorkers(1));
  JobSpec spec = Shell("mkdir -p out; echo model > out/model.bin; echo trained; sleep 0.3");
  std::string first = SubmitId(c, spec);
  Job source = Await(c, first);
  ASSERT_EQ(source.state(), deja::v1::SUCCEEDED);
  const std::string src_dir = c.Workspace("w1", first);
  auto src_before = Files(src_dir);

  bool reused = false;
  std::string second = SubmitId(c, spec, &reused);
  EXPECT_TRUE(reused);
  Job copy = Await(c, second);
  ASSERT_EQ(copy.state(), deja::v1::SUCCEEDED) << copy.message();
  EXPECT_EQ(copy.reused_from(), first);
  EXPECT_GE(copy.time_saved_ms(), 250);  // the command sleeps 0.3 s
  EXPECT_EQ(copy.time_saved_ms(), source.run_time_ms());
  EXPECT_EQ(copy.job_hash(), source.job_hash());
  EXPECT_EQ(copy.reused_source_finished_at_ms(), source.finished_at_ms());

  const std::string dst_dir = c.Workspace("w1", second);
  auto copied = Files(dst_dir);
  ASSERT_TRUE(copied.contains("REUSED"));
  EXPECT_THAT(copied["REUSED"], HasSubstr("source_job=" + first));
  copied.erase("REUSED");
  EXPECT_EQ(copied, src_before) << "same files and logs";
  EXPECT_EQ(*c.client().ReadLogs(second, deja::v1::LOG_STDOUT), "trained\n");

  // Writing through the copy never reaches the source.
  for (const std::string rel : {"out/model.bin", "logs/stdout"}) {
    int fd = open((dst_dir + "/" + rel).c_str(), O_WRONLY | O_TRUNC);
    if (fd >= 0) {
      ASSERT_EQ(write(fd, "tampered", 8), 8);
      close(fd);
    } else {
      EXPECT_EQ(errno, EACCES);
    }
  }
  EXPECT_EQ(Files(src_dir), src_before);
}

TEST(ClusterTest, DifferentParamRunsFresh) {
  Cluster c;
  c.StartWorker("w1");
  ASSERT_TRUE(c.WaitForWorkers(1));
  JobSpec spec = Shell("echo ${params.n} > n.txt");
  (*spec.mutable_params())["n"] = "1";
  Job one = Await(c, SubmitId(c, spec));
  ASSERT_EQ(one.state(), deja::v1::SUCCEEDED);
  (*spec.mutable_params())["n"] = "2";
  bool reused = true;
  std::string id = SubmitId(c, spec, &reused);
  EXPECT_FALSE(reused);
  Job two = Await(c, id);
  EXPECT_EQ(two.state(), deja::v1::SUCCEEDED);
  EXPECT_TRUE(two.reused_from().empty());
  EXPECT_NE(two.job_hash(), one.job_hash());
  EXPECT_EQ(ReadFile(c.Workspace("w1", id) + "/n.txt"), "2\n");
}

TEST(ClusterTest, FailedJobIsNotMemoized) {
  Cluster c;
  c.StartWorker("w1");
  ASSERT_TRUE(c.WaitForWorkers(1));
  const std::string side = c.root() + "/runs";
  JobSpec spec = Shell("echo run >> " + side + "; exit 3");
  Job first = Await(c, SubmitId(c, spec));
  EXPECT_EQ(first.state(), deja::v1::FAILED);
  EXPECT_EQ(first.exit_code(), 3);
  EXPECT_THAT(first.message(), HasSubstr("exited with code 3"));
  bool reused = true;
  Job second = Await(c, SubmitId(c, spec, &reused));
  EXPECT_FALSE(reused);
  EXPECT_EQ(second.state(), deja::v1::FAILED);
  EXPECT_EQ(ReadFile(side), "run\nrun\n");
}

TEST(ClusterTest, TwoWorkersWithOneSlotEachBothGetWork) {
  Cluster c;
  c.StartWorker("w1");
  c.StartWorker("w2");
  ASSERT_TRUE(c.WaitForWorkers(2));
  const std::string gate = c.root() + "/gate";
  std::string wait = "while [ ! -e " + gate + " ]; do sleep 0.02; done; echo ";
  std::string a = SubmitId(c, Shell(wait + "a"));
  std::string b = SubmitId(c, Shell(wait + "b"));
  ASSERT_TRUE(PollUntil([&] {
    return StateIs(c, a, deja::v1::RUNNING) && StateIs(c, b, deja::v1::RUNNING);
  })) << "both jobs run at once";
  EXPECT_NE(c.client().GetJob(a)->worker_id(), c.client().GetJob(b)->worker_id());
  WriteFile(gate, "");
  EXPECT_EQ(Await(c, a).state(), deja::v1::SUCCEEDED);
  EXPECT_EQ(Await(c, b).state(), deja::v1::SUCCEEDED);
}

TEST(ClusterTest, DispatchAheadSendsTheNextJobBeforeTheSlotFrees) {
  Cluster c({"--dispatch_ahead=1"});
  c.StartWorker("w1");  // 1 slot
  ASSERT_TRUE(c.WaitForWorkers(1));
  const std::string gate = c.root() + "/gate";
  std::string a = SubmitId(c, Shell("while [ ! -e " + gate + " ]; do sleep 0.02; done"));
  std::string b = SubmitId(c, Shell("echo b"));
  std::string d = SubmitId(c, Shell("echo d"));
  ASSERT_TRUE(PollUntil([&] {
    return StateIs(c, a, deja::v1::RUNNING) && StateIs(c, b, deja::v1::ASSIGNED);
  })) << "b is sent to w1 while a runs, and waits there";
  EXPECT_EQ(c.client().GetJob(b)->worker_id(), "w1");
  EXPECT_TRUE(StateIs(c, d, deja::v1::QUEUED)) << "one ahead, not more";
  WriteFile(gate, "");
  EXPECT_EQ(Await(c, a).state(), deja::v1::SUCCEEDED);
  EXPECT_EQ(Await(c, b).state(), deja::v1::SUCCEEDED);
  EXPECT_EQ(Await(c, d).state(), deja::v1::SUCCEEDED);
}

TEST(ClusterTest, SchedulerRejectsAnOutOfRangeDispatchAhead) {
  CommandResult r =
      RunCommand(DEJA_SCHEDULER_BIN, {"--data_dir=/nonexistent", "--dispatch_ahead=-1"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("--dispatch_ahead: must be between 0 and 64, got -1"));
}

TEST(ClusterTest, SigkilledWorkerRequeuesItsJobToAnotherWorker) {
  Cluster c({"--worker_timeout=1s", "--heartbeat_interval=200ms"});
  c.StartWorker("w1");
  c.StartWorker("w2");
  ASSERT_TRUE(c.WaitForWorkers(2));
  const std::string gate = c.root() + "/gate";
  const std::string runs = c.root() + "/runs";
  JobSpec spec = Shell("echo start >> " + runs + "; while [ ! -e " + gate +
                       " ]; do sleep 0.02; done; echo done >> " + runs);
  std::string id = SubmitId(c, spec);
  ASSERT_TRUE(PollUntil([&] { return StateIs(c, id, deja::v1::RUNNING); }));
  const std::string victim = c.client().GetJob(id)->worker_id();
  const std::string survivor = victim == "w1" ? "w2" : "w1";

  // The victim's machine dies: the worker and the job it runs.
  c.KillWorker(victim, SIGKILL);
  KillStrayJobs(c.WorkDir(victim));
  ASSERT_TRUE(PollUntil([&] {
    auto job = c.client().GetJob(id);
    return job.ok() && job->attempt() == 2 && job->state() == deja::v1::RUNNING;
  })) << "requeued to the survivor";
  EXPECT_EQ(c.client().GetJob(id)->worker_id(), survivor);
  EXPECT_THAT(c.client().GetJob(id)->message(), HasSubstr("requeued (attempt 2 of 3)"));
  WriteFile(gate, "");
  Job job = Await(c, id);
  EXPECT_EQ(job.state(), deja::v1::SUCCEEDED);
  EXPECT_EQ(job.attempt(), 2u);
  EXPECT_EQ(ReadFile(runs), "start\nstart\ndone\n") << "completed exactly once";
}

TEST(ClusterTest, WorkerSilentPastTheTimeoutLosesItsJobAndTheLateAttemptIsKilled) {
  Cluster c({"--worker_timeout=1s", "--heartbeat_interval=200ms"});
  c.StartWorker("w1");
  c.StartWorker("w2");
  ASSERT_TRUE(c.WaitForWorkers(2));
  const std::string gate = c.root() + "/gate";
  const std::string runs = c.root() + "/runs";
  std::string id = SubmitId(
      c, Shell("echo $$ > " + c.root() + "/$DEJA_JOB_ID.pid; echo start >> " + runs +
               "; while [ ! -e " + gate + " ]; do sleep 0.02; done; echo done >> " + runs));
  ASSERT_TRUE(PollUntil([&] { return StateIs(c, id, deja::v1::RUNNING); }));
  const std::string victim = c.client().GetJob(id)->worker_id();
  const std::string survivor = victim == "w1" ? "w2" : "w1";
  std::string pid_file = c.root() + "/" + id + ".pid";
  ASSERT_TRUE(PollUntil([&] { return !ReadFile(pid_file).empty(); }));
  pid_t first_attempt = std::stoi(ReadFile(pid_file));

  // The worker hangs: no heartbeats, though its stream stays open.
  c.SignalWorker(victim, SIGSTOP);
  ASSERT_TRUE(PollUntil([&] {
    auto job = c.client().GetJob(id);
    return job.ok() && job->attempt() == 2 && job->state() == deja::v1::RUNNING;
  }));
  EXPECT_EQ(c.client().GetJob(id)->worker_id(), survivor);
  EXPECT_THAT(c.client().GetJob(id)->message(), HasSubstr("missed heartbeats"));

  // It wakes up, reconnects holding attempt 1, and is told to kill it.
  c.SignalWorker(victim, SIGCONT);
  EXPECT_TRUE(PollUntil([&] { return ProcessGone(first_attempt); }))
      << "the superseded attempt must not run on";
  ASSERT_TRUE(c.WaitForWorkers(2));
  WriteFile(gate, "");
  Job job = Await(c, id);
  EXPECT_EQ(job.state(), deja::v1::SUCCEEDED);
  EXPECT_EQ(job.attempt(), 2u);
  EXPECT_EQ(job.worker_id(), survivor);
  EXPECT_EQ(ReadFile(runs), "start\nstart\ndone\n") << "completed exactly once";
}

TEST(ClusterTest, ResultsOfJobsThatEndWhileTheSchedulerIsDownAreDelivered) {
  Cluster c({"--worker_timeout=5s", "--heartbeat_interval=200ms"});
  c.StartWorker("w1");
  ASSERT_TRUE(c.WaitForWorkers(1));
  const std::string gate = c.root() + "/gate";
  const std::string runs = c.root() + "/runs";
  std::string id =
      SubmitId(c, Shell("while [ ! -e " + gate + " ]; do sleep 0.02; done; echo done >> " + runs));
  ASSERT_TRUE(PollUntil([&] { return StateIs(c, id, deja::v1::RUNNING); }));
  c.StopScheduler(SIGKILL);
  WriteFile(gate, "");
  ASSERT_TRUE(PollUntil([&] { return ReadFile(runs) == "done\n"; })) << "the job kept running";
  c.StartScheduler();
  ASSERT_TRUE(PollUntil([&] { return StateIs(c, id, deja::v1::SUCCEEDED); }))
      << "the worker delivered the result after reconnecting";
  Job job = *c.client().GetJob(id);
  EXPECT_EQ(job.attempt(), 1u);
  EXPECT_EQ(job.exit_code(), 0);
  EXPECT_EQ(job.worker_id(), "w1");
}

TEST(ClusterTest, RestartedSchedulerKeepsJobsAndMemoAndRunningJobs) {
  Cluster c({"--worker_timeout=3s", "--heartbeat_interval=200ms"});
  c.StartWorker("w1", 2);
  ASSERT_TRUE(c.WaitForWorkers(1));
  JobSpec spec = Shell("echo hello > hello.txt");
  std::string done_id = SubmitId(c, spec);
  ASSERT_EQ(Await(c, done_id).state(), deja::v1::SUCCEEDED);
  const std::string gate = c.root() + "/gate";
  const std::string runs = c.root() + "/runs";
  std::string running_id =
      SubmitId(c, Shell("while [ ! -e " + gate + " ]; do sleep 0.02; done; echo done >> " + runs));
  ASSERT_TRUE(PollUntil([&] { return StateIs(c, running_id, deja::v1::RUNNING); }));

  c.StopScheduler(SIGKILL);
  c.StartScheduler();
  // The client's channel notices the new server on its next attempt.
  ASSERT_TRUE(PollUntil([&] { return c.client().GetJob(done_id).ok(); }));
  EXPECT_EQ(c.client().GetJob(done_id)->state(), deja::v1::SUCCEEDED);
  ASSERT_TRUE(c.WaitForWorkers(1));

  // The running job is reclaimed by its worker, not rerun.
  WriteFile(gate, "");
  Job finished = Await(c, running_id);
  EXPECT_EQ(finished.state(), deja::v1::SUCCEEDED) << finished.message();
  EXPECT_EQ(finished.attempt(), 1u);
  EXPECT_EQ(ReadFile(runs), "done\n");

  // The memo entry survived too.
  bool reused = false;
  Job again = Await(c, SubmitId(c, spec, &reused));
  EXPECT_TRUE(reused);
  EXPECT_EQ(again.reused_from(), done_id);
  EXPECT_EQ(again.state(), deja::v1::SUCCEEDED);
}

// Issue 12, finding 1: a job whose command exits 0 while the scheduler (and
// so the content store) is down must not fail for that: the worker retries
// the upload of its outputs until the store is back.
TEST(ClusterTest, AJobThatFinishesWhileTheSchedulerIsDownStillSucceeds) {
  Cluster c({"--worker_timeout=3s", "--heartbeat_interval=200ms"});
  c.StartWorker("w1");
  ASSERT_TRUE(c.WaitForWorkers(1));
  const std::string gate = c.root() + "/gate";
  JobSpec spec = Shell("while [ ! -e " + gate + " ]; do sleep 0.02; done; echo out > result.txt");
  spec.add_outputs("result.txt");
  const std::string id = SubmitId(c, spec);
  ASSERT_TRUE(PollUntil([&] { return StateIs(c, id, deja::v1::RUNNING); }));

  c.StopScheduler(SIGKILL);
  WriteFile(gate, "");
  // The command has exited and the worker has found the store down.
  const std::string log = c.root() + "/worker-w1.log";
  ASSERT_TRUE(PollUntil([&] {
    return absl::StrContains(ReadFile(log), "content store call failed (attempt 1)");
  })) << ReadFile(log);
  c.StartScheduler();

  Job job = Await(c, id);
  EXPECT_EQ(job.state(), deja::v1::SUCCEEDED) << job.message();
  EXPECT_EQ(job.attempt(), 1u);
  ASSERT_EQ(job.outputs_size(), 1);
  EXPECT_EQ(job.outputs(0).path(), "result.txt");
}

TEST(ClusterTest, CancelKillsTheWholeProcessGroup) {
  Cluster c;
  c.StartWorker("w1");
  ASSERT_TRUE(c.WaitForWorkers(1));
  const std::string pids = c.root() + "/pids";
  std::string id =
      SubmitId(c, Shell("sleep 1000 & echo $! >> " + pids + "; sleep 1000 & echo $! >> " + pids +
                        "; echo $$ >> " + pids + "; wait"));
  ASSERT_TRUE(PollUntil([&] {
    return std::vector<std::string>(absl::StrSplit(ReadFile(pids), '\n', absl::SkipEmpty()))
               .size() == 3;
  }));
  auto cancelled = c.client().CancelJob(id);
  ASSERT_TRUE(cancelled.ok()) << cancelled.status();
  EXPECT_EQ(cancelled->state(), deja::v1::CANCELLED);
  for (const auto& pid : absl::StrSplit(ReadFile(pids), '\n', absl::SkipEmpty())) {
    pid_t p = std::stoi(std::string(pid));
    EXPECT_TRUE(PollUntil([&] { return ProcessGone(p); })) << "pid " << p << " survived";
  }
  Job job = Await(c, id);
  EXPECT_EQ(job.state(), deja::v1::CANCELLED);
  EXPECT_EQ(c.client().CancelJob(id).status().code(), absl::StatusCode::kFailedPrecondition);
}

// Issue 12, finding 2: the processes of a SIGKILLed worker's job kept
// running (and writing) while the scheduler ran the job again. A restarted
// worker kills them before it registers.
std::vector<pid_t> Pids(const std::string& pids) {
  std::vector<pid_t> out;
  for (const auto& p : absl::StrSplit(ReadFile(pids), '\n', absl::SkipEmpty())) {
    out.push_back(std::stoi(std::string(p)));
  }
  return out;
}

// Starts worker w1 and submits a job that runs `first` and then, in the
// background, `background` (a process that runs until killed); returns the
// job id once that process's pid and its shell's are in `pids`.
std::string StartTwoProcesses(Cluster& c, const std::string& pids, const std::string& first = "",
                              const std::string& background = "sleep 1000") {
  c.StartWorker("w1");
  EXPECT_TRUE(c.WaitForWorkers(1));
  const std::string id = SubmitId(
      c, Shell(first + background + " & echo $! >> " + pids + "; echo $$ >> " + pids + "; wait"));
  EXPECT_TRUE(PollUntil([&] { return Pids(pids).size() == 2; }));
  return id;
}

// Whether w1's log comes to say `text`.
bool W1Logs(Cluster& c, const std::string& text) {
  return PollUntil([&] { return absl::StrContains(ReadFile(c.root() + "/worker-w1.log"), text); });
}

// Issue 12, finding 2: 16 job processes outlived their killed worker. One
// that left its job's process group (setsid) outlived it too.
TEST(ClusterTest, AKilledWorkersJobsDieWithIt) {
  Cluster c;
  const std::string pids = c.root() + "/pids";
  StartTwoProcesses(c, pids, "", "setsid sleep 1000");

  c.KillWorker("w1", SIGKILL);  // not restarted: its watchdog kills the jobs
  for (pid_t p : Pids(pids)) {
    EXPECT_TRUE(PollUntil([&] { return ProcessGone(p); })) << "pid " << p << " outlived its worker";
  }
  EXPECT_TRUE(W1Logs(c, "watchdog: the worker is gone; killed job"));
}

// Issue 12, finding 2: pausing a worker (SIGSTOP) past --worker_timeout let
// its job run on while the scheduler ran it again elsewhere.
TEST(ClusterTest, AStuckWorkersJobsAreStoppedBeforeTheyAreRunAgain) {
  Cluster c({"--worker_timeout=3s", "--heartbeat_interval=200ms"});
  const std::string pids = c.root() + "/pids";
  const std::string again = c.root() + "/again";
  const std::string id =
      StartTwoProcesses(c, pids, "if [ -e " + again + " ]; then exit 0; fi; touch " + again + "; ");

  c.SignalWorker("w1", SIGSTOP);
  for (pid_t p : Pids(pids)) {
    EXPECT_TRUE(PollUntil([&] { return ProcessGone(p); }, absl::Seconds(20)))
        << "pid " << p << " ran on while its worker was stuck";
  }
  // Resumed once the scheduler has given up on it (attempt 2 queued): its
  // stale stream is dropped and it takes attempt 2 afresh. Resumed before,
  // its hand-back races the drop of its stream, which may cost an attempt.
  ASSERT_TRUE(PollUntil([&] {
    auto job = c.client().GetJob(id);
    return job.ok() && job->attempt() >= 2;
  }));
  c.SignalWorker("w1", SIGCONT);
  Job job = Await(c, id);
  EXPECT_EQ(job.state(), deja::v1::SUCCEEDED) << job.message();
  EXPECT_EQ(job.attempt(), 2u);
  EXPECT_TRUE(W1Logs(c, "watchdog: the worker has not heard from the scheduler"));
}

TEST(ClusterTest, ARestartedWorkerKillsTheJobsItsPreviousRunLeft) {
  Cluster c({"--worker_timeout=2s", "--heartbeat_interval=200ms"});
  const std::string pids = c.root() + "/pids";
  StartTwoProcesses(c, pids);

  // Worker and watchdog at once, as when the whole host was stopped: the
  // watchdog, stopped first, does nothing about the worker's death.
  const pid_t watchdog = c.watchdog_pid("w1");
  const pid_t worker = c.worker_pid("w1");
  kill(watchdog, SIGSTOP);
  kill(worker, SIGKILL);
  ASSERT_TRUE(PollUntil([&] { return ProcessGone(worker); }));
  kill(watchdog, SIGKILL);
  c.KillWorker("w1", SIGKILL);  // waits for the watchdog
  for (pid_t p : Pids(pids)) EXPECT_FALSE(ProcessGone(p)) << "pid " << p << " died with its worker";
  c.StartWorker("w1");
  for (pid_t p : Pids(pids)) {
    EXPECT_TRUE(PollUntil([&] { return ProcessGone(p); })) << "pid " << p << " survived";
  }
  EXPECT_TRUE(W1Logs(c, "killed a job left running by this worker's previous run"));
}

// Issue 12, "operations are not failures": a `docker compose restart` (SIGTERM
// to the worker) turned a healthy job into "gave up after N attempts".
TEST(ClusterTest, AWorkerStoppedWithSigtermHandsItsJobBackWithoutUsingAnAttempt) {
  Cluster c({"--max_attempts=1", "--worker_timeout=3s", "--heartbeat_interval=200ms"});
  c.StartWorker("w1");
  ASSERT_TRUE(c.WaitForWorkers(1));
  const std::string gate = c.root() + "/gate";
  const std::string id =
      SubmitId(c, Shell("while [ ! -e " + gate + " ]; do sleep 0.02; done; echo ran"));
  ASSERT_TRUE(PollUntil([&] { return StateIs(c, id, deja::v1::RUNNING); }));

  c.KillWorker("w1", SIGTERM);  // waits for it to exit
  Job handed = *c.client().GetJob(id);
  EXPECT_EQ(handed.state(), deja::v1::QUEUED) << handed.message();
  EXPECT_THAT(handed.message(), ::testing::HasSubstr("worker w1 stopped (SIGTERM)"));
  EXPECT_EQ(handed.handed_back(), 1u);

  c.StartWorker("w2");
  WriteFile(gate, "");
  Job job = Await(c, id);
  EXPECT_EQ(job.state(), deja::v1::SUCCEEDED) << job.message();
  EXPECT_EQ(job.attempt(), 2u);
  EXPECT_EQ(job.worker_id(), "w2");
}

// Two workers on one work dir would kill each other's jobs and take each
// other's records.
TEST(ClusterTest, ASecondWorkerOnTheSameWorkDirRefusesToStart) {
  Cluster c;
  c.StartWorker("w1");
  ASSERT_TRUE(c.WaitForWorkers(1));
  CommandResult second = RunCommand(
      DEJA_WORKER_BIN, {"--scheduler=" + c.address(), "--work_dir=" + c.WorkDir("w1"), "--id=w2",
                        "--tls_ca=" + c.CaFile(), "--token_file=" + c.access().AdminTokenFile()});
  EXPECT_EQ(second.exit_code, 1);
  EXPECT_THAT(second.err,
              ::testing::HasSubstr(absl::StrCat("--work_dir ", c.WorkDir("w1"),
                                                " is in use by another deja-worker (pid ",
                                                c.watchdog_pid("w1"), "); stop it first")));
  EXPECT_EQ(ConnectedWorkers(c.client()), 1u);
}

TEST(ClusterTest, MalformedSubmitsAreRejectedNamingTheField) {
  Cluster c;
  struct Case {
    std::string field;
    std::function<void(JobSpec*)> mutate;
  };
  const std::vector<Case> cases = {
      {"app.command", [](JobSpec* s) { s->mutable_app()->clear_command(); }},
      {"project", [](JobSpec* s) { s->set_project("Bad Project!"); }},
      {"outputs[1]",
       [](JobSpec* s) {
         s->add_outputs("a.txt");
         s->add_outputs("a.txt");
       }},
      {"outputs[0]", [](JobSpec* s) { s->add_outputs("/etc/passwd"); }},
      {"outputs[0]", [](JobSpec* s) { s->add_outputs("../escape.txt"); }},
      {"app.command[3]",
       [](JobSpec* s) { s->mutable_app()->add_command(std::string(100 * 1024, 'x')); }},
      {"app.env[X]",
       [](JobSpec* s) { (*s->mutable_app()->mutable_env())["X"] = std::string(70000, 'x'); }},
      {"params[p]", [](JobSpec* s) { (*s->mutable_params())["p"] = std::string(70000, 'x'); }},
  };
  for (const auto& tc : cases) {
    JobSpec spec = Shell("true");
    tc.mutate(&spec);
    auto r = c.client().Submit(spec);
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << tc.field;
    EXPECT_THAT(std::string(r.status().message()), HasSubstr(tc.field + ":")) << r.status();
  }
  auto jobs = c.client().ListJobs("", deja::v1::JOB_STATE_UNSPECIFIED, 0);
  ASSERT_TRUE(jobs.ok());
  EXPECT_TRUE(jobs->empty()) << "nothing stored for a rejected submit";
}

}  // namespace
}  // namespace deja::testing

namespace deja::testing {
namespace {

TEST(MemoClusterTest, ThreeConcurrentIdenticalSubmitsRunTheCommandOnce) {
  Cluster c;
  c.StartWorker("w1", 2);
  c.StartWorker("w2", 2);
  ASSERT_TRUE(c.WaitForWorkers(2));
  const std::string runs = c.root() + "/runs";
  const std::string gate = c.root() + "/gate";
  deja::v1::JobSpec spec;
  spec.set_project("sf");
  for (const std::string w : {"sh", "-c"}) spec.mutable_app()->add_command(w);
  spec.mutable_app()->add_command("echo run >> " + runs + "; while [ ! -e " + gate +
                                  " ]; do sleep 0.02; done; echo result > out.txt");
  spec.add_outputs("out.txt");
  std::vector<std::string> ids;
  std::vector<std::thread> submitters;
  std::mutex mu;
  for (int i = 0; i < 3; ++i) {
    submitters.emplace_back([&] {
      auto r = c.client().Submit(spec);
      ASSERT_TRUE(r.ok()) << r.status();
      std::lock_guard<std::mutex> lock(mu);
      ids.push_back(r->job().job_id());
    });
  }
  for (auto& t : submitters) t.join();
  ASSERT_EQ(ids.size(), 3u);
  int waiting = 0;
  for (const auto& id : ids) waiting += c.client().GetJob(id)->state() == deja::v1::WAITING;
  EXPECT_EQ(waiting, 2) << "two followers wait for the leader";
  WriteFile(gate, "");
  for (const auto& id : ids) {
    auto job = c.client().WaitForJob(id, absl::Seconds(30));
    ASSERT_TRUE(job.ok());
    EXPECT_EQ(job->state(), deja::v1::SUCCEEDED) << job->message();
    EXPECT_EQ(job->outputs_size(), 1);
  }
  EXPECT_EQ(ReadFile(runs), "run\n") << "the command ran once";
}

}  // namespace
}  // namespace deja::testing
