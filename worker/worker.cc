#include "worker/worker.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <random>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/grpc_status.h"
#include "common/manifest.h"
#include "common/transfer_window.h"
#include "worker/outputs.h"
#include "worker/paths.h"

namespace deja::worker {
namespace {

constexpr uint32_t kMaxLogChunk = 1 << 20;
constexpr absl::Duration kDefaultHeartbeat = absl::Seconds(5);
constexpr absl::Duration kMinHeartbeat = absl::Milliseconds(10);
constexpr absl::Duration kConnectPoll = absl::Milliseconds(250);

// One line per event on stderr.
template <typename... Args>
void Log(const absl::FormatSpec<Args...>& format, const Args&... args) {
  absl::FPrintF(stderr, "%s deja-worker: %s\n",
                absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::Now(), absl::UTCTimeZone()),
                absl::StrFormat(format, args...));
}

grpc::ChannelArguments ChannelArgs() {
  grpc::ChannelArguments args;
  // Not shared with earlier channels, so no inherited reconnect backoff.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  BoundTransferWindow(&args);
  return args;
}

std::chrono::system_clock::time_point ToChrono(absl::Time t) { return absl::ToChronoTime(t); }

// `advertise` (HOST:PORT) with a port of 0 replaced by `bound_port`.
std::string EffectiveAdvertise(const std::string& advertise, int bound_port) {
  const size_t colon = advertise.rfind(':');
  if (colon == std::string::npos) return advertise;
  if (advertise.substr(colon + 1) != "0") return advertise;
  return absl::StrCat(advertise.substr(0, colon), ":", bound_port);
}

}  // namespace

Worker::Worker(WorkerConfig config, Clock* clock)
    : config_(std::move(config)),
      clock_(clock != nullptr ? clock : &real_clock_),
      retention_(config_.work_dir, clock_),
      fingerprints_(config_.work_dir),
      workspace_pool_(config_.work_dir, config_.slots + 1),
      materializer_(config_.work_dir, &retention_, &fingerprints_),
      puller_(config_.work_dir),
      blob_client_(std::make_unique<BlobClient>(grpc::CreateCustomChannel(
          config_.content_store_address, grpc::InsecureChannelCredentials(), ChannelArgs()))) {}

Worker::~Worker() {
  Stop();
  ShutdownJobs();
  ReapFinished();
  if (peer_server_ != nullptr) peer_server_->Shutdown();
}

std::string Worker::advertise() const {
  absl::MutexLock lock(&mu_);
  return advertise_;
}

void Worker::Stop() {
  absl::MutexLock lock(&mu_);
  stopping_ = true;
  if (context_ != nullptr) context_->TryCancel();
}

absl::Status Worker::Run() {
  if (absl::Status st = paths::MakeDirs(paths::JobsDir(config_.work_dir)); !st.ok()) return st;
  // Without spares every job creates its workspace itself: slower, not wrong.
  if (absl::Status st = workspace_pool_.Init(); !st.ok()) {
    Log("spare workspaces: %s", st.ToString());
  }
  workspace_pool_.Refill();
  if (blob_cache_ == nullptr) {
    auto cache = BlobCache::Open(paths::CacheBlobsDir(config_.work_dir), config_.cache_bytes,
                                 blob_client_.get());
    if (!cache.ok()) return cache.status();
    blob_cache_ = *std::move(cache);
    input_placer_ = std::make_unique<InputPlacer>(blob_cache_.get(), blob_client_.get());
    const BlobCache::Stats stats = blob_cache_->GetStats();
    Log("blob cache %s: %d blobs, %d of %d bytes", blob_cache_->dir(), stats.blobs, stats.bytes,
        config_.cache_bytes);
  }
  {
    absl::MutexLock op(&retention_op_mu_);
    if (!retention_ready_) {
      std::vector<std::string> skipped;
      if (absl::Status st = retention_.Load(&skipped); !st.ok()) return st;
      for (const std::string& path : skipped) Log("ignoring unreadable expiry record %s", path);
      // Only a cache: without it every reuse hashes its source.
      if (absl::Status st = fingerprints_.Load(); !st.ok()) Log("fingerprints: %s", st.ToString());
      retention_ready_ = true;
    }
  }
  if (peer_server_ == nullptr) {
    auto server = PeerServer::Start(config_.peer_listen, config_.work_dir, &retention_);
    if (!server.ok()) return server.status();
    peer_server_ = *std::move(server);
    absl::MutexLock lock(&mu_);
    advertise_ = EffectiveAdvertise(config_.advertise, peer_server_->port());
    Log("peer service listening on %s (port %d), advertised as %s", config_.peer_listen,
        peer_server_->port(), advertise_);
  }
  {
    absl::MutexLock lock(&mu_);
    log_thread_exit_ = false;
    sweeper_exit_ = false;
  }
  std::thread log_thread([this] { LogThread(); });
  std::thread sweeper_thread([this] { SweeperThread(); });

  std::mt19937_64 rng(std::random_device{}());
  absl::Duration backoff = config_.initial_backoff;
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) break;
    }
    bool registered = false;
    absl::Status status = RunSession(&registered);
    ReapFinished();
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) break;
    }
    if (registered) backoff = config_.initial_backoff;
    std::uniform_real_distribution<double> jitter(0.5, 1.0);
    const absl::Duration delay = backoff * jitter(rng);
    Log("reconnect to %s in %d ms: %s", config_.scheduler_address,
        absl::ToInt64Milliseconds(delay), status.ToString());
    SleepUnlessStopped(delay);
    backoff = std::min(backoff * 2, config_.max_backoff);
  }

  Log("stopping: killing running jobs");
  ShutdownJobs();
  ReapFinished();
  peer_server_->Shutdown();
  {
    absl::MutexLock lock(&mu_);
    log_thread_exit_ = true;
    sweeper_exit_ = true;
  }
  log_thread.join();
  sweeper_thread.join();
  Log("stopped");
  return absl::OkStatus();
}

absl::Status Worker::RunSession(bool* registered) {
  // A fresh channel per session, with its own subchannel: every attempt is
  // then a real connection attempt, paced by our backoff rather than gRPC's.
  // Connect with a deadline, polling so that Stop() is honoured quickly; a
  // refused connection fails at once instead of waiting out the deadline.
  std::shared_ptr<grpc::Channel> channel = grpc::CreateCustomChannel(
      config_.scheduler_address, grpc::InsecureChannelCredentials(), ChannelArgs());
  const absl::Time deadline = absl::Now() + config_.connect_timeout;
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) return absl::CancelledError("stopping");
    }
    const grpc_connectivity_state state = channel->GetState(/*try_to_connect=*/true);
    if (state == GRPC_CHANNEL_READY) break;
    if (state == GRPC_CHANNEL_TRANSIENT_FAILURE || state == GRPC_CHANNEL_SHUTDOWN) {
      return absl::UnavailableError(
          absl::StrCat("cannot connect to scheduler ", config_.scheduler_address));
    }
    if (absl::Now() >= deadline) {
      return absl::UnavailableError(
          absl::StrCat("scheduler ", config_.scheduler_address, " unreachable for ",
                       absl::FormatDuration(config_.connect_timeout)));
    }
    channel->WaitForStateChange(state, ToChrono(std::min(deadline, absl::Now() + kConnectPoll)));
  }
  auto stub = deja::v1::WorkerService::NewStub(channel);

  grpc::ClientContext context;
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return absl::CancelledError("stopping");
    context_ = &context;
    session_done_ = false;
  }
  auto stream = stub->Connect(&context);

  // Ends the call properly: no more writes, drain reads, then Finish.
  // `fallback` (when not OK) is what the session returns; `cancel` ends a
  // call the scheduler has not ended itself.
  auto finish = [&](absl::Status fallback, bool cancel) {
    {
      absl::MutexLock lock(&write_mu_);
      stream_ = nullptr;
    }
    if (cancel) context.TryCancel();
    deja::v1::SchedulerMessage ignored;
    while (stream->Read(&ignored)) {
    }
    grpc::Status status = stream->Finish();
    absl::MutexLock lock(&mu_);
    context_ = nullptr;
    log_requests_.clear();
    if (!fallback.ok()) return fallback;
    if (status.ok()) return absl::UnavailableError("scheduler closed the stream");
    return FromGrpcStatus(status);
  };

  deja::v1::WorkerMessage hello;
  deja::v1::Register* reg = hello.mutable_register_();
  reg->set_worker_id(config_.worker_id);
  reg->set_slots(config_.slots);
  reg->mutable_platform()->insert(config_.platform.begin(), config_.platform.end());
  reg->set_advertise(advertise());
  {
    absl::MutexLock lock(&mu_);
    std::set<JobKey> held;
    for (const auto& [key, job] : active_) held.insert(key);
    for (const auto& [key, result] : unacked_) held.insert(key);
    for (const auto& [job_id, attempt] : held) {
      deja::v1::HeldJob* h = reg->add_held();
      h->set_job_id(job_id);
      h->set_attempt(attempt);
    }
  }
  if (!stream->Write(hello)) return finish(absl::OkStatus(), true);

  deja::v1::SchedulerMessage first;
  if (!stream->Read(&first)) return finish(absl::OkStatus(), false);
  if (!first.has_register_ack()) {
    return finish(absl::FailedPreconditionError(
        absl::StrCat("scheduler answered Register with message case ", first.msg_case(),
                     ", expected register_ack")),
        true);
  }
  *registered = true;
  absl::Duration interval = absl::Milliseconds(first.register_ack().heartbeat_interval_ms());
  if (interval <= absl::ZeroDuration()) interval = kDefaultHeartbeat;
  interval = std::max(interval, kMinHeartbeat);
  Log("connected to %s as %s (%d slots, %d held jobs, heartbeat every %d ms)",
      config_.scheduler_address, config_.worker_id, config_.slots, reg->held_size(),
      absl::ToInt64Milliseconds(interval));

  // Publish the stream; results that were waiting go first.
  {
    absl::MutexLock write_lock(&write_mu_);
    std::vector<deja::v1::JobResult> pending;
    {
      absl::MutexLock lock(&mu_);
      for (const auto& [key, result] : unacked_) pending.push_back(result);
    }
    bool ok = true;
    for (auto& result : pending) {
      deja::v1::WorkerMessage message;
      *message.mutable_result() = std::move(result);
      if (!(ok = stream->Write(message))) break;
    }
    if (!pending.empty()) Log("re-sent %d unacknowledged results", pending.size());
    if (ok) {
      stream_ = stream.get();
      absl::MutexLock lock(&mu_);
      report_requested_ = true;  // deletions not reported yet go now
    }
  }

  std::thread heartbeat([this, interval] { HeartbeatLoop(interval); });
  deja::v1::SchedulerMessage message;
  while (stream->Read(&message)) HandleMessage(message);
  {
    absl::MutexLock lock(&mu_);
    session_done_ = true;
  }
  heartbeat.join();
  return finish(absl::OkStatus(), false);
}

void Worker::HeartbeatLoop(absl::Duration interval) {
  deja::v1::WorkerMessage beat;
  beat.mutable_heartbeat();
  while (true) {
    mu_.LockWhenWithTimeout(absl::Condition(this, &Worker::HeartbeatShouldExit), interval);
    const bool exit = HeartbeatShouldExit();
    mu_.Unlock();
    if (exit) return;
    Send(beat);
    ReapFinished();
  }
}

void Worker::SleepUnlessStopped(absl::Duration d) {
  mu_.LockWhenWithTimeout(absl::Condition(&stopping_), d);
  mu_.Unlock();
}

bool Worker::Send(const deja::v1::WorkerMessage& message) {
  absl::MutexLock lock(&write_mu_);
  if (stream_ == nullptr) return false;
  return stream_->Write(message);
}

void Worker::HandleMessage(const deja::v1::SchedulerMessage& message) {
  switch (message.msg_case()) {
    case deja::v1::SchedulerMessage::kAssignment:
      if (message.assignment().kind() == deja::v1::Assignment::MATERIALIZE) {
        HandleMaterialize(message.assignment());
      } else {
        HandleRun(message.assignment());
      }
      break;
    case deja::v1::SchedulerMessage::kCancel:
      HandleCancel(message.cancel());
      break;
    case deja::v1::SchedulerMessage::kResultAck:
      HandleResultAck(message.result_ack());
      break;
    case deja::v1::SchedulerMessage::kLogRequest: {
      absl::MutexLock lock(&mu_);
      log_requests_.push_back(message.log_request());
      break;
    }
    case deja::v1::SchedulerMessage::kRegisterAck:
      break;  // only meaningful as the first message
    default:
      Log("ignoring unknown scheduler message case %d", message.msg_case());
      break;
  }
}

bool Worker::AlreadyHeld(const JobKey& key) {
  deja::v1::WorkerMessage resend;
  {
    absl::MutexLock lock(&mu_);
    if (active_.count(key) != 0) return true;
    auto it = unacked_.find(key);
    if (it == unacked_.end()) return false;
    *resend.mutable_result() = it->second;
  }
  Send(resend);
  return true;
}

void Worker::HandleRun(const deja::v1::Assignment& assignment) {
  const JobKey key(assignment.job_id(), assignment.attempt());
  if (AlreadyHeld(key)) {
    Log("assignment %s attempt %d: already held, not started again", key.first, key.second);
    return;
  }
  Log("assignment %s attempt %d: run %s", key.first, key.second,
      absl::StrJoin(assignment.argv(), " "));
  if (absl::Status st = paths::ValidateJobId(key.first); !st.ok()) {
    FinishJob(UnstartedResult(key, kExitInternal, std::string(st.message())));
    return;
  }

  absl::MutexLock lock(&mu_);
  // A newer attempt supersedes an older one still running or waiting here:
  // both would use the same workspace.
  for (auto it = active_.begin(); it != active_.end();) {
    auto& [other, job] = *it;
    if (other.first == key.first && other != key && job.waiting.has_value()) {
      Log("dropping %s attempt %d before it started: superseded by attempt %d", other.first,
          other.second, key.second);
      it = active_.erase(it);
      continue;
    }
    if (other.first == key.first && job.runner != nullptr) {
      Log("killing %s attempt %d: superseded by attempt %d", other.first, other.second,
          key.second);
      job.runner->Kill();
    }
    ++it;
  }
  NoteAttemptLocked(key);
  if (RunningRunsLocked() >= config_.slots) {
    // Sent ahead of a free slot (--dispatch_ahead): it starts when one frees.
    Log("assignment %s attempt %d: waiting for a slot (%d running)", key.first, key.second,
        RunningRunsLocked());
    ActiveJob& job = active_[key];
    job.waiting = assignment;
    job.waiting_seq = ++next_waiting_seq_;
    return;
  }
  StartRunLocked(assignment);
}

uint32_t Worker::RunningRunsLocked() const {
  uint32_t running = 0;
  for (const auto& [key, job] : active_) running += job.runner != nullptr ? 1 : 0;
  return running;
}

void Worker::StartWaitingLocked() {
  if (RunningRunsLocked() >= config_.slots) return;
  const deja::v1::Assignment* oldest = nullptr;
  uint64_t oldest_seq = 0;
  for (const auto& [key, job] : active_) {
    if (job.waiting.has_value() && (oldest == nullptr || job.waiting_seq < oldest_seq)) {
      oldest = &*job.waiting;
      oldest_seq = job.waiting_seq;
    }
  }
  if (oldest == nullptr) return;
  const deja::v1::Assignment assignment = *oldest;
  active_[JobKey(assignment.job_id(), assignment.attempt())].waiting.reset();
  StartRunLocked(assignment);
}

void Worker::StartRunLocked(const deja::v1::Assignment& assignment) {
  const JobKey key(assignment.job_id(), assignment.attempt());
  JobLaunch launch;
  launch.job_id = key.first;
  launch.workspace = paths::WorkspaceDir(config_.work_dir, key.first);
  launch.make_workspace = [this](const std::string& ws) { return workspace_pool_.Make(ws); };
  launch.argv.assign(assignment.argv().begin(), assignment.argv().end());
  launch.env.insert(assignment.env().begin(), assignment.env().end());
  launch.cancel_grace = config_.cancel_grace;
  if (assignment.inputs_size() > 0) {
    launch.prepare = [this, key, inputs = assignment.inputs()](const std::string& workspace) {
      auto placed = input_placer_->Place(workspace, inputs);
      if (!placed.ok()) return placed.status();
      Log("placed %d inputs of %s attempt %d: %d files, %d bytes, by %s", inputs.size(),
          key.first, key.second, placed->files, placed->bytes, CopyMethodName(placed->method));
      return absl::OkStatus();
    };
  }

  auto on_started = [this, key](pid_t pid, absl::Time started_at) {
    Log("started %s attempt %d: pid %d", key.first, key.second, pid);
    SendStarted(key.first, key.second, started_at);
  };
  auto on_exit = [this, key, workspace = launch.workspace,
                  globs = std::vector<std::string>(assignment.outputs().begin(),
                                                   assignment.outputs().end())](
                     const JobOutcome& outcome) {
    deja::v1::JobResult result = RunResult(key, workspace, globs, outcome);
    Log("finished %s attempt %d: exit %d in %d ms, %d outputs%s%s", key.first, key.second,
        outcome.exit_code, result.run_time_ms(), result.outputs_size(),
        result.error().empty() ? "" : ": ", result.error());
    FinishJob(std::move(result));
    // While the scheduler answers, the next job's workspace gets ready.
    workspace_pool_.Refill();
  };
  active_[key].runner =
      JobRunner::Start(std::move(launch), clock_, std::move(on_started), std::move(on_exit));
}

deja::v1::JobResult Worker::RunResult(const JobKey& key, const std::string& workspace,
                                      const std::vector<std::string>& output_globs,
                                      const JobOutcome& outcome) const {
  deja::v1::JobResult result;
  result.set_job_id(key.first);
  result.set_attempt(key.second);
  result.set_exit_code(outcome.exit_code);
  result.set_run_time_ms(absl::ToInt64Milliseconds(outcome.run_time));
  result.set_error(outcome.error);
  result.set_finished_at_ms(ToMillis(outcome.finished_at));
  const struct timespec hashed_after = FileClockNow();
  auto manifest = BuildManifest(workspace);
  if (!manifest.ok()) {
    if (outcome.error.empty()) {
      result.set_error(absl::StrCat("manifest of ", workspace, ": ", manifest.status().message()));
    }
    return result;
  }
  *result.mutable_manifest() = *std::move(manifest);
  if (outcome.exit_code == 0 && outcome.error.empty()) {
    // Read-only from now on, with fingerprints so reuses need not hash.
    if (absl::Status st = fingerprints_.Seal(key.first, result.manifest(), hashed_after);
        !st.ok()) {
      Log("sealing the workspace of %s: %s", key.first, st.ToString());
    }
  }
  if (outcome.exit_code != 0 || !outcome.error.empty() || output_globs.empty()) return result;
  // The outputs are matched against the manifest just taken (each file is
  // hashed once) and are in the store before the result is sent.
  auto outputs = MatchOutputs(result.manifest(), output_globs);
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

void Worker::HandleMaterialize(const deja::v1::Assignment& assignment) {
  const JobKey key(assignment.job_id(), assignment.attempt());
  if (AlreadyHeld(key)) {
    Log("assignment %s attempt %d: already held, not started again", key.first, key.second);
    return;
  }
  Log("assignment %s attempt %d: materialize from %s%s%s (%d files)", key.first, key.second,
      assignment.source_job_id(),
      assignment.source_address().empty() ? "" : " on worker ", assignment.source_worker_id(),
      assignment.source_manifest().files_size());
  absl::MutexLock lock(&mu_);
  NoteAttemptLocked(key);
  // The thread's FinishJob waits for mu_, so it finds its entry in active_.
  active_[key].thread = std::thread([this, assignment] { MaterializeThread(assignment); });
}

void Worker::MaterializeThread(deja::v1::Assignment assignment) {
  const absl::Time start = clock_->Now();
  SendStarted(assignment.job_id(), assignment.attempt(), start);
  const bool remote = !assignment.source_address().empty() &&
                      assignment.source_worker_id() != config_.worker_id;
  absl::Status status;
  std::string how;
  if (remote) {
    PeerSource source{assignment.source_worker_id(), assignment.source_address(),
                      assignment.source_job_id()};
    auto pulled = puller_.Pull(source, assignment.source_manifest(), assignment.job_id());
    status = pulled.status();
    if (pulled.ok()) {
      how = absl::StrFormat("%d files, %d bytes pulled from worker %s at %s", pulled->files,
                            pulled->bytes, source.worker_id, source.address);
    }
  } else {
    auto copied = materializer_.Materialize(assignment.source_job_id(),
                                            assignment.source_manifest(), assignment.job_id());
    status = copied.status();
    if (copied.ok()) {
      how = absl::StrFormat("%d files, %d bytes by %s", copied->files, copied->bytes,
                            CopyMethodName(copied->method));
    }
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
    Log("materialize %s attempt %d from %s failed%s: %s", assignment.job_id(),
        assignment.attempt(), assignment.source_job_id(),
        result.verification_failed() ? " (verification)" : "", result.error());
  }
  FinishJob(std::move(result));
}

void Worker::HandleCancel(const deja::v1::CancelJob& cancel) {
  const JobKey key(cancel.job_id(), cancel.attempt());
  {
    absl::MutexLock lock(&mu_);
    auto it = active_.find(key);
    if (it == active_.end()) return;  // unknown
    if (!it->second.waiting.has_value()) {
      if (it->second.runner == nullptr) return;  // a copy
      Log("cancel %s attempt %d", cancel.job_id(), cancel.attempt());
      it->second.runner->Cancel();
      return;
    }
    active_.erase(it);
  }
  Log("cancel %s attempt %d: dropped before it started", key.first, key.second);
  FinishJob(UnstartedResult(key, -SIGTERM,
                            "cancelled before it started (it was waiting for a slot)"));
}

deja::v1::JobResult Worker::UnstartedResult(const JobKey& key, int exit_code,
                                            const std::string& error) const {
  deja::v1::JobResult result;
  result.set_job_id(key.first);
  result.set_attempt(key.second);
  result.set_exit_code(exit_code);
  result.set_error(error);
  result.set_finished_at_ms(ToMillis(clock_->Now()));
  return result;
}

void Worker::HandleResultAck(const deja::v1::ResultAck& ack) {
  absl::MutexLock lock(&mu_);
  unacked_.erase(JobKey(ack.job_id(), ack.attempt()));
  // The expiry record (disk) and any deletion are the sweeper's.
  pending_acks_.push_back(ack);
}

void Worker::NoteAttemptLocked(const JobKey& key) {
  if (key.second <= 1) return;  // no older attempt to tell apart
  uint32_t& newest = newer_attempts_[key.first];
  newest = std::max(newest, key.second);
}

std::set<std::string> Worker::HeldJobIdsLocked() const {
  std::set<std::string> ids;
  for (const auto& [key, job] : active_) ids.insert(key.first);
  for (const auto& [key, result] : unacked_) ids.insert(key.first);
  for (const auto& [job_id, attempt] : newer_attempts_) ids.insert(job_id);
  return ids;
}

void Worker::SweeperThread() {
  {
    absl::MutexLock op(&retention_op_mu_);
    if (absl::Status st = retention_.EmptyTrash(); !st.ok()) {
      Log("emptying %s: %s", paths::TrashDir(config_.work_dir), st.ToString());
    }
  }
  absl::Time next_sweep = absl::Now();  // a restarted worker sweeps at once
  while (true) {
    std::deque<deja::v1::ResultAck> acks;
    bool report = false;
    bool exit = false;
    mu_.LockWhenWithDeadline(absl::Condition(this, &Worker::SweeperHasWork), next_sweep);
    exit = sweeper_exit_;
    acks.swap(pending_acks_);
    report = std::exchange(report_requested_, false);
    mu_.Unlock();

    absl::MutexLock op(&retention_op_mu_);
    // Acks that came before the stop are still recorded.
    ApplyAcksLocked(std::move(acks));
    if (exit) return;
    if (absl::Now() >= next_sweep) {
      SweepLocked();
      report = true;
      next_sweep = absl::Now() + config_.sweep_interval;
    }
    if (report) ReportExpiredLocked();
  }
}

absl::StatusOr<std::vector<std::string>> Worker::SweepNow() {
  absl::MutexLock op(&retention_op_mu_);
  if (!retention_ready_) {
    return absl::FailedPreconditionError("the expiry records are not loaded yet (Run() first)");
  }
  std::deque<deja::v1::ResultAck> acks;
  {
    absl::MutexLock lock(&mu_);
    acks.swap(pending_acks_);
  }
  ApplyAcksLocked(std::move(acks));
  std::vector<std::string> deleted = SweepLocked();
  ReportExpiredLocked();
  return deleted;
}

void Worker::ApplyAcksLocked(std::deque<deja::v1::ResultAck> acks) {
  for (const deja::v1::ResultAck& ack : acks) {
    const std::string& job_id = ack.job_id();
    if (!paths::ValidateJobId(job_id).ok()) continue;  // never a workspace here
    const int64_t expires_at_ms = std::max<int64_t>(ack.expires_at_ms(), 0);
    {
      absl::MutexLock lock(&mu_);
      auto newer = newer_attempts_.find(job_id);
      if (newer != newer_attempts_.end() && newer->second <= ack.attempt()) {
        newer_attempts_.erase(newer);
      } else if (newer != newer_attempts_.end() && expires_at_ms == 0) {
        // A failed copy's "not kept", applied after the fresh run that
        // followed it was assigned here: the workspace is that run's.
        Log("workspace of %s attempt %d not kept, but attempt %d of the job ran here: left alone",
            job_id, ack.attempt(), newer->second);
        continue;
      }
      // "Not kept" is about this attempt: the workspace may be another's.
      if (expires_at_ms == 0 && HeldJobIdsLocked().count(job_id) != 0) {
        Log("workspace of %s attempt %d not kept, but another attempt of the job holds it here: "
            "left alone", job_id, ack.attempt());
        continue;
      }
    }
    if (expires_at_ms == 0) {
      const auto record = retention_.GetRecord(job_id);
      if (record.has_value() && record->attempt != ack.attempt() && record->expires_at_ms > 0) {
        Log("workspace of %s attempt %d not kept, but attempt %d's is (until %d): left alone",
            job_id, ack.attempt(), record->attempt, record->expires_at_ms);
        continue;
      }
    }
    // Synced once for the whole batch, below.
    if (absl::Status st = retention_.SetExpiry(job_id, ack.attempt(), expires_at_ms,
                                               /*sync=*/false);
        !st.ok()) {
      // Without a record the workspace is simply kept.
      Log("cannot record the expiry of %s: %s", job_id, st.ToString());
      continue;
    }
    if (expires_at_ms == 0) SweepLocked(&job_id);
  }
  if (acks.empty()) return;
  if (absl::Status st = retention_.Sync(); !st.ok()) {
    Log("cannot sync %d expiry records: %s", acks.size(), st.ToString());
  }
}

std::vector<std::string> Worker::SweepLocked(const std::string* only) {
  std::vector<std::string> leased;
  std::vector<std::string> errors;
  std::vector<WorkspaceRetention::Doomed> doomed;
  {
    // Under mu_, no job of a doomed id can start before its workspace has
    // left jobs/ (HandleRun/HandleMaterialize take mu_).
    absl::MutexLock lock(&mu_);
    doomed = retention_.TakeExpired(HeldJobIdsLocked(), only, &leased, &errors);
  }
  for (const std::string& job_id : leased) {
    Log("workspace of %s expired, but a copy of it is in progress: kept until it ends", job_id);
  }
  for (const std::string& error : errors) Log("cannot delete an expired workspace: %s", error);
  if (absl::Status st = retention_.Dispose(doomed); !st.ok()) {
    Log("deleting expired workspaces: %s", st.ToString());
  }
  std::vector<std::string> deleted;
  for (const auto& d : doomed) {
    deleted.push_back(d.job_id);
    Log("deleted the workspace of %s (%s)", d.job_id, d.report ? "expired" : "not kept");
  }
  return deleted;
}

void Worker::ReportExpiredLocked() {
  const std::vector<std::string> ids = retention_.Unreported();
  if (ids.empty()) return;
  deja::v1::WorkerMessage message;
  for (const std::string& id : ids) message.mutable_expired()->add_job_ids(id);
  if (!Send(message)) return;  // kept; re-sent after the next Register
  retention_.Reported(ids);
  Log("reported %d expired workspaces", ids.size());
}

void Worker::SendStarted(const std::string& job_id, uint32_t attempt, absl::Time started_at) {
  deja::v1::WorkerMessage message;
  deja::v1::JobStarted* started = message.mutable_started();
  started->set_job_id(job_id);
  started->set_attempt(attempt);
  started->set_started_at_ms(ToMillis(started_at));
  Send(message);  // if the stream is down, the next Register lists the job as held
}

void Worker::FinishJob(deja::v1::JobResult result) {
  const JobKey key(result.job_id(), result.attempt());
  deja::v1::WorkerMessage message;
  *message.mutable_result() = result;
  {
    absl::MutexLock lock(&mu_);
    unacked_[key] = std::move(result);
    auto it = active_.find(key);
    if (it != active_.end()) {
      finished_.push_back(std::move(it->second));
      active_.erase(it);
    }
    StartWaitingLocked();
  }
  Send(message);  // if the stream is down, it is re-sent after the next Register
}

void Worker::ReapFinished() {
  std::vector<ActiveJob> done;
  {
    absl::MutexLock lock(&mu_);
    done.swap(finished_);
  }
  for (auto& job : done) {
    if (job.thread.joinable()) job.thread.join();
    job.runner.reset();  // joins the runner thread, which is past its callbacks
  }
}

void Worker::ShutdownJobs() {
  std::map<JobKey, ActiveJob> jobs;
  {
    absl::MutexLock lock(&mu_);
    for (auto& [key, job] : active_) {
      if (job.runner != nullptr) job.runner->Kill();
    }
    jobs.swap(active_);
  }
  for (auto& [key, job] : jobs) {
    if (job.thread.joinable()) job.thread.join();
    job.runner.reset();
  }
}

void Worker::LogThread() {
  while (true) {
    deja::v1::LogRequest request;
    {
      mu_.LockWhen(absl::Condition(this, &Worker::LogThreadHasWork));
      if (log_thread_exit_) {
        mu_.Unlock();
        return;
      }
      request = std::move(log_requests_.front());
      log_requests_.pop_front();
      mu_.Unlock();
    }
    deja::v1::WorkerMessage message;
    *message.mutable_log_data() = ReadLog(request);
    Send(message);
  }
}

deja::v1::LogData Worker::ReadLog(const deja::v1::LogRequest& request) const {
  deja::v1::LogData data;
  data.set_request_id(request.request_id());
  const std::string no_logs =
      absl::StrCat("no logs for job ", request.job_id(), " on worker ", config_.worker_id);
  if (!paths::ValidateJobId(request.job_id()).ok()) {
    data.set_error(no_logs);
    return data;
  }
  std::string path;
  switch (request.stream()) {
    case deja::v1::LOG_STDOUT:
      path = paths::StdoutPath(config_.work_dir, request.job_id());
      break;
    case deja::v1::LOG_STDERR:
      path = paths::StderrPath(config_.work_dir, request.job_id());
      break;
    default:
      data.set_error(absl::StrCat("stream: unknown log stream ", request.stream()));
      return data;
  }
  int fd = open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    data.set_error(no_logs);
    return data;
  }
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    data.set_error(no_logs);
    return data;
  }
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  const uint32_t limit =
      request.limit() == 0 || request.limit() > kMaxLogChunk ? kMaxLogChunk : request.limit();
  std::string buffer;
  if (request.offset() < size) {
    buffer.resize(std::min<uint64_t>(limit, size - request.offset()));
    size_t got = 0;
    while (got < buffer.size()) {
      ssize_t n = pread(fd, buffer.data() + got, buffer.size() - got,
                        static_cast<off_t>(request.offset() + got));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      got += static_cast<size_t>(n);
    }
    buffer.resize(got);
  }
  close(fd);
  data.set_eof(request.offset() + buffer.size() >= size);
  data.set_data(std::move(buffer));
  return data;
}

}  // namespace deja::worker
