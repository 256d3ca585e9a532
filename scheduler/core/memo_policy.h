// Whether a job looks up and records memo entries, from the app's flags, the
// job's setting and its project's settings, and the project settings
// themselves. Pure functions.
//
// Precedence (docs/memoization.md):
//   1. app side_effects: true or reuse: false -> off (always executes, never
//      memoized); nothing overrides it;
//   2. else the job's memoization on/off;
//   3. else (inherit) the project's use_memoization (default on).
//   force: never looks up, but records its success, replacing the entry.
#ifndef DEJA_SCHEDULER_CORE_MEMO_POLICY_H_
#define DEJA_SCHEDULER_CORE_MEMO_POLICY_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "deja/v1/job.pb.h"
#include "deja/v1/scheduler.pb.h"

namespace deja {

inline constexpr int kDefaultRetentionHours = 24;
inline constexpr int kMinRetentionHours = 1;
inline constexpr int kMaxRetentionHours = 120;

struct MemoPolicy {
  bool lookup = false;  // may be served from an earlier success
  bool record = false;  // a fresh success becomes the memo entry
  // Why memoization is off, for humans; empty when it is on.
  std::string off_reason;
};

MemoPolicy DecideMemoPolicy(const deja::v1::JobSpec& spec,
                            const deja::v1::ProjectSettings& project);

// The settings of a project nobody configured.
deja::v1::ProjectSettings DefaultProjectSettings(const std::string& project);

// `current` with the fields of `request` applied. INVALID_ARGUMENT naming
// the field and its allowed range for a bad value or project name.
absl::StatusOr<deja::v1::ProjectSettings> ApplyProjectSettings(
    deja::v1::ProjectSettings current, const deja::v1::SetProjectRequest& request, absl::Time now);

// When a job finishing at `finished` under `project` loses its workspace.
absl::Time WorkspaceExpiry(absl::Time finished, const deja::v1::ProjectSettings& project);

}  // namespace deja

#endif  // DEJA_SCHEDULER_CORE_MEMO_POLICY_H_
