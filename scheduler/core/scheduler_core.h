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
#ifndef DEJA_SCHEDULER_CORE_SCHEDULER_CORE_H_
#define DEJA_SCHEDULER_CORE_SCHEDULER_CORE_H_

#include <cstdint>
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
  std::map<std::string, deja::v1::MemoEntry> memo_puts;  // by memo key
  std::set<std::string> memo_deletes;                    // memo keys
  std::map<std::string, deja::v1::ProjectSettings> projects;  // by project
  std::map<std::string, deja::v1::Pipeline> pipelines;        // by pipeline id
  // 2. Then send, in order, to the current stream of each worker.
  std::vector<std::pair<std::string, deja::v1::SchedulerMessage>> to_workers;
  // 3. Then end these worker streams (worker id, session): declared lost.
  std::vector<std::pair<std::string, uint64_t>> close_sessions;

  bool empty() const {
    return jobs.empty() && memo_puts.empty() && memo_deletes.empty() && projects.empty() &&
           pipelines.empty() && to_workers.empty() && close_sessions.empty();
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

// The memo index key of a job: project, NUL, job hash.
std::string MemoKey(const std::string& project, const std::string& job_hash);

class SchedulerCore {
 public:
  // `blobs` (not owned; may be null in tests that use no files) answers
  // whether inputs and memoized outputs are in the content store.
  explicit SchedulerCore(CoreOptions options, BlobIndex* blobs = nullptr);

  // Restores state read from the store at startup. Jobs that were on a worker
  // stay there until that worker reconnects and claims them, or
  // worker_timeout after `now` passes and they are requeued.
  void Load(std::vector<deja::v1::Job> jobs, std::vector<deja::v1::MemoEntry> memo,
            std::vector<deja::v1::ProjectSettings> projects,
            std::vector<deja::v1::Pipeline> pipelines, absl::Time now);

  // Validates and stores a new job, serving it from the memo index when it
  // can. INVALID_ARGUMENT names the bad field. A repeated request_id in the
  // same project returns the job first created for it.
  absl::StatusOr<deja::v1::SubmitResponse> Submit(deja::v1::JobSpec spec, absl::Time now,
                                                  Effects* fx);

  // NOT_FOUND for an unknown id.
  absl::StatusOr<deja::v1::Job> GetJob(const std::string& job_id) const;
  // Oldest first; an empty project or an unspecified state matches all.
  std::vector<deja::v1::Job> ListJobs(const std::string& project, deja::v1::JobState state,
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
  std::vector<deja::v1::MemoEntry> ListMemo(const deja::v1::ListMemoRequest& request) const;
  absl::StatusOr<deja::v1::MemoEntry> GetMemo(const deja::v1::GetMemoRequest& request) const;
  absl::StatusOr<deja::v1::EvictMemoResponse> EvictMemo(const deja::v1::EvictMemoRequest& request,
                                                        Effects* fx);

  // Why a job was or was not reused. NOT_FOUND for an unknown job.
  absl::StatusOr<deja::v1::ExplainResponse> Explain(const std::string& job_id,
                                                    absl::Time now) const;
  deja::v1::StatsResponse Stats(const deja::v1::StatsRequest& request) const;

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
  // Drops a memo entry (and persists the drop).
  void DropMemo(const std::string& key, Effects* fx);
  // Whether a job with `spec` and `job_hash` would be served from an earlier
  // success now, and from which; `problem` says why not.
  struct ReuseDecision {
    bool reuse = false;
    std::string source_id, worker_id;
    int64_t time_saved_ms = 0;
    int64_t expires_at_ms = 0;
    const google::protobuf::RepeatedPtrField<deja::v1::OutputFile>* outputs = nullptr;
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

  uint64_t next_seq_ = 1;
  // Node-based: references stay valid while jobs are added (a pipeline may
  // submit jobs while a caller holds one).
  absl::node_hash_map<std::string, deja::v1::Job> jobs_;
  std::map<uint64_t, std::string> order_;  // seq -> job id, oldest first
  std::set<uint64_t> queue_;               // seqs of QUEUED jobs: FIFO
  absl::flat_hash_map<std::string, deja::v1::MemoEntry> memo_;
  absl::flat_hash_map<std::string, std::string> requests_;  // project/request_id -> job id
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
