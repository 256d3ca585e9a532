// JobExecutor: carries out the attempts the worker core starts.
//
// A RUN gets a JobRunner in jobs/<job_id> (a spare workspace renamed into
// place, worker/workspace_pool.h); on the runner thread its inputs are
// placed by InputPlacer from the BlobCache before the spawn, and after the
// exit the workspace manifest is taken, a successful workspace sealed
// (worker/fingerprints.h) and the declared outputs uploaded to the content
// store, all before the result is handed back. A MATERIALIZE copies its
// source: the local Materializer, or WorkspacePuller from the worker that
// holds it.
//
// It owns what those need (workspace pool, blob cache and client, input
// placer, fingerprints, materializer, puller) and no per-job state: the
// Worker keeps the runners and threads, the WorkerCore the protocol state.
//
// Thread-safety: thread-safe once Open() has returned; Open() and
// LoadFingerprints() are called once, by Worker::Run, before any job.
// The JobExecutor must outlive every runner it started.
#ifndef DEJA_WORKER_JOB_EXECUTOR_H_
#define DEJA_WORKER_JOB_EXECUTOR_H_

#include <grpcpp/channel.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "common/blob_client.h"
#include "common/clock.h"
#include "common/credentials.h"
#include "common/manifest.h"
#include "common/metrics.h"
#include "deja/v1/worker.pb.h"
#include "worker/blob_cache.h"
#include "worker/containers.h"
#include "worker/fingerprints.h"
#include "worker/inputs.h"
#include "worker/job_runner.h"
#include "worker/materializer.h"
#include "worker/peer_client.h"
#include "worker/retention.h"
#include "worker/workspace_pool.h"

namespace deja::worker {

class JobExecutor {
 public:
  struct Options {
    std::string work_dir;  // absolute, exists
    std::string worker_id;
    uint32_t slots = 1;
    std::string content_store_address;
    ClientSecurity content_store_security;
    // What peer pulls dial with (worker/peer_tls.h); empty: plaintext.
    PeerTlsSource peer_tls;
    // Whom commands run as (worker/job_user.h); nullopt: as the worker.
    std::optional<JobUser> job_user;
    uint64_t cache_bytes = 0;
    absl::Duration cancel_grace = absl::Seconds(2);
    // Content store calls are retried this long while it is unreachable.
    absl::Duration store_retry_for = absl::Minutes(10);
    // Optional. Asked right before each spawn, once the inputs are placed:
    // an error fails the attempt unstarted with its message (the worker is
    // cut off from the scheduler, which is about to run the job elsewhere).
    std::function<absl::Status()> may_start;
    // Image jobs (worker/containers.h): the engine's socket (empty: none),
    // where the engine sees work_dir, the shim. work_dir and worker_id are
    // taken from above.
    ContainerOptions containers;
    // Optional (not owned): what the executor counts (bytes copied by
    // method, attempts by outcome).
    Metrics* metrics = nullptr;
  };
  // The bytes a reuse copied into a new workspace, by method: reflink,
  // hardlink, copy, peer (pulled from another worker).
  static constexpr char kCopiedBytes[] = "deja_worker_copied_bytes_total";
  // The attempt's process started (RUN) or its copy began (MATERIALIZE).
  using StartedCallback = std::function<void(absl::Time started_at)>;
  using ResultCallback = std::function<void(deja::v1::JobResult result)>;

  // `clock` and `retention` (not owned) must outlive the JobExecutor.
  JobExecutor(Options options, Clock* clock, WorkspaceRetention* retention);

  JobExecutor(const JobExecutor&) = delete;
  JobExecutor& operator=(const JobExecutor&) = delete;

  // Fills `capacity`'s engine, or no_engine with why there is none.
  void ProbeEngine(deja::v1::Capacity* capacity) const { containers_.Probe(capacity); }

  // The worker is stopping and kills its jobs: from now on a RUN killed
  // that way reports handed_back (not the job's outcome).
  void HandBack() { handing_back_ = true; }

  // Ends the content store retries in progress, and makes later calls try
  // once: the worker is stopping. Idempotent.
  void StopRetries() {
    std::call_once(stop_once_, [this] { stopping_.Notify(); });
  }

  // Makes the spare workspaces (a failure is logged: jobs then create their
  // workspace directly) and opens the blob cache. Returns the cache's error.
  absl::Status Open();

  // Downloads a manifest from the content store (the peer service's loader).
  ManifestLoader manifest_loader() const;
  // From now on the content store is called with `security` (the worker's
  // certificate, once enrolled or renewed); calls under way finish as they
  // began.
  void UseContentStoreSecurity(const ClientSecurity& security);

  // Loads the fingerprints of sealed workspaces (a cache: a failure is
  // logged, and reuses then hash their source).
  void LoadFingerprints();

  // Starts a RUN attempt. `on_started` (the spawn) and then `on_result` run
  // on the runner thread, each at most once; `on_result` gets the result
  // with the manifest and (exit code 0) the uploaded outputs. Never fails:
  // a job that cannot start reports it through `on_result`.
  std::unique_ptr<JobRunner> StartRun(const deja::v1::Assignment& assignment,
                                      StartedCallback on_started, ResultCallback on_result);

  // The result of a RUN attempt whose command exited during this worker's
  // previous life (`record` says how: worker/leftovers.h), finished now as
  // the runner would have: manifest, seal, outputs uploaded. Blocks.
  deja::v1::JobResult FinishRecorded(const deja::v1::RunningRecord& record) const;

  // Copies a MATERIALIZE attempt's source into its workspace, calling
  // `on_started` first; blocks until done and returns the result (exit code
  // kExitInternal and `error` on failure, verification_failed when the
  // source did not verify). Call it on a thread of its own.
  deja::v1::JobResult Materialize(deja::v1::Assignment assignment,
                                  const StartedCallback& on_started) const;

 private:
  // Adds to kCopiedBytes (with metrics).
  void CountCopied(const std::string& method, uint64_t bytes) const;
  // How blob_client_ retries: options_.store_retry_for, ended by StopRetries.
  RetryPolicy StoreRetryPolicy();
  std::shared_ptr<grpc::Channel> ContentStoreChannel(const ClientSecurity& security) const;

  // After the exit (on the runner thread, or at start for the previous
  // life's attempts): the result of the RUN attempt `record` (job, attempt,
  // output globs), with the manifest and (exit code 0) the uploaded outputs.
  deja::v1::JobResult RunResult(const deja::v1::RunningRecord& record,
                                const JobOutcome& outcome) const;

  // Constant after construction.
  const Options options_;
  Clock* const clock_;
  // Thread-safe; written by runner threads (Seal) and reuses.
  mutable FingerprintStore fingerprints_;
  // Thread-safe; spare empty workspaces for job starts.
  WorkspacePool workspace_pool_;
  const Materializer materializer_;
  const WorkspacePuller puller_;
  std::atomic<bool> handing_back_{false};
  std::once_flag stop_once_;
  absl::Notification stopping_;  // before blob_client_, whose retries wait on it
  const std::unique_ptr<BlobClient> blob_client_;

  const Containers containers_;

  // Set by Open(), never changed afterwards (runner threads use them).
  std::unique_ptr<BlobCache> blob_cache_;
  std::unique_ptr<InputPlacer> input_placer_;
};

}  // namespace deja::worker

#endif  // DEJA_WORKER_JOB_EXECUTOR_H_
