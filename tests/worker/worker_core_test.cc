// WorkerCore on its own: the worker's protocol as a state machine, driven
// message by message with an injected clock, no gRPC, no threads. Each
// call's actions are compared as readable lines.
#include "worker/worker_core.h"

#include <signal.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "worker/job_runner.h"

namespace deja::worker {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

std::string Key(const JobKey& key) { return absl::StrCat(key.first, "/", key.second); }

// The actions but the log lines, one line each, in the order they are
// carried out.
std::vector<std::string> Lines(const WorkerActions& actions) {
  std::vector<std::string> lines;
  for (const JobKey& key : actions.kill) lines.push_back("kill " + Key(key));
  for (const JobKey& key : actions.cancel) lines.push_back("cancel " + Key(key));
  for (const auto& a : actions.start) {
    lines.push_back(absl::StrCat("start ",
                                 a.kind() == deja::v1::Assignment::MATERIALIZE ? "copy " : "run ",
                                 Key(JobKey(a.job_id(), a.attempt()))));
  }
  for (const auto& r : actions.log_requests) lines.push_back("read log " + r.job_id());
  for (const auto& ack : actions.acks) {
    lines.push_back(absl::StrCat("ack ", Key(JobKey(ack.job_id(), ack.attempt()))));
  }
  for (const auto& m : actions.send) {
    if (!m.has_result()) {
      lines.push_back(absl::StrCat("send message case ", m.msg_case()));
      continue;
    }
    lines.push_back(absl::StrCat("send result ",
                                 Key(JobKey(m.result().job_id(), m.result().attempt())), " exit ",
                                 m.result().exit_code()));
  }
  return lines;
}

std::vector<std::string> Held(const WorkerCore& core) {
  std::vector<std::string> held;
  for (const auto& h : core.HeldJobs()) held.push_back(Key(JobKey(h.job_id(), h.attempt())));
  return held;
}

std::vector<std::string> Unacked(const WorkerCore& core) {
  std::vector<std::string> keys;
  for (const auto& r : core.UnackedResults()) keys.push_back(Key(JobKey(r.job_id(), r.attempt())));
  return keys;
}

class WorkerCoreTest : public ::testing::Test {
 protected:
  explicit WorkerCoreTest(uint32_t slots = 1) : core_(slots) {}

  static deja::v1::SchedulerMessage Run(const std::string& job_id, uint32_t attempt = 1) {
    deja::v1::SchedulerMessage m;
    deja::v1::Assignment* a = m.mutable_assignment();
    a->set_kind(deja::v1::Assignment::RUN);
    a->set_job_id(job_id);
    a->set_attempt(attempt);
    a->add_argv("true");
    return m;
  }
  static deja::v1::SchedulerMessage Copy(const std::string& job_id, uint32_t attempt = 1) {
    deja::v1::SchedulerMessage m = Run(job_id, attempt);
    m.mutable_assignment()->set_kind(deja::v1::Assignment::MATERIALIZE);
    m.mutable_assignment()->set_source_job_id("source");
    return m;
  }
  static deja::v1::SchedulerMessage Cancel(const std::string& job_id, uint32_t attempt = 1) {
    deja::v1::SchedulerMessage m;
    m.mutable_cancel()->set_job_id(job_id);
    m.mutable_cancel()->set_attempt(attempt);
    return m;
  }
  static deja::v1::ResultAck Ack(const std::string& job_id, uint32_t attempt,
                                 int64_t expires_at_ms) {
    deja::v1::ResultAck ack;
    ack.set_job_id(job_id);
    ack.set_attempt(attempt);
    ack.set_expires_at_ms(expires_at_ms);
    return ack;
  }
  static deja::v1::SchedulerMessage AckMessage(const std::string& job_id, uint32_t attempt,
                                               int64_t expires_at_ms = 0) {
    deja::v1::SchedulerMessage m;
    *m.mutable_result_ack() = Ack(job_id, attempt, expires_at_ms);
    return m;
  }

  // Delivers `message`; returns its actions.
  WorkerActions Deliver(const deja::v1::SchedulerMessage& message) {
    WorkerActions actions;
    core_.OnMessage(message, clock_.Now(), &actions);
    return actions;
  }
  WorkerActions Finish(const std::string& job_id, uint32_t attempt, int exit_code = 0) {
    deja::v1::JobResult result;
    result.set_job_id(job_id);
    result.set_attempt(attempt);
    result.set_exit_code(exit_code);
    WorkerActions actions;
    core_.OnJobFinished(result, &actions);
    return actions;
  }

  FakeClock clock_;
  WorkerCore core_;
};

TEST_F(WorkerCoreTest, AnAssignmentStartsItsAttempt) {
  WorkerActions actions = Deliver(Run("job-a"));
  EXPECT_THAT(Lines(actions), ElementsAre("start run job-a/1"));
  EXPECT_THAT(actions.log, ElementsAre("assignment job-a attempt 1: run true"));
  EXPECT_EQ(core_.RunningRuns(), 1u);

  // A copy takes no slot.
  actions = Deliver(Copy("job-b"));
  EXPECT_THAT(Lines(actions), ElementsAre("start copy job-b/1"));
  EXPECT_THAT(actions.log,
              ElementsAre("assignment job-b attempt 1: materialize from source (0 files)"));
  EXPECT_THAT(Held(core_), ElementsAre("job-a/1", "job-b/1"));

  // A duplicate of a held attempt is not started again.
  actions = Deliver(Run("job-a"));
  EXPECT_THAT(Lines(actions), IsEmpty());
  EXPECT_THAT(actions.log, ElementsAre("assignment job-a attempt 1: already held, not started "
                                       "again"));
}

TEST_F(WorkerCoreTest, AnInvalidJobIdFailsUnstartedAtTheClocksTime) {
  WorkerActions actions = Deliver(Run("../escape"));
  EXPECT_THAT(Lines(actions), ElementsAre("send result ../escape/1 exit -1"));
  ASSERT_EQ(actions.send.size(), 1u);
  EXPECT_EQ(actions.send[0].result().exit_code(), kExitInternal);
  EXPECT_FALSE(actions.send[0].result().error().empty());
  EXPECT_EQ(actions.send[0].result().finished_at_ms(), ToMillis(clock_.Now()));
  EXPECT_THAT(Unacked(core_), ElementsAre("../escape/1"));
}

// Sent ahead of a free slot (--dispatch_ahead), RUNs wait and start in
// arrival order, one per freed slot.
TEST_F(WorkerCoreTest, RunsBeyondTheSlotsWaitAndStartInArrivalOrderAsSlotsFree) {
  Deliver(Run("job-a"));
  WorkerActions actions = Deliver(Run("job-c"));
  EXPECT_THAT(Lines(actions), IsEmpty());
  EXPECT_THAT(actions.log, ElementsAre("assignment job-c attempt 1: run true",
                                       "assignment job-c attempt 1: waiting for a slot (1 "
                                       "running)"));
  Deliver(Run("job-b"));
  EXPECT_EQ(core_.WaitingRuns(), 2u);
  // Waiting RUNs are held: Register lists them.
  EXPECT_THAT(Held(core_), ElementsAre("job-a/1", "job-b/1", "job-c/1"));

  EXPECT_THAT(Lines(Finish("job-a", 1)),
              ElementsAre("start run job-c/1", "send result job-a/1 exit 0"));
  EXPECT_EQ(core_.RunningRuns(), 1u);
  EXPECT_THAT(Lines(Finish("job-c", 1)),
              ElementsAre("start run job-b/1", "send result job-c/1 exit 0"));
  EXPECT_THAT(Lines(Finish("job-b", 1)), ElementsAre("send result job-b/1 exit 0"));
  EXPECT_EQ(core_.RunningRuns(), 0u);
  EXPECT_EQ(core_.WaitingRuns(), 0u);
}

TEST_F(WorkerCoreTest, AResultIsKeptUntilItsAckAndReSentAfterRegister) {
  Deliver(Run("job-a"));
  EXPECT_THAT(Lines(Finish("job-a", 1, 3)), ElementsAre("send result job-a/1 exit 3"));
  // The stream broke before the ack: Register lists it, and it is re-sent.
  EXPECT_THAT(Held(core_), ElementsAre("job-a/1"));
  EXPECT_THAT(Unacked(core_), ElementsAre("job-a/1"));
  EXPECT_EQ(core_.UnackedResults()[0].exit_code(), 3);
  // The scheduler assigns it again (it did not see the result): re-sent.
  EXPECT_THAT(Lines(Deliver(Run("job-a"))), ElementsAre("send result job-a/1 exit 3"));

  EXPECT_THAT(Lines(Deliver(AckMessage("job-a", 1, 12345))), ElementsAre("ack job-a/1"));
  EXPECT_THAT(Unacked(core_), IsEmpty());
  EXPECT_THAT(Held(core_), IsEmpty());
  EXPECT_THAT(core_.HeldJobIds(), IsEmpty());
}

TEST_F(WorkerCoreTest, ACancelStopsARunningJobAndDropsAWaitingOne) {
  Deliver(Run("job-a"));
  Deliver(Run("job-b"));  // waits
  Deliver(Copy("job-c"));

  WorkerActions actions = Deliver(Cancel("job-a"));
  EXPECT_THAT(Lines(actions), ElementsAre("cancel job-a/1"));
  EXPECT_THAT(actions.log, ElementsAre("cancel job-a attempt 1"));
  // Still held until its runner reports the exit.
  EXPECT_THAT(Held(core_), ElementsAre("job-a/1", "job-b/1", "job-c/1"));

  clock_.Advance(absl::Seconds(7));
  actions = Deliver(Cancel("job-b"));
  EXPECT_THAT(Lines(actions), ElementsAre("send result job-b/1 exit -15"));
  EXPECT_EQ(actions.send[0].result().exit_code(), -SIGTERM);
  EXPECT_EQ(actions.send[0].result().error(),
            "cancelled before it started (it was waiting for a slot)");
  EXPECT_EQ(actions.send[0].result().finished_at_ms(), ToMillis(clock_.Now()));
  EXPECT_THAT(actions.log, ElementsAre("cancel job-b attempt 1: dropped before it started"));

  // A copy, an unknown attempt: left alone.
  EXPECT_THAT(Lines(Deliver(Cancel("job-c"))), IsEmpty());
  EXPECT_THAT(Lines(Deliver(Cancel("job-z"))), IsEmpty());
  EXPECT_THAT(Lines(Finish("job-a", 1, -SIGTERM)), ElementsAre("send result job-a/1 exit -15"));
  EXPECT_THAT(Held(core_), ElementsAre("job-a/1", "job-b/1", "job-c/1"));
  EXPECT_THAT(Unacked(core_), ElementsAre("job-a/1", "job-b/1"));
}

TEST_F(WorkerCoreTest, ANewerAttemptKillsTheRunningOneAndDropsAWaitingOne) {
  Deliver(Run("job-a"));
  WorkerActions actions = Deliver(Run("job-a", 2));
  EXPECT_THAT(Lines(actions), ElementsAre("kill job-a/1"));  // attempt 2 waits for the slot
  EXPECT_THAT(actions.log, ::testing::Contains("killing job-a attempt 1: superseded by attempt 2"));

  actions = Deliver(Run("job-a", 3));
  EXPECT_THAT(Lines(actions), ElementsAre("kill job-a/1"));
  EXPECT_THAT(actions.log,
              ::testing::Contains("dropping job-a attempt 2 before it started: superseded by "
                                  "attempt 3"));
  EXPECT_THAT(Lines(Finish("job-a", 1, -SIGKILL)),
              ElementsAre("start run job-a/3", "send result job-a/1 exit -9"));
}

// Workspaces are per job id: attempt 1's "not kept" must not delete the
// workspace attempt 2 ran in, however results and acks interleave.
TEST_F(WorkerCoreTest, ALateNotKeptAckOfAnOlderAttemptNeverFreesANewerAttemptsWorkspace) {
  Deliver(Run("job-a"));
  Finish("job-a", 1);
  Deliver(Run("job-a", 2));
  Finish("job-a", 2);
  // Both acks arrive; the sweeper applies them later, in order.
  EXPECT_THAT(Lines(Deliver(AckMessage("job-a", 1, 0))), ElementsAre("ack job-a/1"));
  EXPECT_THAT(Lines(Deliver(AckMessage("job-a", 2, 60'000))), ElementsAre("ack job-a/2"));
  EXPECT_THAT(Held(core_), IsEmpty());
  // Attempt 2's ack is not applied yet: the workspace is still held.
  EXPECT_THAT(core_.HeldJobIds(), ElementsAre("job-a"));

  std::string left_alone;
  EXPECT_FALSE(core_.ApplyAck(Ack("job-a", 1, 0), &left_alone));
  EXPECT_EQ(left_alone,
            "workspace of job-a attempt 1 not kept, but attempt 2 of the job ran here: left "
            "alone");
  EXPECT_TRUE(core_.ApplyAck(Ack("job-a", 2, 60'000), &left_alone));
  EXPECT_THAT(core_.HeldJobIds(), IsEmpty());
}

TEST_F(WorkerCoreTest, ANotKeptAckLeavesTheWorkspaceToAnotherAttemptHeldHere) {
  Deliver(Run("job-a"));
  Finish("job-a", 1);
  Deliver(Run("job-a", 2));  // running
  Deliver(AckMessage("job-a", 1, 0));
  std::string left_alone;
  EXPECT_FALSE(core_.ApplyAck(Ack("job-a", 1, 0), &left_alone));
  EXPECT_THAT(left_alone, HasSubstr("attempt 2 of the job ran here"));

  // Attempt 2 acked and applied; a late "not kept" of attempt 1 again (a
  // newer attempt is no longer pending): another attempt holds nothing, so
  // the sweeper decides by the records.
  Finish("job-a", 2);
  Deliver(AckMessage("job-a", 2, 60'000));
  EXPECT_TRUE(core_.ApplyAck(Ack("job-a", 2, 60'000), &left_alone));
  EXPECT_TRUE(core_.ApplyAck(Ack("job-a", 1, 0), &left_alone));

  // Attempt 1 only: a "not kept" while a copy of the job is held here.
  Deliver(Copy("job-b"));
  left_alone.clear();
  EXPECT_FALSE(core_.ApplyAck(Ack("job-b", 1, 0), &left_alone));
  EXPECT_EQ(left_alone,
            "workspace of job-b attempt 1 not kept, but another attempt of the job holds it "
            "here: left alone");
  // A kept expiry is always recorded.
  EXPECT_TRUE(core_.ApplyAck(Ack("job-b", 1, 60'000), &left_alone));
}

TEST_F(WorkerCoreTest, LogRequestsGoToTheLogThreadAndUnknownMessagesAreLogged) {
  deja::v1::SchedulerMessage m;
  m.mutable_log_request()->set_job_id("job-a");
  EXPECT_THAT(Lines(Deliver(m)), ElementsAre("read log job-a"));
  m.Clear();
  m.mutable_register_ack();
  WorkerActions actions = Deliver(m);
  EXPECT_THAT(Lines(actions), IsEmpty());
  EXPECT_THAT(actions.log, IsEmpty());
  actions = Deliver(deja::v1::SchedulerMessage());
  EXPECT_THAT(actions.log, ElementsAre("ignoring unknown scheduler message case 0"));
}

TEST_F(WorkerCoreTest, ShutdownForgetsHeldAttemptsAndStartsNothingMore) {
  Deliver(Run("job-a"));
  Deliver(Run("job-b"));  // waits
  core_.Shutdown();
  EXPECT_THAT(Held(core_), IsEmpty());
  // The killed job's result still comes, is kept, and starts nothing.
  EXPECT_THAT(Lines(Finish("job-a", 1, -SIGKILL)), ElementsAre("send result job-a/1 exit -9"));
  EXPECT_THAT(Unacked(core_), ElementsAre("job-a/1"));
}

class TwoSlotWorkerCoreTest : public WorkerCoreTest {
 protected:
  TwoSlotWorkerCoreTest() : WorkerCoreTest(2) {}
};

TEST_F(TwoSlotWorkerCoreTest, EachSlotRunsOneJob) {
  EXPECT_THAT(Lines(Deliver(Run("job-a"))), ElementsAre("start run job-a/1"));
  EXPECT_THAT(Lines(Deliver(Run("job-b"))), ElementsAre("start run job-b/1"));
  EXPECT_THAT(Lines(Deliver(Run("job-c"))), IsEmpty());
  EXPECT_THAT(Lines(Finish("job-b", 1)),
              ElementsAre("start run job-c/1", "send result job-b/1 exit 0"));
}

}  // namespace
}  // namespace deja::worker
