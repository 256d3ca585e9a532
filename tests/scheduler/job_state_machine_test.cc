#include "scheduler/core/job_state_machine.h"

#include <set>
#include <utility>

#include "gtest/gtest.h"

namespace deja {
namespace {

using deja::v1::JobState;
using S = deja::v1::JobState;

TEST(JobStateMachineTest, AllowsTheDesignedPaths) {
  const std::set<std::pair<JobState, JobState>> legal = {
      {S::JOB_STATE_UNSPECIFIED, S::QUEUED},
      {S::QUEUED, S::ASSIGNED},
      {S::QUEUED, S::MATERIALIZING},
      {S::QUEUED, S::WAITING},
      {S::QUEUED, S::CANCELLED},
      {S::QUEUED, S::FAILED},
      {S::WAITING, S::QUEUED},
      {S::WAITING, S::MATERIALIZING},
      {S::WAITING, S::CANCELLED},
      {S::ASSIGNED, S::RUNNING},
      {S::ASSIGNED, S::QUEUED},
      {S::ASSIGNED, S::SUCCEEDED},
      {S::ASSIGNED, S::FAILED},
      {S::ASSIGNED, S::CANCELLED},
      {S::RUNNING, S::SUCCEEDED},
      {S::RUNNING, S::FAILED},
      {S::RUNNING, S::CANCELLED},
      {S::RUNNING, S::QUEUED},
      {S::MATERIALIZING, S::SUCCEEDED},
      {S::MATERIALIZING, S::QUEUED},
      {S::MATERIALIZING, S::FAILED},
      {S::MATERIALIZING, S::CANCELLED},
  };
  for (int from = S::JOB_STATE_UNSPECIFIED; from <= S::CANCELLED; ++from) {
    for (int to = S::JOB_STATE_UNSPECIFIED; to <= S::CANCELLED; ++to) {
      auto f = static_cast<JobState>(from);
      auto t = static_cast<JobState>(to);
      bool want = legal.contains({f, t});
      absl::Status got = CheckTransition(f, t);
      EXPECT_EQ(got.ok(), want) << from << " -> " << to << ": " << got;
      if (!want) {
        EXPECT_EQ(got.code(), absl::StatusCode::kFailedPrecondition);
      }
    }
  }
}

TEST(JobStateMachineTest, TerminalStatesNeverChange) {
  for (JobState terminal : {S::SUCCEEDED, S::FAILED, S::CANCELLED}) {
    for (JobState to : {S::QUEUED, S::RUNNING, S::SUCCEEDED, S::FAILED, S::CANCELLED}) {
      EXPECT_FALSE(CheckTransition(terminal, to).ok());
    }
  }
}

TEST(JobStateMachineTest, ErrorNamesBothStates) {
  absl::Status s = CheckTransition(S::SUCCEEDED, S::RUNNING);
  EXPECT_EQ(s.message(), "illegal job state transition SUCCEEDED -> RUNNING");
}

}  // namespace
}  // namespace deja
