// Names and classes of job states, shared by the scheduler and the CLI.
#ifndef DEJA_COMMON_JOB_STATE_H_
#define DEJA_COMMON_JOB_STATE_H_

#include <optional>
#include <string>
#include <string_view>

#include "deja/v1/job.pb.h"

namespace deja {

// "QUEUED", "RUNNING", ...
std::string_view JobStateName(deja::v1::JobState state);
// Parses a name, case-insensitively.
std::optional<deja::v1::JobState> ParseJobState(std::string_view name);
// SUCCEEDED, FAILED and CANCELLED: nothing changes after these.
bool IsTerminal(deja::v1::JobState state);

}  // namespace deja

#endif  // DEJA_COMMON_JOB_STATE_H_
