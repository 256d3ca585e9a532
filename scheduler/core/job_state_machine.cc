#include "scheduler/core/job_state_machine.h"

#include "absl/strings/str_cat.h"
#include "common/check.h"
#include "common/job_state.h"

namespace deja {

using deja::v1::JobState;

absl::Status CheckTransition(JobState from, JobState to) {
  bool ok = false;
  switch (from) {
    case deja::v1::JOB_STATE_UNSPECIFIED:  // a new job
      ok = to == deja::v1::QUEUED;
      break;
    case deja::v1::QUEUED:
      ok = to == deja::v1::ASSIGNED || to == deja::v1::MATERIALIZING || to == deja::v1::WAITING ||
           to == deja::v1::CANCELLED || to == deja::v1::FAILED;
      break;
    case deja::v1::WAITING:
      ok = to == deja::v1::QUEUED || to == deja::v1::MATERIALIZING || to == deja::v1::CANCELLED;
      break;
    case deja::v1::ASSIGNED:
      // A result can overtake the lost "started" message after a reconnect.
      ok = to == deja::v1::RUNNING || to == deja::v1::QUEUED || to == deja::v1::SUCCEEDED ||
           to == deja::v1::FAILED || to == deja::v1::CANCELLED;
      break;
    case deja::v1::RUNNING:
    case deja::v1::MATERIALIZING:
      ok = to == deja::v1::QUEUED || to == deja::v1::SUCCEEDED || to == deja::v1::FAILED ||
           to == deja::v1::CANCELLED;
      break;
    default:  // terminal
      ok = false;
  }
  if (ok) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrCat("illegal job state transition ",
                                                    std::string(JobStateName(from)), " -> ",
                                                    std::string(JobStateName(to))));
}

void SetJobState(deja::v1::Job& job, JobState to, absl::Time now) {
  absl::Status allowed = CheckTransition(job.state(), to);
  DEJA_CHECK(allowed.ok(), job.job_id() + ": " + std::string(allowed.message()));
  job.set_state(to);
  if (IsTerminal(to)) job.set_finished_at_ms(absl::ToUnixMillis(now));
}

bool OnWorker(JobState state) {
  return state == deja::v1::ASSIGNED || state == deja::v1::RUNNING ||
         state == deja::v1::MATERIALIZING;
}

}  // namespace deja
