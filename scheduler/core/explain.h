// `deja explain`: why a job was or was not reused, and what separates two
// jobs' identities, field by field.
//
// ExplainJob may call: the MemoIndex (a scan, for the nearest entry when no
// entry had the job's hash) and the JobTable (reads of each candidate's
// source job): a diagnostic, not a hot path. It changes nothing.
#ifndef DEJA_SCHEDULER_CORE_EXPLAIN_H_
#define DEJA_SCHEDULER_CORE_EXPLAIN_H_

#include <vector>

#include "absl/status/statusor.h"
#include "deja/v1/job.pb.h"
#include "deja/v1/scheduler.pb.h"
#include "scheduler/core/job_table.h"
#include "scheduler/core/memo_index.h"

namespace deja {

// Every identity field (docs/job-identity.md) whose value differs between
// `job` and `entry_job`: "app.version", "app.command", "app.env[K]",
// "app.image", "app.platform[K]", "params[K]" (only the params that enter
// the hash), "inputs[N].digest" / ".kind" / ".path", "outputs". Empty when
// the identities are equal.
std::vector<deja::v1::FieldDiff> IdentityDiff(const deja::v1::JobSpec& job,
                                              const deja::v1::JobSpec& entry_job);

// The verdict on job `job_id`: reused, pending, waited, memoization off, forced,
// entry unusable (its message says why), or no matching entry (with the
// nearest entry of the same app and how it differs). NOT_FOUND for an
// unknown job; the store's error if a read or the memo scan fails.
absl::StatusOr<deja::v1::ExplainResponse> ExplainJob(const std::string& job_id,
                                                     const MemoIndex& memo, const JobTable& jobs);

}  // namespace deja

#endif  // DEJA_SCHEDULER_CORE_EXPLAIN_H_
