// The job state machine of DESIGN.md "Scheduling and failure":
//   QUEUED -> ASSIGNED -> RUNNING -> SUCCEEDED | FAILED | CANCELLED
//   QUEUED -> MATERIALIZING -> SUCCEEDED        (a reuse)
//   QUEUED -> WAITING -> ...                    (a single-flight follower)
// plus the way back to QUEUED when a worker is lost or a reuse cannot be
// served. Terminal states never change.
//
// SetJobState is the only way the core changes a job's state: an illegal
// transition is a bug in the core, never an input, and crashes loudly.
#ifndef DEJA_SCHEDULER_CORE_JOB_STATE_MACHINE_H_
#define DEJA_SCHEDULER_CORE_JOB_STATE_MACHINE_H_

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "deja/v1/job.pb.h"

namespace deja {

// OK when a job may go from `from` to `to`; FAILED_PRECONDITION naming both
// states otherwise.
absl::Status CheckTransition(deja::v1::JobState from, deja::v1::JobState to);

// Moves `job` to `to` (stamping finished_at_ms, from `now`, when `to` is
// terminal). Crashes (DEJA_CHECK) on an illegal transition.
void SetJobState(deja::v1::Job& job, deja::v1::JobState to, absl::Time now);

// ASSIGNED, RUNNING or MATERIALIZING: a worker holds the job's attempt.
bool OnWorker(deja::v1::JobState state);

}  // namespace deja

#endif  // DEJA_SCHEDULER_CORE_JOB_STATE_MACHINE_H_
