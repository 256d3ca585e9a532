// JobStats: counters of jobs by project and app, for the Stats RPC.
//
// A JobTable keeps one JobStats of the jobs that are only in the store (the
// ended ones that left memory), updated as jobs leave and come back, so that
// Stats without `since_ms` needs no I/O. Report adds the jobs in memory.
//
// Thread-safety: not thread-safe; the event loop's.
#ifndef DEJA_SCHEDULER_CORE_JOB_STATS_H_
#define DEJA_SCHEDULER_CORE_JOB_STATS_H_

#include <cstdint>
#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "deja/v1/job.pb.h"
#include "deja/v1/scheduler.pb.h"

namespace deja {

class JobTable;

class JobStats {
 public:
  // What Stats reports of a set of jobs.
  struct Counts {
    int64_t jobs = 0, succeeded = 0, failed = 0, reused = 0, time_saved_ms = 0, run_time_ms = 0;
    // Counts `job` in (sign +1) or out (sign -1).
    void Add(const deja::v1::Job& job, int sign);
    void Add(const Counts& other);
  };

  // Counts `job` in (+1) or out (-1) under its project and app.
  void Add(const deja::v1::Job& job, int sign);

  // The Stats RPC over `jobs`, whose stored-only jobs this object counts.
  // Without since_ms, from these counters and the jobs in memory (no I/O);
  // with it, by a scan of every stored job: the store's error if it fails.
  absl::StatusOr<deja::v1::StatsResponse> Report(const deja::v1::StatsRequest& request,
                                                 const JobTable& jobs) const;

 private:
  std::map<std::string, std::map<std::string, Counts>> by_project_app_;
};

}  // namespace deja

#endif  // DEJA_SCHEDULER_CORE_JOB_STATS_H_
