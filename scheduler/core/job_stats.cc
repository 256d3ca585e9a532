#include "scheduler/core/job_stats.h"

#include "scheduler/core/job_table.h"

namespace deja {

using deja::v1::Job;

void JobStats::Counts::Add(const Job& job, int sign) {
  jobs += sign;
  if (job.state() == deja::v1::SUCCEEDED) succeeded += sign;
  if (job.state() == deja::v1::FAILED) failed += sign;
  if (job.state() == deja::v1::SUCCEEDED && !job.reused_from().empty()) {
    reused += sign;
    time_saved_ms += sign * job.time_saved_ms();
  } else {
    run_time_ms += sign * job.run_time_ms();
  }
}

void JobStats::Counts::Add(const Counts& o) {
  jobs += o.jobs;
  succeeded += o.succeeded;
  failed += o.failed;
  reused += o.reused;
  time_saved_ms += o.time_saved_ms;
  run_time_ms += o.run_time_ms;
}

void JobStats::Add(const Job& job, int sign) {
  by_project_app_[job.spec().project()][job.spec().app().name()].Add(job, sign);
}

absl::StatusOr<deja::v1::StatsResponse> JobStats::Report(const deja::v1::StatsRequest& request,
                                                         const JobTable& jobs) const {
  std::map<std::string, Counts> apps;
  auto count = [&](const Job& job) {
    if (!request.project().empty() && job.spec().project() != request.project()) return;
    if (job.created_at_ms() < request.since_ms()) return;
    apps[job.spec().app().name()].Add(job, +1);
  };
  if (request.since_ms() == 0) {
    for (const auto& [project, counts] : by_project_app_) {
      if (!request.project().empty() && project != request.project()) continue;
      for (const auto& [app, c] : counts) apps[app].Add(c);
    }
  } else if (absl::Status scanned = jobs.ScanStoredOnly(count); !scanned.ok()) {
    return scanned;
  }
  jobs.ForEachResident(count);

  auto fill = [](const Counts& c, deja::v1::AppStats* s) {
    s->set_jobs(c.jobs);
    s->set_succeeded(c.succeeded);
    s->set_failed(c.failed);
    s->set_reused(c.reused);
    s->set_time_saved_ms(c.time_saved_ms);
    s->set_run_time_ms(c.run_time_ms);
    s->set_reuse_rate(c.succeeded == 0 ? 0 : double(c.reused) / double(c.succeeded));
  };
  deja::v1::StatsResponse response;
  Counts total;
  for (const auto& [name, c] : apps) {
    if (c.jobs == 0) continue;  // only jobs that moved back into memory
    total.Add(c);
    deja::v1::AppStats* app = response.add_apps();
    app->set_app_name(name);
    fill(c, app);
  }
  fill(total, response.mutable_total());
  return response;
}

}  // namespace deja
