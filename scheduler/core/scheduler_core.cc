#include "scheduler/core/scheduler_core.h"

#include <algorithm>
#include <cstdlib>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/check.h"
#include "common/job_identity.h"
#include "common/job_spec.h"
#include "common/job_state.h"
#include "scheduler/core/job_state_machine.h"

namespace deja {

using deja::v1::Job;
using deja::v1::JobState;

namespace {

int64_t Millis(absl::Time t) { return absl::ToUnixMillis(t); }

bool AppReusable(const deja::v1::AppSpec& app) {
  return (!app.has_reuse() || app.reuse()) && !app.side_effects();
}

// Reuse lookups are off for force, memoization off, non-deterministic and
// side-effect apps. Project settings come with issue "memoization controls".
bool LookupAllowed(const deja::v1::JobSpec& spec) {
  return spec.memoization() != deja::v1::MEMOIZATION_OFF && !spec.force() &&
         AppReusable(spec.app());
}

// A forced run still records its success (it replaces the entry).
bool MemoizeAllowed(const deja::v1::JobSpec& spec) {
  return spec.memoization() != deja::v1::MEMOIZATION_OFF && AppReusable(spec.app());
}

bool OnWorker(JobState state) {
  return state == deja::v1::ASSIGNED || state == deja::v1::RUNNING ||
         state == deja::v1::MATERIALIZING;
}

}  // namespace

std::string MemoKey(const std::string& project, const std::string& job_hash) {
  return absl::StrCat(project, std::string(1, '\0'), job_hash);
}

std::string JobIdFromSeq(uint64_t seq) { return absl::StrCat("j", seq); }

uint64_t ParseJobId(const std::string& job_id) {
  uint64_t seq = 0;
  if (job_id.size() < 2 || job_id[0] != 'j' || job_id[1] == '0') return 0;
  if (!absl::SimpleAtoi(absl::string_view(job_id).substr(1), &seq)) return 0;
  return seq;
}

SchedulerCore::SchedulerCore(CoreOptions options, BlobIndex* blobs)
    : options_(options), blobs_(blobs) {}

void SchedulerCore::Load(std::vector<Job> jobs, std::vector<deja::v1::MemoEntry> memo,
                         absl::Time now) {
  for (Job& job : jobs) {
    uint64_t seq = ParseJobId(job.job_id());
    DEJA_CHECK(seq != 0, "stored job has a malformed id: " + job.job_id());
    next_seq_ = std::max(next_seq_, seq + 1);
    order_[seq] = job.job_id();
    if (!job.spec().request_id().empty()) {
      requests_[MemoKey(job.spec().project(), job.spec().request_id())] = job.job_id();
    }
    if (job.state() == deja::v1::QUEUED || job.state() == deja::v1::WAITING) {
      queue_.insert(seq);
    } else if (OnWorker(job.state()) || (job.state() == deja::v1::CANCELLED && !job.has_exit_code() &&
                                         !job.worker_id().empty())) {
      // Until its worker reconnects, it is "disconnected since now".
      Worker& worker = workers_[job.worker_id()];
      worker.info.set_worker_id(job.worker_id());
      worker.last_seen = now;
      worker.jobs[job.job_id()] = job.attempt();
      ++worker.busy_slots;
    }
    jobs_[job.job_id()] = std::move(job);
  }
  for (auto& entry : memo) {
    memo_[MemoKey(entry.project(), entry.job_hash())] = std::move(entry);
  }
}

void SchedulerCore::SetState(Job& job, JobState to, absl::Time now) {
  absl::Status allowed = CheckTransition(job.state(), to);
  DEJA_CHECK(allowed.ok(), job.job_id() + ": " + std::string(allowed.message()));
  job.set_state(to);
  if (IsTerminal(to)) job.set_finished_at_ms(Millis(now));
}

void SchedulerCore::Enqueue(Job& job) {
  job.clear_worker_id();
  queue_.insert(ParseJobId(job.job_id()));
}

absl::StatusOr<deja::v1::SubmitResponse> SchedulerCore::Submit(deja::v1::JobSpec spec,
                                                               absl::Time now, Effects* fx) {
  NormalizeJobSpec(&spec);
  if (absl::Status s = ValidateJobSpec(spec); !s.ok()) return s;
  for (int i = 0; i < spec.inputs_size(); ++i) {
    const auto& input = spec.inputs(i);
    if (blobs_ != nullptr && !blobs_->Has(input.digest(), input.size())) {
      return absl::FailedPreconditionError(absl::StrCat(
          "inputs[", i, "] (", input.name(), "): blob ", input.digest(),
          " is not in the content store; upload it first (deja submit --input does)"));
    }
  }
  if (!spec.reuse_job_id().empty()) {
    return absl::UnimplementedError("reuse_job_id: manual reuse is not available yet");
  }
  deja::v1::SubmitResponse response;
  std::string request_key;
  if (!spec.request_id().empty()) {
    request_key = MemoKey(spec.project(), spec.request_id());
    if (auto it = requests_.find(request_key); it != requests_.end()) {
      *response.mutable_job() = jobs_.at(it->second);
      response.set_reused(!response.job().reused_from().empty());
      return response;
    }
  }

  uint64_t seq = next_seq_++;
  Job job;
  job.set_job_id(JobIdFromSeq(seq));
  job.set_job_hash(JobHash(spec));
  *job.mutable_spec() = std::move(spec);
  job.set_attempt(1);
  job.set_created_at_ms(Millis(now));
  SetState(job, deja::v1::QUEUED, now);
  order_[seq] = job.job_id();
  if (!request_key.empty()) requests_[request_key] = job.job_id();

  // Memo lookup. A hit becomes a reuse candidate: Dispatch sends it to the
  // worker holding the source workspace, or to another one that pulls it.
  bool reused = false;
  if (LookupAllowed(job.spec())) {
    const std::string key = MemoKey(job.spec().project(), job.job_hash());
    auto it = memo_.find(key);
    if (it != memo_.end()) {
      const deja::v1::MemoEntry& entry = it->second;
      std::string missing = MissingOutput(entry);
      if (!missing.empty()) {
        job.set_message(absl::StrCat("memo entry from ", entry.source_job_id(), " dropped: ",
                                     missing, "; running fresh"));
        memo_.erase(it);
        fx->memo_puts.erase(key);
        fx->memo_deletes.insert(key);
      } else if (ConnectedWorker(entry.worker_id()) == nullptr) {
        job.set_message(absl::StrCat("not reused: the workspace of ", entry.source_job_id(),
                                     " is on worker ", entry.worker_id(),
                                     ", which is not connected; running fresh"));
      } else {
        job.set_reused_from(entry.source_job_id());
        job.set_time_saved_ms(entry.run_time_ms());
        auto src = jobs_.find(entry.source_job_id());
        if (src != jobs_.end()) job.set_reused_source_finished_at_ms(src->second.finished_at_ms());
        reused = true;
      }
    }
  }
  const std::string job_id = job.job_id();
  jobs_[job_id] = std::move(job);
  Job& stored = jobs_[job_id];
  Enqueue(stored);
  fx->jobs[job_id] = stored;
  Dispatch(now, fx);
  *response.mutable_job() = jobs_[job_id];
  response.set_reused(reused);
  return response;
}

absl::StatusOr<Job> SchedulerCore::GetJob(const std::string& job_id) const {
  auto it = jobs_.find(job_id);
  if (it == jobs_.end()) return absl::NotFoundError(absl::StrCat("job ", job_id, " not found"));
  return it->second;
}

std::vector<Job> SchedulerCore::ListJobs(const std::string& project, JobState state,
                                         size_t limit) const {
  std::vector<Job> out;
  for (const auto& [seq, id] : order_) {
    const Job& job = jobs_.at(id);
    if (!project.empty() && job.spec().project() != project) continue;
    if (state != deja::v1::JOB_STATE_UNSPECIFIED && job.state() != state) continue;
    out.push_back(job);
  }
  if (limit > 0 && out.size() > limit) out.erase(out.begin(), out.end() - limit);
  return out;
}

absl::StatusOr<Job> SchedulerCore::CancelJob(const std::string& job_id, absl::Time now,
                                             Effects* fx) {
  auto it = jobs_.find(job_id);
  if (it == jobs_.end()) return absl::NotFoundError(absl::StrCat("job ", job_id, " not found"));
  Job& job = it->second;
  if (IsTerminal(job.state())) {
    return absl::FailedPreconditionError(
        absl::StrCat("job ", job_id, " already ended (", std::string(JobStateName(job.state())),
                     ")"));
  }
  if (OnWorker(job.state())) {
    // The worker kills the process group and reports; the slot frees then.
    deja::v1::SchedulerMessage msg;
    msg.mutable_cancel()->set_job_id(job_id);
    msg.mutable_cancel()->set_attempt(job.attempt());
    fx->to_workers.emplace_back(job.worker_id(), std::move(msg));
  }
  queue_.erase(ParseJobId(job_id));
  SetState(job, deja::v1::CANCELLED, now);
  job.set_message("cancelled by request");
  fx->jobs[job_id] = job;
  return job;
}

absl::StatusOr<std::string> SchedulerCore::WorkspaceHolder(const std::string& job_id) const {
  auto it = jobs_.find(job_id);
  if (it == jobs_.end()) return absl::NotFoundError(absl::StrCat("job ", job_id, " not found"));
  const Job& job = it->second;
  if (job.worker_id().empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "job ", job_id, " has no workspace yet (", std::string(JobStateName(job.state())), ")"));
  }
  auto w = workers_.find(job.worker_id());
  if (w == workers_.end() || !w->second.connected) {
    return absl::UnavailableError(absl::StrCat("worker ", job.worker_id(), " holding job ", job_id,
                                               "'s workspace is not connected"));
  }
  return job.worker_id();
}

std::vector<deja::v1::WorkerInfo> SchedulerCore::ListWorkers() const {
  std::vector<deja::v1::WorkerInfo> out;
  for (const auto& [id, worker] : workers_) {
    deja::v1::WorkerInfo info;
    info.set_worker_id(id);
    info.set_slots(worker.info.slots());
    info.set_busy_slots(worker.busy_slots);
    *info.mutable_platform() = worker.info.platform();
    info.set_advertise(worker.info.advertise());
    info.set_connected(worker.connected);
    out.push_back(std::move(info));
  }
  return out;
}

SchedulerCore::Worker* SchedulerCore::FindWorker(const std::string& worker_id) {
  auto it = workers_.find(worker_id);
  return it == workers_.end() ? nullptr : &it->second;
}

SchedulerCore::Worker* SchedulerCore::ConnectedWorker(const std::string& worker_id) {
  Worker* worker = FindWorker(worker_id);
  return worker != nullptr && worker->connected ? worker : nullptr;
}

absl::Status SchedulerCore::WorkerConnected(const deja::v1::Register& reg, uint64_t session,
                                            absl::Time now, Effects* fx) {
  if (reg.worker_id().empty() || reg.worker_id().size() > kMaxNameLength) {
    return absl::InvalidArgumentError("register.worker_id: must be 1 to 128 characters");
  }
  if (reg.slots() == 0) return absl::InvalidArgumentError("register.slots: must be at least 1");
  Worker& worker = workers_[reg.worker_id()];
  worker.info = reg;
  worker.info.clear_held();
  worker.session = session;
  worker.connected = true;
  worker.last_seen = now;

  // RegisterAck is always the first message of a session.
  deja::v1::SchedulerMessage ack;
  ack.mutable_register_ack()->set_heartbeat_interval_ms(
      absl::ToInt64Milliseconds(options_.heartbeat_interval));
  fx->to_workers.emplace_back(reg.worker_id(), std::move(ack));

  // Reconcile what the worker holds with what we think it holds.
  std::map<std::string, uint32_t> held;
  for (const auto& h : reg.held()) held[h.job_id()] = h.attempt();
  for (const auto& [job_id, attempt] : held) {
    auto it = jobs_.find(job_id);
    bool ours = it != jobs_.end() && it->second.worker_id() == reg.worker_id() &&
                it->second.attempt() == attempt;
    if (ours && (OnWorker(it->second.state()) || it->second.state() == deja::v1::CANCELLED)) {
      if (!worker.jobs.contains(job_id)) {
        worker.jobs[job_id] = attempt;
        ++worker.busy_slots;
      }
      if (it->second.state() == deja::v1::CANCELLED && !it->second.has_exit_code()) {
        deja::v1::SchedulerMessage msg;  // a cancel may have been lost with the old stream
        msg.mutable_cancel()->set_job_id(job_id);
        msg.mutable_cancel()->set_attempt(attempt);
        fx->to_workers.emplace_back(reg.worker_id(), std::move(msg));
      }
      continue;
    }
    if (ours && IsTerminal(it->second.state())) continue;  // its result is on the way
    // Superseded attempt or unknown job: stop it. Its result will be ignored.
    deja::v1::SchedulerMessage msg;
    msg.mutable_cancel()->set_job_id(job_id);
    msg.mutable_cancel()->set_attempt(attempt);
    fx->to_workers.emplace_back(reg.worker_id(), std::move(msg));
  }
  // Jobs we sent that the worker no longer has were lost with it.
  std::vector<std::string> lost;
  for (const auto& [job_id, attempt] : worker.jobs) {
    auto h = held.find(job_id);
    if (h == held.end() || h->second != attempt) lost.push_back(job_id);
  }
  if (!lost.empty()) {
    Worker partial;
    for (const auto& id : lost) {
      partial.jobs[id] = worker.jobs[id];
      Release(worker, id);
    }
    partial.info.set_worker_id(reg.worker_id());
    LoseWorker(partial, "worker " + reg.worker_id() + " restarted without it", now, fx);
  }
  Dispatch(now, fx);
  return absl::OkStatus();
}

void SchedulerCore::WorkerDisconnected(const std::string& worker_id, uint64_t session,
                                       absl::Time now) {
  Worker* worker = FindWorker(worker_id);
  if (worker == nullptr || worker->session != session || !worker->connected) return;
  worker->connected = false;
  worker->last_seen = now;
}

void SchedulerCore::WorkerMessage(const std::string& worker_id, uint64_t session,
                                  const deja::v1::WorkerMessage& msg, absl::Time now,
                                  Effects* fx) {
  Worker* worker = FindWorker(worker_id);
  if (worker == nullptr || worker->session != session || !worker->connected) return;
  worker->last_seen = now;
  switch (msg.msg_case()) {
    case deja::v1::WorkerMessage::kStarted: {
      const auto& started = msg.started();
      auto it = jobs_.find(started.job_id());
      if (it == jobs_.end()) return;
      Job& job = it->second;
      if (job.worker_id() != worker_id || job.attempt() != started.attempt()) return;
      if (job.state() == deja::v1::ASSIGNED) {
        SetState(job, deja::v1::RUNNING, now);
        job.set_started_at_ms(started.started_at_ms());
        fx->jobs[job.job_id()] = job;
      } else if (job.state() == deja::v1::MATERIALIZING) {
        job.set_started_at_ms(started.started_at_ms());
        fx->jobs[job.job_id()] = job;
      }
      return;
    }
    case deja::v1::WorkerMessage::kResult:
      HandleResult(*worker, msg.result(), now, fx);
      return;
    default:
      return;  // heartbeats only refresh last_seen; log data is the service's
  }
}

void SchedulerCore::Release(Worker& worker, const std::string& job_id) {
  auto it = worker.jobs.find(job_id);
  if (it == worker.jobs.end()) return;
  --worker.busy_slots;
  worker.jobs.erase(it);
}

void SchedulerCore::HandleResult(Worker& worker, const deja::v1::JobResult& result, absl::Time now,
                                 Effects* fx) {
  // Acknowledge every result, even one we ignore, so the worker forgets it.
  deja::v1::SchedulerMessage ack;
  ack.mutable_result_ack()->set_job_id(result.job_id());
  ack.mutable_result_ack()->set_attempt(result.attempt());
  fx->to_workers.emplace_back(worker.info.worker_id(), std::move(ack));

  auto it = jobs_.find(result.job_id());
  auto held = worker.jobs.find(result.job_id());
  bool current = it != jobs_.end() && held != worker.jobs.end() &&
                 held->second == result.attempt() &&
                 it->second.worker_id() == worker.info.worker_id() &&
                 it->second.attempt() == result.attempt();
  if (!current) return;  // a superseded attempt: ignored, never committed
  Job& job = it->second;
  Release(worker, job.job_id());

  if (job.state() == deja::v1::CANCELLED) {
    job.set_exit_code(result.exit_code());
    job.set_run_time_ms(result.run_time_ms());
  } else if (job.state() == deja::v1::MATERIALIZING) {
    if (result.error().empty()) {
      SetState(job, deja::v1::SUCCEEDED, now);
      job.set_exit_code(0);
      *job.mutable_manifest() = result.manifest();
      *job.mutable_outputs() = result.outputs();
      job.set_run_time_ms(result.run_time_ms());
    } else {
      const std::string key = MemoKey(job.spec().project(), job.job_hash());
      auto entry = memo_.find(key);
      if (result.verification_failed() && entry != memo_.end() &&
          entry->second.source_job_id() == job.reused_from()) {
        memo_.erase(entry);
        fx->memo_deletes.insert(key);
        fx->memo_puts.erase(key);
      }
      ClearReuse(job, absl::StrCat("not reused: copying the workspace of ", job.reused_from(),
                                   " failed (", result.error(), "); running fresh"));
      SetState(job, deja::v1::QUEUED, now);
      Enqueue(job);
    }
  } else {
    job.set_exit_code(result.exit_code());
    job.set_run_time_ms(result.run_time_ms());
    *job.mutable_manifest() = result.manifest();
    if (!result.error().empty() || result.exit_code() != 0) {
      // E.g. a declared output that matched no file: never memoized.
      SetState(job, deja::v1::FAILED, now);
      job.set_message(!result.error().empty()
                          ? result.error()
                          : absl::StrCat("command exited with code ", result.exit_code()));
    } else {
      SetState(job, deja::v1::SUCCEEDED, now);
      *job.mutable_outputs() = result.outputs();
      if (MemoizeAllowed(job.spec())) {
        deja::v1::MemoEntry entry;
        entry.set_project(job.spec().project());
        entry.set_job_hash(job.job_hash());
        entry.set_app_name(job.spec().app().name());
        entry.set_source_job_id(job.job_id());
        entry.set_worker_id(worker.info.worker_id());
        *entry.mutable_manifest() = job.manifest();
        *entry.mutable_outputs() = job.outputs();
        entry.set_run_time_ms(job.run_time_ms());
        entry.set_created_at_ms(Millis(now));
        const std::string key = MemoKey(entry.project(), entry.job_hash());
        fx->memo_deletes.erase(key);
        fx->memo_puts[key] = entry;
        memo_[key] = std::move(entry);
      }
    }
  }
  fx->jobs[job.job_id()] = job;
  Dispatch(now, fx);
}

void SchedulerCore::LoseWorker(Worker& worker, const std::string& why, absl::Time now,
                               Effects* fx) {
  std::map<std::string, uint32_t> jobs;
  jobs.swap(worker.jobs);
  worker.busy_slots = 0;
  for (const auto& [job_id, attempt] : jobs) {
    auto it = jobs_.find(job_id);
    if (it == jobs_.end()) continue;
    Job& job = it->second;
    if (job.attempt() != attempt || job.worker_id() != worker.info.worker_id()) continue;
    if (job.state() == deja::v1::CANCELLED) {
      continue;  // nothing left to do for it
    } else if (job.state() == deja::v1::MATERIALIZING) {
      ClearReuse(job, absl::StrCat("not reused: copying the workspace of ", job.reused_from(),
                                   " was interrupted (", why, "); running fresh"));
      SetState(job, deja::v1::QUEUED, now);
      Enqueue(job);
    } else if (static_cast<int>(job.attempt()) >= options_.max_attempts) {
      SetState(job, deja::v1::FAILED, now);
      job.set_message(absl::StrCat(why, "; gave up after ", job.attempt(), " attempts"));
    } else {
      job.set_attempt(job.attempt() + 1);
      job.set_message(absl::StrCat(why, "; requeued (attempt ", job.attempt(), " of ",
                                   options_.max_attempts, ")"));
      job.clear_started_at_ms();
      SetState(job, deja::v1::QUEUED, now);
      Enqueue(job);
    }
    fx->jobs[job_id] = job;
  }
  Dispatch(now, fx);
}

void SchedulerCore::Tick(absl::Time now, Effects* fx) {
  for (auto& [id, worker] : workers_) {
    if (worker.jobs.empty() && !worker.connected) continue;
    if (now - worker.last_seen <= options_.worker_timeout) continue;
    std::string why = worker.connected
                          ? absl::StrCat("worker ", id, " missed heartbeats for ",
                                         absl::FormatDuration(now - worker.last_seen))
                          : absl::StrCat("worker ", id, " lost");
    if (worker.connected) fx->close_sessions.emplace_back(id, worker.session);
    worker.connected = false;  // its stream, if any, no longer counts
    LoseWorker(worker, why, now, fx);
  }
}

bool SchedulerCore::Fits(const Worker& worker, const Job& job) const {
  if (!worker.connected || worker.busy_slots >= static_cast<int>(worker.info.slots())) return false;
  for (const auto& [key, value] : job.spec().app().platform()) {
    auto it = worker.info.platform().find(key);
    if (it == worker.info.platform().end() || it->second != value) return false;
  }
  return true;
}

std::string SchedulerCore::MissingOutput(const deja::v1::MemoEntry& entry) const {
  if (blobs_ == nullptr) return "";
  for (const auto& output : entry.outputs()) {
    if (!blobs_->Has(output.digest(), output.size())) {
      return absl::StrCat("its output ", output.path(), " (blob ", output.digest(),
                          ") is missing from the content store");
    }
  }
  return "";
}

void SchedulerCore::ClearReuse(Job& job, const std::string& why) {
  job.set_message(why);
  job.clear_reused_from();
  job.clear_time_saved_ms();
  job.clear_reused_source_finished_at_ms();
  job.clear_started_at_ms();
}

void SchedulerCore::Assign(Job& job, Worker& worker, deja::v1::SchedulerMessage msg,
                           JobState state, absl::Time now, Effects* fx) {
  SetState(job, state, now);
  job.set_worker_id(worker.info.worker_id());
  worker.jobs[job.job_id()] = job.attempt();
  ++worker.busy_slots;
  auto* a = msg.mutable_assignment();
  a->set_job_id(job.job_id());
  a->set_attempt(job.attempt());
  fx->to_workers.emplace_back(worker.info.worker_id(), std::move(msg));
  fx->jobs[job.job_id()] = job;
}

SchedulerCore::Worker* SchedulerCore::PickWorker(const Job& job) {
  // The least busy fitting worker, so work spreads out.
  Worker* best = nullptr;
  for (auto& [id, worker] : workers_) {
    if (!Fits(worker, job)) continue;
    if (best == nullptr ||
        worker.info.slots() - worker.busy_slots > best->info.slots() - best->busy_slots) {
      best = &worker;
    }
  }
  return best;
}

bool SchedulerCore::DispatchReuse(Job& job, absl::Time now, Effects* fx) {
  auto it = memo_.find(MemoKey(job.spec().project(), job.job_hash()));
  if (it == memo_.end() || it->second.source_job_id() != job.reused_from()) {
    ClearReuse(job, absl::StrCat("not reused: the memo entry from ", job.reused_from(),
                                 " was dropped; running fresh"));
    return false;
  }
  const deja::v1::MemoEntry& entry = it->second;
  Worker* holder = FindWorker(entry.worker_id());
  if (holder == nullptr || !holder->connected) {
    ClearReuse(job, absl::StrCat("not reused: the workspace of ", entry.source_job_id(),
                                 " is on worker ", entry.worker_id(),
                                 ", which is not connected; running fresh"));
    return false;
  }
  // The holder copies locally; if it is busy, another worker pulls the
  // workspace over the holder's Peer service.
  Worker* target = Fits(*holder, job) ? holder : PickWorker(job);
  if (target == nullptr) return true;  // wait for a free slot
  if (target != holder && holder->info.advertise().empty()) {
    return true;  // the holder serves no peers: wait for its slot
  }
  deja::v1::SchedulerMessage msg;
  auto* a = msg.mutable_assignment();
  a->set_kind(deja::v1::Assignment::MATERIALIZE);
  a->set_source_job_id(entry.source_job_id());
  *a->mutable_source_manifest() = entry.manifest();
  *a->mutable_source_outputs() = entry.outputs();
  if (target != holder) {
    a->set_source_worker_id(holder->info.worker_id());
    a->set_source_address(holder->info.advertise());
  }
  Assign(job, *target, std::move(msg), deja::v1::MATERIALIZING, now, fx);
  return true;
}

void SchedulerCore::Dispatch(absl::Time now, Effects* fx) {
  for (auto it = queue_.begin(); it != queue_.end();) {
    bool any_free = false;
    for (const auto& [id, worker] : workers_) {
      any_free |= worker.connected && worker.busy_slots < static_cast<int>(worker.info.slots());
    }
    if (!any_free) return;
    Job& job = jobs_.at(order_.at(*it));
    if (!job.reused_from().empty()) {
      if (DispatchReuse(job, now, fx)) {
        if (job.state() == deja::v1::MATERIALIZING) {
          it = queue_.erase(it);
        } else {
          ++it;
        }
        continue;
      }
      fx->jobs[job.job_id()] = job;  // the reuse fell through: run it fresh
    }
    Worker* best = PickWorker(job);
    if (best == nullptr) {
      ++it;  // no worker has the platform it needs free: later jobs may still fit
      continue;
    }
    auto argv = ExpandCommand(job.spec());
    DEJA_CHECK(argv.ok(), "validated at submit: " + argv.status().ToString());
    deja::v1::SchedulerMessage msg;
    auto* a = msg.mutable_assignment();
    a->set_kind(deja::v1::Assignment::RUN);
    for (auto& word : *argv) a->add_argv(std::move(word));
    *a->mutable_env() = job.spec().app().env();
    *a->mutable_inputs() = job.spec().inputs();
    *a->mutable_outputs() = job.spec().outputs();
    Assign(job, *best, std::move(msg), deja::v1::ASSIGNED, now, fx);
    it = queue_.erase(it);
  }
}

}  // namespace deja
