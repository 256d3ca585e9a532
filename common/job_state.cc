#include "common/job_state.h"

#include "absl/strings/ascii.h"

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

}  // namespace deja
