#include "worker/job_executor.h"

#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include <cerrno>
#include <cstdint>
#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/errors.h"
#include "common/manifest.h"
#include "common/manifest_blob.h"
#include "worker/channel_args.h"
#include "worker/leftovers.h"
#include "worker/log.h"
#include "worker/outputs.h"
#include "worker/paths.h"

namespace deja::worker {
namespace {

// Whether the filesystem holding `dir` is full: less than 1 MiB or no inode
// left for an unprivileged writer.
bool DiskFull(const std::string& dir) {
  struct statvfs fs;
  if (statvfs(dir.c_str(), &fs) != 0) return false;
  return static_cast<uint64_t>(fs.f_bavail) * fs.f_frsize < (uint64_t{1} << 20) ||
         (fs.f_files > 0 && fs.f_favail == 0);
}

}  // namespace

JobExecutor::JobExecutor(Options options, Clock* clock, WorkspaceRetention* retention)
    : options_(std::move(options)),
      clock_(clock),
      fingerprints_(options_.work_dir),
      workspace_pool_(options_.work_dir, options_.slots + 1),
      materializer_(options_.work_dir, retention, &fingerprints_),
      puller_(options_.work_dir, absl::Seconds(5), options_.peer_tls),
      blob_client_(
          std::make_unique<BlobClient>(ContentStoreChannel(options_.content_store_security),
                                       absl::Seconds(30), StoreRetryPolicy())),
      containers_([this] {
        ContainerOptions containers = options_.containers;
        containers.work_dir = options_.work_dir;
        containers.worker_id = options_.worker_id;
        return containers;
      }()) {
  if (options_.metrics != nullptr) {
    options_.metrics->Declare(kCopiedBytes, Metrics::Type::kCounter,
                              "Bytes reuses copied into new workspaces, by method: reflink, "
                              "hardlink, copy, peer (pulled from another worker).",
                              {"method"});
  }
}

std::shared_ptr<grpc::Channel> JobExecutor::ContentStoreChannel(
    const ClientSecurity& security) const {
  return grpc::CreateCustomChannel(options_.content_store_address, MakeChannelCredentials(security),
                                   WorkerChannelArgs());
}

void JobExecutor::UseContentStoreSecurity(const ClientSecurity& security) {
  blob_client_->Reconnect(ContentStoreChannel(security));
}

RetryPolicy JobExecutor::StoreRetryPolicy() {
  RetryPolicy policy;
  policy.give_up_after = options_.store_retry_for;
  policy.sleep = [this](absl::Duration delay) {
    return !stopping_.WaitForNotificationWithTimeout(delay);
  };
  policy.on_retry = [](const absl::Status& failure, int attempt, absl::Duration delay) {
    Log("content store call failed (attempt %d), retrying in %s: %s", attempt,
        absl::FormatDuration(absl::Trunc(delay, absl::Milliseconds(1))), failure.ToString());
  };
  return policy;
}

absl::Status JobExecutor::Open() {
  // Without spares every job creates its workspace itself: slower, not wrong.
  if (absl::Status st = workspace_pool_.Init(); !st.ok()) {
    Log("spare workspaces: %s", st.ToString());
  }
  workspace_pool_.Refill();
  if (blob_cache_ != nullptr) return absl::OkStatus();
  // Nothing of this life runs yet: every container of this work dir is an
  // earlier life's (its watchdog died with it, or the engine was away).
  if (int removed = containers_.RemoveLeftovers(); removed > 0) {
    Log("removed %d containers left by an earlier life", removed);
  }
  auto cache = BlobCache::Open(paths::CacheBlobsDir(options_.work_dir), options_.cache_bytes,
                               blob_client_.get());
  if (!cache.ok()) return cache.status();
  blob_cache_ = *std::move(cache);
  input_placer_ = std::make_unique<InputPlacer>(blob_cache_.get(), blob_client_.get());
  const BlobCache::Stats stats = blob_cache_->GetStats();
  Log("blob cache %s: %d blobs, %d of %d bytes", blob_cache_->dir(), stats.blobs, stats.bytes,
      options_.cache_bytes);
  return absl::OkStatus();
}

ManifestLoader JobExecutor::manifest_loader() const {
  return [client = blob_client_.get()](const deja::v1::ManifestRef& ref,
                                       const deja::v1::SignedTicket& ticket) {
    return DownloadManifest(ref, *client, ticket);
  };
}

void JobExecutor::LoadFingerprints() {
  // Only a cache: without it every reuse hashes its source.
  if (absl::Status st = fingerprints_.Load(); !st.ok()) Log("fingerprints: %s", st.ToString());
}

std::unique_ptr<JobRunner> JobExecutor::StartRun(const deja::v1::Assignment& assignment,
                                                 StartedCallback on_started,
                                                 ResultCallback on_result) {
  const std::string& job_id = assignment.job_id();
  const uint32_t attempt = assignment.attempt();
  JobLaunch launch;
  launch.job_id = job_id;
  launch.workspace = paths::WorkspaceDir(options_.work_dir, job_id);
  launch.make_workspace = [this](const std::string& ws) { return workspace_pool_.Make(ws); };
  launch.argv.assign(assignment.argv().begin(), assignment.argv().end());
  launch.env.insert(assignment.env().begin(), assignment.env().end());
  launch.cancel_grace = options_.cancel_grace;
  launch.user = options_.job_user;
  launch.time_limit = absl::Milliseconds(assignment.resources().time_limit_ms());
  launch.memory_limit = assignment.resources().memory_bytes();
  launch.prepare = [this, job_id, attempt, inputs = assignment.inputs(),
                    ticket = assignment.blob_ticket()](const std::string& workspace) {
    if (!inputs.empty()) {
      auto placed = input_placer_->Place(workspace, inputs, ticket);
      if (!placed.ok()) return placed.status();
      Log("placed %d inputs of %s attempt %d: %d files, %d bytes, by %s", inputs.size(), job_id,
          attempt, placed->files, placed->bytes, CopyMethodName(placed->method));
    }
    return options_.may_start ? options_.may_start() : absl::OkStatus();
  };

  // The attempt's record (worker/leftovers.h), from the spawn until the
  // result is handed over; the runner's callbacks share it, one at a time.
  auto record = std::make_shared<deja::v1::RunningRecord>();
  record->set_job_id(job_id);
  record->set_attempt(attempt);
  *record->mutable_outputs() = assignment.outputs();
  if (!assignment.image().empty()) {
    // In a container (worker/containers.h), of the image as it is now: the
    // ID resolved right before the start is the one the job reports.
    const std::string name = containers_.Name(job_id, attempt);
    record->set_container_id(name);
    record->set_engine_socket(containers_.socket());
    launch.container_create = [this, assignment, record,
                               workspace =
                                   launch.workspace]() -> absl::StatusOr<std::vector<std::string>> {
      if (!containers_.configured()) {
        return absl::FailedPreconditionError(
            absl::StrCat("worker ", options_.worker_id, " has no container engine"));
      }
      absl::StatusOr<std::string> id =
          containers_.EnsureImage(assignment, [this, &assignment](const std::string& path) {
            deja::v1::BlobRef blob;
            blob.set_digest(assignment.image_digest());
            blob.set_size(assignment.image_size());
            return blob_client_->DownloadToFile(blob, path, {}, assignment.blob_ticket());
          });
      if (!id.ok()) return id.status();
      record->set_image_id(*id);
      return containers_.Create(assignment, *id, workspace, options_.job_user);
    };
    launch.container_end = [this, name, memory = assignment.resources().memory_bytes()](
                               std::string* error) { containers_.End(name, memory, error); };
  }
  auto started = [this, record, on_started = std::move(on_started)](pid_t pid,
                                                                    absl::Time started_at) {
    Log("started %s attempt %d: pid %d", record->job_id(), record->attempt(), pid);
    record->set_pgid(pid);
    record->set_started_at_ms(ToMillis(started_at));
    if (absl::Status st = RecordRunning(options_.work_dir, *record); !st.ok()) {
      Log("recording the process group of %s: %s", record->job_id(), st.ToString());
    }
    on_started(started_at);
  };
  launch.leader_exited = [this, record](pid_t /*pid*/, int exit_code) {
    record->set_exited(true);
    record->set_exit_code(exit_code);
    record->set_finished_at_ms(ToMillis(clock_->Now()));
    if (absl::Status st = RecordRunning(options_.work_dir, *record); !st.ok()) {
      Log("recording the exit of %s: %s", record->job_id(), st.ToString());
    }
  };
  auto exited = [this, record, on_result = std::move(on_result)](const JobOutcome& outcome) {
    deja::v1::JobResult result = RunResult(*record, outcome);
    result.set_image_id(record->image_id());
    Log("finished %s attempt %d: exit %d in %d ms, %d outputs%s%s", record->job_id(),
        record->attempt(), outcome.exit_code, result.run_time_ms(), result.outputs_size(),
        result.error().empty() ? "" : ": ", result.error());
    on_result(std::move(result));
    // The result is kept (the worker writes it to disk before taking
    // it), and the group was killed and its leader reaped.
    if (outcome.pid > 0) ForgetRunning(options_.work_dir, outcome.pid);
    // While the scheduler answers, the next job's workspace gets ready.
    workspace_pool_.Refill();
  };
  return JobRunner::Start(std::move(launch), clock_, std::move(started), std::move(exited));
}

deja::v1::JobResult JobExecutor::RunResult(const deja::v1::RunningRecord& record,
                                           const JobOutcome& outcome) const {
  const std::string& job_id = record.job_id();
  const std::string workspace = paths::WorkspaceDir(options_.work_dir, job_id);
  const std::vector<std::string> output_globs(record.outputs().begin(), record.outputs().end());
  deja::v1::JobResult result;
  result.set_job_id(job_id);
  result.set_attempt(record.attempt());
  result.set_exit_code(outcome.exit_code);
  result.set_never_started(outcome.never_started);
  result.set_handed_back(handing_back_ && outcome.cancelled && !outcome.never_started);
  result.set_run_time_ms(absl::ToInt64Milliseconds(outcome.run_time));
  result.set_error(outcome.error);
  result.set_finished_at_ms(ToMillis(outcome.finished_at));
  if (outcome.exit_code > 0 && outcome.error.empty() && DiskFull(workspace)) {
    // Else all it says is "exit 1".
    result.set_error(absl::StrCat("command exited with code ", outcome.exit_code,
                                  " with the worker's disk full (no space left on device under ",
                                  options_.work_dir, ")"));
  }
  if (options_.job_user.has_value()) {
    // Before anything is read from it: nothing the job user still runs can
    // change the workspace from now on.
    // A workspace not taken back is neither sealed nor memoized.
    if (absl::Status st = TakeBackWorkspace(workspace); !st.ok()) {
      if (result.error().empty()) result.set_error(std::string(st.message()));
      return result;
    }
  }
  const struct timespec hashed_after = FileClockNow();
  auto manifest = BuildManifest(workspace);
  if (!manifest.ok()) {
    if (outcome.error.empty()) {
      result.set_error(absl::StrCat("manifest of ", workspace, ": ", manifest.status().message()));
    }
    return result;
  }
  const bool succeeded = outcome.exit_code == 0 && outcome.error.empty();
  if (succeeded) {
    // Read-only from now on, with fingerprints so reuses need not hash.
    if (absl::Status st = fingerprints_.Seal(job_id, *manifest, hashed_after); !st.ok()) {
      Log("sealing the workspace of %s: %s", job_id, st.ToString());
    }
  }
  // The manifest goes to the store, not into the result: it grows with the
  // workspace (a failed job's too, for `deja status --files`).
  auto ref = UploadManifest(*manifest, *blob_client_);
  if (!ref.ok()) {
    if (!succeeded) {
      Log("%s attempt %d: %s", job_id, record.attempt(), ref.status().ToString());
      return result;
    }
    result.set_error(std::string(ref.status().message()));
    return result;
  }
  *result.mutable_manifest() = *std::move(ref);
  if (!succeeded || output_globs.empty()) return result;
  // The outputs are matched against the manifest just taken (each file is
  // hashed once) and are in the store before the result is sent.
  auto outputs = MatchOutputs(*manifest, output_globs);
  if (!outputs.ok()) {
    result.set_error(std::string(outputs.status().message()));
    return result;
  }
  if (absl::Status st = UploadOutputs(workspace, *outputs, *blob_client_); !st.ok()) {
    result.set_error(std::string(st.message()));
    return result;
  }
  for (auto& out : *outputs) *result.add_outputs() = std::move(out);
  return result;
}

deja::v1::JobResult JobExecutor::FinishRecorded(const deja::v1::RunningRecord& record) const {
  JobOutcome outcome;
  outcome.exit_code = record.exit_code();
  outcome.started_at = absl::FromUnixMillis(record.started_at_ms());
  outcome.finished_at = absl::FromUnixMillis(record.finished_at_ms());
  outcome.run_time = outcome.finished_at - outcome.started_at;
  outcome.pid = record.pgid();
  deja::v1::JobResult result = RunResult(record, outcome);
  result.set_image_id(record.image_id());
  Log("finished %s attempt %d after a restart: its command had exited %d; %d outputs%s%s",
      record.job_id(), record.attempt(), outcome.exit_code, result.outputs_size(),
      result.error().empty() ? "" : ": ", result.error());
  return result;
}

deja::v1::JobResult JobExecutor::Materialize(deja::v1::Assignment assignment,
                                             const StartedCallback& on_started) const {
  const absl::Time start = clock_->Now();
  on_started(start);
  const bool remote =
      !assignment.source_address().empty() && assignment.source_worker_id() != options_.worker_id;
  absl::Status status;
  std::string how;
  auto manifest =
      DownloadManifest(assignment.source_manifest(), *blob_client_, assignment.blob_ticket());
  if (!manifest.ok()) {
    status = manifest.status();
  } else if (remote) {
    PeerSource source{assignment.source_worker_id(), assignment.source_address(),
                      assignment.source_job_id(), assignment.peer_ticket()};
    auto pulled =
        puller_.Pull(source, assignment.source_manifest(), *manifest, assignment.job_id());
    status = pulled.status();
    if (pulled.ok()) {
      how = absl::StrFormat("%d files, %d bytes pulled from worker %s at %s", pulled->files,
                            pulled->bytes, source.worker_id, source.address);
      CountCopied("peer", pulled->bytes);
    }
  } else {
    auto copied =
        materializer_.Materialize(assignment.source_job_id(), *manifest, assignment.job_id());
    status = copied.status();
    if (copied.ok()) {
      how = absl::StrFormat("%d files, %d bytes by %s", copied->files, copied->bytes,
                            CopyMethodName(copied->method));
      CountCopied(std::string(CopyMethodName(copied->method)), copied->bytes);
    }
  }
  if (status.ok() && options_.job_user.has_value()) {
    // Like a run's: closed to the jobs of other projects the job user runs.
    const std::string ws = paths::WorkspaceDir(options_.work_dir, assignment.job_id());
    if (chmod(ws.c_str(), 0700) != 0) status = ErrnoStatus(errno, "chmod 0700 " + ws);
  }
  const absl::Time end = clock_->Now();
  deja::v1::JobResult result;
  result.set_job_id(assignment.job_id());
  result.set_attempt(assignment.attempt());
  result.set_run_time_ms(absl::ToInt64Milliseconds(end - start));
  result.set_finished_at_ms(ToMillis(end));
  if (status.ok()) {
    result.set_exit_code(0);
    *result.mutable_manifest() = std::move(*assignment.mutable_source_manifest());
    *result.mutable_outputs() = std::move(*assignment.mutable_source_outputs());
    Log("materialized %s attempt %d from %s: %s in %d ms", assignment.job_id(),
        assignment.attempt(), assignment.source_job_id(), how, result.run_time_ms());
  } else {
    // exit_code -1 also for a failed verification, so that nothing reads the
    // default 0 as a success.
    result.set_exit_code(kExitInternal);
    result.set_error(std::string(status.message()));
    result.set_verification_failed(status.code() == absl::StatusCode::kDataLoss);
    Log("materialize %s attempt %d from %s failed%s: %s", assignment.job_id(), assignment.attempt(),
        assignment.source_job_id(), result.verification_failed() ? " (verification)" : "",
        result.error());
  }
  return result;
}

void JobExecutor::CountCopied(const std::string& method, uint64_t bytes) const {
  if (options_.metrics == nullptr) return;
  options_.metrics->Add(kCopiedBytes, {method}, static_cast<double>(bytes));
}

}  // namespace deja::worker
