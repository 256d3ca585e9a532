#include "worker/worker.h"

#include <signal.h>

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "worker/job_log.h"
#include "worker/leftovers.h"
#include "worker/log.h"
#include "worker/paths.h"

namespace deja::worker {
namespace {

// `advertise` (HOST:PORT) with a port of 0 replaced by `bound_port`.
std::string EffectiveAdvertise(const std::string& advertise, int bound_port) {
  const size_t colon = advertise.rfind(':');
  if (colon == std::string::npos) return advertise;
  if (advertise.substr(colon + 1) != "0") return advertise;
  return absl::StrCat(advertise.substr(0, colon), ":", bound_port);
}

JobExecutor::Options ExecutorOptions(const WorkerConfig& config, const Contact* contact,
                                     const WorkerIdentity* identity) {
  JobExecutor::Options options;
  options.work_dir = config.work_dir;
  options.worker_id = config.worker_id;
  options.slots = config.slots;
  options.content_store_address = config.content_store_address;
  options.content_store_security = config.scheduler_security;
  if (!config.scheduler_security.insecure) {
    options.peer_tls = [identity] { return identity->Peer(); };
  }
  options.cache_bytes = config.cache_bytes;
  options.job_user = config.job_user;
  options.cancel_grace = config.cancel_grace;
  options.containers.socket = config.docker_socket;
  options.containers.engine_work_dir = config.engine_work_dir;
  options.containers.shim = config.container_shim;
  options.store_retry_for = config.store_retry_for;
  options.metrics = config.metrics;
  options.may_start = [contact] {
    const absl::Duration silent = contact->CutOffFor();
    if (silent == absl::ZeroDuration()) return absl::OkStatus();
    return absl::UnavailableError(
        absl::StrCat("did not start it: no word from the scheduler for over ",
                     absl::FormatDuration(absl::Trunc(silent, absl::Seconds(1)))));
  };
  return options;
}

// The sweeper's watch of the work dir's disk (and the first reading, at
// start).
DiskPolicy WorkDirDiskPolicy(const WorkerConfig& config) {
  return DiskPolicy{config.min_free_disk, config.disk_check_interval, config.work_dir,
                    [dir = config.work_dir] { return ReadDiskSpace(dir); }};
}

SchedulerSession::Options SessionOptions(
    const WorkerConfig& config, std::function<absl::Status(ClientSecurity*)> prepare_security) {
  SchedulerSession::Options options;
  options.scheduler_address = config.scheduler_address;
  options.scheduler_security = config.scheduler_security;
  if (!config.scheduler_security.insecure) options.prepare_security = std::move(prepare_security);
  options.connect_timeout = config.connect_timeout;
  options.initial_backoff = config.initial_backoff;
  options.max_backoff = config.max_backoff;
  return options;
}

}  // namespace

Worker::Worker(WorkerConfig config, Clock* clock)
    : config_(std::move(config)),
      clock_(clock != nullptr ? clock : &real_clock_),
      contact_(config_.contact != nullptr ? config_.contact : &own_contact_),
      retention_(config_.work_dir, clock_),
      results_(config_.work_dir),
      executor_(ExecutorOptions(config_, contact_, &identity_), clock_, &retention_),
      identity_(config_.work_dir, config_.worker_id, {HostOf(config_.advertise)},
                config_.scheduler_address, config_.connect_timeout),
      session_(SessionOptions(
                   config_, [this](ClientSecurity* security) { return PrepareSecurity(security); }),
               this),
      sweeper_(&retention_, this, config_.sweep_interval, paths::TrashDir(config_.work_dir),
               WorkDirDiskPolicy(config_), config_.metrics),
      core_(config_.slots) {}

Worker::~Worker() {
  Stop();
  ShutdownJobs();
  ReapFinished();
  sweeper_.Stop();
  if (peer_server_ != nullptr) peer_server_->Shutdown();
}

std::string Worker::advertise() const {
  absl::MutexLock lock(&mu_);
  return advertise_;
}

void Worker::Stop() {
  executor_.StopRetries();
  session_.Stop();
}

absl::StatusOr<std::vector<std::string>> Worker::SweepNow() { return sweeper_.SweepNow(); }

absl::Status Worker::Run() {
  if (absl::Status st = paths::MakeDirs(paths::JobsDir(config_.work_dir)); !st.ok()) return st;
  if (config_.job_user.has_value()) {
    if (absl::Status st = PrepareWorkDir(config_.work_dir, *config_.job_user); !st.ok()) return st;
  }
  if (absl::Status st = executor_.Open(); !st.ok()) return st;
  executor_.LoadFingerprints();  // before a recovered success is sealed
  // Before registering, so the Register lists what it kept.
  RecoverPreviousLife();
  if (absl::Status st = sweeper_.Load(); !st.ok()) return st;
  if (config_.min_free_disk > 0) {
    // Known before the first Register; the sweeper's first check (at its
    // start) evicts if it can.
    const DiskPolicy policy = WorkDirDiskPolicy(config_);
    if (auto space = policy.read(); space.ok()) {
      absl::MutexLock lock(&mu_);
      disk_ = DiskStatusOf(*space, policy);
    }
  }
  if (config_.scheduler_security.insecure) {
    if (absl::Status st = ServePeers(config_.peer_listen, std::nullopt); !st.ok()) return st;
  }  // else once the worker has its certificate (PrepareSecurity)
  {
    absl::MutexLock lock(&mu_);
    log_thread_exit_ = false;
  }
  std::thread log_thread([this] { LogThread(); });
  std::thread cut_off_thread([this] { CutOffThread(); });
  sweeper_.Start();

  session_.Run();

  Log("stopping: killing running jobs");
  ShutdownJobs();
  ReapFinished();
  if (peer_server_ != nullptr) peer_server_->Shutdown();
  {
    absl::MutexLock lock(&mu_);
    log_thread_exit_ = true;
  }
  log_thread.join();
  cut_off_thread.join();
  sweeper_.Stop();  // records the acks received before the stop
  Log("stopped");
  return absl::OkStatus();
}

absl::Status Worker::ServePeers(const std::string& listen, std::optional<PeerGuard> guard) {
  auto server = PeerServer::Start(listen, config_.work_dir, executor_.manifest_loader(),
                                  &retention_, std::move(guard));
  if (!server.ok()) return server.status();
  peer_server_ = *std::move(server);
  absl::MutexLock lock(&mu_);
  advertise_ = EffectiveAdvertise(config_.advertise, peer_server_->port());
  Log("peer service listening on %s (port %d%s), advertised as %s", listen, peer_server_->port(),
      peer_cert_.empty() ? "" : ", TLS", advertise_);
  return absl::OkStatus();
}

absl::Status Worker::PrepareSecurity(ClientSecurity* security) {
  if (absl::Status st = identity_.Prepare(security); !st.ok()) return st;
  absl::StatusOr<PeerTls> peer = identity_.Peer();
  if (!peer.ok()) return peer.status();
  if (peer_server_ != nullptr && peer_cert_ == peer->identity.cert_pem) return absl::OkStatus();
  // A new certificate: the content store knows the worker by it too (its
  // blob tickets name the worker).
  executor_.UseContentStoreSecurity(*security);
  std::string listen = config_.peer_listen;
  if (peer_server_ != nullptr) {
    // Renewed: the same port, which the scheduler knows.
    listen = absl::StrCat(listen.substr(0, listen.rfind(':')), ":", peer_server_->port());
    peer_server_->Shutdown();
    peer_server_.reset();
  }
  peer_cert_ = peer->identity.cert_pem;
  return ServePeers(listen, PeerGuard{config_.worker_id, *std::move(peer)});
}

void Worker::RecoverPreviousLife() {
  std::vector<std::string> errors;
  std::vector<deja::v1::JobResult> kept = results_.LoadAll(&errors);
  for (const std::string& error : errors) Log("kept results: %s", error);
  std::set<JobKey> have;
  for (const auto& result : kept) have.emplace(result.job_id(), result.attempt());
  const std::vector<deja::v1::RunningRecord> records =
      ReadRunning(config_.work_dir, /*remove_strays=*/true);
  for (const std::string& killed : KillGroups(records, absl::Seconds(5))) {
    Log("killed a job left running by this worker's previous run: %s", killed);
  }
  for (const deja::v1::RunningRecord& record : records) {
    const JobKey key(record.job_id(), record.attempt());
    // A command that ended on its own while the worker was dying is
    // finished and reported now: the scheduler must not run it again. One
    // killed by a signal is not reported (the scheduler runs it again).
    if (record.exited() && record.exit_code() >= 0 && !have.contains(key) &&
        paths::ValidateJobId(record.job_id()).ok()) {
      deja::v1::JobResult result = executor_.FinishRecorded(record);
      if (absl::Status st = results_.Put(result); !st.ok()) {
        Log("cannot keep the result of %s attempt %d on disk: %s", key.first, key.second,
            st.ToString());
      }
      kept.push_back(std::move(result));
      have.insert(key);
    }
    ForgetRunning(config_.work_dir, record.pgid());
  }
  if (kept.empty()) return;
  Log("%d results of the previous run not acknowledged yet: sent after registering", kept.size());
  absl::MutexLock lock(&mu_);
  for (deja::v1::JobResult& result : kept) {
    WorkerActions ignored;  // nothing is started; sends go after Register
    core_.OnJobFinished(std::move(result), &ignored);
  }
}

deja::v1::Register Worker::MakeRegister() {
  deja::v1::Register reg;
  reg.set_worker_id(config_.worker_id);
  reg.set_slots(config_.slots);
  reg.mutable_platform()->insert(config_.platform.begin(), config_.platform.end());
  deja::v1::Capacity* capacity = reg.mutable_capacity();
  *capacity->mutable_total() = config_.resources;
  capacity->set_limits(kPlainJobLimits);
  executor_.ProbeEngine(capacity);
  absl::MutexLock lock(&mu_);
  reg.set_advertise(advertise_);
  for (deja::v1::HeldJob& held : core_.HeldJobs()) *reg.add_held() = std::move(held);
  *reg.mutable_disk() = disk_;
  return reg;
}

deja::v1::Heartbeat Worker::MakeHeartbeat() {
  deja::v1::Heartbeat beat;
  absl::MutexLock lock(&mu_);
  *beat.mutable_disk() = disk_;
  return beat;
}

std::vector<deja::v1::JobResult> Worker::UnackedResults() {
  absl::MutexLock lock(&mu_);
  return core_.UnackedResults();
}

void Worker::OnRegistered(const deja::v1::RegisterAck& ack) {
  if (ack.worker_timeout_ms() > 0) {
    const absl::Duration timeout = absl::Milliseconds(ack.worker_timeout_ms());
    contact_->SetCutoff(CutoffFor(timeout, absl::Milliseconds(ack.heartbeat_interval_ms())));
    // Back within a quarter of the timeout of the scheduler's return, with
    // the results it kept.
    session_.CapBackoff(timeout / 4);
  }
  contact_->Heard();
  sweeper_.RequestReport();  // deletions not reported yet go now
}

void Worker::OnMessage(const deja::v1::SchedulerMessage& message) {
  {
    absl::MutexLock lock(&mu_);
    if (stale_session_) return;
    if (const absl::Duration silent = contact_->CutOffFor(); silent > absl::ZeroDuration()) {
      // Read after a silence past the cut-off (this worker was stuck, or
      // the network was): the scheduler has given up on this stream, and
      // this message (an assignment, say) is stale. Nothing on it is acted
      // on; a new stream and Register tell the scheduler what is here.
      stale_session_ = true;
      Log("a message after %s without any (past the cut-off): the scheduler has given up on "
          "this stream; registering again",
          absl::FormatDuration(absl::Trunc(silent, absl::Milliseconds(100))));
      session_.Drop();
      return;
    }
  }
  contact_->Heard();
  if (message.has_heartbeat_ack()) return;
  WorkerActions actions;
  {
    absl::MutexLock lock(&mu_);
    core_.OnMessage(message, clock_->Now(), &actions);
    ApplyLocked(actions);
  }
  Dispatch(actions);
}

void Worker::OnHeartbeat() { ReapFinished(); }

void Worker::OnSessionEnded() {
  {
    absl::MutexLock lock(&mu_);
    stale_session_ = false;
    log_requests_.clear();  // answered on the stream they came on, or not at all
  }
  ReapFinished();
}

bool Worker::ApplyAck(const deja::v1::ResultAck& ack, std::string* left_alone) {
  absl::MutexLock lock(&mu_);
  return core_.ApplyAck(ack, left_alone);
}

std::vector<WorkspaceRetention::Doomed> Worker::TakeExpired(
    const std::string* only, std::vector<std::string>* skipped_leased,
    std::vector<std::string>* errors) {
  // Under mu_, no job of a doomed id can start before its workspace has
  // left jobs/ (starts are decided by the core under mu_).
  absl::MutexLock lock(&mu_);
  return retention_.TakeExpired(core_.HeldJobIds(), only, skipped_leased, errors);
}

std::vector<WorkspaceRetention::Doomed> Worker::TakeOldest(std::vector<std::string>* errors) {
  absl::MutexLock lock(&mu_);  // as TakeExpired
  return retention_.TakeOldest(core_.HeldJobIds(), errors);
}

void Worker::SetDisk(const deja::v1::DiskStatus& disk) {
  deja::v1::WorkerMessage beat;
  {
    absl::MutexLock lock(&mu_);
    const bool changed = disk_.refusing() != disk.refusing();
    disk_ = disk;
    if (!changed) return;
    *beat.mutable_heartbeat()->mutable_disk() = disk;
  }
  // At once, not at the next heartbeat: the scheduler stops (or resumes)
  // assigning jobs here.
  if (disk.refusing().empty()) {
    Log("disk no longer full: taking jobs again");
  } else {
    Log("taking no job: %s", disk.refusing());
  }
  Send(beat);
}

void Worker::Acknowledged(const deja::v1::ResultAck& ack) {
  results_.Remove(ack.job_id(), ack.attempt());
}

bool Worker::Send(const deja::v1::WorkerMessage& message) { return session_.Send(message); }

void Worker::Leave(const std::string& reason) {
  session_.Leave();  // a new stream, should this one break, would only take new work
  deja::v1::WorkerMessage leaving;
  leaving.mutable_leaving()->set_reason(reason);
  if (!Send(leaving)) {
    Log("stopping while not connected: the scheduler requeues the jobs after its --worker_timeout");
  }
  executor_.HandBack();
  ShutdownJobs();
}

void Worker::ApplyLocked(WorkerActions& actions) {
  for (const std::string& line : actions.log) Log("%s", line);
  for (const JobKey& key : actions.kill) {
    auto it = jobs_.find(key);
    if (it != jobs_.end() && it->second.runner != nullptr) it->second.runner->Kill();
  }
  for (const JobKey& key : actions.cancel) {
    auto it = jobs_.find(key);
    if (it != jobs_.end() && it->second.runner != nullptr) it->second.runner->Cancel();
  }
  for (const deja::v1::Assignment& assignment : actions.start) StartLocked(assignment);
  for (deja::v1::LogRequest& request : actions.log_requests) {
    log_requests_.push_back(std::move(request));
  }
}

void Worker::Dispatch(WorkerActions& actions) {
  for (deja::v1::ResultAck& ack : actions.acks) sweeper_.QueueAck(std::move(ack));
  // If the stream is down, results are re-sent after the next Register.
  for (const deja::v1::WorkerMessage& message : actions.send) Send(message);
}

void Worker::StartLocked(const deja::v1::Assignment& assignment) {
  const JobKey key(assignment.job_id(), assignment.attempt());
  JobHandle& job = jobs_[key];
  if (!disk_.refusing().empty()) {
    // Sent before the scheduler heard that this worker refuses: handed back,
    // not the job's failure.
    deja::v1::JobResult result;
    result.set_job_id(assignment.job_id());
    result.set_attempt(assignment.attempt());
    result.set_exit_code(kExitInternal);
    result.set_never_started(true);
    result.set_handed_back(true);
    result.set_error(absl::StrCat("has its ", disk_.refusing()));
    Log("handing back %s attempt %d: %s", key.first, key.second, disk_.refusing());
    job.thread = std::thread([this, result = std::move(result)] { FinishJob(result); });
    return;
  }
  // Each thread's FinishJob waits for mu_, so it finds its handle in jobs_.
  if (assignment.kind() == deja::v1::Assignment::MATERIALIZE) {
    job.thread = std::thread([this, assignment] {
      FinishJob(executor_.Materialize(assignment, [&](absl::Time started_at) {
        SendStarted(assignment.job_id(), assignment.attempt(), started_at);
      }));
    });
    return;
  }
  job.runner = executor_.StartRun(
      assignment,
      [this, key](absl::Time started_at) { SendStarted(key.first, key.second, started_at); },
      [this](deja::v1::JobResult result) { FinishJob(std::move(result)); });
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
  bool killed_cut_off = false;
  {
    absl::MutexLock lock(&mu_);
    killed_cut_off = cut_off_.erase(key) > 0;
  }
  // Killed by the cut-off thread, or by the watchdog while this worker was
  // stuck: the scheduler runs it again, and it is not the job's failure. A
  // command that ended on its own first keeps its outcome.
  const absl::Duration cut_off = contact_->CutOffFor();
  if ((result.exit_code() == -SIGKILL || result.never_started()) &&
      (killed_cut_off || cut_off > absl::ZeroDuration())) {
    result.set_handed_back(true);
    if (!result.never_started()) {
      result.set_error(absl::StrCat("stopped it: no word from the scheduler for over ",
                                    absl::FormatDuration(absl::Trunc(
                                        std::max(cut_off, contact_->cutoff()), absl::Seconds(1)))));
    }
  }
  // On disk before anyone learns of it (worker/result_store.h).
  if (absl::Status st = results_.Put(result); !st.ok()) {
    Log("cannot keep the result of %s attempt %d on disk (it is sent, and lost if this worker "
        "dies before the scheduler has it): %s",
        key.first, key.second, st.ToString());
  }
  WorkerActions actions;
  {
    absl::MutexLock lock(&mu_);
    cut_off_.erase(key);  // killed after the command had ended: nothing to hand back
    core_.OnJobFinished(std::move(result), &actions);
    auto it = jobs_.find(key);
    if (it != jobs_.end()) {
      finished_.push_back(std::move(it->second));
      jobs_.erase(it);
    }
    ApplyLocked(actions);
  }
  Dispatch(actions);
}

void Worker::ReapFinished() {
  std::vector<JobHandle> done;
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
  std::map<JobKey, JobHandle> jobs;
  {
    absl::MutexLock lock(&mu_);
    core_.Shutdown();
    for (auto& [key, job] : jobs_) {
      if (job.runner != nullptr) job.runner->Kill();
    }
    jobs.swap(jobs_);
  }
  for (auto& [key, job] : jobs) {
    if (job.thread.joinable()) job.thread.join();
    job.runner.reset();
  }
}

void Worker::CutOffThread() {
  while (true) {
    mu_.LockWhenWithTimeout(absl::Condition(&log_thread_exit_), absl::Milliseconds(100));
    if (log_thread_exit_) {
      mu_.Unlock();
      return;
    }
    const absl::Duration cut_off = contact_->CutOffFor();
    int killed = 0;
    if (cut_off > absl::ZeroDuration()) {
      for (auto& [key, job] : jobs_) {
        if (job.runner == nullptr || !cut_off_.insert(key).second) continue;
        job.runner->Kill();  // a no-op when the command has ended
        ++killed;
      }
    }
    mu_.Unlock();
    if (killed > 0) {
      Log("no word from the scheduler for %s (past the cut-off, %s): stopped %d running jobs, "
          "which the scheduler runs again",
          absl::FormatDuration(absl::Trunc(cut_off, absl::Milliseconds(100))),
          absl::FormatDuration(contact_->cutoff()), killed);
    }
  }
}

void Worker::LogThread() {
  while (true) {
    deja::v1::LogRequest request;
    mu_.LockWhen(absl::Condition(this, &Worker::LogThreadHasWork));
    if (log_thread_exit_) {
      mu_.Unlock();
      return;
    }
    request = std::move(log_requests_.front());
    log_requests_.pop_front();
    mu_.Unlock();
    deja::v1::WorkerMessage message;
    *message.mutable_log_data() = ReadJobLog(config_.work_dir, config_.worker_id, request);
    Send(message);
  }
}

}  // namespace deja::worker
