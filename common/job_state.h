// Names and classes of job states, shared by the scheduler and the CLI.
#ifndef DEJA_COMMON_JOB_STATE_H_
#define DEJA_COMMON_JOB_STATE_H_

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "deja/v1/job.pb.h"

namespace deja {

// "QUEUED", "RUNNING", ...
std::string_view JobStateName(deja::v1::JobState state);
// Parses a name, case-insensitively.
std::optional<deja::v1::JobState> ParseJobState(std::string_view name);
// SUCCEEDED, FAILED and CANCELLED: nothing changes after these.
bool IsTerminal(deja::v1::JobState state);
// The states a job has not ended in, in the order it goes through them:
// QUEUED, WAITING, ASSIGNED, RUNNING, MATERIALIZING.
const std::vector<deja::v1::JobState>& NonTerminalStates();

// How a command ended, from its exit code as jobs record it (a signal death
// is the negated signal number): "exited with code 3", "killed by signal 9
// (SIGKILL)".
std::string DescribeExit(int exit_code);
// The short form the CLI's state lines use: "exit 3", "killed by signal 9
// (SIGKILL)".
std::string ShortExit(int exit_code);

}  // namespace deja

#endif  // DEJA_COMMON_JOB_STATE_H_
