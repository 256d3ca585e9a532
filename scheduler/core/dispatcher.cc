#include "scheduler/core/dispatcher.h"

#include <algorithm>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/check.h"
#include "common/job_spec.h"
#include "common/job_state.h"
#include "common/resources.h"
#include "scheduler/core/job_state_machine.h"
#include "scheduler/core/job_times.h"
#include "scheduler/core/keys.h"
#include "scheduler/core/reuse_decider.h"

namespace deja {

using deja::v1::Job;
using deja::v1::JobState;

deja::v1::SchedulerMessage CancelMessage(const std::string& job_id, uint32_t attempt) {
  deja::v1::SchedulerMessage msg;
  msg.mutable_cancel()->set_job_id(job_id);
  msg.mutable_cancel()->set_attempt(attempt);
  return msg;
}

Dispatcher::Dispatcher(const CoreOptions& options, JobTable* jobs, const MemoIndex* memo,
                       FinishedHook finished)
    : options_(options), jobs_(jobs), memo_(memo), finished_(std::move(finished)) {}

void Dispatcher::ClaimAtLoad(const Job& job, absl::Time now) {
  if (!OnWorker(job.state()) &&
      !(job.state() == deja::v1::CANCELLED && !job.has_exit_code() && !job.worker_id().empty())) {
    return;
  }
  // Until its worker reconnects, it is "disconnected since now".
  Worker& worker = workers_[job.worker_id()];
  worker.info.set_worker_id(job.worker_id());
  worker.last_seen = now;
  worker.jobs[job.job_id()] = job.attempt();
  ++worker.busy_slots;
  TakeResources(worker, job);
}

void Dispatcher::TakeResources(Worker& worker, const Job& job) {
  // A reuse copies: what the job asks for is for running it.
  if (!job.reused_from().empty() || !job.spec().has_resources()) return;
  if (!worker.uses.emplace(job.job_id(), job.spec().resources()).second) return;
  AddUse(job.spec().resources(), +1, &worker.used);
}

Dispatcher::Worker* Dispatcher::FindWorker(const std::string& worker_id) {
  auto it = workers_.find(worker_id);
  return it == workers_.end() ? nullptr : &it->second;
}

bool Dispatcher::IsConnected(const std::string& worker_id) const {
  auto w = workers_.find(worker_id);
  return w != workers_.end() && w->second.connected;
}

bool Dispatcher::Holds(const Job& job) const {
  if (job.worker_id().empty()) return false;
  auto w = workers_.find(job.worker_id());
  return w != workers_.end() && w->second.jobs.contains(job.job_id());
}

bool Dispatcher::HoldsAttempt(const std::string& worker_id, const std::string& job_id,
                              uint32_t attempt) const {
  auto w = workers_.find(worker_id);
  if (w == workers_.end()) return false;
  auto held = w->second.jobs.find(job_id);
  return held != w->second.jobs.end() && held->second == attempt;
}

std::vector<deja::v1::WorkerInfo> Dispatcher::List() const {
  std::vector<deja::v1::WorkerInfo> out;
  for (const auto& [id, worker] : workers_) {
    deja::v1::WorkerInfo info;
    info.set_worker_id(id);
    info.set_slots(worker.info.slots());
    info.set_busy_slots(worker.busy_slots);
    *info.mutable_platform() = worker.info.platform();
    info.set_advertise(worker.info.advertise());
    info.set_connected(worker.connected);
    *info.mutable_disk() = worker.info.disk();
    *info.mutable_capacity() = worker.info.capacity();
    *info.mutable_used() = worker.used;
    out.push_back(std::move(info));
  }
  return out;
}

absl::Status Dispatcher::Connect(const deja::v1::Register& reg, uint64_t session, absl::Time now,
                                 Effects* fx) {
  if (reg.worker_id().empty() || reg.worker_id().size() > kMaxNameLength) {
    return absl::InvalidArgumentError("register.worker_id: must be 1 to 128 characters");
  }
  if (reg.slots() == 0) return absl::InvalidArgumentError("register.slots: must be at least 1");
  Worker& worker = workers_[reg.worker_id()];
  // Jobs its previous life handed back, if it said it was stopping.
  const bool was_draining = worker.draining;
  const std::string left_why = worker.leaving_why;
  worker.info = reg;
  worker.info.clear_held();
  worker.session = session;
  worker.connected = true;
  worker.draining = false;  // a new life of the worker
  worker.leaving_why.clear();
  worker.last_seen = now;

  // RegisterAck is always the first message of a session.
  deja::v1::SchedulerMessage ack;
  ack.mutable_register_ack()->set_heartbeat_interval_ms(
      absl::ToInt64Milliseconds(options_.heartbeat_interval));
  ack.mutable_register_ack()->set_worker_timeout_ms(
      absl::ToInt64Milliseconds(options_.worker_timeout));
  fx->to_workers.emplace_back(reg.worker_id(), std::move(ack));

  // Reconcile what the worker holds with what we think it holds.
  std::map<std::string, uint32_t> held;
  for (const auto& h : reg.held()) held[h.job_id()] = h.attempt();
  for (const auto& [job_id, attempt] : held) {
    Job* job = jobs_->Find(job_id);
    if (job == nullptr) {
      // Not in memory: ended and committed. Its result may still be on the
      // way; anything else of ours it holds is stopped.
      absl::StatusOr<Job> stored = jobs_->Get(job_id);
      if (stored.ok() && stored->worker_id() == reg.worker_id() && stored->attempt() == attempt) {
        continue;
      }
      fx->to_workers.emplace_back(reg.worker_id(), CancelMessage(job_id, attempt));
      continue;
    }
    bool ours = job->worker_id() == reg.worker_id() && job->attempt() == attempt;
    if (ours && (OnWorker(job->state()) || job->state() == deja::v1::CANCELLED)) {
      if (!worker.jobs.contains(job_id)) {
        worker.jobs[job_id] = attempt;
        ++worker.busy_slots;
        TakeResources(worker, *job);
      }
      if (job->state() == deja::v1::CANCELLED && !job->has_exit_code()) {
        // A cancel may have been lost with the old stream.
        fx->to_workers.emplace_back(reg.worker_id(), CancelMessage(job_id, attempt));
      }
      continue;
    }
    if (ours && IsTerminal(job->state())) continue;  // its result is on the way
    if (job->state() == deja::v1::QUEUED && attempt + 1 == job->attempt() &&
        job->reused_from().empty()) {
      // Requeued when this worker was lost, and sent nowhere since: the
      // attempt it holds (running, or finished with its result on the way)
      // is the job's again, rather than running the command twice.
      jobs_->Dequeue(job_id);
      job->set_attempt(attempt);
      job->set_message(absl::StrCat("worker ", reg.worker_id(), " came back holding attempt ",
                                    attempt, ": it goes on there"));
      Place(*job, worker, deja::v1::ASSIGNED, now, fx);
      continue;
    }
    // Superseded attempt or unknown job: stop it. Its result will be ignored.
    fx->to_workers.emplace_back(reg.worker_id(), CancelMessage(job_id, attempt));
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
    partial.draining = was_draining;
    partial.leaving_why = left_why;
    LoseWorker(partial, "worker " + reg.worker_id() + " restarted without it", now, fx);
  }
  RecheckQueue(now, fx);  // it may be the first that can run some
  Dispatch(now, fx);
  return absl::OkStatus();
}

void Dispatcher::Disconnect(const std::string& worker_id, uint64_t session, absl::Time now) {
  Worker* worker = FindWorker(worker_id);
  if (worker == nullptr || worker->session != session || !worker->connected) return;
  worker->connected = false;
  worker->last_seen = now;
}

bool Dispatcher::Touch(const std::string& worker_id, uint64_t session, absl::Time now) {
  Worker* worker = FindWorker(worker_id);
  if (worker == nullptr || worker->session != session || !worker->connected) return false;
  worker->last_seen = now;
  return true;
}

void Dispatcher::Release(const std::string& worker_id, const std::string& job_id) {
  if (Worker* worker = FindWorker(worker_id); worker != nullptr) Release(*worker, job_id);
}

void Dispatcher::Release(Worker& worker, const std::string& job_id) {
  auto it = worker.jobs.find(job_id);
  if (it == worker.jobs.end()) return;
  --worker.busy_slots;
  worker.jobs.erase(it);
  if (auto use = worker.uses.find(job_id); use != worker.uses.end()) {
    AddUse(use->second, -1, &worker.used);
    worker.uses.erase(use);
  }
}

void Dispatcher::SetDisk(const std::string& worker_id, const deja::v1::DiskStatus& disk,
                         absl::Time now, Effects* fx) {
  Worker* worker = FindWorker(worker_id);
  if (worker == nullptr) return;
  const bool was_refusing = !worker->info.disk().refusing().empty();
  *worker->info.mutable_disk() = disk;
  if (was_refusing && disk.refusing().empty()) Dispatch(now, fx);
}

void Dispatcher::Leaving(const std::string& worker_id, uint64_t session, const std::string& reason,
                         absl::Time now, Effects* fx) {
  Worker* worker = FindWorker(worker_id);
  if (worker == nullptr || worker->session != session || !worker->connected) return;
  worker->draining = true;
  worker->leaving_why = absl::StrCat("worker ", worker_id, " stopped",
                                     reason.empty() ? "" : absl::StrCat(" (", reason, ")"));
  // What it has not started goes back now; what runs comes back with its
  // result (handed_back), once the worker has killed it.
  std::vector<std::string> unstarted;
  for (const auto& [job_id, attempt] : worker->jobs) {
    const Job* job = jobs_->Find(job_id);
    if (job != nullptr && job->attempt() == attempt && job->state() == deja::v1::ASSIGNED) {
      unstarted.push_back(job_id);
    }
  }
  for (const std::string& job_id : unstarted) {
    Release(*worker, job_id);
    Job& job = *jobs_->Find(job_id);
    HandBack(job, worker->leaving_why, now);
    fx->jobs[job_id] = job;
  }
  RecheckQueue(now, fx);  // it may have been the only one that could run some
  Dispatch(now, fx);
}

std::string Dispatcher::WhyStopped(const std::string& worker_id) const {
  auto it = workers_.find(worker_id);
  if (it != workers_.end() && !it->second.leaving_why.empty()) return it->second.leaving_why;
  return absl::StrCat("worker ", worker_id, " stopped");
}

void Dispatcher::HandBack(Job& job, const std::string& why, absl::Time now) {
  job.set_handed_back(job.handed_back() + 1);
  job.set_attempt(job.attempt() + 1);
  job.set_message(absl::StrCat(why, "; handed back and requeued (not counted against the ",
                               options_.max_attempts, " attempts)"));
  job.clear_started_at_ms();
  SetJobState(job, deja::v1::QUEUED, now);
  jobs_->Enqueue(job);
}

void Dispatcher::LoseWorker(Worker& worker, const std::string& why, absl::Time now, Effects* fx) {
  std::map<std::string, uint32_t> jobs;
  jobs.swap(worker.jobs);
  worker.busy_slots = 0;
  for (const auto& [job_id, attempt] : jobs) {
    Job* found = jobs_->Find(job_id);
    if (found == nullptr) continue;
    Job& job = *found;
    if (job.attempt() != attempt || job.worker_id() != worker.info.worker_id()) continue;
    if (job.state() == deja::v1::CANCELLED) {
      // Nothing left to do for it; named (unchanged) so that, no longer held
      // by a worker, it leaves memory after the commit.
      fx->jobs[job_id] = job;
      continue;
    } else if (job.state() == deja::v1::MATERIALIZING) {
      ClearReuse(job, absl::StrCat("not reused: copying the workspace of ", job.reused_from(),
                                   " was interrupted (", why, "); running fresh"));
      job.set_attempt(job.attempt() + 1);
      SetJobState(job, deja::v1::QUEUED, now);
      jobs_->Enqueue(job);
    } else if (worker.draining) {
      HandBack(job, worker.leaving_why, now);  // it said it was stopping
    } else if (static_cast<int>(ChargedAttempts(job)) >= options_.max_attempts) {
      SetJobState(job, deja::v1::FAILED, now);
      job.set_message(absl::StrCat(why, "; gave up after ", ChargedAttempts(job), " attempts"));
      finished_(job, now, fx);
    } else {
      job.set_attempt(job.attempt() + 1);
      job.set_message(absl::StrCat(why, "; requeued (attempt ", ChargedAttempts(job), " of ",
                                   options_.max_attempts, ")"));
      job.clear_started_at_ms();
      SetJobState(job, deja::v1::QUEUED, now);
      jobs_->Enqueue(job);
    }
    fx->jobs[job_id] = job;
  }
  Dispatch(now, fx);
}

void Dispatcher::CheckLiveness(absl::Time now, Effects* fx) {
  bool lost_any = false;
  for (auto& [id, worker] : workers_) {
    if (worker.jobs.empty() && !worker.connected) continue;
    if (now - worker.last_seen <= options_.worker_timeout) continue;
    std::string why = worker.connected ? absl::StrCat("worker ", id, " missed heartbeats for ",
                                                      absl::FormatDuration(now - worker.last_seen))
                                       : absl::StrCat("worker ", id, " lost");
    if (worker.connected) fx->close_sessions.emplace_back(id, worker.session);
    worker.connected = false;  // its stream, if any, no longer counts
    LoseWorker(worker, why, now, fx);
    lost_any = true;
  }
  if (lost_any) RecheckQueue(now, fx);
}

int Dispatcher::Capacity(const Worker& worker) const {
  return static_cast<int>(worker.info.slots()) + options_.dispatch_ahead;
}

bool Dispatcher::Fits(const Worker& worker, const Job& job) const {
  if (!worker.connected || worker.draining || worker.busy_slots >= Capacity(worker) ||
      !worker.info.disk().refusing().empty()) {
    return false;
  }
  return CouldRun(worker, job, Remaining(worker.info.capacity().total(), worker.used));
}

bool Dispatcher::CouldRun(const Worker& worker, const Job& job, const deja::v1::Resources& have) {
  for (const auto& [key, value] : job.spec().app().platform()) {
    auto it = worker.info.platform().find(key);
    if (it == worker.info.platform().end() || it->second != value) return false;
  }
  // A reuse is a copy: the job's engine and resources are for running it.
  if (!job.reused_from().empty()) return true;
  if (!job.spec().app().image().empty() && worker.info.capacity().engine().empty()) return false;
  return Shortfall(job.spec().resources(), have).empty();
}

std::string Dispatcher::WhyUnplaceable(const Job& job) const {
  std::vector<const Worker*> up;
  for (const auto& [id, worker] : workers_) {
    if (!worker.connected || worker.draining) continue;
    if (CouldRun(worker, job, worker.info.capacity().total())) return "";
    up.push_back(&worker);
  }
  if (up.empty()) return kNoWorker;
  // The first requirement no worker meets alone, with the best on offer.
  const auto& want = job.spec().resources();
  const std::map<std::string, std::string> platform(job.spec().app().platform().begin(),
                                                    job.spec().app().platform().end());
  for (const auto& [key, value] : platform) {
    bool any = false;
    std::set<std::string> offered;
    for (const Worker* w : up) {
      auto it = w->info.platform().find(key);
      if (it == w->info.platform().end()) continue;
      any |= it->second == value;
      offered.insert(it->second);
    }
    if (!any) {
      return absl::StrCat("no worker has platform ", key, "=", value,
                          offered.empty()
                              ? absl::StrCat(" (none has ", key, ")")
                              : absl::StrCat(" (offered: ", absl::StrJoin(offered, ", "), ")"));
    }
  }
  if (!job.spec().app().image().empty() && std::none_of(up.begin(), up.end(), [](const Worker* w) {
        return !w->info.capacity().engine().empty();
      })) {
    return absl::StrCat("no worker has a container engine to run image ", job.spec().app().image(),
                        " (see deja workers)");
  }
  deja::v1::Resources largest;
  for (const Worker* w : up) {
    const auto& total = w->info.capacity().total();
    largest.set_milli_cpus(std::max(largest.milli_cpus(), total.milli_cpus()));
    largest.set_memory_bytes(std::max(largest.memory_bytes(), total.memory_bytes()));
    largest.set_gpus(std::max(largest.gpus(), total.gpus()));
  }
  if (want.milli_cpus() > largest.milli_cpus()) {
    return absl::StrCat("no worker has cpus ≥ ", FormatCpus(want.milli_cpus()),
                        " (largest: ", FormatCpus(largest.milli_cpus()), ")");
  }
  if (want.memory_bytes() > largest.memory_bytes()) {
    return absl::StrCat("no worker has memory ≥ ", FormatMemory(want.memory_bytes()),
                        " (largest: ", FormatMemory(largest.memory_bytes()), ")");
  }
  if (want.gpus() > largest.gpus()) {
    return absl::StrCat("no worker has gpus ≥ ", want.gpus(), " (largest: ", largest.gpus(), ")");
  }
  return "no single worker has all it asks for (see deja workers)";
}

bool Dispatcher::CheckPlaceable(Job& job, absl::Time now, Effects* fx) {
  std::string why = WhyUnplaceable(job);
  if (why != job.unplaceable()) {
    job.set_unplaceable(why);
    fx->jobs[job.job_id()] = job;
  }
  // Without any worker, nothing can be judged yet: a restart is not a
  // verdict.
  if (why.empty() || !job.spec().fail_unplaceable() || why == kNoWorker) {
    return false;
  }
  jobs_->Dequeue(job.job_id());
  SetJobState(job, deja::v1::FAILED, now);
  job.set_message(UnplaceableMessage(why));
  fx->jobs[job.job_id()] = job;
  finished_(job, now, fx);
  return true;
}

void Dispatcher::RecheckQueue(absl::Time now, Effects* fx) {
  std::vector<uint64_t> queued;
  for (uint64_t seq = jobs_->NextQueued(0); seq != 0; seq = jobs_->NextQueued(seq)) {
    queued.push_back(seq);
  }
  for (uint64_t seq : queued) {
    if (jobs_->IsQueued(seq)) CheckPlaceable(jobs_->Queued(seq), now, fx);
  }
}

void Dispatcher::Assign(Job& job, Worker& worker, deja::v1::SchedulerMessage msg, JobState state,
                        absl::Time now, Effects* fx) {
  Place(job, worker, state, now, fx);
  auto* a = msg.mutable_assignment();
  a->set_job_id(job.job_id());
  a->set_attempt(job.attempt());
  fx->to_workers.emplace_back(worker.info.worker_id(), std::move(msg));
}

void Dispatcher::Place(Job& job, Worker& worker, JobState state, absl::Time now, Effects* fx) {
  SetJobState(job, state, now);
  job.set_worker_id(worker.info.worker_id());
  (*job.mutable_attempt_workers())[job.attempt()] = worker.info.worker_id();
  worker.jobs[job.job_id()] = job.attempt();
  ++worker.busy_slots;
  TakeResources(worker, job);
  job.clear_unplaceable();
  fx->jobs[job.job_id()] = job;
}

Dispatcher::Worker* Dispatcher::PickWorker(const Job& job) {
  // The least busy fitting worker, so work spreads out.
  Worker* best = nullptr;
  for (auto& [id, worker] : workers_) {
    if (!Fits(worker, job)) continue;
    if (best == nullptr || static_cast<int>(worker.info.slots()) - worker.busy_slots >
                               static_cast<int>(best->info.slots()) - best->busy_slots) {
      best = &worker;
    }
  }
  return best;
}

bool Dispatcher::DispatchReuse(Job& job, absl::Time now, Effects* fx) {
  // The source: the job named with --reuse, or the memo entry.
  std::string source_id, worker_id;
  deja::v1::ManifestRef manifest;
  google::protobuf::RepeatedPtrField<deja::v1::OutputFile> outputs;
  if (!job.spec().reuse_job_id().empty()) {
    absl::StatusOr<Job> src = jobs_->Get(job.spec().reuse_job_id());
    if (!src.ok()) {
      ClearReuse(job, absl::StrCat("not reused: reading ", job.spec().reuse_job_id(), " failed (",
                                   src.status().ToString(), "); running fresh"));
      return false;
    }
    if (src->workspace_expired() || Expired(src->expires_at_ms(), now)) {
      ClearReuse(job, absl::StrCat("not reused: the workspace of ", src->job_id(), " expired at ",
                                   FormatMillis(src->expires_at_ms()), "; running fresh"));
      return false;
    }
    source_id = src->job_id();
    worker_id = src->worker_id();
    manifest = std::move(*src->mutable_manifest());
    outputs = std::move(*src->mutable_outputs());
  } else {
    const std::string memo_id = MemoId(job.spec().project(), job.job_hash());
    absl::StatusOr<deja::v1::MemoEntry> entry =
        memo_->HasSource(memo_id, ParseJobId(job.reused_from())) ? memo_->Read(memo_id)
                                                                 : absl::NotFoundError("dropped");
    if (!entry.ok() || Expired(entry->expires_at_ms(), now)) {
      ClearReuse(job, absl::StrCat("not reused: the memo entry from ", job.reused_from(),
                                   " was dropped or expired; running fresh"));
      return false;
    }
    source_id = entry->source_job_id();
    worker_id = entry->worker_id();
    manifest = std::move(*entry->mutable_manifest());
    outputs = std::move(*entry->mutable_outputs());
  }
  Worker* holder = FindWorker(worker_id);
  if (holder == nullptr || !holder->connected) {
    ClearReuse(job, absl::StrCat("not reused: the workspace of ", source_id, " is on worker ",
                                 worker_id, ", which is not connected; running fresh"));
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
  a->set_source_job_id(source_id);
  *a->mutable_source_manifest() = std::move(manifest);
  *a->mutable_source_outputs() = std::move(outputs);
  if (target != holder) {
    a->set_source_worker_id(holder->info.worker_id());
    a->set_source_address(holder->info.advertise());
  }
  Assign(job, *target, std::move(msg), deja::v1::MATERIALIZING, now, fx);
  return true;
}

void Dispatcher::Dispatch(absl::Time now, Effects* fx) {
  // New arrivals are judged once; RecheckQueue judges them again when the
  // workers change. Failing one may queue more (a single-flight follower).
  for (std::vector<uint64_t> fresh = jobs_->TakeFreshlyQueued(); !fresh.empty();
       fresh = jobs_->TakeFreshlyQueued()) {
    for (uint64_t seq : fresh) {
      if (jobs_->IsQueued(seq)) CheckPlaceable(jobs_->Queued(seq), now, fx);
    }
  }
  for (uint64_t seq = jobs_->NextQueued(0); seq != 0; seq = jobs_->NextQueued(seq)) {
    bool any_free = false;
    for (const auto& [id, worker] : workers_) {
      any_free |= worker.connected && worker.busy_slots < Capacity(worker);
    }
    if (!any_free) return;
    Job& job = jobs_->Queued(seq);
    if (!job.reused_from().empty()) {
      if (DispatchReuse(job, now, fx)) {
        if (job.state() == deja::v1::MATERIALIZING) jobs_->Dequeue(job.job_id());
        continue;
      }
      fx->jobs[job.job_id()] = job;  // the reuse fell through: run it fresh
    }
    Worker* best = PickWorker(job);
    if (best == nullptr) {
      continue;  // no worker has the platform it needs free: later jobs may still fit
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
    a->set_image(job.spec().app().image());
    a->set_image_id(job.spec().app().image_id());
    if (const deja::v1::ImageRecord* pushed =
            images_ != nullptr && !a->image_id().empty() ? images_->FindId(a->image_id()) : nullptr;
        pushed != nullptr) {
      a->set_image_digest(pushed->digest());
      a->set_image_size(pushed->size());
    }
    a->set_network(job.spec().network());
    if (job.spec().has_resources()) *a->mutable_resources() = job.spec().resources();
    Assign(job, *best, std::move(msg), deja::v1::ASSIGNED, now, fx);
    jobs_->Dequeue(job.job_id());
  }
}

}  // namespace deja
