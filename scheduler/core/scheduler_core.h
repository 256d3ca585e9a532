// SchedulerCore: the scheduler's business logic, with no gRPC and no RocksDB.
//
// Execution model: every method is called from one thread (the scheduler's
// event loop); the class is not thread-safe. Methods never block and never do
// I/O. Each mutating method records what must happen next in an Effects
// value: records to persist, then messages to send to workers. The caller
// persists `Effects` durably before it sends anything or answers a client,
// so nothing is acknowledged that a crash could lose.
//
// Time is passed in explicitly (`now`), so tests drive it.
//
// Memory: with a StoreReader, the core keeps in memory only what its logic
// needs on every call: jobs that have not ended (and ended ones not yet
// committed), a compact memo index (memo id -> source job, worker, expiry;
// 32 bytes an entry) and per-app counters for Stats. Everything else is read
// back from the store when asked for: ended jobs, full memo entries (on a
// hit: outputs and manifest), request ids. A record leaves memory only once
// the caller says it is committed (Committed()), so reads never miss a
// write of the current round. Without a StoreReader everything stays in
// memory (tests, and tools that never commit).
#ifndef DEJA_SCHEDULER_CORE_SCHEDULER_CORE_H_
#define DEJA_SCHEDULER_CORE_SCHEDULER_CORE_H_

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
#include "absl/time/time.h"
#include "deja/v1/job.pb.h"
#include "scheduler/core/store_reader.h"
#include "deja/v1/pipeline.pb.h"
#include "deja/v1/scheduler.pb.h"
#include "deja/v1/worker.pb.h"

namespace deja {

struct CoreOptions {
  // A worker silent (no heartbeat, or no stream) this long is lost and its
  // jobs are requeued.
  absl::Duration worker_timeout = absl::Seconds(10);
  // Executions a job gets before lost workers make it FAILED.
  int max_attempts = 3;
  // Heartbeat interval asked of workers.
  absl::Duration heartbeat_interval = absl::Seconds(1);
  // Assignments a worker may hold beyond its slots: it starts the next the
  // moment a slot frees, without waiting for a scheduler round trip. Good for
  // many short jobs; a job sent ahead waits for that worker's slot even if
  // another worker frees one first. 0 (the default) sends only to free slots.
  int dispatch_ahead = 0;
};

// What a core call asks its caller to carry out, in this order.
struct Effects {
  // 1. Persist: the latest version of every changed job, memo changes.
  std::map<std::string, deja::v1::Job> jobs;
  std::map<std::string, deja::v1::MemoEntry> memo_puts;  // by MemoId
  std::set<std::string> memo_deletes;                    // MemoIds
  // New request ids: MemoKey(project, request_id) -> job id.
  std::map<std::string, std::string> requests;
  std::map<std::string, deja::v1::ProjectSettings> projects;  // by project
  std::map<std::string, deja::v1::Pipeline> pipelines;        // by pipeline id
  // 2. Then send, in order, to the current stream of each worker.
  std::vector<std::pair<std::string, deja::v1::SchedulerMessage>> to_workers;
  // 3. Then end these worker streams (worker id, session): declared lost.
  std::vector<std::pair<std::string, uint64_t>> close_sessions;

  bool empty() const {
    return jobs.empty() && memo_puts.empty() && memo_deletes.empty() && requests.empty() &&
           projects.empty() && pipelines.empty() && to_workers.empty() && close_sessions.empty();
  }
};

// What the content store holds. Implementations are thread-safe.
class BlobIndex {
 public:
  virtual ~BlobIndex() = default;
  // True when the store has the blob with this size.
  virtual bool Has(const std::string& digest, uint64_t size) = 0;
  // Stores a small blob (a directory blob a pipeline edge builds) durably.
  virtual absl::Status Put(const std::string& bytes) = 0;
};

// Project, NUL, job hash (or request id): the key of a request id.
std::string MemoKey(const std::string& project, const std::string& job_hash);
// The id of a memo entry: the 16 raw bytes of XXH3-128(MemoKey(...)). Fixed
// size, so the in-memory index holds it inline and can name the stored
// entry (schema.h) with nothing else.
std::string MemoId(const std::string& project, const std::string& job_hash);

class SchedulerCore {
 public:
  // `blobs` (not owned; may be null in tests that use no files) answers
  // whether inputs and memoized outputs are in the content store. `store`
  // (not owned; may be null: then every record stays in memory) reads back
  // what was committed; it must outlive the core.
  explicit SchedulerCore(CoreOptions options, BlobIndex* blobs = nullptr,
                         StoreReader* store = nullptr);

  // Restores state at startup, streaming the store's records (never all of
  // them in memory at once). Jobs that were on a worker stay there until
  // that worker reconnects and claims them, or worker_timeout after `now`
  // passes and they are requeued. Returns the store's error (DATA_LOSS,
  // INTERNAL) if a scan fails. Requires a StoreReader.
  absl::Status LoadFromStore(absl::Time now);
  // The same from records in hand; only for a core without a StoreReader.
  void Load(std::vector<deja::v1::Job> jobs, std::vector<deja::v1::MemoEntry> memo,
            std::vector<deja::v1::ProjectSettings> projects,
            std::vector<deja::v1::Pipeline> pipelines, absl::Time now);

  // The caller committed `fx` (durably): records it names may now leave
  // memory and be read back from the store. Call after every commit.
  void Committed(const Effects& fx);

  // Validates and stores a new job, serving it from the memo index when it
  // can. INVALID_ARGUMENT names the bad field. A repeated request_id in the
  // same project returns the job first created for it.
  absl::StatusOr<deja::v1::SubmitResponse> Submit(deja::v1::JobSpec spec, absl::Time now,
                                                  Effects* fx);

  // NOT_FOUND for an unknown id; the store's error if reading it failed.
  absl::StatusOr<deja::v1::Job> GetJob(const std::string& job_id) const;
  // The newest `limit` (0: all) matches, oldest first; an empty project or
  // an unspecified state matches all. The store's error if a scan failed.
  absl::StatusOr<std::vector<deja::v1::Job>> ListJobs(const std::string& project,
                                                      deja::v1::JobState state,
                                                      size_t limit) const;
  // Cancels a job that has not ended (its process group is killed by its
  // worker); FAILED_PRECONDITION if it already ended.
  absl::StatusOr<deja::v1::Job> CancelJob(const std::string& job_id, absl::Time now, Effects* fx);

  // The connected worker holding `job_id`'s workspace. FAILED_PRECONDITION
  // if the job never got one, UNAVAILABLE if that worker is not connected.
  absl::StatusOr<std::string> WorkspaceHolder(const std::string& job_id) const;

  std::vector<deja::v1::WorkerInfo> ListWorkers() const;

  // Project settings (defaults for a project never set). SetProject:
  // INVALID_ARGUMENT naming a bad field; applies to jobs finishing later.
  deja::v1::ProjectSettings GetProject(const std::string& project) const;
  absl::StatusOr<deja::v1::ProjectSettings> SetProject(const deja::v1::SetProjectRequest& request,
                                                       absl::Time now, Effects* fx);

  // The memo index. GetMemo: NOT_FOUND when no entry matches. EvictMemo:
  // INVALID_ARGUMENT unless exactly one selector is given.
  // ListMemo and EvictMemo scan the stored entries (an operator's command,
  // not a hot path).
  absl::StatusOr<std::vector<deja::v1::MemoEntry>> ListMemo(
      const deja::v1::ListMemoRequest& request) const;
  absl::StatusOr<deja::v1::MemoEntry> GetMemo(const deja::v1::GetMemoRequest& request) const;
  absl::StatusOr<deja::v1::EvictMemoResponse> EvictMemo(const deja::v1::EvictMemoRequest& request,
                                                        Effects* fx);

  // Why a job was or was not reused. NOT_FOUND for an unknown job.
  absl::StatusOr<deja::v1::ExplainResponse> Explain(const std::string& job_id,
                                                    absl::Time now) const;
  // Without since_ms, from counters kept up to date (no I/O); with it, by
  // a scan of every stored job.
  absl::StatusOr<deja::v1::StatsResponse> Stats(const deja::v1::StatsRequest& request) const;

  // Pipelines (scheduler/core/pipelines.cc). Submit: INVALID_ARGUMENT names
  // the node and field; FAILED_PRECONDITION for a file input not in the
  // store. Nodes become jobs as soon as their inputs are known.
  absl::StatusOr<deja::v1::Pipeline> SubmitPipeline(
      const deja::v1::SubmitPipelineRequest& request, absl::Time now, Effects* fx);
  absl::StatusOr<deja::v1::Pipeline> GetPipeline(const std::string& pipeline_id) const;
  std::vector<deja::v1::Pipeline> ListPipelines(const std::string& project, size_t limit) const;
  absl::StatusOr<deja::v1::Pipeline> CancelPipeline(const std::string& pipeline_id,
                                                    absl::Time now, Effects* fx);
  absl::StatusOr<deja::v1::Pipeline> RetryPipeline(const deja::v1::RetryPipelineRequest& request,
                                                   absl::Time now, Effects* fx);
  absl::StatusOr<deja::v1::PipelinePlan> PlanPipeline(const deja::v1::SubmitPipelineRequest& request,
                                                      absl::Time now) const;
  // Moves pipelines forward after the jobs in `fx` changed: node states,
  // new jobs for nodes whose inputs became known, pipeline ends. The
  // scheduler calls it before every commit; it may add jobs to `fx`.
  void SyncPipelines(absl::Time now, Effects* fx);
  // After Load: catches up every running pipeline.
  void ResumePipelines(absl::Time now, Effects* fx);

  // A worker stream registered. `session` is unique per stream; messages of
  // an older session of the same worker are ignored from now on.
  absl::Status WorkerConnected(const deja::v1::Register& reg, uint64_t session, absl::Time now,
                               Effects* fx);
  void WorkerMessage(const std::string& worker_id, uint64_t session,
                     const deja::v1::WorkerMessage& msg, absl::Time now, Effects* fx);
  void WorkerDisconnected(const std::string& worker_id, uint64_t session, absl::Time now);

  // Declares silent workers lost and requeues their jobs. Call periodically.
  void Tick(absl::Time now, Effects* fx);

  const CoreOptions& options() const { return options_; }
  // Jobs held in memory (see "Memory" above); for tests and metrics.
  size_t resident_jobs() const { return jobs_.size(); }

 private:
  struct Worker {
    deja::v1::Register info;
    uint64_t session = 0;
    bool connected = false;
    absl::Time last_seen;  // last message, or disconnect time when !connected
    // Jobs sent to this worker whose result has not arrived: id -> attempt.
    std::map<std::string, uint32_t> jobs;
    int busy_slots = 0;  // RUN assignments among `jobs`
  };

  void SetState(deja::v1::Job& job, deja::v1::JobState to, absl::Time now);
  void Enqueue(deja::v1::Job& job);
  // Assigns queued jobs, oldest first, to connected workers with free slots.
  void Dispatch(absl::Time now, Effects* fx);
  // A reuse candidate: MATERIALIZE on the holder, or on another worker that
  // pulls the workspace. False when it must run fresh instead (the job's
  // message says why); true when assigned or waiting for a slot.
  bool DispatchReuse(deja::v1::Job& job, absl::Time now, Effects* fx);
  void Assign(deja::v1::Job& job, Worker& worker, deja::v1::SchedulerMessage msg,
              deja::v1::JobState state, absl::Time now, Effects* fx);
  Worker* PickWorker(const deja::v1::Job& job);
  bool Fits(const Worker& worker, const deja::v1::Job& job) const;
  // Assignments `worker` may hold: its slots plus options_.dispatch_ahead.
  int Capacity(const Worker& worker) const;
  // Empty when every output blob of `entry` is in the store; else says which is not.
  std::string MissingOutput(const deja::v1::MemoEntry& entry) const;
  // The job will run fresh: forget the reuse, saying why.
  void ClearReuse(deja::v1::Job& job, const std::string& why);
  void HandleResult(Worker& worker, const deja::v1::JobResult& result, absl::Time now,
                    Effects* fx);
  // Bookkeeping after `job` reached a terminal state: its workspace expiry,
  // and the identical jobs waiting for it (single-flight).
  void Finished(deja::v1::Job& job, absl::Time now, Effects* fx);
  const deja::v1::ProjectSettings& Settings(const std::string& project) const;
  // The memo index: what a lookup needs before it reads the full entry.
  struct MemoIndexKey {
    uint64_t hi = 0, lo = 0;
    bool operator==(const MemoIndexKey& o) const { return hi == o.hi && lo == o.lo; }
    template <typename H>
    friend H AbslHashValue(H h, const MemoIndexKey& k) {
      return H::combine(std::move(h), k.hi, k.lo);
    }
  };
  struct MemoRef {
    uint64_t source_seq = 0;    // the source job "j<seq>"
    uint32_t expires_at_s = 0;  // expires_at_ms rounded up to seconds; 0: never
    uint32_t worker = 0;        // index into worker_names_
  };
  static MemoIndexKey IndexKey(const std::string& memo_id);
  static std::string IdOf(const MemoIndexKey& key);
  uint32_t InternWorker(const std::string& worker_id);
  const MemoRef* FindMemo(const std::string& memo_id) const;
  // The full entry: uncommitted in memory, else from the store. NOT_FOUND
  // when the index has none.
  absl::StatusOr<deja::v1::MemoEntry> ReadMemo(const std::string& memo_id) const;
  // Every entry of the index (full), in no particular order.
  absl::Status ForEachMemo(const std::function<void(const deja::v1::MemoEntry&)>& visit) const;
  // Adds or replaces an entry (and persists it).
  void PutMemo(deja::v1::MemoEntry entry, Effects* fx);
  // Indexes a stored entry at load.
  void IndexMemo(const deja::v1::MemoEntry& entry);
  // Drops a memo entry (and persists the drop).
  void DropMemo(const std::string& memo_id, Effects* fx);
  // A job in memory, read back from the store (and kept until it is
  // committed again) when it left; null when there is none or the read
  // failed.
  deja::v1::Job* Resident(const std::string& job_id);
  // A worker still holds it (a cancelled job whose result has not come).
  bool HeldByWorker(const deja::v1::Job& job) const;
  // Stats of the jobs that are only in the store, by project and app.
  struct StatCounts {
    int64_t jobs = 0, succeeded = 0, failed = 0, reused = 0, time_saved_ms = 0, run_time_ms = 0;
    void Add(const deja::v1::Job& job, int sign);
    void Add(const StatCounts& other);
  };
  void CountStored(const deja::v1::Job& job, int sign);
  // Load, one record at a time.
  void LoadProject(deja::v1::ProjectSettings& settings);
  void LoadPipeline(deja::v1::Pipeline& pipeline);
  void LoadJob(deja::v1::Job& job, absl::Time now);
  void FinishLoad();
  // Whether a job with `spec` and `job_hash` would be served from an earlier
  // success now, and from which; `problem` says why not.
  struct ReuseDecision {
    bool reuse = false;
    std::string source_id, worker_id;
    int64_t time_saved_ms = 0;
    int64_t expires_at_ms = 0;
    int64_t source_finished_at_ms = 0;
    google::protobuf::RepeatedPtrField<deja::v1::OutputFile> outputs;  // when reuse
    std::string problem;
    bool drop_entry = false;  // the entry is expired or incomplete
  };
  ReuseDecision DecideReuse(const deja::v1::JobSpec& spec, const std::string& job_hash,
                            absl::Time now) const;
  // A submit's memo lookup: sets the job up as a reuse candidate, or says in
  // its message why an entry could not serve it. True for a candidate.
  bool LookUp(deja::v1::Job& job, absl::Time now, Effects* fx);
  // --reuse JOB: INVALID_ARGUMENT / FAILED_PRECONDITION naming the problem.
  absl::Status CheckManualReuse(const deja::v1::JobSpec& spec, absl::Time now) const;
  void MarkWorkspacesExpired(const Worker& worker, const deja::v1::WorkspacesExpired& expired,
                             Effects* fx);
  // Submits the nodes whose inputs are known, marks the ones whose
  // upstream failed, and settles the pipeline when every node is final.
  void AdvancePipeline(deja::v1::Pipeline& pipeline, absl::Time now, Effects* fx);
  deja::v1::Pipeline* FindPipeline(const std::string& pipeline_id);
  // Requeues (or fails, past max_attempts) every job on a lost worker.
  void LoseWorker(Worker& worker, const std::string& why, absl::Time now, Effects* fx);
  void Release(Worker& worker, const std::string& job_id);
  Worker* FindWorker(const std::string& worker_id);
  Worker* ConnectedWorker(const std::string& worker_id);

  // Constant after construction.
  const CoreOptions options_;
  BlobIndex* const blobs_;
  StoreReader* const store_;

  uint64_t next_seq_ = 1;
  // Node-based: references stay valid while jobs are added (a pipeline may
  // submit jobs while a caller holds one).
  // Jobs in memory (with a store: those not ended, or not yet committed
  // since they changed, or still held by a worker; without: all).
  absl::node_hash_map<std::string, deja::v1::Job> jobs_;
  std::map<uint64_t, std::string> order_;  // seq -> id of the jobs in jobs_
  std::map<std::string, std::map<std::string, StatCounts>> stored_stats_;
  std::set<uint64_t> queue_;               // seqs of QUEUED jobs: FIFO
  // Memo: every entry's MemoRef; the full entries not yet committed (all of
  // them without a store), by MemoId.
  absl::flat_hash_map<MemoIndexKey, MemoRef> memo_index_;
  absl::flat_hash_map<std::string, deja::v1::MemoEntry> memo_full_;
  std::vector<std::string> worker_names_;
  absl::flat_hash_map<std::string, uint32_t> worker_index_;
  // The last full entry read from the store: a hit reads it twice (the
  // decision at submit, the assignment right after). Cleared on any change.
  mutable std::string hot_memo_id_;
  mutable deja::v1::MemoEntry hot_memo_;
  // MemoKey(project, request_id) -> job id: those not yet committed (all
  // of them without a store).
  absl::flat_hash_map<std::string, std::string> requests_;
  std::map<std::string, Worker> workers_;
  std::map<std::string, deja::v1::ProjectSettings> projects_;
  // Single-flight: memo key -> the fresh job in flight that will record it,
  // and each such leader's followers (WAITING), oldest first.
  absl::flat_hash_map<std::string, std::string> inflight_;
  absl::flat_hash_map<std::string, std::vector<std::string>> followers_;
  // Pipelines by id ("p<seq>"), and the node each pipeline job runs.
  std::map<uint64_t, deja::v1::Pipeline> pipelines_;
  uint64_t next_pipeline_seq_ = 1;
  absl::flat_hash_map<std::string, std::pair<std::string, int>> job_nodes_;  // job -> (pipeline, node index)
  absl::flat_hash_map<std::string, std::string> pipeline_requests_;
};

// "p7" <-> 7. ParsePipelineId returns 0 for a malformed id.
std::string PipelineIdFromSeq(uint64_t seq);
uint64_t ParsePipelineId(const std::string& pipeline_id);

// "j42" <-> 42. ParseJobId returns 0 for a malformed id.
std::string JobIdFromSeq(uint64_t seq);
uint64_t ParseJobId(const std::string& job_id);

}  // namespace deja

#endif  // DEJA_SCHEDULER_CORE_SCHEDULER_CORE_H_
