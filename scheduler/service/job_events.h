// JobEvents: what the scheduler tells operators about jobs, from each
// committed version of a job: one log line per event (submitted, assigned,
// started, reusing, waiting, requeued, finished; docs/operations.md) and the
// job metrics (submitted, finished by outcome, memo hits and misses, time
// saved, submit-to-start and dispatch latency).
//
// Versions of a job that change nothing an operator follows (a pin, a
// heartbeat's progress) make no line. A job first seen after a restart is
// not "submitted" again.
//
// Not thread-safe: the loop thread calls Observe after each commit.
#ifndef DEJA_SCHEDULER_SERVICE_JOB_EVENTS_H_
#define DEJA_SCHEDULER_SERVICE_JOB_EVENTS_H_

#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/time/time.h"
#include "common/event_log.h"
#include "common/metrics.h"
#include "deja/v1/job.pb.h"

namespace deja {

struct JobEvent {
  std::string job_id;
  std::string event;  // "submitted", "finished"...
  LogFields fields;   // what the event names: "worker", "state"...

  // Logs "job j12 finished state=FAILED ..." (in JSON with "job" and
  // "event" members).
  void Log() const;
};

class JobEvents {
 public:
  // Declares the job metrics on `metrics` (not owned, may be null: no
  // metrics). Jobs created before `started` are not reported submitted.
  JobEvents(Metrics* metrics, absl::Time started);

  // The events `job` (as just committed) makes, in order, observed at
  // `now`; updates the metrics.
  std::vector<JobEvent> Observe(const deja::v1::Job& job, absl::Time now);

  // Jobs followed (not yet ended).
  size_t following() const { return live_.size(); }

 private:
  struct Seen {
    deja::v1::JobState state;
    uint32_t attempt;
    std::string worker_id;
    absl::Time queued_since;  // when it was last seen enter QUEUED
  };

  void Ended(const deja::v1::Job& job, std::vector<JobEvent>* events);

  Metrics* const metrics_;
  const absl::Time started_;
  absl::flat_hash_map<std::string, Seen> live_;
};

// The job metric families (JobEvents declares them; docs/operations.md).
inline constexpr char kJobsSubmitted[] = "deja_jobs_submitted_total";
inline constexpr char kJobsFinished[] = "deja_jobs_finished_total";
inline constexpr char kMemoHits[] = "deja_memo_hits_total";
inline constexpr char kMemoMisses[] = "deja_memo_misses_total";
inline constexpr char kTimeSaved[] = "deja_time_saved_seconds_total";
inline constexpr char kSubmitToStart[] = "deja_submit_to_start_seconds";
inline constexpr char kDispatchLatency[] = "deja_dispatch_latency_seconds";

}  // namespace deja

#endif  // DEJA_SCHEDULER_SERVICE_JOB_EVENTS_H_
