#include "scheduler/core/project_table.h"

#include <utility>

#include "scheduler/core/memo_policy.h"

namespace deja {

void ProjectTable::Load(deja::v1::ProjectSettings settings) {
  std::string name = settings.project();
  projects_[name] = std::move(settings);
}

const deja::v1::ProjectSettings& ProjectTable::Settings(const std::string& project) const {
  static const auto* defaults = new deja::v1::ProjectSettings(DefaultProjectSettings(""));
  auto it = projects_.find(project);
  return it == projects_.end() ? *defaults : it->second;
}

deja::v1::ProjectSettings ProjectTable::Get(const std::string& project) const {
  auto it = projects_.find(project);
  return it == projects_.end() ? DefaultProjectSettings(project) : it->second;
}

absl::StatusOr<deja::v1::ProjectSettings> ProjectTable::Set(
    const deja::v1::SetProjectRequest& request, absl::Time now, Effects* fx) {
  auto updated = ApplyProjectSettings(Get(request.project()), request, now);
  if (!updated.ok()) return updated.status();
  projects_[request.project()] = *updated;
  fx->projects[request.project()] = *updated;
  return updated;
}

}  // namespace deja
