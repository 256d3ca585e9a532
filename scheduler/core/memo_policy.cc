#include "scheduler/core/memo_policy.h"

#include "absl/strings/str_cat.h"
#include "common/job_spec.h"

namespace deja {

MemoPolicy DecideMemoPolicy(const deja::v1::JobSpec& spec,
                            const deja::v1::ProjectSettings& project) {
  MemoPolicy policy;
  const auto& app = spec.app();
  if (app.side_effects()) {
    policy.off_reason =
        absl::StrCat("app ", app.name(), " has side_effects: true (always executes)");
  } else if (app.has_reuse() && !app.reuse()) {
    policy.off_reason =
        absl::StrCat("app ", app.name(), " is marked reuse: false (non-deterministic)");
  } else if (!app.image().empty() && app.image_id().empty()) {
    // Its name could mean other content on another worker, or tomorrow.
    policy.off_reason = absl::StrCat("image ", app.image(),
                                     " is not pinned to its content: push it (deja image push ",
                                     app.image(), ") or name it by its ID (sha256:...)");
  } else if (spec.memoization() == deja::v1::MEMOIZATION_OFF) {
    policy.off_reason = "the job set memoization off";
  } else if (spec.memoization() == deja::v1::MEMOIZATION_INHERIT && !project.use_memoization()) {
    policy.off_reason = absl::StrCat("project ", project.project(), " has memoization off");
  }
  if (!policy.off_reason.empty()) return policy;
  policy.record = true;
  policy.lookup = !spec.force();
  return policy;
}

deja::v1::ProjectSettings DefaultProjectSettings(const std::string& project) {
  deja::v1::ProjectSettings settings;
  settings.set_project(project);
  settings.set_use_memoization(true);
  settings.set_intermediate_files_hours(kDefaultRetentionHours);
  return settings;
}

absl::StatusOr<deja::v1::ProjectSettings> ApplyProjectSettings(
    deja::v1::ProjectSettings current, const deja::v1::SetProjectRequest& request, absl::Time now) {
  if (auto s = ValidateName("project", request.project()); !s.ok()) return s;
  if (!request.has_use_memoization() && !request.has_intermediate_files_hours()) {
    return absl::InvalidArgumentError(
        "set: give use_memoization and/or intermediate_files_hours to change");
  }
  if (request.has_intermediate_files_hours()) {
    int hours = request.intermediate_files_hours();
    if (hours < kMinRetentionHours || hours > kMaxRetentionHours) {
      return absl::InvalidArgumentError(absl::StrCat("intermediate_files_hours: ", hours,
                                                     " is out of range (", kMinRetentionHours,
                                                     " to ", kMaxRetentionHours, " hours)"));
    }
    current.set_intermediate_files_hours(hours);
  }
  if (request.has_use_memoization()) current.set_use_memoization(request.use_memoization());
  current.set_project(request.project());
  current.set_updated_at_ms(absl::ToUnixMillis(now));
  return current;
}

absl::Time WorkspaceExpiry(absl::Time finished, const deja::v1::ProjectSettings& project) {
  return finished + absl::Hours(project.intermediate_files_hours());
}

}  // namespace deja
