#include "scheduler/service/job_events.h"

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/job_state.h"

namespace deja {
namespace {

using deja::v1::Job;

absl::Time FromMillis(int64_t ms) { return absl::FromUnixMillis(ms); }

double Seconds(absl::Duration d) { return absl::ToDoubleSeconds(d); }

std::string Lower(deja::v1::JobState state) {
  return absl::AsciiStrToLower(std::string(JobStateName(state)));
}

JobEvent Event(const Job& job, const std::string& event, LogFields fields = {}) {
  return JobEvent{job.job_id(), event, std::move(fields)};
}

}  // namespace

void JobEvent::Log() const {
  LogEvent(absl::StrCat("job ", job_id, " ", event), fields, {{"job", job_id}, {"event", event}});
}

JobEvents::JobEvents(Metrics* metrics, absl::Time started) : metrics_(metrics), started_(started) {
  if (metrics_ == nullptr) return;
  metrics_->Declare(kJobsSubmitted, Metrics::Type::kCounter, "Jobs submitted.", {"project"});
  metrics_->Declare(kJobsFinished, Metrics::Type::kCounter,
                    "Jobs ended, by outcome: succeeded (ran), reused (served from an earlier "
                    "success), failed, cancelled.",
                    {"project", "outcome"});
  metrics_->Declare(kMemoHits, Metrics::Type::kCounter,
                    "Jobs served from an earlier success instead of running.", {"project", "app"});
  metrics_->Declare(kMemoMisses, Metrics::Type::kCounter,
                    "Jobs with memoization on that had to run (no reusable earlier success).",
                    {"project", "app"});
  metrics_->Declare(kTimeSaved, Metrics::Type::kCounter,
                    "Run time that reuses saved: the run time of the jobs they reused.",
                    {"project"});
  metrics_->Declare(kSubmitToStart, Metrics::Type::kHistogram,
                    "From a job's submit to the start of its command, for jobs that run.", {},
                    LatencyBuckets());
  metrics_->Declare(kDispatchLatency, Metrics::Type::kHistogram,
                    "From a job entering the queue to its assignment to a worker.", {},
                    LatencyBuckets());
}

std::vector<JobEvent> JobEvents::Observe(const Job& job, absl::Time now) {
  std::vector<JobEvent> events;
  const std::string& project = job.spec().project();
  auto it = live_.find(job.job_id());
  const bool first = it == live_.end();
  if (first) {
    if (FromMillis(job.created_at_ms()) < started_ && job.created_at_ms() > 0) {
      // Known before this process started: follow it from here, silently
      // until it changes (or ends now).
      if (!IsTerminal(job.state())) {
        live_.emplace(job.job_id(), Seen{job.state(), job.attempt(), job.worker_id(), now});
        return events;
      }
    } else {
      events.push_back(Event(
          job, "submitted",
          {{"project", project}, {"app", job.spec().app().name()}, {"hash", job.job_hash()}}));
      if (metrics_ != nullptr) metrics_->Add(kJobsSubmitted, {project});
    }
    it = live_
             .emplace(job.job_id(), Seen{deja::v1::JOB_STATE_UNSPECIFIED, job.attempt(), "",
                                         FromMillis(job.created_at_ms())})
             .first;
  }
  Seen& seen = it->second;
  const bool changed = seen.state != job.state() || seen.attempt != job.attempt() ||
                       seen.worker_id != job.worker_id();
  if (!changed) return events;
  switch (job.state()) {
    case deja::v1::QUEUED:
      if (!first || job.attempt() > 1) {
        events.push_back(Event(job, "requeued",
                               {{"attempt", absl::StrCat(job.attempt())}, {"why", job.message()}}));
      }
      seen.queued_since = now;
      break;
    case deja::v1::WAITING:
      events.push_back(Event(job, "waiting", {{"for", job.waiting_for()}}));
      break;
    case deja::v1::ASSIGNED:
      events.push_back(
          Event(job, "assigned",
                {{"worker", job.worker_id()}, {"attempt", absl::StrCat(job.attempt())}}));
      if (metrics_ != nullptr)
        metrics_->Observe(kDispatchLatency, {}, Seconds(now - seen.queued_since));
      break;
    case deja::v1::RUNNING:
      events.push_back(Event(
          job, "started", {{"worker", job.worker_id()}, {"attempt", absl::StrCat(job.attempt())}}));
      if (metrics_ != nullptr && job.started_at_ms() > 0) {
        metrics_->Observe(
            kSubmitToStart, {},
            Seconds(FromMillis(job.started_at_ms()) - FromMillis(job.created_at_ms())));
      }
      break;
    case deja::v1::MATERIALIZING:
      events.push_back(
          Event(job, "reusing", {{"from", job.reused_from()}, {"worker", job.worker_id()}}));
      break;
    default:
      break;
  }
  seen.state = job.state();
  seen.attempt = job.attempt();
  seen.worker_id = job.worker_id();
  if (IsTerminal(job.state())) Ended(job, &events);
  return events;
}

void JobEvents::Ended(const Job& job, std::vector<JobEvent>* events) {
  live_.erase(job.job_id());
  const std::string& project = job.spec().project();
  const std::string& app = job.spec().app().name();
  const bool reused = job.state() == deja::v1::SUCCEEDED && !job.reused_from().empty();
  LogFields fields{{"state", std::string(JobStateName(job.state()))}};
  if (reused) {
    fields.emplace_back("reused_from", job.reused_from());
    fields.emplace_back("saved_ms", absl::StrCat(job.time_saved_ms()));
  } else {
    if (job.has_exit_code()) fields.emplace_back("exit", ShortExit(job.exit_code()));
    if (job.run_time_ms() > 0) fields.emplace_back("run_ms", absl::StrCat(job.run_time_ms()));
    if (job.state() != deja::v1::SUCCEEDED && !job.message().empty()) {
      fields.emplace_back("why", job.message());
    }
  }
  events->push_back(Event(job, reused ? "reused" : "finished", std::move(fields)));
  if (metrics_ == nullptr) return;
  metrics_->Add(kJobsFinished, {project, reused ? "reused" : Lower(job.state())});
  if (reused) {
    metrics_->Add(kMemoHits, {project, app});
    metrics_->Add(kTimeSaved, {project}, static_cast<double>(job.time_saved_ms()) / 1000);
  } else if (job.started_at_ms() > 0 && job.memoization_off_reason().empty()) {
    metrics_->Add(kMemoMisses, {project, app});
  }
}

}  // namespace deja
