// The worker daemon, assembled: a SchedulerSession (the gRPC stream to the
// scheduler) feeds every SchedulerMessage into a WorkerCore (the protocol
// state machine), and the Worker carries out the core's actions: attempts
// are started by a JobExecutor (JobRunner, inputs, outputs, reuses), log
// reads go to a log thread, acks to a WorkspaceSweeper (retention), and
// messages back on the stream. A PeerServer serves this worker's workspaces
// to the others.
//
// Execution model (threads):
//   - the Run() thread: start-up (work dir, spare workspaces, blob cache,
//     expiry records, fingerprints, peer server), then the session loop:
//     connect, register, and read the stream. For each message it takes mu_,
//     calls the core, carries out its local actions (start a JobRunner or a
//     copy thread, kill, cancel, queue a log read) and releases mu_ before
//     sending anything. It never blocks on disk, network or a job;
//   - one heartbeat thread per stream (SchedulerSession), which also joins
//     the threads of finished jobs;
//   - job threads: a runner thread per RUN (JobRunner: inputs placed before
//     the spawn, outputs uploaded after the exit) and a thread per
//     MATERIALIZE (which may pull from a peer); each ends with FinishJob,
//     which hands the result to the core and sends it;
//   - the log thread: reads the logs the scheduler asks for (worker/job_log.h);
//   - the sweeper thread (WorkspaceSweeper): every retention disk operation;
//   - the cut-off thread: kills the running jobs once the scheduler has not
//     been heard from for longer than the cut-off (worker/watchdog.h);
//   - gRPC's own threads serve the peer service.
// Stop() cancels the stream and makes Run() return; running jobs' process
// groups are killed on the way out.
//
// Locks, in order: SchedulerSession::write_mu_ before Worker::mu_ before
// WorkspaceRetention's locks. SchedulerSession::mu_ and WorkspaceSweeper::mu_
// are leaves. mu_ is never held while sending or while the sweeper's lock is
// taken; the sweeper calls the Worker (SweeperHost) with no lock of its own.
//
// Thread-safety: Worker is thread-safe; Run() must be called once, Stop()
// from any thread (not from a signal handler).
#ifndef DEJA_WORKER_WORKER_H_
#define DEJA_WORKER_WORKER_H_

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "common/credentials.h"
#include "common/metrics.h"
#include "deja/v1/worker.pb.h"
#include "worker/identity.h"
#include "worker/job_executor.h"
#include "worker/job_runner.h"
#include "worker/peer_service.h"
#include "worker/result_store.h"
#include "worker/retention.h"
#include "worker/scheduler_session.h"
#include "worker/watchdog.h"
#include "worker/worker_core.h"
#include "worker/workspace_sweeper.h"

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
  // What jobs may ask for in all (worker/capacity.h): CPUs, memory, GPUs.
  deja::v1::Resources resources;
  // Image jobs (worker/containers.h): the container engine's unix socket
  // (empty: none, and the worker takes no image job), where the engine sees
  // work_dir (empty: the same path), deja-container-shim (empty: beside
  // this program).
  std::string docker_socket;
  std::string engine_work_dir;
  std::string container_shim;
  // The content store (inputs are fetched from it, outputs uploaded to it).
  std::string content_store_address = "127.0.0.1:7070";
  // How the scheduler and the content store are dialed
  // (common/credentials.h): TLS with the worker's token unless insecure.
  ClientSecurity scheduler_security;
  // Whom commands run as (worker/job_user.h); nullopt: as the worker.
  std::optional<JobUser> job_user;
  // Bound of the blob cache (<work_dir>/cache/blobs).
  uint64_t cache_bytes = uint64_t{10} << 30;
  // Where the peer service listens (HOST:PORT, port 0 = any free port).
  // With TLS it starts once the worker has its certificate (before its
  // first Register) and serves with it.
  std::string peer_listen = "0.0.0.0:0";
  // How often expired workspaces are looked for (real time; the expiry
  // itself is compared with the Clock).
  absl::Duration sweep_interval = absl::Seconds(60);
  // Below this much free space under work_dir the worker evicts workspaces
  // and, if that is not enough, takes no job (0: not watched). Checked
  // every disk_check_interval.
  uint64_t min_free_disk = uint64_t{1} << 30;
  absl::Duration disk_check_interval = absl::Seconds(2);

  absl::Duration connect_timeout = absl::Seconds(5);
  absl::Duration initial_backoff = absl::Milliseconds(100);
  absl::Duration max_backoff = absl::Seconds(5);
  absl::Duration cancel_grace = absl::Seconds(2);
  // How long content store calls are retried while it is unreachable.
  absl::Duration store_retry_for = absl::Minutes(10);
  // When the scheduler was last heard from: shared with the daemon's
  // watchdog process (worker/watchdog.h). nullptr: the Worker keeps its own.
  Contact* contact = nullptr;
  // Optional (not owned): the worker's metrics (/metrics with --http_listen).
  Metrics* metrics = nullptr;
};

class Worker : private SessionHandler, private SweeperHost {
 public:
  // `clock` (not owned) must outlive the Worker; nullptr means real time.
  explicit Worker(WorkerConfig config, Clock* clock = nullptr);
  // Stops (if needed) and waits for every thread.
  ~Worker() override;

  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // Serves the scheduler until Stop(). Returns OK after a Stop(); the stream
  // breaking is never an error (it reconnects). Fails at once when the work
  // dir, the blob cache, the expiry records or the peer server cannot be set
  // up.
  absl::Status Run();

  // The address sent in Register: config.advertise, with the peer server's
  // bound port when that was 0. Empty until the server has started (with
  // TLS, after the worker has enrolled).
  std::string advertise() const ABSL_LOCKS_EXCLUDED(mu_);

  // Makes Run() return soon: cancels the stream and kills running jobs.
  void Stop();

  // Hands the jobs back before a Stop() (the daemon got SIGTERM): tells the
  // scheduler (Leaving), which assigns nothing more and requeues what has
  // not started, then kills the running jobs, whose results go out marked
  // handed_back so that their attempts are not counted against
  // --max_attempts. Returns once they are dead and reported.
  void Leave(const std::string& reason);

  // Applies the ResultAcks received so far, then deletes every expired,
  // unleased workspace (against the Clock) and reports the deletions to the
  // scheduler, as the sweeper thread does every sweep_interval. Returns the
  // job ids whose workspace this sweep deleted. FAILED_PRECONDITION unless
  // Run() is serving (before it has loaded the expiry records, after it
  // stopped). For tests and operators; blocks while another sweep runs.
  absl::StatusOr<std::vector<std::string>> SweepNow();

 private:
  // The OS side of a started attempt (the core holds its protocol state).
  struct JobHandle {
    std::unique_ptr<JobRunner> runner;  // RUN
    std::thread thread;                 // MATERIALIZE
  };

  // SessionHandler.
  deja::v1::Register MakeRegister() override ABSL_LOCKS_EXCLUDED(mu_);
  deja::v1::Heartbeat MakeHeartbeat() override ABSL_LOCKS_EXCLUDED(mu_);
  std::vector<deja::v1::JobResult> UnackedResults() override ABSL_LOCKS_EXCLUDED(mu_);
  void OnRegistered(const deja::v1::RegisterAck& ack) override;
  void OnMessage(const deja::v1::SchedulerMessage& message) override ABSL_LOCKS_EXCLUDED(mu_);
  void OnHeartbeat() override;
  void OnSessionEnded() override ABSL_LOCKS_EXCLUDED(mu_);

  // SweeperHost.
  bool ApplyAck(const deja::v1::ResultAck& ack, std::string* left_alone) override
      ABSL_LOCKS_EXCLUDED(mu_);
  std::vector<WorkspaceRetention::Doomed> TakeExpired(const std::string* only,
                                                      std::vector<std::string>* skipped_leased,
                                                      std::vector<std::string>* errors) override
      ABSL_LOCKS_EXCLUDED(mu_);
  std::vector<WorkspaceRetention::Doomed> TakeOldest(std::vector<std::string>* errors) override
      ABSL_LOCKS_EXCLUDED(mu_);
  void SetDisk(const deja::v1::DiskStatus& disk) override ABSL_LOCKS_EXCLUDED(mu_);
  void Acknowledged(const deja::v1::ResultAck& ack) override;
  bool Send(const deja::v1::WorkerMessage& message) override;

  // At start, before the first Register: loads the results kept on disk,
  // kills what the previous life's jobs left running, finishes the attempts
  // whose command had exited (worker/leftovers.h), and hands all those
  // results to the core, to be listed as held and sent after Register.
  void RecoverPreviousLife() ABSL_LOCKS_EXCLUDED(mu_);

  // Carries out the local part of `actions`: logs, kills, cancels, starts,
  // log reads. The rest (acks, sends) is Dispatch()'s, after mu_.
  void ApplyLocked(WorkerActions& actions) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Dispatch(WorkerActions& actions) ABSL_LOCKS_EXCLUDED(mu_);
  void StartLocked(const deja::v1::Assignment& assignment) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Hands a finished attempt's result to the core and sends it. Called from
  // job threads.
  void FinishJob(deja::v1::JobResult result) ABSL_LOCKS_EXCLUDED(mu_);
  void SendStarted(const std::string& job_id, uint32_t attempt, absl::Time started_at);
  // Joins the threads of jobs that have finished.
  void ReapFinished() ABSL_LOCKS_EXCLUDED(mu_);
  // Kills every running job and waits for every job thread.
  void ShutdownJobs() ABSL_LOCKS_EXCLUDED(mu_);
  // Before each stream (with TLS): the worker's certificate (enrolling when
  // needed), and the peer service serving with it (started, or started
  // again on the same port when the certificate was renewed).
  absl::Status PrepareSecurity(ClientSecurity* security) ABSL_LOCKS_EXCLUDED(mu_);
  // Starts the peer service on `listen`; sets advertise_.
  absl::Status ServePeers(const std::string& listen, std::optional<PeerGuard> guard)
      ABSL_LOCKS_EXCLUDED(mu_);
  void LogThread() ABSL_LOCKS_EXCLUDED(mu_);
  bool LogThreadHasWork() const ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    return log_thread_exit_ || !log_requests_.empty();
  }
  // Kills the running jobs while the worker is cut off from the scheduler
  // past its cut-off (Contact): the scheduler is about to run them
  // elsewhere. Their results go out handed back.
  void CutOffThread() ABSL_LOCKS_EXCLUDED(mu_);

  // Constant after construction (each thread-safe itself).
  const WorkerConfig config_;
  RealClock real_clock_;
  Clock* const clock_;
  Contact own_contact_;
  Contact* const contact_;  // config_.contact, or own_contact_
  // Leases are taken by reuses and the peer service; records are written
  // by the sweeper thread only.
  WorkspaceRetention retention_;
  const ResultStore results_;  // unacknowledged results, on disk
  JobExecutor executor_;
  // The worker's certificate (unless insecure); used on session_'s thread.
  WorkerIdentity identity_;
  SchedulerSession session_;
  WorkspaceSweeper sweeper_;
  // Set before the first Register: by Run() (insecure), else by
  // PrepareSecurity(); used on session_'s thread. peer_cert_: the
  // certificate it serves with.
  std::unique_ptr<PeerServer> peer_server_;
  std::string peer_cert_;

  mutable absl::Mutex mu_;
  WorkerCore core_ ABSL_GUARDED_BY(mu_);
  std::map<JobKey, JobHandle> jobs_ ABSL_GUARDED_BY(mu_);  // started, not finished
  std::vector<JobHandle> finished_ ABSL_GUARDED_BY(mu_);   // to be joined
  std::string advertise_ ABSL_GUARDED_BY(mu_);
  // The disk as the sweeper last found it (refusing: take no job).
  deja::v1::DiskStatus disk_ ABSL_GUARDED_BY(mu_);
  std::deque<deja::v1::LogRequest> log_requests_ ABSL_GUARDED_BY(mu_);
  bool log_thread_exit_ ABSL_GUARDED_BY(mu_) = false;
  // RUN attempts killed because the worker was cut off: their results are
  // handed back.
  std::set<JobKey> cut_off_ ABSL_GUARDED_BY(mu_);
  // The live stream was read after a silence past the cut-off: its
  // messages are ignored until it has ended.
  bool stale_session_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace deja::worker

#endif  // DEJA_WORKER_WORKER_H_
