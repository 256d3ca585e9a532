// JobTable: the scheduler's jobs — the ones in memory, their submission
// order, the FIFO queue, request ids — and their residency: which jobs stay
// in memory and which are read back from the store.
//
// Residency: with a StoreReader, a job stays in memory while it has not
// ended, while a change of it is not committed yet, or while a worker still
// holds it (a cancelled job whose result has not come); Committed() lets the
// others go, and they are read back (Get, Resident) when asked for. A
// request id stays in memory until it is committed. Without a StoreReader
// everything stays in memory (tests, and tools that never commit).
//
// It never changes a job's state: callers do (SetJobState), holding the
// Job& that Find/At/Resident return. References stay valid while jobs are
// added (node-based map): a pipeline may submit jobs while a caller holds
// one.
//
// May call: the StoreReader (reads only). Errors: Get returns NOT_FOUND "job
// <id> not found", or the store's error (INTERNAL, DATA_LOSS).
//
// Thread-safety: not thread-safe; the event loop's.
#ifndef DEJA_SCHEDULER_CORE_JOB_TABLE_H_
#define DEJA_SCHEDULER_CORE_JOB_TABLE_H_

#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/node_hash_map.h"
#include "absl/status/statusor.h"
#include "deja/v1/job.pb.h"
#include "deja/v1/scheduler.pb.h"
#include "scheduler/core/effects.h"
#include "scheduler/core/job_stats.h"
#include "scheduler/core/store_reader.h"

namespace deja {

// Which jobs a list shows: a job must pass every filter set.
struct JobFilter {
  std::string project;                        // empty: every project
  std::set<deja::v1::JobState> states;        // empty: every state
  std::string app;                            // empty: every app
  std::map<std::string, std::string> labels;  // each on the job's spec
  int64_t since_ms = 0;                       // created at or after (0: ever)
  std::string array_id;                       // an element of this array

  bool Matches(const deja::v1::Job& job) const;
};

// The filter a ListJobs request asks for (its project as given: the caller
// scopes it to the caller's).
JobFilter JobFilterOf(const deja::v1::ListJobsRequest& request);

class JobTable {
 public:
  // `store` (not owned; null: everything stays in memory) must outlive the
  // table.
  explicit JobTable(StoreReader* store);
  JobTable(const JobTable&) = delete;
  JobTable& operator=(const JobTable&) = delete;

  bool has_store() const { return store_ != nullptr; }

  // The sequence number of a new job ("j<seq>"), never handed out before.
  uint64_t TakeSeq() { return next_seq_++; }

  // A stored job at startup. Crashes on a malformed id (the store is ours).
  // A QUEUED job joins the queue; an ended one not `held_by_worker` stays in
  // the store only (counted in stored_stats()) when there is a store.
  void Load(deja::v1::Job job, bool held_by_worker);

  // A new job, in memory from now on (queue it with Enqueue).
  deja::v1::Job& Add(deja::v1::Job job);

  // The job if it is in memory, else null.
  deja::v1::Job* Find(const std::string& job_id);
  const deja::v1::Job* Find(const std::string& job_id) const;
  // A job that must be in memory (crashes if not: a bug).
  deja::v1::Job& At(const std::string& job_id);
  // The job from memory, else from the store.
  absl::StatusOr<deja::v1::Job> Get(const std::string& job_id) const;
  // The job in memory, read back from the store (and kept until it is
  // committed again) when it left; null when there is none or the read
  // failed.
  deja::v1::Job* Resident(const std::string& job_id);

  // The newest `limit` (0: all) matches, oldest first; an empty project or
  // an unspecified state matches all. The store's error if a scan failed.
  // Paging: only jobs older than sequence number `before` (0: all); and at
  // most `max_bytes` (0: no bound) of serialized jobs, but never none: when
  // a match is left out for that, `*next_before` (if given) is set to the
  // oldest job's sequence number returned, else to 0.
  absl::StatusOr<std::vector<deja::v1::Job>> List(const std::string& project,
                                                  deja::v1::JobState state, size_t limit,
                                                  uint64_t before = 0, size_t max_bytes = 0,
                                                  uint64_t* next_before = nullptr) const;
  // The same with every filter; `*next_before` is also set when `limit`
  // left out a match. Jobs are scanned newest first, so a `since_ms` ends
  // the scan at the first job created before it.
  absl::StatusOr<std::vector<deja::v1::Job>> List(const JobFilter& filter, size_t limit,
                                                  uint64_t before = 0, size_t max_bytes = 0,
                                                  uint64_t* next_before = nullptr) const;
  // Every job in memory, oldest first.
  void ForEachResident(const std::function<void(const deja::v1::Job&)>& visit) const;
  // Every stored job that is not in memory, oldest first; the store's error.
  absl::Status ScanStoredOnly(const std::function<void(const deja::v1::Job&)>& visit) const;
  size_t resident() const { return jobs_.size(); }

  // The FIFO queue of QUEUED jobs. Enqueue clears the job's worker.
  void Enqueue(deja::v1::Job& job);
  // The jobs enqueued since the last call (some may have left the queue
  // since: check with IsQueued), for whoever judges new arrivals once.
  std::vector<uint64_t> TakeFreshlyQueued() { return std::exchange(freshly_queued_, {}); }
  bool IsQueued(uint64_t seq) const { return queue_.contains(seq); }
  void Dequeue(const std::string& job_id);
  // The oldest queued job after `seq` (0: from the start), 0 when none.
  uint64_t NextQueued(uint64_t seq) const;
  // The queued job `seq` (in memory by construction).
  deja::v1::Job& Queued(uint64_t seq);

  // The job id first created for `request_key` (RequestKey(project,
  // request_id)): from memory, else from the store. NOT_FOUND when none;
  // the store's error otherwise.
  absl::StatusOr<std::string> FindRequest(const std::string& request_key) const;
  // Records a new request id (and persists it in `fx`).
  void AddRequest(const std::string& request_key, const std::string& job_id, Effects* fx);

  // The caller committed `fx`: the request ids it names leave memory, and
  // so does every ended job it names that is unchanged since and not
  // `held` by a worker. No-op without a store.
  void Committed(const Effects& fx, const std::function<bool(const deja::v1::Job&)>& held);

  // Counters of the jobs that are only in the store.
  const JobStats& stored_stats() const { return stored_stats_; }

 private:
  // Constant after construction.
  StoreReader* const store_;

  uint64_t next_seq_ = 1;
  // Jobs in memory (see "Residency"), and seq -> id of the same jobs.
  absl::node_hash_map<std::string, deja::v1::Job> jobs_;
  std::map<uint64_t, std::string> order_;
  std::set<uint64_t> queue_;  // seqs of QUEUED jobs: FIFO
  std::vector<uint64_t> freshly_queued_;
  // RequestKey -> job id: those not yet committed (all without a store).
  absl::flat_hash_map<std::string, std::string> requests_;
  JobStats stored_stats_;
};

}  // namespace deja

#endif  // DEJA_SCHEDULER_CORE_JOB_TABLE_H_
