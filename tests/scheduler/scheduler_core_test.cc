#include "scheduler/core/scheduler_core.h"

#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "common/job_identity.h"
#include "gtest/gtest.h"
#include "tests/scheduler/test_results.h"

namespace deja {

using ::deja::testing::AddTestManifest;
using ::deja::testing::kTestManifestDigest;
namespace {

using deja::v1::Job;
using deja::v1::JobSpec;
using deja::v1::SchedulerMessage;

JobSpec Echo(const std::string& word) {
  JobSpec spec;
  spec.mutable_app()->add_command("echo");
  spec.mutable_app()->add_command(word);
  return spec;
}

deja::v1::Register Reg(const std::string& id, int slots) {
  deja::v1::Register reg;
  reg.set_worker_id(id);
  reg.set_slots(slots);
  return reg;
}

// The Register of a worker that comes back holding `job_id`'s `attempt`.
deja::v1::Register RegHolding(const std::string& id, int slots, const std::string& job_id,
                              uint32_t attempt) {
  deja::v1::Register reg = Reg(id, slots);
  auto* held = reg.add_held();
  held->set_job_id(job_id);
  held->set_attempt(attempt);
  return reg;
}

// Assignments in `fx` for `worker`.
std::vector<deja::v1::Assignment> Assignments(const Effects& fx, const std::string& worker) {
  std::vector<deja::v1::Assignment> out;
  for (const auto& [w, msg] : fx.to_workers) {
    if (w == worker && msg.has_assignment()) out.push_back(msg.assignment());
  }
  return out;
}

class SchedulerCoreTest : public ::testing::Test {
 protected:
  SchedulerCoreTest() : core_(Options()) {}
  static CoreOptions Options() {
    CoreOptions o;
    o.worker_timeout = absl::Seconds(10);
    o.max_attempts = 2;
    return o;
  }

  void Connect(const std::string& id, int slots, uint64_t session = 1) {
    Effects fx;
    ASSERT_TRUE(core_.WorkerConnected(Reg(id, slots), session, now_, &fx).ok());
  }
  std::string Submit(const JobSpec& spec, Effects* fx) {
    auto r = core_.Submit(spec, now_, fx);
    EXPECT_TRUE(r.ok()) << r.status();
    return r->job().job_id();
  }
  void Result(const std::string& worker, const std::string& job, uint32_t attempt, int exit_code,
              Effects* fx, uint64_t session = 1) {
    deja::v1::WorkerMessage msg;
    auto* r = msg.mutable_result();
    r->set_job_id(job);
    r->set_attempt(attempt);
    r->set_exit_code(exit_code);
    r->set_run_time_ms(1500);
    AddTestManifest(r);
    core_.WorkerMessage(worker, session, msg, now_, fx);
  }
  Job Get(const std::string& id) { return *core_.GetJob(id); }
  // `worker`'s stream ends and it stays silent past worker_timeout.
  void LoseWorker(const std::string& worker, uint64_t session) {
    core_.WorkerDisconnected(worker, session, now_);
    now_ += absl::Seconds(11);
    Effects tick;
    core_.Tick(now_, &tick);
  }

  absl::Time now_ = absl::FromUnixSeconds(1000);
  SchedulerCore core_;
};

TEST_F(SchedulerCoreTest, DispatchesFifoToFreeSlotsAndPersistsEachChange) {
  Connect("w1", 1);
  Effects fx;
  std::string a = Submit(Echo("a"), &fx);
  std::string b = Submit(Echo("b"), &fx);
  EXPECT_EQ(Get(a).state(), deja::v1::ASSIGNED);
  EXPECT_EQ(Get(b).state(), deja::v1::QUEUED);
  ASSERT_EQ(Assignments(fx, "w1").size(), 1u);
  EXPECT_EQ(Assignments(fx, "w1")[0].job_id(), a);
  EXPECT_EQ(fx.jobs.at(a).state(), deja::v1::ASSIGNED);  // persisted before sent

  Effects done;
  Result("w1", a, 1, 0, &done);
  EXPECT_EQ(Get(a).state(), deja::v1::SUCCEEDED);
  EXPECT_EQ(Get(b).state(), deja::v1::ASSIGNED);  // the freed slot goes to b
  EXPECT_EQ(done.memo_puts.size(), 1u);
}

TEST_F(SchedulerCoreTest, TwoWorkersOneSlotEachBothGetWork) {
  Connect("w1", 1);
  Connect("w2", 1);
  Effects fx;
  Submit(Echo("a"), &fx);
  Submit(Echo("b"), &fx);
  EXPECT_EQ(Assignments(fx, "w1").size(), 1u);
  EXPECT_EQ(Assignments(fx, "w2").size(), 1u);
}

TEST(DispatchAheadTest, EachWorkerGetsThatManyBeyondItsSlotsFreeSlotsFirst) {
  CoreOptions options;
  options.dispatch_ahead = 1;
  SchedulerCore core(options);
  const absl::Time now = absl::FromUnixSeconds(1000);
  Effects fx;
  ASSERT_TRUE(core.WorkerConnected(Reg("w1", 1), 1, now, &fx).ok());
  ASSERT_TRUE(core.WorkerConnected(Reg("w2", 1), 1, now, &fx).ok());
  std::vector<std::string> ids;
  for (const char* name : {"a", "b", "c", "d", "e"}) {
    auto r = core.Submit(Echo(name), now, &fx);
    ASSERT_TRUE(r.ok()) << r.status();
    ids.push_back(r->job().job_id());
  }
  // Free slots first (a, b), then one ahead on each (c, d); e waits.
  ASSERT_EQ(Assignments(fx, "w1").size(), 2u);
  ASSERT_EQ(Assignments(fx, "w2").size(), 2u);
  EXPECT_EQ(Assignments(fx, "w1")[0].job_id(), ids[0]);
  EXPECT_EQ(Assignments(fx, "w2")[0].job_id(), ids[1]);
  EXPECT_EQ(Assignments(fx, "w1")[1].job_id(), ids[2]);
  EXPECT_EQ(Assignments(fx, "w2")[1].job_id(), ids[3]);
  EXPECT_EQ(core.GetJob(ids[2])->state(), deja::v1::ASSIGNED);
  EXPECT_EQ(core.GetJob(ids[4])->state(), deja::v1::QUEUED);

  Effects done;
  deja::v1::WorkerMessage msg;
  msg.mutable_result()->set_job_id(ids[0]);
  msg.mutable_result()->set_attempt(1);
  AddTestManifest(msg.mutable_result());
  core.WorkerMessage("w1", 1, msg, now, &done);
  EXPECT_EQ(core.GetJob(ids[0])->state(), deja::v1::SUCCEEDED);
  ASSERT_EQ(Assignments(done, "w1").size(), 1u);
  EXPECT_EQ(Assignments(done, "w1")[0].job_id(), ids[4]);
}

TEST_F(SchedulerCoreTest, IdenticalJobIsMaterializedOnTheHolder) {
  Connect("w1", 1);
  Effects fx;
  std::string a = Submit(Echo("a"), &fx);
  Result("w1", a, 1, 0, &fx);
  Effects fx2;
  auto r = core_.Submit(Echo("a"), now_, &fx2);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->reused());
  EXPECT_EQ(r->job().state(), deja::v1::MATERIALIZING);
  auto assignments = Assignments(fx2, "w1");
  ASSERT_EQ(assignments.size(), 1u);
  EXPECT_EQ(assignments[0].kind(), deja::v1::Assignment::MATERIALIZE);
  EXPECT_EQ(assignments[0].source_job_id(), a);

  Effects fx3;
  Result("w1", r->job().job_id(), 1, 0, &fx3);
  Job reused = Get(r->job().job_id());
  EXPECT_EQ(reused.state(), deja::v1::SUCCEEDED);
  EXPECT_EQ(reused.reused_from(), a);
  EXPECT_EQ(reused.time_saved_ms(), 1500);
  EXPECT_TRUE(fx3.memo_puts.empty()) << "reuses never create memo entries";
}

TEST_F(SchedulerCoreTest, FailedJobsAreNotMemoized) {
  Connect("w1", 1);
  Effects fx;
  std::string a = Submit(Echo("a"), &fx);
  Result("w1", a, 1, 3, &fx);
  EXPECT_EQ(Get(a).state(), deja::v1::FAILED);
  EXPECT_TRUE(fx.memo_puts.empty());
  auto again = core_.Submit(Echo("a"), now_, &fx);
  EXPECT_FALSE(again->reused());
}

TEST_F(SchedulerCoreTest, VerificationFailureDropsTheEntryAndRunsFresh) {
  Connect("w1", 2);
  Effects fx;
  std::string a = Submit(Echo("a"), &fx);
  Result("w1", a, 1, 0, &fx);
  auto r = core_.Submit(Echo("a"), now_, &fx);
  deja::v1::WorkerMessage msg;
  msg.mutable_result()->set_job_id(r->job().job_id());
  msg.mutable_result()->set_attempt(1);
  msg.mutable_result()->set_verification_failed(true);
  msg.mutable_result()->set_error("out.txt: content changed");
  Effects fx2;
  core_.WorkerMessage("w1", 1, msg, now_, &fx2);
  Job job = Get(r->job().job_id());
  EXPECT_EQ(job.state(), deja::v1::ASSIGNED);  // requeued and dispatched fresh
  EXPECT_EQ(job.attempt(), 2u) << "the fresh run is told apart from the failed copy";
  ASSERT_EQ(fx2.to_workers.size(), 2u);
  EXPECT_EQ(fx2.to_workers[0].second.result_ack().expires_at_ms(), 0) << "the copy: not kept";
  EXPECT_EQ(fx2.to_workers[1].second.assignment().attempt(), 2u);
  EXPECT_TRUE(job.reused_from().empty());
  EXPECT_NE(job.message().find("content changed"), std::string::npos);
  EXPECT_EQ(fx2.memo_deletes.size(), 1u);
  EXPECT_FALSE(core_.Submit(Echo("a"), now_, &fx2)->reused());
}

TEST_F(SchedulerCoreTest, MemoizationOffAndForceSkipTheLookup) {
  Connect("w1", 4);
  Effects fx;
  std::string a = Submit(Echo("a"), &fx);
  Result("w1", a, 1, 0, &fx);
  JobSpec off = Echo("a");
  off.set_memoization(deja::v1::MEMOIZATION_OFF);
  EXPECT_FALSE(core_.Submit(off, now_, &fx)->reused());
  JobSpec force = Echo("a");
  force.set_force(true);
  EXPECT_FALSE(core_.Submit(force, now_, &fx)->reused());
  JobSpec nondeterministic = Echo("a");
  nondeterministic.mutable_app()->set_reuse(false);
  EXPECT_FALSE(core_.Submit(nondeterministic, now_, &fx)->reused());
}

TEST_F(SchedulerCoreTest, LostWorkerRequeuesWithNextAttemptAndIgnoresALateFailure) {
  Connect("w1", 1);
  Effects fx;
  std::string a = Submit(Echo("a"), &fx);
  core_.WorkerDisconnected("w1", 1, now_);
  now_ += absl::Seconds(5);
  Effects tick;
  core_.Tick(now_, &tick);
  EXPECT_EQ(Get(a).state(), deja::v1::ASSIGNED) << "still within worker_timeout";
  now_ += absl::Seconds(6);
  core_.Tick(now_, &tick);
  EXPECT_EQ(Get(a).state(), deja::v1::QUEUED);
  EXPECT_EQ(Get(a).attempt(), 2u);

  Connect("w2", 1, 2);
  EXPECT_EQ(Get(a).state(), deja::v1::ASSIGNED);
  EXPECT_EQ(Get(a).worker_id(), "w2");
  // w1 comes back and reports attempt 1: ignored, and told to stop.
  deja::v1::Register back = RegHolding("w1", 1, a, 1);
  Effects fx2;
  ASSERT_TRUE(core_.WorkerConnected(back, 3, now_, &fx2).ok());
  ASSERT_EQ(fx2.to_workers.size(), 2u);
  EXPECT_TRUE(fx2.to_workers[0].second.has_register_ack()) << "the ack always comes first";
  EXPECT_TRUE(fx2.to_workers[1].second.has_cancel());
  EXPECT_EQ(fx2.to_workers[1].second.cancel().attempt(), 1u);
  Effects fx3;
  Result("w1", a, 1, -15, &fx3, 3);  // killed by that cancel
  EXPECT_EQ(Get(a).state(), deja::v1::ASSIGNED);
  EXPECT_TRUE(fx3.jobs.empty());
  Result("w2", a, 2, 0, &fx3, 2);
  EXPECT_EQ(Get(a).state(), deja::v1::SUCCEEDED);
}

// The command of attempt 1 had completed, but its worker was lost before
// it reported (paused past the timeout, say) and the job went to another
// worker: the late success is the job's, and attempt 2 is called off, so
// the command does not complete twice.
TEST_F(SchedulerCoreTest, ALateSuccessOfARequeuedAttemptIsKeptAndTheNewAttemptCalledOff) {
  Connect("w1", 1);
  Effects fx;
  std::string a = Submit(Echo("a"), &fx);
  LoseWorker("w1", 1);
  Connect("w2", 1, 2);
  ASSERT_EQ(Get(a).worker_id(), "w2");
  ASSERT_EQ(Get(a).attempt(), 2u);
  Connect("w1", 1, 3);  // back, without the job: its result is on its way
  Effects late;
  Result("w1", a, 1, 0, &late, 3);
  Job job = Get(a);
  EXPECT_EQ(job.state(), deja::v1::SUCCEEDED);
  EXPECT_EQ(job.attempt(), 1u);
  EXPECT_EQ(job.worker_id(), "w1");
  EXPECT_EQ(job.manifest().digest(), kTestManifestDigest);
  EXPECT_GT(job.expires_at_ms(), 0);
  EXPECT_EQ(job.message(),
            "attempt 1 on worker w1 had succeeded; its result came after the job was requeued, "
            "so attempt 2 was called off");
  bool cancelled = false, acked = false;
  for (const auto& [worker, msg] : late.to_workers) {
    if (worker == "w2" && msg.has_cancel()) cancelled = msg.cancel().attempt() == 2;
    if (worker == "w1" && msg.has_result_ack()) acked = msg.result_ack().expires_at_ms() > 0;
  }
  EXPECT_TRUE(cancelled);
  EXPECT_TRUE(acked) << "w1 keeps the workspace for reuse";
  ASSERT_TRUE(core_
                  .GetMemo([&] {
                    deja::v1::GetMemoRequest r;
                    r.set_job_id(a);
                    return r;
                  }())
                  .ok());
  // w2's slot is free at once; its killed attempt's result is then ignored.
  for (const auto& w : core_.ListWorkers()) {
    if (w.worker_id() == "w2") {
      EXPECT_EQ(w.busy_slots(), 0u);
    }
  }
  Effects after;
  Result("w2", a, 2, -15, &after, 2);
  EXPECT_EQ(Get(a).state(), deja::v1::SUCCEEDED);
  EXPECT_EQ(Get(a).attempt(), 1u);
}

// The fencing of results: a "late success" of an attempt counts only from
// the worker that attempt was sent to. Another worker (w3, which never held
// the job, or w2, which holds attempt 2) cannot pass one off as the job's.
TEST_F(SchedulerCoreTest, ALateSuccessFromAWorkerNeverSentThatAttemptIsIgnored) {
  Connect("w1", 1);
  Effects fx;
  std::string a = Submit(Echo("a"), &fx);
  LoseWorker("w1", 1);
  Connect("w2", 1, 2);
  Connect("w3", 1, 3);
  ASSERT_EQ(Get(a).worker_id(), "w2");
  ASSERT_EQ(Get(a).attempt(), 2u);
  EXPECT_EQ(Get(a).attempt_workers().at(1), "w1");
  EXPECT_EQ(Get(a).attempt_workers().at(2), "w2");
  for (const auto& [worker, session] : {std::pair<std::string, uint64_t>{"w3", 3}, {"w2", 2}}) {
    Effects forged;
    Result(worker, a, 1, 0, &forged, session);
    const Job job = Get(a);
    EXPECT_NE(job.state(), deja::v1::SUCCEEDED) << worker;
    EXPECT_EQ(job.attempt(), 2u) << worker;
    EXPECT_EQ(job.worker_id(), "w2") << worker;
    EXPECT_TRUE(forged.memo_puts.empty()) << worker;
    for (const auto& [to, msg] : forged.to_workers) {
      EXPECT_FALSE(msg.has_cancel()) << worker << " got attempt 2 called off";
    }
  }
}

// Requeued and sent nowhere yet: a late success takes it out of the queue;
// and a worker that comes back holding the attempt before anyone else got
// the job gets the job back, so the command is not run again.
TEST_F(SchedulerCoreTest, ARequeuedJobSentNowhereGoesToTheLateSuccessOrBackToItsWorker) {
  Connect("w1", 1);
  Effects fx;
  std::string a = Submit(Echo("a"), &fx);
  LoseWorker("w1", 1);
  ASSERT_EQ(Get(a).state(), deja::v1::QUEUED);
  ASSERT_EQ(Get(a).attempt(), 2u);
  // w1 back holding attempt 1 (its result not sent yet): the job is its again.
  deja::v1::Register back = RegHolding("w1", 1, a, 1);
  Effects reg;
  ASSERT_TRUE(core_.WorkerConnected(back, 2, now_, &reg).ok());
  Job job = Get(a);
  EXPECT_EQ(job.state(), deja::v1::ASSIGNED);
  EXPECT_EQ(job.attempt(), 1u);
  EXPECT_EQ(job.worker_id(), "w1");
  EXPECT_EQ(job.message(), "worker w1 came back holding attempt 1: it goes on there");
  for (const auto& [worker, msg] : reg.to_workers) EXPECT_FALSE(msg.has_cancel());
  EXPECT_TRUE(Assignments(reg, "w1").empty()) << "nothing sent again";
  Effects done;
  Result("w1", a, 1, 0, &done, 2);
  EXPECT_EQ(Get(a).state(), deja::v1::SUCCEEDED);

  // Lost again with another job; its late success comes while it is queued.
  std::string b = Submit(Echo("b"), &fx);
  ASSERT_EQ(Get(b).worker_id(), "w1");
  LoseWorker("w1", 2);
  ASSERT_EQ(Get(b).state(), deja::v1::QUEUED);
  Connect("w1", 1, 3);  // back without it (its Register listed nothing)...
  ASSERT_EQ(Get(b).worker_id(), "w1") << "...so attempt 2 went to it";
  Effects same;
  Result("w1", b, 1, 0, &same, 3);
  EXPECT_EQ(Get(b).state(), deja::v1::ASSIGNED)
      << "the same worker runs attempt 2 in that workspace: attempt 1's result is not kept";
  EXPECT_EQ(Get(b).attempt(), 2u);
}

TEST_F(SchedulerCoreTest, GivesUpAfterMaxAttempts) {
  Connect("w1", 1);
  Effects fx;
  std::string a = Submit(Echo("a"), &fx);
  for (int i = 0; i < 2; ++i) {
    now_ += absl::Seconds(11);  // no heartbeats
    core_.Tick(now_, &fx);
    Connect("w1", 1, 10 + i);
  }
  EXPECT_EQ(Get(a).state(), deja::v1::FAILED);
  EXPECT_NE(Get(a).message().find("gave up after 2 attempts"), std::string::npos);
}

TEST_F(SchedulerCoreTest, RestartKeepsJobsAndLetsTheWorkerReclaimThem) {
  Connect("w1", 2);
  Effects fx;
  std::string a = Submit(Echo("a"), &fx);
  std::string b = Submit(Echo("b"), &fx);
  Result("w1", a, 1, 0, &fx);
  std::vector<Job> jobs;
  for (const auto& id : {a, b}) jobs.push_back(Get(id));
  std::vector<deja::v1::MemoEntry> memo;
  for (const auto& [key, entry] : fx.memo_puts) memo.push_back(entry);

  SchedulerCore restarted(Options());
  restarted.Load(jobs, memo, {}, {}, now_);
  Effects fx2;
  ASSERT_TRUE(restarted.WorkerConnected(RegHolding("w1", 2, b, 1), 1, now_, &fx2).ok());
  EXPECT_EQ(restarted.GetJob(b)->state(), deja::v1::ASSIGNED);
  EXPECT_EQ(restarted.GetJob(b)->attempt(), 1u) << "reclaimed, not requeued";
  auto again = restarted.Submit(Echo("a"), now_, &fx2);
  EXPECT_TRUE(again->reused());
  EXPECT_EQ(again->job().job_id(), "j3") << "ids continue after restart";
}

TEST_F(SchedulerCoreTest, UnclaimedJobsAreRequeuedWhenTheWorkerComesBackWithout) {
  Connect("w1", 1);
  Effects fx;
  std::string a = Submit(Echo("a"), &fx);
  Connect("w1", 1, 2);  // restarted worker: holds nothing
  EXPECT_EQ(Get(a).attempt(), 2u);
  EXPECT_EQ(Get(a).state(), deja::v1::ASSIGNED);
}

TEST_F(SchedulerCoreTest, CancelOfARunningJobTellsItsWorker) {
  Connect("w1", 1);
  Effects fx;
  std::string a = Submit(Echo("a"), &fx);
  Effects cancel;
  auto job = core_.CancelJob(a, now_, &cancel);
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(job->state(), deja::v1::CANCELLED);
  ASSERT_EQ(cancel.to_workers.size(), 1u);
  EXPECT_TRUE(cancel.to_workers[0].second.has_cancel());
  EXPECT_EQ(core_.CancelJob(a, now_, &cancel).status().code(),
            absl::StatusCode::kFailedPrecondition);
  // The slot is busy until the worker reports the killed process.
  Submit(Echo("b"), &fx);
  EXPECT_EQ(core_.ListWorkers()[0].busy_slots(), 1u);
  Effects res;
  Result("w1", a, 1, -15, &res);
  EXPECT_EQ(Get(a).state(), deja::v1::CANCELLED);
  EXPECT_EQ(Get(a).exit_code(), -15);
}

TEST_F(SchedulerCoreTest, SubmitIsIdempotentByRequestId) {
  Effects fx;
  JobSpec spec = Echo("a");
  spec.set_request_id("r1");
  std::string first = Submit(spec, &fx);
  EXPECT_EQ(Submit(spec, &fx), first);
  spec.set_project("other");
  EXPECT_NE(Submit(spec, &fx), first);
}

TEST_F(SchedulerCoreTest, RejectsInvalidSpecsNamingTheField) {
  Effects fx;
  JobSpec spec;
  auto r = core_.Submit(spec, now_, &fx);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(r.status().message(), "app.command: must not be empty");
  EXPECT_TRUE(fx.jobs.empty());
}

TEST_F(SchedulerCoreTest, PlatformConstraintsPickAMatchingWorker) {
  deja::v1::Register gpu = Reg("gpu", 1);
  (*gpu.mutable_platform())["gpu"] = "1";
  Effects fx;
  ASSERT_TRUE(core_.WorkerConnected(Reg("cpu", 1), 1, now_, &fx).ok());
  ASSERT_TRUE(core_.WorkerConnected(gpu, 2, now_, &fx).ok());
  JobSpec spec = Echo("train");
  (*spec.mutable_app()->mutable_platform())["gpu"] = "1";
  std::string a = Submit(spec, &fx);
  EXPECT_EQ(Get(a).worker_id(), "gpu");
}

TEST_F(SchedulerCoreTest, UnplaceableFailDoesNotWaitForAnIdenticalJob) {
  Effects fx;
  ASSERT_TRUE(core_.WorkerConnected(Reg("cpu", 1), 1, now_, &fx).ok());
  JobSpec spec = Echo("train");
  spec.mutable_resources()->set_gpus(1);
  const std::string waits = Submit(spec, &fx);
  EXPECT_EQ(Get(waits).state(), deja::v1::QUEUED);
  EXPECT_EQ(Get(waits).unplaceable(), "no worker has gpus ≥ 1 (largest: 0)");
  // The same job again, asking to fail: not a follower of the first.
  spec.set_fail_unplaceable(true);
  const std::string fails = Submit(spec, &fx);
  EXPECT_EQ(Get(fails).state(), deja::v1::FAILED);
  EXPECT_EQ(Get(fails).message(),
            "unplaceable: no worker has gpus ≥ 1 (largest: 0) (--unplaceable fail)");
  EXPECT_EQ(Get(fails).waiting_for(), "");
}

class FakeBlobs : public BlobIndex {
 public:
  bool Has(const std::string& digest, uint64_t /*size*/) override {
    return !missing.contains(digest);
  }
  std::set<std::string> missing;
};

class ReuseTest : public ::testing::Test {
 protected:
  ReuseTest() : core_(CoreOptions(), &blobs_) {}
  void Connect(const std::string& id, int slots, const std::string& advertise = "") {
    deja::v1::Register reg = Reg(id, slots);
    reg.set_advertise(advertise);
    Effects fx;
    ASSERT_TRUE(core_.WorkerConnected(reg, ++session_, now_, &fx).ok());
    sessions_[id] = session_;
  }
  // Submits echo to w1 (connected, 1 slot), which reports `result` (job id
  // and attempt 1 filled in); returns the job after the report.
  Job ReportFirstAttempt(deja::v1::JobResult result, Effects* fx) {
    Connect("w1", 1);
    Effects submitted;
    auto r = core_.Submit(Echo("a"), now_, &submitted);
    EXPECT_TRUE(r.ok()) << r.status();
    deja::v1::WorkerMessage msg;
    *msg.mutable_result() = std::move(result);
    msg.mutable_result()->set_job_id(r->job().job_id());
    msg.mutable_result()->set_attempt(1);
    AddTestManifest(msg.mutable_result());
    core_.WorkerMessage("w1", sessions_["w1"], msg, now_, fx);
    return *core_.GetJob(r->job().job_id());
  }
  // Runs `spec` to success on whatever worker takes it, with one output.
  std::string RunToSuccess(const JobSpec& spec) {
    Effects fx;
    auto r = core_.Submit(spec, now_, &fx);
    EXPECT_TRUE(r.ok()) << r.status();
    const Job& job = r->job();
    deja::v1::WorkerMessage msg;
    auto* res = msg.mutable_result();
    res->set_job_id(job.job_id());
    res->set_attempt(1);
    res->set_run_time_ms(5000);
    AddTestManifest(res);
    auto* out = res->add_outputs();
    out->set_path("model.bin");
    out->set_digest("0123456789abcdef0123456789abcdef");
    out->set_size(10);
    core_.WorkerMessage(job.worker_id(), sessions_[job.worker_id()], msg, now_, &fx);
    EXPECT_EQ(core_.GetJob(job.job_id())->state(), deja::v1::SUCCEEDED);
    return job.job_id();
  }

  absl::Time now_ = absl::FromUnixSeconds(1000);
  FakeBlobs blobs_;
  SchedulerCore core_;
  uint64_t session_ = 0;
  std::map<std::string, uint64_t> sessions_;
};

TEST_F(ReuseTest, BusyHolderMeansAnotherWorkerPullsTheWorkspace) {
  Connect("w1", 1, "10.0.0.1:7071");
  std::string src = RunToSuccess(Echo("a"));
  ASSERT_EQ(core_.GetJob(src)->worker_id(), "w1");
  Connect("w2", 1, "10.0.0.2:7071");
  Effects fx;
  auto blocker = core_.Submit(Echo("busy"), now_, &fx);
  ASSERT_EQ(blocker->job().worker_id(), "w1");

  // The holder is busy: w2 pulls the workspace from w1's Peer service.
  Effects fx2;
  auto r = core_.Submit(Echo("a"), now_, &fx2);
  EXPECT_TRUE(r->reused());
  EXPECT_EQ(r->job().state(), deja::v1::MATERIALIZING);
  EXPECT_EQ(r->job().worker_id(), "w2");
  auto remote = Assignments(fx2, "w2");
  ASSERT_EQ(remote.size(), 1u);
  EXPECT_EQ(remote[0].kind(), deja::v1::Assignment::MATERIALIZE);
  EXPECT_EQ(remote[0].source_job_id(), src);
  EXPECT_EQ(remote[0].source_worker_id(), "w1");
  EXPECT_EQ(remote[0].source_address(), "10.0.0.1:7071");
  EXPECT_EQ(remote[0].source_outputs_size(), 1);

  // No slot anywhere: the next one waits, then copies locally on the holder.
  Effects fx3;
  auto r2 = core_.Submit(Echo("a"), now_, &fx3);
  EXPECT_EQ(r2->job().state(), deja::v1::QUEUED);
  EXPECT_TRUE(r2->reused());
  deja::v1::WorkerMessage done;
  done.mutable_result()->set_job_id(blocker->job().job_id());
  done.mutable_result()->set_attempt(1);
  AddTestManifest(done.mutable_result());
  Effects fx4;
  core_.WorkerMessage("w1", sessions_["w1"], done, now_, &fx4);
  EXPECT_EQ(core_.GetJob(r2->job().job_id())->state(), deja::v1::MATERIALIZING);
  auto local = Assignments(fx4, "w1");
  ASSERT_EQ(local.size(), 1u);
  EXPECT_TRUE(local[0].source_address().empty());
}

TEST_F(ReuseTest, MissingOutputBlobDropsTheEntryAndRunsFresh) {
  Connect("w1", 2, "h:1");
  RunToSuccess(Echo("a"));
  blobs_.missing.insert("0123456789abcdef0123456789abcdef");
  Effects fx;
  auto r = core_.Submit(Echo("a"), now_, &fx);
  EXPECT_FALSE(r->reused());
  EXPECT_EQ(r->job().state(), deja::v1::ASSIGNED);
  EXPECT_NE(r->job().message().find("model.bin"), std::string::npos) << r->job().message();
  EXPECT_NE(r->job().message().find("missing from the content store"), std::string::npos);
  EXPECT_EQ(fx.memo_deletes.size(), 1u);
}

TEST_F(ReuseTest, SourceWorkerGoneRunsFreshAndSaysWhy) {
  Connect("w1", 1, "h:1");
  std::string src = RunToSuccess(Echo("a"));
  core_.WorkerDisconnected("w1", sessions_["w1"], now_);
  Connect("w2", 1, "h:2");
  Effects fx;
  auto r = core_.Submit(Echo("a"), now_, &fx);
  EXPECT_FALSE(r->reused());
  EXPECT_EQ(r->job().worker_id(), "w2");
  EXPECT_EQ(r->job().message(), "not reused: the workspace of " + src +
                                    " is on worker w1, which is not connected; running fresh");
}

TEST_F(ReuseTest, InputsMustBeInTheStore) {
  JobSpec spec = Echo("a");
  auto* input = spec.add_inputs();
  input->set_name("data");
  input->set_kind("file");
  input->set_digest("ffffffffffffffffffffffffffffffff");
  blobs_.missing.insert(input->digest());
  Effects fx;
  auto r = core_.Submit(spec, now_, &fx);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(r.status().message().find("inputs[0] (data)"), std::string::npos);
  blobs_.missing.clear();
  Connect("w1", 1);
  r = core_.Submit(spec, now_, &fx);
  ASSERT_TRUE(r.ok());
  auto a = Assignments(fx, "w1");
  ASSERT_EQ(a.size(), 1u);
  EXPECT_EQ(a[0].inputs(0).digest(), input->digest());
}

TEST_F(ReuseTest, AMissingDeclaredOutputFailsTheJobAndIsNotMemoized) {
  Connect("w1", 1);
  JobSpec spec = Echo("a");
  spec.add_outputs("out.txt");
  Effects fx;
  auto r = core_.Submit(spec, now_, &fx);
  deja::v1::WorkerMessage msg;
  msg.mutable_result()->set_job_id(r->job().job_id());
  msg.mutable_result()->set_attempt(1);
  msg.mutable_result()->set_exit_code(0);
  msg.mutable_result()->set_error("declared output \"out.txt\" matched no file");
  Effects fx2;
  core_.WorkerMessage("w1", sessions_["w1"], msg, now_, &fx2);
  Job job = *core_.GetJob(r->job().job_id());
  EXPECT_EQ(job.state(), deja::v1::FAILED);
  EXPECT_EQ(job.message(), "declared output \"out.txt\" matched no file");
  EXPECT_TRUE(fx2.memo_puts.empty());
}

// Issue 12, finding 7: a job whose command never started was reported with
// the worker's internal exit code -1, which `deja run` turned into 129
// ("killed by signal 1").
TEST_F(ReuseTest, ACommandThatNeverStartedFailsWithoutAnExitCodeSayingWhy) {
  deja::v1::JobResult result;
  result.set_exit_code(-1);
  result.set_never_started(true);
  result.set_error("input \"data\": fetch blob 0123: not found");
  Effects fx2;
  Job job = ReportFirstAttempt(result, &fx2);
  EXPECT_EQ(job.state(), deja::v1::FAILED);
  EXPECT_FALSE(job.has_exit_code());
  EXPECT_EQ(job.message(), "could not start: input \"data\": fetch blob 0123: not found");
  EXPECT_TRUE(fx2.memo_puts.empty());
}

TEST_F(ReuseTest, AHandedBackResultRequeuesTheJobWithoutUsingAnAttempt) {
  deja::v1::JobResult result;
  result.set_exit_code(-9);
  result.set_handed_back(true);
  Effects fx2;
  Job job = ReportFirstAttempt(result, &fx2);
  EXPECT_NE(job.state(), deja::v1::FAILED);
  EXPECT_EQ(job.attempt(), 2u);
  EXPECT_EQ(job.handed_back(), 1u);
  EXPECT_FALSE(job.has_exit_code());
  EXPECT_TRUE(absl::StrContains(job.message(), "worker w1 stopped; handed back")) << job.message();
}

// Issue 12: a worker keeps results on disk until acked, so after a lost ack
// (a broken stream, a restart) it sends a committed result again. The
// second ack must repeat the committed expiry: "not kept" (0) would make
// the worker delete a workspace the memo index points to.
TEST_F(ReuseTest, AResultSentAgainAfterItWasCommittedIsAckedWithItsExpiry) {
  Connect("w1", 1);
  const std::string id = RunToSuccess(Echo("a"));
  const Job job = *core_.GetJob(id);
  ASSERT_GT(job.expires_at_ms(), 0);
  deja::v1::WorkerMessage again;
  again.mutable_result()->set_job_id(id);
  again.mutable_result()->set_attempt(job.attempt());
  Effects fx;
  core_.WorkerMessage(job.worker_id(), sessions_[job.worker_id()], again, now_, &fx);
  ASSERT_EQ(fx.to_workers.size(), 1u);
  const deja::v1::ResultAck& ack = fx.to_workers[0].second.result_ack();
  EXPECT_EQ(ack.job_id(), id);
  EXPECT_EQ(ack.expires_at_ms(), job.expires_at_ms());
  EXPECT_EQ(core_.GetJob(id)->state(), deja::v1::SUCCEEDED);
}

}  // namespace
}  // namespace deja
