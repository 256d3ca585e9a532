// SingleFlight: identical jobs in flight run once. A fresh job that will
// record a memo entry leads its identity's group; an identical job
// submitted meanwhile waits (WAITING) for it. When the leader succeeds,
// every follower is served from its fresh entry; when it fails, the oldest
// follower runs itself and leads the others.
//
// Owns: the groups (identity -> leader, leader -> followers, oldest first).
// Rebuilt from the jobs at startup (Restore), never stored.
//
// May call: the JobTable (followers' records, the queue), the ReuseDecider
// (a promoted follower's lookup), the ProjectTable (memo policy).
//
// Thread-safety: not thread-safe; the event loop's.
#ifndef DEJA_SCHEDULER_CORE_SINGLE_FLIGHT_H_
#define DEJA_SCHEDULER_CORE_SINGLE_FLIGHT_H_

#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/time/time.h"
#include "deja/v1/job.pb.h"
#include "scheduler/core/effects.h"
#include "scheduler/core/job_table.h"
#include "scheduler/core/memo_policy.h"
#include "scheduler/core/project_table.h"
#include "scheduler/core/reuse_decider.h"

namespace deja {

class SingleFlight {
 public:
  // Nothing owned; everything must outlive this object.
  SingleFlight(JobTable* jobs, ReuseDecider* reuse, const ProjectTable* projects);
  SingleFlight(const SingleFlight&) = delete;
  SingleFlight& operator=(const SingleFlight&) = delete;

  // Startup: called for every job in memory, oldest first.
  void Restore(const deja::v1::Job& job);
  // A new job (not yet in the table) under `policy`, `reused` or not: a
  // fresh one that may look up waits for an identical leader in flight
  // (true: it is WAITING now); else, if it records, it leads.
  bool Join(deja::v1::Job& job, const MemoPolicy& policy, bool reused, absl::Time now);
  // A WAITING job was cancelled: it leaves its group; the leader is not
  // touched.
  void Leave(const deja::v1::Job& job);
  // `job` ended: it leads no more, and its waiting followers move on
  // (persisted in `fx`; the caller dispatches them).
  void LeaderEnded(const deja::v1::Job& job, absl::Time now, Effects* fx);

 private:
  // Constant after construction.
  JobTable* const jobs_;
  ReuseDecider* const reuse_;
  const ProjectTable* const projects_;

  // MemoKey -> the fresh job in flight that will record it, and each such
  // leader's followers (WAITING), oldest first.
  absl::flat_hash_map<std::string, std::string> inflight_;
  absl::flat_hash_map<std::string, std::vector<std::string>> followers_;
};

}  // namespace deja

#endif  // DEJA_SCHEDULER_CORE_SINGLE_FLIGHT_H_
