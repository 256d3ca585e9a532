// The worker daemon's core: one long-lived WorkerService.Connect stream to the
// scheduler, jobs run with JobRunner (inputs placed by InputPlacer from the
// BlobCache, outputs uploaded to the content store), reuses done with
// Materializer (local source) or WorkspacePuller (source on another worker),
// and a PeerServer that serves this worker's workspaces to the others.
//
// Execution model (gRPC sync client API):
//   - Run() owns the connection loop: connect (with a deadline), send
//     Register (listing every held job), wait for RegisterAck, re-send every
//     unacknowledged JobResult, then read SchedulerMessages on the Run()
//     thread until the stream ends; reconnect with exponential backoff
//     (100 ms doubling to 5 s, with jitter).
//   - Run() first opens the blob cache and starts the peer server (its bound
//     port completes an --advertise given with port 0).
//   - The reader never blocks on disk, network or a job: RUN starts a
//     JobRunner (its thread places the inputs before the spawn and uploads
//     the outputs after the exit, before the result is sent), MATERIALIZE
//     gets its own thread (which also pulls from a peer), log reads are
//     queued to one log thread. A heartbeat thread per session sends
//     Heartbeat at the interval from RegisterAck and joins finished job threads.
//   - Writes to the stream come from several threads and are serialised by
//     write_mu_. A JobResult stays in unacked_ until ResultAck, and is
//     re-sent after every Register, so results survive broken streams.
//   - Retention (worker/retention.h): the reader only queues each ResultAck;
//     a sweeper thread writes its expiry record (expires_at_ms 0: deletes
//     the workspace at once, unless another attempt of the job is running
//     or unacknowledged here), and every --sweep_interval (and once at
//     start) deletes the expired workspaces that no copy holds a lease on,
//     then reports them in one WorkspacesExpired (kept, and re-sent after
//     the next Register, while the stream is down). A workspace leaves
//     jobs/ by one rename under mu_ (so no job of that id can start
//     meanwhile); its tree is removed with no lock held.
// Stop() cancels the stream and makes Run() return; running jobs' process
// groups are killed on the way out.
//
// Thread-safety: Worker is thread-safe; Run() must be called once, Stop()
// from any thread (not from a signal handler).
#ifndef DEJA_WORKER_WORKER_H_
#define DEJA_WORKER_WORKER_H_

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/blob_client.h"
#include "common/clock.h"
#include "deja/v1/worker.grpc.pb.h"
#include "worker/blob_cache.h"
#include "worker/inputs.h"
#include "worker/job_runner.h"
#include "worker/materializer.h"
#include "worker/peer_client.h"
#include "worker/peer_service.h"
#include "worker/fingerprints.h"
#include "worker/retention.h"
#include "worker/workspace_pool.h"

namespace deja::worker {

// Validated by main.cc; Worker trusts it.
struct WorkerConfig {
  std::string scheduler_address = "127.0.0.1:7070";
  std::string work_dir;  // absolute, exists
  std::string worker_id;
  uint32_t slots = 1;
  // HOST:PORT sent in Register; port 0 is replaced by the peer server's
  // bound port.
  std::string advertise;
  std::map<std::string, std::string> platform;  // includes os and arch
  // The content store (inputs are fetched from it, outputs uploaded to it).
  std::string content_store_address = "127.0.0.1:7070";
  // Bound of the blob cache (<work_dir>/cache/blobs).
  uint64_t cache_bytes = uint64_t{10} << 30;
  // Where the peer service listens (HOST:PORT, port 0 = any free port).
  std::string peer_listen = "0.0.0.0:0";
  // How often expired workspaces are looked for (real time; the expiry
  // itself is compared with the Clock).
  absl::Duration sweep_interval = absl::Seconds(60);

  absl::Duration connect_timeout = absl::Seconds(5);
  absl::Duration initial_backoff = absl::Milliseconds(100);
  absl::Duration max_backoff = absl::Seconds(5);
  absl::Duration cancel_grace = absl::Seconds(2);
};

class Worker {
 public:
  // `clock` (not owned) must outlive the Worker; nullptr means real time.
  explicit Worker(WorkerConfig config, Clock* clock = nullptr);
  // Stops (if needed) and waits for every thread.
  ~Worker();

  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // Serves the scheduler until Stop(). Returns OK after a Stop(); the stream
  // breaking is never an error (it reconnects). Fails at once when the work
  // dir, the blob cache, the expiry records or the peer server cannot be set
  // up.
  absl::Status Run();

  // The address sent in Register: config.advertise, with the peer server's
  // bound port when that was 0. Empty until Run() has started the server.
  std::string advertise() const ABSL_LOCKS_EXCLUDED(mu_);

  // Makes Run() return soon: cancels the stream and kills running jobs.
  void Stop();

  // Applies the ResultAcks received so far, then deletes every expired,
  // unleased workspace (against the Clock) and reports the deletions to the
  // scheduler, as the sweeper thread does every sweep_interval. Returns the
  // job ids whose workspace this sweep deleted. FAILED_PRECONDITION before
  // Run() has loaded the expiry records. For tests and operators; blocks
  // while another sweep runs.
  absl::StatusOr<std::vector<std::string>> SweepNow() ABSL_LOCKS_EXCLUDED(retention_op_mu_);

 private:
  using JobKey = std::pair<std::string, uint32_t>;  // (job_id, attempt)

  // A job this worker is running, materializing, or holding until a slot
  // frees (a RUN sent ahead: the scheduler's --dispatch_ahead).
  struct ActiveJob {
    std::unique_ptr<JobRunner> runner;  // RUN, started
    std::thread thread;                 // MATERIALIZE
    std::optional<deja::v1::Assignment> waiting;  // RUN, not started yet
    uint64_t waiting_seq = 0;                     // arrival order of the waiting
  };

  // One Connect stream: connect, register, read until it ends.
  // Sets `registered` once RegisterAck arrived (the backoff then resets).
  absl::Status RunSession(bool* registered);
  void HeartbeatLoop(absl::Duration interval);
  bool HeartbeatShouldExit() const ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    return session_done_ || stopping_;
  }
  bool LogThreadHasWork() const ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    return log_thread_exit_ || !log_requests_.empty();
  }
  bool SweeperHasWork() const ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    return sweeper_exit_ || report_requested_ || !pending_acks_.empty();
  }

  void HandleMessage(const deja::v1::SchedulerMessage& message);
  void HandleRun(const deja::v1::Assignment& assignment);
  // The result of an attempt that never started, finished now.
  deja::v1::JobResult UnstartedResult(const JobKey& key, int exit_code,
                                      const std::string& error) const;
  // Starts a RUN's JobRunner in active_[its key].
  void StartRunLocked(const deja::v1::Assignment& assignment) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // RUN jobs whose process runs (or is being set up) here.
  uint32_t RunningRunsLocked() const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // Starts the oldest waiting RUN if a slot is free.
  void StartWaitingLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void HandleMaterialize(const deja::v1::Assignment& assignment);
  void HandleCancel(const deja::v1::CancelJob& cancel);
  void HandleResultAck(const deja::v1::ResultAck& ack);
  // True when the assignment is a duplicate of a job held already (and the
  // result was re-sent if it is done).
  bool AlreadyHeld(const JobKey& key);

  void MaterializeThread(deja::v1::Assignment assignment);
  // On the runner thread after the exit: the result of a RUN, with the
  // manifest and (exit code 0) the uploaded outputs.
  deja::v1::JobResult RunResult(const JobKey& key, const std::string& workspace,
                                const std::vector<std::string>& output_globs,
                                const JobOutcome& outcome) const;
  void LogThread();
  void SweeperThread();
  // Records the expiry of each acknowledged job (deleting a "not kept"
  // workspace at once).
  void ApplyAcksLocked(std::deque<deja::v1::ResultAck> acks)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(retention_op_mu_);
  // Deletes the expired, unleased workspaces of jobs not held here
  // (restricted to `only` when given); returns the job ids deleted.
  std::vector<std::string> SweepLocked(const std::string* only = nullptr)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(retention_op_mu_);
  // Sends one WorkspacesExpired with every deletion not reported yet.
  void ReportExpiredLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(retention_op_mu_);
  // Job ids running, materializing, with a result not acknowledged, or with
  // a newer attempt assigned whose ack is not applied (newer_attempts_).
  std::set<std::string> HeldJobIdsLocked() const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // Records an assigned attempt in newer_attempts_.
  void NoteAttemptLocked(const JobKey& key) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  deja::v1::LogData ReadLog(const deja::v1::LogRequest& request) const;

  // Records `result` as unacknowledged, moves the job to the finished list
  // and sends it. Called from job threads.
  void FinishJob(deja::v1::JobResult result);
  void SendStarted(const std::string& job_id, uint32_t attempt, absl::Time started_at);
  // Writes on the current stream; false when there is none or it broke.
  bool Send(const deja::v1::WorkerMessage& message) ABSL_LOCKS_EXCLUDED(write_mu_);
  // Joins the threads of jobs that have finished.
  void ReapFinished() ABSL_LOCKS_EXCLUDED(mu_);
  // Kills every running job and waits for every job thread.
  void ShutdownJobs() ABSL_LOCKS_EXCLUDED(mu_);
  // Sleeps `d` unless Stop() comes first.
  void SleepUnlessStopped(absl::Duration d) ABSL_LOCKS_EXCLUDED(mu_);

  // Constant after construction.
  const WorkerConfig config_;
  RealClock real_clock_;
  Clock* const clock_;
  // Thread-safe itself; its record functions are called under
  // retention_op_mu_.
  WorkspaceRetention retention_;
  // Thread-safe; loaded by Run(), written by job threads (Seal, from the
  // const RunResult) and reuses.
  mutable FingerprintStore fingerprints_;
  // Thread-safe; spare empty workspaces for job starts.
  WorkspacePool workspace_pool_;
  const Materializer materializer_;
  const WorkspacePuller puller_;
  const std::unique_ptr<BlobClient> blob_client_;

  // Set by Run() before the first session, never changed afterwards while
  // sessions run (job threads use them).
  std::unique_ptr<BlobCache> blob_cache_;
  std::unique_ptr<InputPlacer> input_placer_;
  std::unique_ptr<PeerServer> peer_server_;

  // Lock order: retention_op_mu_ before write_mu_ before mu_ (and mu_
  // before the lock inside retention_).
  // Serialises expiry-record writes, sweeps and reports.
  absl::Mutex retention_op_mu_;
  bool retention_ready_ ABSL_GUARDED_BY(retention_op_mu_) = false;  // records loaded

  absl::Mutex write_mu_;
  // The session's stream once RegisterAck arrived; null otherwise.
  grpc::ClientReaderWriter<deja::v1::WorkerMessage, deja::v1::SchedulerMessage>* stream_
      ABSL_GUARDED_BY(write_mu_) = nullptr;

  mutable absl::Mutex mu_;
  std::string advertise_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  grpc::ClientContext* context_ ABSL_GUARDED_BY(mu_) = nullptr;  // of the live session
  bool session_done_ ABSL_GUARDED_BY(mu_) = false;                // tells the heartbeat to end
  std::map<JobKey, ActiveJob> active_ ABSL_GUARDED_BY(mu_);
  std::vector<ActiveJob> finished_ ABSL_GUARDED_BY(mu_);  // to be joined
  std::map<JobKey, deja::v1::JobResult> unacked_ ABSL_GUARDED_BY(mu_);
  // Job id -> the newest attempt (> 1) assigned here whose ack has not been
  // applied: until it is, the workspace is held, and a "not kept" ack of an
  // older attempt leaves it alone, however results and acks interleave.
  std::map<std::string, uint32_t> newer_attempts_ ABSL_GUARDED_BY(mu_);
  uint64_t next_waiting_seq_ ABSL_GUARDED_BY(mu_) = 0;
  std::deque<deja::v1::LogRequest> log_requests_ ABSL_GUARDED_BY(mu_);
  bool log_thread_exit_ ABSL_GUARDED_BY(mu_) = false;
  // ResultAcks whose expiry the sweeper has not recorded yet.
  std::deque<deja::v1::ResultAck> pending_acks_ ABSL_GUARDED_BY(mu_);
  bool report_requested_ ABSL_GUARDED_BY(mu_) = false;  // a new stream: report
  bool sweeper_exit_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace deja::worker

#endif  // DEJA_WORKER_WORKER_H_
