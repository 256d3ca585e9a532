// The job state machine of DESIGN.md "Scheduling and failure":
//   QUEUED -> ASSIGNED -> RUNNING -> SUCCEEDED | FAILED | CANCELLED
//   QUEUED -> MATERIALIZING -> SUCCEEDED        (a reuse)
//   QUEUED -> WAITING -> ...                    (a single-flight follower)
// plus the way back to QUEUED when a worker is lost or a reuse cannot be
// served. Terminal states never change.
#ifndef DEJA_SCHEDULER_CORE_JOB_STATE_MACHINE_H_
#define DEJA_SCHEDULER_CORE_JOB_STATE_MACHINE_H_

#include "absl/status/status.h"
#include "deja/v1/job.pb.h"

namespace deja {

// OK when a job may go from `from` to `to`; FAILED_PRECONDITION naming both
// states otherwise.
absl::Status CheckTransition(deja::v1::JobState from, deja::v1::JobState to);

}  // namespace deja

#endif  // DEJA_SCHEDULER_CORE_JOB_STATE_MACHINE_H_
