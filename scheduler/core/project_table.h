// ProjectTable: every project's settings (memoization, retention), with
// the defaults for a project nobody configured. All in memory: projects are
// few.
//
// May call: nothing (memo_policy's pure functions). Errors: Set returns
// INVALID_ARGUMENT naming the bad field (ApplyProjectSettings).
//
// Thread-safety: not thread-safe; the event loop's.
#ifndef DEJA_SCHEDULER_CORE_PROJECT_TABLE_H_
#define DEJA_SCHEDULER_CORE_PROJECT_TABLE_H_

#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "deja/v1/scheduler.pb.h"
#include "scheduler/core/effects.h"

namespace deja {

class ProjectTable {
 public:
  // A stored project's settings, at startup.
  void Load(deja::v1::ProjectSettings settings);

  // The settings in force for `project` (the defaults, with an empty
  // project name, for one never set): for decisions.
  const deja::v1::ProjectSettings& Settings(const std::string& project) const;
  // The settings of `project` as the GetProject RPC shows them (the
  // defaults carry the project's name).
  deja::v1::ProjectSettings Get(const std::string& project) const;
  // Applies `request` (and persists it); takes effect for jobs finishing
  // from now on.
  absl::StatusOr<deja::v1::ProjectSettings> Set(const deja::v1::SetProjectRequest& request,
                                                absl::Time now, Effects* fx);

 private:
  std::map<std::string, deja::v1::ProjectSettings> projects_;
};

}  // namespace deja

#endif  // DEJA_SCHEDULER_CORE_PROJECT_TABLE_H_
