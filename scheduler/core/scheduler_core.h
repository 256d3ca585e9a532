// SchedulerCore: the scheduler's business logic, with no gRPC and no RocksDB
// — a thin front over parts with one job each:
//
//   JobTable             jobs in memory, order, queue, request ids, residency
//   MemoIndex            the memo index and its hot cache
//   ReuseDecider         whether a job is served from an earlier success
//   SingleFlight         identical jobs in flight run once
//   Dispatcher           workers, placement, liveness, requeues
//   WorkerReportHandler  what a worker's reports do to its jobs
//   ProjectTable         project settings
//   PipelineRunner       pipelines
//   JobStats, ExplainJob the Stats and Explain RPCs
//
// The front validates requests and sequences the parts; each part's header
// says what it owns and what it may call.
//
// Execution model: every method is called from one thread (the scheduler's
// event loop); the class is not thread-safe. Methods never block and never do
// I/O: not even the blobs a pipeline builds are written here. Each mutating
// method records what must happen next in an Effects value (effects.h):
// blobs to write, records to persist, then messages to send to workers. The
// caller writes the blobs, persists the records durably, and only then sends
// anything or answers a client, so nothing is acknowledged that a crash
// could lose, and no record names a blob that is not durable.
//
// Time is passed in explicitly (`now`), so tests drive it.
//
// Memory: with a StoreReader, the core keeps in memory only what its logic
// needs on every call: jobs that have not ended (and ended ones not yet
// committed), a compact memo index (memo id -> source job, worker, expiry;
// 32 bytes an entry) and per-app counters for Stats. Everything else is read
// back from the store when asked for: ended jobs, full memo entries (on a
// hit: outputs and manifest ref), request ids. A record leaves memory only once
// the caller says it is committed (Committed()), so reads never miss a
// write of the current round. Without a StoreReader everything stays in
// memory (tests, and tools that never commit).
#ifndef DEJA_SCHEDULER_CORE_SCHEDULER_CORE_H_
#define DEJA_SCHEDULER_CORE_SCHEDULER_CORE_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "deja/v1/job.pb.h"
#include "deja/v1/pipeline.pb.h"
#include "deja/v1/scheduler.pb.h"
#include "deja/v1/worker.pb.h"
#include "scheduler/core/blob_index.h"
#include "scheduler/core/dispatcher.h"
#include "scheduler/core/effects.h"
#include "scheduler/core/image_table.h"
#include "scheduler/core/job_table.h"
#include "scheduler/core/keys.h"
#include "scheduler/core/memo_index.h"
#include "scheduler/core/pipeline_runner.h"
#include "scheduler/core/project_table.h"
#include "scheduler/core/reuse_decider.h"
#include "scheduler/core/single_flight.h"
#include "scheduler/core/store_reader.h"
#include "scheduler/core/worker_report_handler.h"

namespace deja {

class SchedulerCore final : public JobSubmitter {
 public:
  // `blobs` (not owned; may be null in tests that use no files) answers
  // whether inputs and memoized outputs are in the content store. `store`
  // (not owned; may be null: then every record stays in memory) reads back
  // what was committed; it must outlive the core.
  explicit SchedulerCore(CoreOptions options, BlobIndex* blobs = nullptr,
                         StoreReader* store = nullptr);
  SchedulerCore(const SchedulerCore&) = delete;
  SchedulerCore& operator=(const SchedulerCore&) = delete;

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
  // can. INVALID_ARGUMENT names the bad field; FAILED_PRECONDITION names an
  // input blob not in the content store (nor among this round's
  // Effects::blob_puts). A repeated request_id in the same project returns
  // the job first created for it.
  absl::StatusOr<deja::v1::SubmitResponse> Submit(deja::v1::JobSpec spec, absl::Time now,
                                                  Effects* fx) override;

  // A job array: each element is a job of its own, submitted as Submit
  // does. Every element is checked before any is stored, so a bad one
  // (its error prefixed "elements[i]: ") leaves nothing behind. A repeated
  // spec.request_id returns the array first created for it.
  absl::StatusOr<deja::v1::SubmitArrayResponse> SubmitArray(
      const deja::v1::SubmitArrayRequest& request, absl::Time now, Effects* fx);
  // An array's jobs, in element order (each with all its params), and
  // counts by state. NOT_FOUND "array a7 not found" for an unknown or
  // malformed id; the store's error if reading a job failed.
  absl::StatusOr<deja::v1::JobArray> GetArray(const std::string& array_id) const;

  // NOT_FOUND for an unknown id; the store's error if reading it failed.
  absl::StatusOr<deja::v1::Job> GetJob(const std::string& job_id) const;
  // The newest `limit` (0: all) matches, oldest first; an empty project or
  // an unspecified state matches all. The store's error if a scan failed.
  // Paged as JobTable::List says.
  absl::StatusOr<std::vector<deja::v1::Job>> ListJobs(const std::string& project,
                                                      deja::v1::JobState state, size_t limit,
                                                      uint64_t before = 0, size_t max_bytes = 0,
                                                      uint64_t* next_before = nullptr) const;
  absl::StatusOr<std::vector<deja::v1::Job>> ListJobs(const JobFilter& filter, size_t limit,
                                                      uint64_t before, size_t max_bytes,
                                                      uint64_t* next_before) const;
  // Cancels a job that has not ended (its process group is killed by its
  // worker); FAILED_PRECONDITION if it already ended.
  absl::StatusOr<deja::v1::Job> CancelJob(const std::string& job_id, absl::Time now,
                                          Effects* fx) override;

  // The connected worker holding `job_id`'s workspace. FAILED_PRECONDITION
  // if the job never got one, UNAVAILABLE if that worker is not connected.
  absl::StatusOr<std::string> WorkspaceHolder(const std::string& job_id) const;

  std::vector<deja::v1::WorkerInfo> ListWorkers() const;

  // Images pushed with `deja image push` (scheduler/core/image_table.h).
  // PushImage: FAILED_PRECONDITION when the blob is not in the content
  // store, INVALID_ARGUMENT naming a bad field.
  absl::StatusOr<deja::v1::ImageRecord> PushImage(const deja::v1::PushImageRequest& request,
                                                  const std::string& pushed_by, absl::Time now,
                                                  Effects* fx);
  std::vector<deja::v1::ImageRecord> ListImages() const { return images_.List(); }
  // The blobs the pushed images are saved in: kept by the blob collector.
  std::vector<std::string> ImageDigests() const { return images_.Digests(); }

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

  // Pipelines (PipelineRunner). Submit: INVALID_ARGUMENT names the node and
  // field; FAILED_PRECONDITION for a file input not in the store. Nodes
  // become jobs as soon as their inputs are known.
  absl::StatusOr<deja::v1::Pipeline> SubmitPipeline(const deja::v1::SubmitPipelineRequest& request,
                                                    absl::Time now, Effects* fx);
  absl::StatusOr<deja::v1::Pipeline> GetPipeline(const std::string& pipeline_id) const;
  // Oldest first (ListPipelines pages them with NewestPage).
  std::vector<deja::v1::Pipeline> ListPipelines(const std::string& project) const;
  absl::StatusOr<deja::v1::Pipeline> CancelPipeline(const std::string& pipeline_id, absl::Time now,
                                                    Effects* fx);
  absl::StatusOr<deja::v1::Pipeline> RetryPipeline(const deja::v1::RetryPipelineRequest& request,
                                                   absl::Time now, Effects* fx);
  absl::StatusOr<deja::v1::PipelinePlan> PlanPipeline(
      const deja::v1::SubmitPipelineRequest& request, absl::Time now) const;
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

  // Declares silent workers lost and requeues their jobs, and drops
  // expired memo entries. Call periodically.
  void Tick(absl::Time now, Effects* fx);

  const CoreOptions& options() const { return options_; }
  // Jobs held in memory (see "Memory" above); for tests and metrics.
  size_t resident_jobs() const { return jobs_.resident(); }
  // Jobs that have not ended, by state (every such job is in memory); for
  // metrics.
  std::map<deja::v1::JobState, size_t> LiveJobsByState() const;

 private:
  // Bookkeeping after `job` reached a terminal state: its workspace expiry,
  // and the identical jobs waiting for it (single-flight).
  void Finished(deja::v1::Job& job, absl::Time now, Effects* fx);
  // Submit's checks, in place: normalizes and validates the spec, pins its
  // image, checks its inputs are stored and its manual reuse (reuse_job_id).
  absl::Status PrepareSpec(deja::v1::JobSpec* spec, absl::Time now, const Effects& fx);
  // A QUEUED job for a prepared spec, with the next job id.
  deja::v1::Job NewJob(deja::v1::JobSpec spec, absl::Time now);
  // Stores a new job: served from the memo index when it can be, else
  // failed if unplaceable and asked to, else waiting for an identical job
  // in flight or queued. Returns whether it was reused. Does not dispatch.
  bool Create(deja::v1::Job job, absl::Time now, Effects* fx);
  // A stored job at startup.
  void LoadJob(deja::v1::Job job, absl::Time now);
  // Whether the content store has `input`, counting this round's
  // Effects::blob_puts (written before anything names them). True without
  // a BlobIndex.
  bool HasInput(const deja::v1::InputRef& input, const Effects& fx) const;

  // Constant after construction.
  const CoreOptions options_;
  BlobIndex* const blobs_;
  StoreReader* const store_;

  // The parts, in construction order (each may use the ones before it).
  JobTable jobs_;
  MemoIndex memo_;
  ProjectTable projects_;
  ImageTable images_;
  Dispatcher dispatcher_;
  ReuseDecider reuse_;
  SingleFlight single_flight_;
  WorkerReportHandler reports_;
  PipelineRunner pipelines_;
};

}  // namespace deja

#endif  // DEJA_SCHEDULER_CORE_SCHEDULER_CORE_H_
