// Dispatcher alone, over a JobTable: registration, placement, liveness and
// requeues, with the finished hook standing in for the rest of the core.
#include "scheduler/core/dispatcher.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "scheduler/core/job_state_machine.h"
#include "scheduler/core/keys.h"
#include "tests/scheduler/assigned.h"

namespace deja {
namespace {

using deja::v1::Job;

deja::v1::Register Reg(const std::string& id, int slots) {
  deja::v1::Register reg;
  reg.set_worker_id(id);
  reg.set_slots(slots);
  return reg;
}

using testing::Assigned;

class DispatcherTest : public ::testing::Test {
 protected:
  DispatcherTest()
      : jobs_(nullptr),
        memo_(nullptr),
        dispatcher_(Options(), &jobs_, &memo_,
                    [this](Job& job, absl::Time, Effects*) { finished_.push_back(job.job_id()); }) {
  }
  static CoreOptions Options() {
    CoreOptions o;
    o.worker_timeout = absl::Seconds(10);
    o.max_attempts = 2;
    return o;
  }
  // A queued job running `echo`, needing `platform` (key=value) if given.
  std::string Queue(const std::string& gpu = "") {
    Job job;
    job.set_job_id(JobIdFromSeq(jobs_.TakeSeq()));
    job.set_attempt(1);
    job.mutable_spec()->mutable_app()->set_name("echo");
    job.mutable_spec()->mutable_app()->add_command("echo");
    if (!gpu.empty()) (*job.mutable_spec()->mutable_app()->mutable_platform())["gpu"] = gpu;
    SetJobState(job, deja::v1::QUEUED, now_);
    Job& added = jobs_.Add(std::move(job));
    jobs_.Enqueue(added);
    return added.job_id();
  }

  absl::Time now_ = absl::FromUnixSeconds(1000);
  JobTable jobs_;
  MemoIndex memo_;
  std::vector<std::string> finished_;
  Dispatcher dispatcher_;
};

TEST_F(DispatcherTest, RegistrationNamesTheBadField) {
  Effects fx;
  EXPECT_EQ(dispatcher_.Connect(Reg("", 1), 1, now_, &fx).message(),
            "register.worker_id: must be 1 to 128 characters");
  EXPECT_EQ(dispatcher_.Connect(Reg("w1", 0), 1, now_, &fx).message(),
            "register.slots: must be at least 1");
  ASSERT_TRUE(dispatcher_.Connect(Reg("w1", 1), 1, now_, &fx).ok());
  ASSERT_FALSE(fx.to_workers.empty());
  EXPECT_TRUE(fx.to_workers.front().second.has_register_ack()) << "the ack comes first";
  EXPECT_TRUE(dispatcher_.IsConnected("w1"));
}

TEST_F(DispatcherTest, QueuedJobsGoOldestFirstToTheLeastBusyFittingWorker) {
  std::string a = Queue(), b = Queue("1"), c = Queue();
  Effects fx;
  ASSERT_TRUE(dispatcher_.Connect(Reg("w1", 1), 1, now_, &fx).ok());
  EXPECT_EQ(Assigned(fx, "w1"), std::vector<std::string>{a}) << "b needs a gpu; w1 is full";
  deja::v1::Register gpu = Reg("g1", 2);
  (*gpu.mutable_platform())["gpu"] = "1";
  Effects more;
  ASSERT_TRUE(dispatcher_.Connect(gpu, 2, now_, &more).ok());
  EXPECT_EQ(Assigned(more, "g1"), (std::vector<std::string>{b, c}));
  EXPECT_EQ(jobs_.At(b).state(), deja::v1::ASSIGNED);
  EXPECT_EQ(jobs_.At(b).worker_id(), "g1");
  EXPECT_EQ(jobs_.NextQueued(0), 0u);
  EXPECT_TRUE(dispatcher_.HoldsAttempt("g1", b, 1));
  EXPECT_TRUE(dispatcher_.Holds(jobs_.At(b)));
}

TEST_F(DispatcherTest, ASilentWorkerIsLostAndItsJobsRequeuedThenFailed) {
  std::string a = Queue();
  Effects fx;
  ASSERT_TRUE(dispatcher_.Connect(Reg("w1", 1), 1, now_, &fx).ok());
  Effects tick;
  dispatcher_.CheckLiveness(now_ + absl::Seconds(11), &tick);
  ASSERT_EQ(tick.close_sessions.size(), 1u);
  EXPECT_EQ(tick.close_sessions[0].first, "w1");
  EXPECT_EQ(jobs_.At(a).state(), deja::v1::QUEUED);
  EXPECT_EQ(jobs_.At(a).attempt(), 2u);
  EXPECT_EQ(jobs_.At(a).message(),
            "worker w1 missed heartbeats for 11s; requeued (attempt 2 of 2)");
  EXPECT_FALSE(dispatcher_.IsConnected("w1"));

  Effects again;
  ASSERT_TRUE(dispatcher_.Connect(Reg("w1", 1), 2, now_ + absl::Seconds(12), &again).ok());
  EXPECT_EQ(Assigned(again, "w1"), std::vector<std::string>{a});
  EXPECT_FALSE(dispatcher_.Touch("w1", 1, now_)) << "the old session is ignored";
  EXPECT_TRUE(dispatcher_.Touch("w1", 2, now_ + absl::Seconds(12)));
  Effects lost;
  dispatcher_.CheckLiveness(now_ + absl::Seconds(30), &lost);
  EXPECT_EQ(jobs_.At(a).state(), deja::v1::FAILED);
  EXPECT_EQ(finished_, std::vector<std::string>{a}) << "the core is told it ended";
}

// Issue 12, "operations are not failures": a worker stopped with SIGTERM
// (a restart, a scale-down) hands its jobs back; those attempts do not count
// against max_attempts (2 here), however often it happens.
TEST_F(DispatcherTest, AStoppingWorkerHandsItsJobsBackWithoutUsingAttempts) {
  std::string running = Queue(), waiting = Queue(), later = Queue();
  Effects fx;
  ASSERT_TRUE(dispatcher_.Connect(Reg("w1", 2), 1, now_, &fx).ok());
  ASSERT_EQ(Assigned(fx, "w1"), (std::vector<std::string>{running, waiting}));
  SetJobState(jobs_.At(running), deja::v1::RUNNING, now_);  // started; `waiting` not yet

  Effects leaving;
  dispatcher_.Leaving("w1", 1, "SIGTERM", now_, &leaving);
  EXPECT_TRUE(Assigned(leaving, "w1").empty()) << "a stopping worker gets nothing more";
  EXPECT_EQ(jobs_.At(waiting).state(), deja::v1::QUEUED) << "not started: handed back now";
  EXPECT_EQ(jobs_.At(waiting).attempt(), 2u);
  EXPECT_EQ(jobs_.At(waiting).handed_back(), 1u);
  EXPECT_EQ(jobs_.At(waiting).message(),
            "worker w1 stopped (SIGTERM); handed back and requeued (not counted against the 2 "
            "attempts)");
  EXPECT_EQ(jobs_.At(running).state(), deja::v1::RUNNING) << "until its process is dead";
  EXPECT_EQ(jobs_.At(later).state(), deja::v1::QUEUED);

  // The running job's result never comes (the worker died while stopping):
  // lost, and handed back all the same, three times over.
  for (int life = 0; life < 3; ++life) {
    Effects lost;
    dispatcher_.CheckLiveness(now_ + absl::Seconds(11), &lost);
    EXPECT_EQ(jobs_.At(running).state(), deja::v1::QUEUED) << life;
    Effects back;
    const uint64_t session = 2 + life;
    now_ += absl::Seconds(20);
    ASSERT_TRUE(dispatcher_.Connect(Reg("w1", 3), session, now_, &back).ok());
    ASSERT_EQ(jobs_.At(running).worker_id(), "w1");
    SetJobState(jobs_.At(running), deja::v1::RUNNING, now_);
    Effects again;
    dispatcher_.Leaving("w1", session, "SIGTERM", now_, &again);
  }
  Effects lost;
  dispatcher_.CheckLiveness(now_ + absl::Seconds(11), &lost);
  EXPECT_EQ(jobs_.At(running).state(), deja::v1::QUEUED) << "never FAILED by operations";
  EXPECT_EQ(Dispatcher::ChargedAttempts(jobs_.At(running)), 1u);
  EXPECT_TRUE(finished_.empty());
}

TEST_F(DispatcherTest, AWorkerBackWithoutItsJobHasItRequeued) {
  std::string a = Queue();
  Effects fx;
  ASSERT_TRUE(dispatcher_.Connect(Reg("w1", 1), 1, now_, &fx).ok());
  dispatcher_.Disconnect("w1", 1, now_);
  Effects back;
  ASSERT_TRUE(dispatcher_.Connect(Reg("w1", 1), 2, now_, &back).ok());  // holds nothing
  EXPECT_EQ(jobs_.At(a).attempt(), 2u);
  EXPECT_EQ(jobs_.At(a).message(), "worker w1 restarted without it; requeued (attempt 2 of 2)");
  EXPECT_EQ(Assigned(back, "w1"), std::vector<std::string>{a}) << "and it runs again";
}

TEST_F(DispatcherTest, AReconnectingWorkerKeepsTheJobItHoldsAndStopsUnknownOnes) {
  std::string a = Queue();
  Effects fx;
  ASSERT_TRUE(dispatcher_.Connect(Reg("w1", 1), 1, now_, &fx).ok());
  deja::v1::Register reg = Reg("w1", 1);
  auto* held = reg.add_held();
  held->set_job_id(a);
  held->set_attempt(1);
  auto* stranger = reg.add_held();
  stranger->set_job_id("j99");
  stranger->set_attempt(1);
  Effects back;
  ASSERT_TRUE(dispatcher_.Connect(reg, 2, now_, &back).ok());
  EXPECT_EQ(jobs_.At(a).state(), deja::v1::ASSIGNED);
  EXPECT_TRUE(dispatcher_.HoldsAttempt("w1", a, 1));
  std::vector<std::string> cancelled;
  for (const auto& [w, msg] : back.to_workers) {
    if (msg.has_cancel()) cancelled.push_back(msg.cancel().job_id());
  }
  EXPECT_EQ(cancelled, std::vector<std::string>{"j99"});
  EXPECT_EQ(dispatcher_.List().at(0).busy_slots(), 1u);
}

}  // namespace
}  // namespace deja
