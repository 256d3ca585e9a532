// SchedulerLoop: the scheduler's event loop and commit path.
//
// Execution model: gRPC reactions never block and never touch the core or
// the store. They Post() closures here; one thread owns the core, runs every
// closure queued so far, then closes the round (Flush):
//
//   1. SyncPipelines (may add jobs to the round's Effects);
//   2. writes the round's Effects::blob_puts to the content store (fsync'd),
//      so that no record committed next names a blob that is not durable;
//   3. commits the records to RocksDB in one WriteBatch (group commit),
//      synced when the round tells anyone anything;
//   4. tells the core (Committed), runs the after-commit actions (finishing
//      RPCs), sends to workers, pushes updates to watchers, ends the streams
//      of lost workers.
//
// A client or worker is never told about a write that a crash could lose. A
// failed blob write or commit is fatal (the process aborts): memory would
// be ahead of the disk, and a restart recovers exactly what was committed.
//
// Besides the core, the loop thread owns the stream registries: each
// worker's current stream (session), the watchers of jobs and pipelines,
// and the log requests waiting for a worker's answer.
//
// Thread-safety: Post() is thread-safe; every other method runs on the loop
// thread (from a posted closure), except Start/Stop.
#ifndef DEJA_SCHEDULER_SERVICE_SCHEDULER_LOOP_H_
#define DEJA_SCHEDULER_SERVICE_SCHEDULER_LOOP_H_

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "common/metrics.h"
#include "common/tls.h"
#include "deja/v1/job.pb.h"
#include "deja/v1/pipeline.pb.h"
#include "deja/v1/scheduler.pb.h"
#include "deja/v1/worker.pb.h"
#include "scheduler/content/blob_store.h"
#include "scheduler/core/scheduler_core.h"
#include "scheduler/service/job_events.h"
#include "scheduler/service/stream_outbox.h"
#include "scheduler/store/rocks_store.h"

namespace deja {

using WorkerOutbox = StreamOutbox<deja::v1::SchedulerMessage>;
using JobWatchOutbox = StreamOutbox<deja::v1::Job>;
using PipelineWatchOutbox = StreamOutbox<deja::v1::Pipeline>;

class SchedulerLoop {
 public:
  // Nothing owned: `store`, `blobs`, `blob_index`, `clock` and `metrics`
  // (null: none) must outlive the loop.
  SchedulerLoop(absl::Duration tick, const CoreOptions& options, Clock* clock, RocksStore* store,
                BlobStore* blobs, BlobIndex* blob_index, Metrics* metrics = nullptr);
  ~SchedulerLoop();
  SchedulerLoop(const SchedulerLoop&) = delete;
  SchedulerLoop& operator=(const SchedulerLoop&) = delete;

  // Restores the core from the store (before Start; the store's error).
  absl::Status Load();
  // With TLS: the key of the CA that signs workers' certificates, which
  // signs the tickets of every assignment as it is sent: its blobs', and
  // a peer ticket for a MATERIALIZE from another worker (common/tickets.h).
  // Before Start; empty (the default): none.
  void SetTicketSigner(tls::Signer ca) { ticket_signer_ = std::move(ca); }
  // Starts the loop thread. Stop() runs the closures still queued, fails
  // pending log requests, commits, and joins. Each once.
  void Start();
  void Stop();

  // Runs `fn` on the loop thread. Any thread.
  void Post(std::function<void()> fn);

  // --- Loop thread only --------------------------------------------------

  SchedulerCore& core() { return core_; }
  // The content store (thread-safe).
  BlobStore* blobs() const { return blobs_; }
  // The round's Effects, which core calls fill.
  Effects* fx() { return &fx_; }
  absl::Time Now() const { return clock_->Now(); }
  // Runs `fn` after this round's commit.
  void AfterCommit(std::function<void()> fn) { after_commit_.push_back(std::move(fn)); }
  // Finishes a unary call with `status` after this round's commit.
  void FinishAfterCommit(grpc::ServerUnaryReactor* reactor, const absl::Status& status);

  // Worker streams: a Register arrived on `outbox`'s stream; a later
  // message; the stream ended.
  void OnWorkerRegister(const std::shared_ptr<WorkerOutbox>& outbox, const deja::v1::Register& reg);
  void OnWorkerMessage(WorkerOutbox* outbox, const deja::v1::WorkerMessage& msg);
  void OnWorkerGone(WorkerOutbox* outbox);

  // Watchers of a job or pipeline that has not ended: told of each
  // committed change, finished with the final one.
  void WatchJob(const std::string& job_id, const std::shared_ptr<JobWatchOutbox>& outbox);
  void WatchPipeline(const std::string& pipeline_id,
                     const std::shared_ptr<PipelineWatchOutbox>& outbox);
  void OnJobWatchDone(JobWatchOutbox* outbox, const std::string& job_id);
  void OnPipelineWatchDone(PipelineWatchOutbox* outbox, const std::string& pipeline_id);

  // Asks `worker_id` for a slice of a job's log; `reactor` finishes with the
  // answer (into `response`), the worker's error, its disconnection or a
  // timeout.
  void RequestLogs(const std::string& worker_id, const deja::v1::ReadLogsRequest& request,
                   grpc::ServerUnaryReactor* reactor, deja::v1::ReadLogsResponse* response);
  // The same for a caller on the loop that is not an RPC (the dashboard):
  // `done` runs on the loop thread, after the round's commit.
  using LogsDone = std::function<void(const absl::Status&, deja::v1::ReadLogsResponse)>;
  void RequestLogs(const std::string& worker_id, const deja::v1::ReadLogsRequest& request,
                   LogsDone done);

  // Sets the gauges read off the core's state (queue depth, jobs by state,
  // workers, slots, disk, store size) on `metrics`.
  void CollectMetrics(Metrics& metrics);

 private:
  struct Session {
    uint64_t session;
    std::shared_ptr<WorkerOutbox> outbox;
  };
  struct PendingLog {
    std::string worker_id;
    LogsDone done;
    absl::Time deadline;
  };

  void Run();
  void Tick(absl::Time now);
  void OnLogData(const deja::v1::LogData& data);
  // Fails the pending log requests of `worker_id` (all when empty).
  void FailLogs(const std::string& worker_id, const absl::Status& status);
  // Closes the round: commits, then acts (see the top of this file).
  void Flush();
  // Whether this round's commit must be durable before it is acted on.
  bool RoundTellsAnyone() const;

  // Constant after construction.
  const absl::Duration tick_;
  Clock* const clock_;
  RocksStore* const store_;
  BlobStore* const blobs_;  // thread-safe
  Metrics* const metrics_;  // thread-safe; may be null

  absl::Mutex mu_;
  std::vector<std::function<void()>> pending_ ABSL_GUARDED_BY(mu_);
  bool stop_ ABSL_GUARDED_BY(mu_) = false;

  std::optional<tls::Signer> ticket_signer_;  // set before Start

  // Owned by the loop thread (after Start).
  SchedulerCore core_;
  JobEvents job_events_;
  Effects fx_;
  std::vector<std::function<void()>> after_commit_;
  absl::Time next_tick_;
  uint64_t next_session_ = 0;
  std::map<std::string, Session> sessions_;  // by worker id: the current stream
  absl::flat_hash_map<WorkerOutbox*, std::pair<std::string, uint64_t>> by_outbox_;
  absl::flat_hash_map<std::string, std::vector<std::shared_ptr<JobWatchOutbox>>> watchers_;
  absl::flat_hash_map<std::string, std::vector<std::shared_ptr<PipelineWatchOutbox>>>
      pipeline_watchers_;
  uint64_t next_log_request_ = 0;
  std::map<uint64_t, PendingLog> pending_logs_;

  std::thread thread_;
};

}  // namespace deja

#endif  // DEJA_SCHEDULER_SERVICE_SCHEDULER_LOOP_H_
