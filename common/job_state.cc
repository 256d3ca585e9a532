#include "common/job_state.h"

#include <string.h>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace deja {

using deja::v1::JobState;

std::string_view JobStateName(JobState state) {
  switch (state) {
    case deja::v1::QUEUED:
      return "QUEUED";
    case deja::v1::ASSIGNED:
      return "ASSIGNED";
    case deja::v1::RUNNING:
      return "RUNNING";
    case deja::v1::MATERIALIZING:
      return "MATERIALIZING";
    case deja::v1::WAITING:
      return "WAITING";
    case deja::v1::SUCCEEDED:
      return "SUCCEEDED";
    case deja::v1::FAILED:
      return "FAILED";
    case deja::v1::CANCELLED:
      return "CANCELLED";
    default:
      return "UNSPECIFIED";
  }
}

std::optional<JobState> ParseJobState(std::string_view name) {
  JobState state = deja::v1::JOB_STATE_UNSPECIFIED;
  if (!deja::v1::JobState_Parse(absl::AsciiStrToUpper(std::string(name)), &state) ||
      state == deja::v1::JOB_STATE_UNSPECIFIED) {
    return std::nullopt;
  }
  return state;
}

bool IsTerminal(JobState state) {
  return state == deja::v1::SUCCEEDED || state == deja::v1::FAILED || state == deja::v1::CANCELLED;
}

const std::vector<JobState>& NonTerminalStates() {
  static const auto* const states =
      new std::vector<JobState>{deja::v1::QUEUED, deja::v1::WAITING, deja::v1::ASSIGNED,
                                deja::v1::RUNNING, deja::v1::MATERIALIZING};
  return *states;
}

namespace {

std::string SignalDeath(int signal) {
  const char* abbrev = sigabbrev_np(signal);  // "KILL"; null for an unknown number
  if (abbrev == nullptr) return absl::StrCat("killed by signal ", signal);
  return absl::StrCat("killed by signal ", signal, " (SIG", abbrev, ")");
}

}  // namespace

std::string DescribeExit(int exit_code) {
  if (exit_code < 0) return SignalDeath(-exit_code);
  return absl::StrCat("exited with code ", exit_code);
}

std::string ShortExit(int exit_code) {
  if (exit_code < 0) return SignalDeath(-exit_code);
  return absl::StrCat("exit ", exit_code);
}

}  // namespace deja
