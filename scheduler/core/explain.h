// What separates two jobs' identities, field by field, for `deja explain`.
// Pure functions.
#ifndef DEJA_SCHEDULER_CORE_EXPLAIN_H_
#define DEJA_SCHEDULER_CORE_EXPLAIN_H_

#include <vector>

#include "deja/v1/job.pb.h"
#include "deja/v1/scheduler.pb.h"

namespace deja {

// Every identity field (docs/job-identity.md) whose value differs between
// `job` and `entry_job`: "app.version", "app.command", "app.env[K]",
// "app.image", "app.platform[K]", "params[K]" (only the params that enter
// the hash), "inputs[N].digest" / ".kind" / ".path", "outputs". Empty when
// the identities are equal.
std::vector<deja::v1::FieldDiff> IdentityDiff(const deja::v1::JobSpec& job,
                                              const deja::v1::JobSpec& entry_job);

}  // namespace deja

#endif  // DEJA_SCHEDULER_CORE_EXPLAIN_H_
