// The Worker end to end against an in-process fake scheduler, which also
// serves the content store (the worker's default): inputs placed before the
// command, outputs uploaded before the result, a reuse pulled from another
// worker's peer service.
#include "worker/worker.h"

#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <deque>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "common/clock.h"
#include "common/grpc_status.h"
#include "common/hash.h"
#include "common/transfer_window.h"
#include "deja/v1/peer.grpc.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/fakes/fake_content_store.h"
#include "tests/fakes/poll_until.h"
#include "tests/worker/test_util.h"
#include "worker/leftovers.h"
#include "worker/paths.h"

namespace deja::worker {
namespace {

using ::deja::testing::FakeContentStore;
using ::deja::testing::PollUntil;
using ::deja::worker::testing::HasExpiryRecord;
using ::deja::worker::testing::MakeTempDir;
using ::deja::worker::testing::ReadFile;
using ::deja::worker::testing::RemoveTempDir;
using ::deja::worker::testing::WriteFile;
using ::testing::HasSubstr;
using ::testing::StartsWith;

// Accepts workers, sends them what the test queues, records their results.
class FakeScheduler final : public deja::v1::WorkerService::Service {
 public:
  grpc::Status Connect(grpc::ServerContext*,
                       grpc::ServerReaderWriter<deja::v1::SchedulerMessage,
                                                deja::v1::WorkerMessage>* stream) override {
    deja::v1::WorkerMessage first;
    if (!stream->Read(&first) || !first.has_register_()) {
      return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "register first");
    }
    const std::string id = first.register_().worker_id();
    deja::v1::SchedulerMessage ack;
    ack.mutable_register_ack()->set_heartbeat_interval_ms(200);
    bool answer_heartbeats = false;
    {
      absl::MutexLock lock(&mu_);
      ack.mutable_register_ack()->set_worker_timeout_ms(worker_timeout_ms_);
      answer_heartbeats = answer_heartbeats_;
    }
    if (!stream->Write(ack)) return grpc::Status::OK;
    {
      absl::MutexLock lock(&mu_);
      registered_[id] = first.register_();
      closed_[id] = false;
    }
    std::thread reader([&] {
      deja::v1::WorkerMessage message;
      while (stream->Read(&message)) {
        absl::MutexLock lock(&mu_);
        if (message.has_result()) results_[message.result().job_id()] = message.result();
        if (message.has_heartbeat() && answer_heartbeats) {
          outgoing_[id].emplace_back().mutable_heartbeat_ack();
          cv_.SignalAll();
        }
        if (message.has_expired()) {
          expired_messages_.push_back(message.expired());
          for (const auto& job_id : message.expired().job_ids()) expired_[job_id] = id;
        }
      }
      absl::MutexLock lock(&mu_);
      closed_[id] = true;
      cv_.SignalAll();
    });
    while (true) {
      deja::v1::SchedulerMessage out;
      {
        absl::MutexLock lock(&mu_);
        while (!closed_[id] && outgoing_[id].empty()) cv_.Wait(&mu_);
        if (closed_[id]) break;
        out = std::move(outgoing_[id].front());
        outgoing_[id].pop_front();
      }
      stream->Write(out);
    }
    reader.join();
    return grpc::Status::OK;
  }

  // What the next RegisterAck says of the scheduler's --worker_timeout
  // (default 0: none), and whether heartbeats are answered on that stream.
  void SetWorkerTimeout(absl::Duration timeout, bool answer_heartbeats) {
    absl::MutexLock lock(&mu_);
    worker_timeout_ms_ = absl::ToInt64Milliseconds(timeout);
    answer_heartbeats_ = answer_heartbeats;
  }
  // Forgets the worker's registration and every result, so a test can wait
  // for the next Register and what it re-sends.
  void Forget(const std::string& worker_id) {
    absl::MutexLock lock(&mu_);
    registered_.erase(worker_id);
    results_.clear();
  }
  void Assign(const std::string& worker_id, const deja::v1::Assignment& assignment) {
    absl::MutexLock lock(&mu_);
    *outgoing_[worker_id].emplace_back().mutable_assignment() = assignment;
    cv_.SignalAll();
  }
  void Cancel(const std::string& worker_id, const std::string& job_id, uint32_t attempt) {
    absl::MutexLock lock(&mu_);
    deja::v1::CancelJob* cancel = outgoing_[worker_id].emplace_back().mutable_cancel();
    cancel->set_job_id(job_id);
    cancel->set_attempt(attempt);
    cv_.SignalAll();
  }
  void Ack(const std::string& worker_id, const std::string& job_id, uint32_t attempt,
           int64_t expires_at_ms) {
    absl::MutexLock lock(&mu_);
    deja::v1::ResultAck* ack = outgoing_[worker_id].emplace_back().mutable_result_ack();
    ack->set_job_id(job_id);
    ack->set_attempt(attempt);
    ack->set_expires_at_ms(expires_at_ms);
    cv_.SignalAll();
  }
  // The worker that reported `job_id`'s workspace expired, if one did.
  std::optional<std::string> ExpiredBy(const std::string& job_id) {
    absl::MutexLock lock(&mu_);
    auto it = expired_.find(job_id);
    if (it == expired_.end()) return std::nullopt;
    return it->second;
  }
  std::vector<deja::v1::WorkspacesExpired> ExpiredMessages() {
    absl::MutexLock lock(&mu_);
    return expired_messages_;
  }
  std::optional<deja::v1::Register> Registered(const std::string& worker_id) {
    absl::MutexLock lock(&mu_);
    auto it = registered_.find(worker_id);
    if (it == registered_.end()) return std::nullopt;
    return it->second;
  }
  std::optional<deja::v1::JobResult> Result(const std::string& job_id) {
    absl::MutexLock lock(&mu_);
    auto it = results_.find(job_id);
    if (it == results_.end()) return std::nullopt;
    return it->second;
  }

 private:
  absl::Mutex mu_;
  absl::CondVar cv_;
  std::map<std::string, deja::v1::Register> registered_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, bool> closed_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::deque<deja::v1::SchedulerMessage>> outgoing_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, deja::v1::JobResult> results_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::string> expired_ ABSL_GUARDED_BY(mu_);  // job id -> worker id
  std::vector<deja::v1::WorkspacesExpired> expired_messages_ ABSL_GUARDED_BY(mu_);
  int64_t worker_timeout_ms_ ABSL_GUARDED_BY(mu_) = 0;
  bool answer_heartbeats_ ABSL_GUARDED_BY(mu_) = false;
};

// A Worker running on its own thread in its own work dir (or in `dir`,
// which it then leaves behind).
struct RunningWorker {
  RunningWorker(const std::string& id, const std::string& scheduler, Clock* clock = nullptr,
                const std::string& dir = "")
      : keep_dir(!dir.empty()) {
    work_dir = keep_dir ? dir : MakeTempDir("worker_test_" + id);
    WorkerConfig config;
    config.scheduler_address = scheduler;
    config.content_store_address = scheduler;
    config.work_dir = work_dir;
    config.worker_id = id;
    config.advertise = "127.0.0.1:0";
    config.peer_listen = "127.0.0.1:0";
    config.cache_bytes = 1 << 20;
    config.initial_backoff = absl::Milliseconds(20);
    // Tests sweep with SweepNow() (the thread's sweep at start aside).
    config.sweep_interval = absl::Hours(1);
    worker = std::make_unique<Worker>(config, clock);
    thread = std::thread([this] { status = worker->Run(); });
  }
  ~RunningWorker() {
    worker->Stop();
    thread.join();
    worker.reset();
    if (!keep_dir) RemoveTempDir(work_dir);
  }

  const bool keep_dir;
  std::string work_dir;
  std::unique_ptr<Worker> worker;
  std::thread thread;
  absl::Status status;
};

class WorkerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    builder.RegisterService(&scheduler_);
    builder.RegisterService(&store_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(port_, 0);
    address_ = absl::StrCat("127.0.0.1:", port_);
  }
  void TearDown() override {
    workers_.clear();
    server_->Shutdown(absl::ToChronoTime(absl::Now() + absl::Seconds(1)));
  }

  RunningWorker& StartWorker(const std::string& id, Clock* clock = nullptr,
                             const std::string& dir = "") {
    workers_.push_back(std::make_unique<RunningWorker>(id, address_, clock, dir));
    EXPECT_TRUE(PollUntil([&] { return scheduler_.Registered(id).has_value(); }));
    return *workers_.back();
  }

  std::optional<deja::v1::JobResult> AwaitResult(const std::string& job_id) {
    PollUntil([&] { return scheduler_.Result(job_id).has_value(); }, absl::Seconds(20));
    return scheduler_.Result(job_id);
  }

  static deja::v1::Assignment Run(const std::string& job_id, const std::string& script) {
    deja::v1::Assignment a;
    a.set_kind(deja::v1::Assignment::RUN);
    a.set_job_id(job_id);
    a.set_attempt(1);
    a.add_argv("sh");
    a.add_argv("-c");
    a.add_argv(script);
    return a;
  }

  FakeScheduler scheduler_;
  FakeContentStore store_;
  int port_ = 0;
  std::string address_;
  std::unique_ptr<grpc::Server> server_;
  std::vector<std::unique_ptr<RunningWorker>> workers_;
};

TEST_F(WorkerTest, AdvertisesThePeerServicesBoundPort) {
  StartWorker("w-a");
  const std::string advertised = scheduler_.Registered("w-a")->advertise();
  EXPECT_THAT(advertised, StartsWith("127.0.0.1:"));
  EXPECT_NE(advertised, "127.0.0.1:0");
}

TEST_F(WorkerTest, PlacesInputsRunsAndUploadsOutputsBeforeReporting) {
  StartWorker("w-a");
  const deja::v1::BlobRef data = store_.Put("hello from the store\n");
  deja::v1::Assignment run = Run("job-1",
                                 "mkdir -p out && tr a-z A-Z < inputs/data > out/upper.txt && "
                                 "cp inputs/data out/copy.txt");
  deja::v1::InputRef* input = run.add_inputs();
  input->set_name("data");
  input->set_kind("file");
  input->set_digest(data.digest());
  input->set_size(data.size());
  run.add_outputs("out/*.txt");
  scheduler_.Assign("w-a", run);

  auto result = AwaitResult("job-1");
  ASSERT_TRUE(result.has_value());
  EXPECT_EQ(result->exit_code(), 0) << result->error();
  EXPECT_EQ(result->error(), "");
  ASSERT_EQ(result->outputs_size(), 2);
  EXPECT_EQ(result->outputs(0).path(), "out/copy.txt");
  EXPECT_EQ(result->outputs(0).digest(), data.digest());
  EXPECT_EQ(result->outputs(1).path(), "out/upper.txt");
  EXPECT_EQ(store_.Get(result->outputs(1).digest()), "HELLO FROM THE STORE\n");
  bool input_in_manifest = false;
  for (const auto& entry : result->manifest().files()) {
    input_in_manifest |= entry.path() == "inputs/data" && entry.digest() == data.digest();
  }
  EXPECT_TRUE(input_in_manifest);
}

// Sent ahead of a free slot (the scheduler's --dispatch_ahead), a RUN waits
// for the running one to end, in arrival order; a cancel drops it unstarted.
TEST_F(WorkerTest, RunsSentBeyondItsSlotsWaitForASlotAndACancelDropsThem) {
  RunningWorker& w = StartWorker("w-a");  // 1 slot
  scheduler_.Assign("w-a", Run("job-a", "touch started; while [ ! -e go ]; do sleep 0.02; done"));
  const std::string ws_a = paths::WorkspaceDir(w.work_dir, "job-a");
  ASSERT_TRUE(PollUntil([&] { return std::filesystem::exists(ws_a + "/started"); }));
  scheduler_.Assign("w-a", Run("job-b", "touch ran"));
  scheduler_.Assign("w-a", Run("job-c", "touch ran"));
  scheduler_.Cancel("w-a", "job-c", 1);

  // Messages are handled in order: once job-c's result is in, job-b is held.
  auto cancelled = AwaitResult("job-c");
  ASSERT_TRUE(cancelled.has_value());
  EXPECT_EQ(cancelled->exit_code(), -SIGTERM);
  EXPECT_THAT(cancelled->error(), HasSubstr("cancelled before it started"));
  EXPECT_FALSE(std::filesystem::exists(paths::WorkspaceDir(w.work_dir, "job-c")));
  EXPECT_FALSE(std::filesystem::exists(paths::WorkspaceDir(w.work_dir, "job-b") + "/ran"));
  EXPECT_FALSE(scheduler_.Result("job-b").has_value());

  WriteFile(ws_a + "/go", "");
  auto a = AwaitResult("job-a");
  auto b = AwaitResult("job-b");
  ASSERT_TRUE(a.has_value() && b.has_value());
  EXPECT_EQ(a->exit_code(), 0) << a->error();
  EXPECT_EQ(b->exit_code(), 0) << b->error();
  EXPECT_TRUE(std::filesystem::exists(paths::WorkspaceDir(w.work_dir, "job-b") + "/ran"));
}

TEST_F(WorkerTest, AMissingInputFailsTheJobUnstartedAndAnUnmatchedGlobIsNamed) {
  StartWorker("w-a");
  deja::v1::Assignment run = Run("job-1", "touch ran");
  deja::v1::InputRef* input = run.add_inputs();
  input->set_name("gone");
  input->set_kind("file");
  input->set_digest(HashBytes("never uploaded"));
  input->set_size(14);
  scheduler_.Assign("w-a", run);
  auto result = AwaitResult("job-1");
  ASSERT_TRUE(result.has_value());
  EXPECT_EQ(result->exit_code(), -1);
  EXPECT_THAT(result->error(), StartsWith("input \"gone\": "));

  deja::v1::Assignment run2 = Run("job-2", "echo hi > present.txt");
  run2.add_outputs("present.txt");
  run2.add_outputs("absent/*.csv");
  scheduler_.Assign("w-a", run2);
  result = AwaitResult("job-2");
  ASSERT_TRUE(result.has_value());
  EXPECT_EQ(result->exit_code(), 0);
  EXPECT_EQ(result->error(), "declared output \"absent/*.csv\" matched no file");
}

TEST_F(WorkerTest, AReuseIsPulledFromTheWorkerHoldingTheSource) {
  StartWorker("w-a");
  RunningWorker& b = StartWorker("w-b");
  deja::v1::Assignment run = Run("job-1", "mkdir out && echo result > out/r.txt");
  run.add_outputs("out/r.txt");
  scheduler_.Assign("w-a", run);
  auto source = AwaitResult("job-1");
  ASSERT_TRUE(source.has_value());
  ASSERT_EQ(source->exit_code(), 0) << source->error();

  deja::v1::Assignment reuse;
  reuse.set_kind(deja::v1::Assignment::MATERIALIZE);
  reuse.set_job_id("job-2");
  reuse.set_attempt(1);
  reuse.set_source_job_id("job-1");
  *reuse.mutable_source_manifest() = source->manifest();
  reuse.set_source_worker_id("w-a");
  reuse.set_source_address(scheduler_.Registered("w-a")->advertise());
  *reuse.mutable_source_outputs() = source->outputs();
  scheduler_.Assign("w-b", reuse);
  auto copied = AwaitResult("job-2");
  ASSERT_TRUE(copied.has_value());
  EXPECT_EQ(copied->exit_code(), 0) << copied->error();
  EXPECT_FALSE(copied->verification_failed());
  EXPECT_EQ(copied->manifest().SerializeAsString(), source->manifest().SerializeAsString());
  ASSERT_EQ(copied->outputs_size(), 1);
  EXPECT_EQ(copied->outputs(0).path(), "out/r.txt");
  EXPECT_EQ(ReadFile(paths::WorkspaceDir(b.work_dir, "job-2") + "/out/r.txt"), "result\n");
  EXPECT_THAT(ReadFile(paths::ReusedMarkerPath(b.work_dir, "job-2")),
              HasSubstr("source_worker=w-a\nmethod=peer\n"));

  // The holder lost the workspace: a verification failure, not a success.
  reuse.set_job_id("job-3");
  reuse.set_source_job_id("job-404");
  scheduler_.Assign("w-b", reuse);
  auto failed = AwaitResult("job-3");
  ASSERT_TRUE(failed.has_value());
  EXPECT_EQ(failed->exit_code(), -1);
  EXPECT_TRUE(failed->verification_failed());
  EXPECT_THAT(failed->error(), HasSubstr("job-404"));
  EXPECT_FALSE(std::filesystem::exists(paths::WorkspaceDir(b.work_dir, "job-3")));
}

// ---- Retention: expiry records, the sweeper, leases ----

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

class RetentionWorkerTest : public WorkerTest {
 protected:
  int64_t NowMs() { return ToMillis(clock_.Now()); }
  // Runs `script` as `job_id` on `worker_id` and waits for its result.
  deja::v1::JobResult RunJob(const std::string& worker_id, const std::string& job_id,
                             const std::string& script, const std::string& output = "") {
    deja::v1::Assignment run = Run(job_id, script);
    if (!output.empty()) run.add_outputs(output);
    scheduler_.Assign(worker_id, run);
    auto result = AwaitResult(job_id);
    EXPECT_TRUE(result.has_value());
    if (!result.has_value()) return {};
    EXPECT_EQ(result->exit_code(), 0) << result->error();
    return *result;
  }
  static deja::v1::Assignment Reuse(const std::string& job_id, const std::string& source_job_id,
                                    const deja::v1::JobResult& source) {
    deja::v1::Assignment reuse;
    reuse.set_kind(deja::v1::Assignment::MATERIALIZE);
    reuse.set_job_id(job_id);
    reuse.set_attempt(1);
    reuse.set_source_job_id(source_job_id);
    *reuse.mutable_source_manifest() = source.manifest();
    *reuse.mutable_source_outputs() = source.outputs();
    return reuse;
  }
  static bool Exists(const std::string& path) { return std::filesystem::exists(path); }

  FakeClock clock_;
};

TEST_F(RetentionWorkerTest, AnAckedWorkspaceIsKeptUntilItsExpiryThenDeletedAndReported) {
  RunningWorker& a = StartWorker("w-a", &clock_);
  RunJob("w-a", "job-1", "echo intermediate > scratch.txt");
  RunJob("w-a", "job-unacked", "echo kept > scratch.txt");
  scheduler_.Ack("w-a", "job-1", 1, NowMs() + 3'600'000);
  ASSERT_TRUE(PollUntil([&] { return HasExpiryRecord(a.work_dir, "job-1"); }));

  auto swept = a.worker->SweepNow();
  ASSERT_TRUE(swept.ok()) << swept.status();
  EXPECT_THAT(*swept, ::testing::IsEmpty());
  clock_.Advance(absl::Minutes(59));
  swept = a.worker->SweepNow();
  ASSERT_TRUE(swept.ok());
  EXPECT_THAT(*swept, ::testing::IsEmpty());
  EXPECT_EQ(ReadFile(paths::WorkspaceDir(a.work_dir, "job-1") + "/scratch.txt"), "intermediate\n");

  clock_.Advance(absl::Minutes(2));
  swept = a.worker->SweepNow();
  ASSERT_TRUE(swept.ok());
  EXPECT_THAT(*swept, ::testing::ElementsAre("job-1"));
  EXPECT_FALSE(Exists(paths::WorkspaceDir(a.work_dir, "job-1")));       // files and logs
  EXPECT_TRUE(Exists(paths::WorkspaceDir(a.work_dir, "job-unacked")));  // no record
  ASSERT_TRUE(PollUntil([&] { return scheduler_.ExpiredBy("job-1").has_value(); }));
  EXPECT_EQ(*scheduler_.ExpiredBy("job-1"), "w-a");
  const auto messages = scheduler_.ExpiredMessages();
  ASSERT_EQ(messages.size(), 1u);
  EXPECT_THAT(messages[0].job_ids(), ::testing::ElementsAre("job-1"));
  // Reported: the record goes.
  EXPECT_TRUE(PollUntil([&] { return !HasExpiryRecord(a.work_dir, "job-1"); }));
  swept = a.worker->SweepNow();
  ASSERT_TRUE(swept.ok());
  EXPECT_THAT(*swept, ::testing::IsEmpty());
  EXPECT_EQ(scheduler_.ExpiredMessages().size(), 1u);
}

TEST_F(RetentionWorkerTest, ExpiryRecordsSurviveARestart) {
  const std::string dir = MakeTempDir("worker_test_restart");
  {
    RunningWorker& a = StartWorker("w-a", &clock_, dir);
    RunJob("w-a", "job-1", "echo intermediate > scratch.txt");
    scheduler_.Ack("w-a", "job-1", 1, NowMs() + 3'600'000);
    ASSERT_TRUE(PollUntil([&] { return HasExpiryRecord(a.work_dir, "job-1"); }));
    workers_.clear();  // stopped; the work dir stays
  }
  ASSERT_TRUE(Exists(paths::WorkspaceDir(dir, "job-1")));
  clock_.Advance(absl::Hours(2));

  RunningWorker& again = StartWorker("w-a", &clock_, dir);  // w-a registered before
  // The sweep at start (or this one, once Run() has loaded the records)
  // deletes it; it is reported once the stream is up.
  ASSERT_TRUE(PollUntil([&] { return again.worker->SweepNow().ok(); }));
  EXPECT_FALSE(Exists(paths::WorkspaceDir(dir, "job-1")));
  EXPECT_TRUE(PollUntil([&] { return scheduler_.ExpiredBy("job-1").has_value(); }));
  workers_.clear();
  RemoveTempDir(dir);
}

TEST_F(RetentionWorkerTest, ANotKeptAttemptIsDeletedUnlessAnotherAttemptOfTheJobRunsThere) {
  RunningWorker& a = StartWorker("w-a", &clock_);
  RunJob("w-a", "job-1", "echo superseded > f");
  RunJob("w-a", "marker", "echo m > f");
  scheduler_.Ack("w-a", "job-1", 1, 0);
  EXPECT_TRUE(PollUntil([&] {
    return !Exists(paths::WorkspaceDir(a.work_dir, "job-1")) &&
           !HasExpiryRecord(a.work_dir, "job-1");
  }));

  // job-2: attempt 1 finished (unacked), attempt 2 runs in the same
  // workspace when attempt 1 is told its workspace is not kept.
  RunJob("w-a", "job-2", "echo one > f");
  deja::v1::Assignment second = Run("job-2",
                                    "echo two > f; touch started; "
                                    "while [ ! -e go ]; do sleep 0.02; done");
  second.set_attempt(2);
  scheduler_.Assign("w-a", second);
  const std::string ws = paths::WorkspaceDir(a.work_dir, "job-2");
  ASSERT_TRUE(PollUntil([&] { return Exists(ws + "/started"); }));
  scheduler_.Ack("w-a", "job-2", 1, 0);
  // Acks are applied in order: once the marker's workspace is gone, job-2
  // attempt 1's ack has been handled.
  scheduler_.Ack("w-a", "marker", 1, 0);
  ASSERT_TRUE(PollUntil([&] { return !Exists(paths::WorkspaceDir(a.work_dir, "marker")); }));
  EXPECT_TRUE(Exists(ws + "/started"));
  EXPECT_EQ(ReadFile(ws + "/f"), "two\n");
  auto swept = a.worker->SweepNow();
  ASSERT_TRUE(swept.ok());
  EXPECT_THAT(*swept, ::testing::IsEmpty());
  EXPECT_TRUE(Exists(ws + "/started"));

  WriteFile(ws + "/go", "");
  ASSERT_TRUE(PollUntil(
      [&] {
        auto r = scheduler_.Result("job-2");
        return r.has_value() && r->attempt() == 2;
      },
      absl::Seconds(20)));
  scheduler_.Ack("w-a", "job-2", 2, NowMs() + 60'000);
  ASSERT_TRUE(PollUntil([&] { return HasExpiryRecord(a.work_dir, "job-2"); }));
  swept = a.worker->SweepNow();
  ASSERT_TRUE(swept.ok());
  EXPECT_THAT(*swept, ::testing::IsEmpty());
  EXPECT_EQ(ReadFile(ws + "/f"), "two\n");
  // A late "not kept" for attempt 1 does not touch attempt 2's kept workspace.
  scheduler_.Ack("w-a", "job-2", 1, 0);
  RunJob("w-a", "marker2", "true");
  scheduler_.Ack("w-a", "marker2", 1, 0);
  ASSERT_TRUE(PollUntil([&] { return !Exists(paths::WorkspaceDir(a.work_dir, "marker2")); }));
  EXPECT_EQ(ReadFile(ws + "/f"), "two\n");
  // Not kept is never reported as expired.
  EXPECT_THAT(scheduler_.ExpiredMessages(), ::testing::IsEmpty());
}

// Reads a FetchWorkspace stream to its end; OK when every file arrived with
// the manifest's size and digest.
absl::Status ReadAndVerify(grpc::ClientReaderInterface<deja::v1::WorkspaceChunk>* reader,
                           const deja::v1::Manifest& manifest) {
  deja::v1::WorkspaceChunk chunk;
  std::map<std::string, std::unique_ptr<Hasher>> hashes;
  std::map<std::string, uint64_t> sizes;
  std::string current;
  while (reader->Read(&chunk)) {
    if (chunk.has_file()) {
      current = chunk.file().path();
      hashes[current] = std::make_unique<Hasher>();
    } else if (chunk.chunk_case() == deja::v1::WorkspaceChunk::kData) {
      if (current.empty()) return absl::InternalError("data before file");
      hashes[current]->Update(chunk.data());
      sizes[current] += chunk.data().size();
    }
  }
  if (grpc::Status st = reader->Finish(); !st.ok()) return FromGrpcStatus(st);
  for (const auto& entry : manifest.files()) {
    auto it = hashes.find(entry.path());
    if (it == hashes.end()) return absl::DataLossError(entry.path() + " missing");
    if (sizes[entry.path()] != entry.size() || it->second->HexDigest() != entry.digest()) {
      return absl::DataLossError(entry.path() + " differs");
    }
  }
  return absl::OkStatus();
}

// A failed copy (attempt 1) and the fresh run after it (attempt 2) share the
// workspace; attempt 2 finishes before attempt 1's "not kept" ack is applied,
// and both acks can reach the sweeper together: attempt 2's workspace stays.
TEST_F(RetentionWorkerTest, ALateNotKeptAckOfAnOlderAttemptSparesTheNewerAttemptsWorkspace) {
  RunningWorker& a = StartWorker("w-a", &clock_);
  RunJob("w-a", "job-3", "echo one > f");
  deja::v1::Assignment second = Run("job-3", "echo two > f");
  second.set_attempt(2);
  scheduler_.Assign("w-a", second);
  ASSERT_TRUE(PollUntil([&] {
    auto r = scheduler_.Result("job-3");
    return r.has_value() && r->attempt() == 2;
  }));
  scheduler_.Ack("w-a", "job-3", 1, 0);
  scheduler_.Ack("w-a", "job-3", 2, NowMs() + 60'000);
  const std::string ws = paths::WorkspaceDir(a.work_dir, "job-3");
  ASSERT_TRUE(PollUntil([&] { return HasExpiryRecord(a.work_dir, "job-3"); }));
  auto swept = a.worker->SweepNow();
  ASSERT_TRUE(swept.ok());
  EXPECT_THAT(*swept, ::testing::IsEmpty());
  EXPECT_EQ(ReadFile(ws + "/f"), "two\n");
}

TEST_F(RetentionWorkerTest, ALeaseProtectsASourceDuringASlowPeerCopy) {
  RunningWorker& a = StartWorker("w-a", &clock_);
  // 32 MiB: far more than the 4 MiB stream window, so the server is still
  // in the middle of the stream while the test does not read.
  const deja::v1::JobResult source =
      RunJob("w-a", "job-1",
             "head -c 65536 /dev/urandom > rand.bin && truncate -s 32M big.bin && echo r > r.txt",
             "r.txt");
  scheduler_.Ack("w-a", "job-1", 1, NowMs() + 3'600'000);
  ASSERT_TRUE(PollUntil([&] { return HasExpiryRecord(a.work_dir, "job-1"); }));

  grpc::ChannelArguments args;
  BoundTransferWindow(&args);
  auto stub = deja::v1::Peer::NewStub(
      grpc::CreateCustomChannel(a.worker->advertise(), grpc::InsecureChannelCredentials(), args));
  grpc::ClientContext context;
  deja::v1::FetchWorkspaceRequest request;
  request.set_job_id("job-1");
  *request.mutable_manifest() = source.manifest();
  auto reader = stub->FetchWorkspace(&context, request);
  deja::v1::WorkspaceChunk first;
  ASSERT_TRUE(reader->Read(&first));  // the lease is taken before this is sent
  ASSERT_TRUE(first.has_manifest());

  clock_.Advance(absl::Hours(2));  // expired, mid-copy
  auto swept = a.worker->SweepNow();
  ASSERT_TRUE(swept.ok());
  EXPECT_THAT(*swept, ::testing::IsEmpty());
  EXPECT_TRUE(Exists(paths::WorkspaceDir(a.work_dir, "job-1") + "/big.bin"));

  // No new copy starts from an expired source: not a peer fetch...
  {
    grpc::ClientContext late_context;
    auto late = stub->FetchWorkspace(&late_context, request);
    deja::v1::WorkspaceChunk chunk;
    EXPECT_FALSE(late->Read(&chunk));
    grpc::Status st = late->Finish();
    EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND);
    EXPECT_EQ(st.error_message(), "workspace of job-1 expired");
  }
  // ... nor a local reuse.
  scheduler_.Assign("w-a", Reuse("job-2", "job-1", source));
  auto local = AwaitResult("job-2");
  ASSERT_TRUE(local.has_value());
  EXPECT_EQ(local->exit_code(), -1);
  EXPECT_TRUE(local->verification_failed());
  EXPECT_EQ(local->error(), "workspace of job-1 expired");
  EXPECT_FALSE(Exists(paths::WorkspaceDir(a.work_dir, "job-2")));

  // The copy in progress completes and verifies.
  EXPECT_TRUE(ReadAndVerify(reader.get(), source.manifest()).ok());
  // Released when the stream ended: the next sweep deletes it.
  swept = a.worker->SweepNow();
  ASSERT_TRUE(swept.ok());
  EXPECT_THAT(*swept, ::testing::ElementsAre("job-1"));
  EXPECT_FALSE(Exists(paths::WorkspaceDir(a.work_dir, "job-1")));
  EXPECT_TRUE(PollUntil([&] { return scheduler_.ExpiredBy("job-1").has_value(); }));
}

TEST_F(RetentionWorkerTest, AReuseFromAnotherWorkerOfAnExpiredSourceFailsCleanly) {
  StartWorker("w-a", &clock_);
  RunningWorker& b = StartWorker("w-b", &clock_);
  const deja::v1::JobResult source = RunJob("w-a", "job-1", "echo r > r.txt", "r.txt");
  scheduler_.Ack("w-a", "job-1", 1, NowMs() + 1000);
  ASSERT_TRUE(PollUntil([&] { return HasExpiryRecord(workers_[0]->work_dir, "job-1"); }));
  clock_.Advance(absl::Seconds(1));  // expired, not swept yet

  deja::v1::Assignment reuse = Reuse("job-2", "job-1", source);
  reuse.set_source_worker_id("w-a");
  reuse.set_source_address(scheduler_.Registered("w-a")->advertise());
  scheduler_.Assign("w-b", reuse);
  auto failed = AwaitResult("job-2");
  ASSERT_TRUE(failed.has_value());
  EXPECT_EQ(failed->exit_code(), -1);
  EXPECT_TRUE(failed->verification_failed());
  EXPECT_THAT(failed->error(), HasSubstr("workspace of job-1 expired"));
  EXPECT_FALSE(Exists(paths::WorkspaceDir(b.work_dir, "job-2")));
}

}  // namespace
}  // namespace deja::worker
