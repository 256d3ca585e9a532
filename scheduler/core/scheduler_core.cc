#include "scheduler/core/scheduler_core.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <optional>

#include "absl/strings/escaping.h"
#include "google/protobuf/util/message_differencer.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_cat.h"
#include "common/check.h"
#include "common/hash.h"
#include "common/job_identity.h"
#include "common/job_spec.h"
#include "common/job_state.h"
#include "scheduler/core/explain.h"
#include "scheduler/core/job_state_machine.h"
#include "scheduler/core/memo_policy.h"

namespace deja {

using deja::v1::Job;
using deja::v1::JobState;

namespace {

int64_t Millis(absl::Time t) { return absl::ToUnixMillis(t); }

bool OnWorker(JobState state) {
  return state == deja::v1::ASSIGNED || state == deja::v1::RUNNING ||
         state == deja::v1::MATERIALIZING;
}

}  // namespace

std::string MemoKey(const std::string& project, const std::string& job_hash) {
  return absl::StrCat(project, std::string(1, '\0'), job_hash);
}

std::string MemoId(const std::string& project, const std::string& job_hash) {
  return absl::HexStringToBytes(HashBytes(MemoKey(project, job_hash)));
}

std::string JobIdFromSeq(uint64_t seq) { return absl::StrCat("j", seq); }

uint64_t ParseJobId(const std::string& job_id) {
  uint64_t seq = 0;
  if (job_id.size() < 2 || job_id[0] != 'j' || job_id[1] == '0') return 0;
  if (!absl::SimpleAtoi(absl::string_view(job_id).substr(1), &seq)) return 0;
  return seq;
}

SchedulerCore::SchedulerCore(CoreOptions options, BlobIndex* blobs, StoreReader* store)
    : options_(options), blobs_(blobs), store_(store) {}

void SchedulerCore::LoadProject(deja::v1::ProjectSettings& settings) {
  projects_[settings.project()] = std::move(settings);
}

void SchedulerCore::LoadPipeline(deja::v1::Pipeline& pipeline) {
  uint64_t seq = ParsePipelineId(pipeline.pipeline_id());
  DEJA_CHECK(seq != 0, "stored pipeline has a malformed id: " + pipeline.pipeline_id());
  next_pipeline_seq_ = std::max(next_pipeline_seq_, seq + 1);
  for (int i = 0; i < pipeline.nodes_size(); ++i) {
    if (!pipeline.nodes(i).job_id().empty()) {
      job_nodes_[pipeline.nodes(i).job_id()] = {pipeline.pipeline_id(), i};
    }
  }
  pipelines_[seq] = std::move(pipeline);
}

void SchedulerCore::LoadJob(Job& job, absl::Time now) {
  uint64_t seq = ParseJobId(job.job_id());
  DEJA_CHECK(seq != 0, "stored job has a malformed id: " + job.job_id());
  next_seq_ = std::max(next_seq_, seq + 1);
  if (store_ == nullptr && !job.spec().request_id().empty()) {
    requests_[MemoKey(job.spec().project(), job.spec().request_id())] = job.job_id();
  }
  if (job.state() == deja::v1::QUEUED) {
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
  if (store_ != nullptr && IsTerminal(job.state()) && !HeldByWorker(job)) {
    CountStored(job, +1);  // stays in the store only
    return;
  }
  order_[seq] = job.job_id();
  std::string id = job.job_id();
  jobs_[id] = std::move(job);
}

void SchedulerCore::FinishLoad() {
  // Single-flight groups, oldest first.
  for (const auto& [seq, id] : order_) {
    const Job& job = jobs_.at(id);
    if (IsTerminal(job.state())) continue;
    if (job.state() == deja::v1::WAITING) {
      followers_[job.waiting_for()].push_back(id);
    } else if (job.reused_from().empty() &&
               DecideMemoPolicy(job.spec(), Settings(job.spec().project())).record) {
      inflight_.try_emplace(MemoKey(job.spec().project(), job.job_hash()), id);
    }
  }
}

absl::Status SchedulerCore::LoadFromStore(absl::Time now) {
  DEJA_CHECK(store_ != nullptr, "LoadFromStore needs a StoreReader");
  if (absl::Status s = store_->ScanProjects([&](auto& p) { LoadProject(p); }); !s.ok()) return s;
  if (absl::Status s = store_->ScanPipelines([&](auto& p) { LoadPipeline(p); }); !s.ok()) {
    return s;
  }
  if (absl::Status s = store_->ScanJobs(0, false,
                                        [&](Job& job) {
                                          LoadJob(job, now);
                                          return true;
                                        });
      !s.ok()) {
    return s;
  }
  if (absl::Status s = store_->ScanMemo([&](deja::v1::MemoEntry& entry) {
        IndexMemo(entry);
        return true;
      });
      !s.ok()) {
    return s;
  }
  FinishLoad();
  return absl::OkStatus();
}

void SchedulerCore::Load(std::vector<Job> jobs, std::vector<deja::v1::MemoEntry> memo,
                         std::vector<deja::v1::ProjectSettings> projects,
                         std::vector<deja::v1::Pipeline> pipelines, absl::Time now) {
  DEJA_CHECK(store_ == nullptr, "a core with a StoreReader loads with LoadFromStore");
  for (auto& settings : projects) LoadProject(settings);
  for (auto& pipeline : pipelines) LoadPipeline(pipeline);
  for (Job& job : jobs) LoadJob(job, now);
  for (auto& entry : memo) {
    IndexMemo(entry);
    memo_full_[MemoId(entry.project(), entry.job_hash())] = std::move(entry);
  }
  FinishLoad();
}

void SchedulerCore::Committed(const Effects& fx) {
  if (store_ == nullptr) return;
  for (const auto& [id, entry] : fx.memo_puts) memo_full_.erase(id);
  for (const auto& [key, id] : fx.requests) requests_.erase(key);
  for (const auto& [id, committed] : fx.jobs) {
    auto it = jobs_.find(id);
    if (it == jobs_.end() || !IsTerminal(it->second.state()) || HeldByWorker(it->second)) {
      continue;
    }
    // Only what the store now holds may leave (a change made after `fx`
    // took its copy would otherwise be lost; none is expected).
    if (!google::protobuf::util::MessageDifferencer::Equals(it->second, committed)) continue;
    CountStored(it->second, +1);
    order_.erase(ParseJobId(id));
    jobs_.erase(it);
  }
}

Job* SchedulerCore::Resident(const std::string& job_id) {
  if (auto it = jobs_.find(job_id); it != jobs_.end()) return &it->second;
  const uint64_t seq = ParseJobId(job_id);
  if (store_ == nullptr || seq == 0) return nullptr;
  absl::StatusOr<Job> stored = store_->ReadJob(seq);
  if (!stored.ok()) return nullptr;
  CountStored(*stored, -1);
  order_[seq] = job_id;
  auto placed = jobs_.try_emplace(job_id, *std::move(stored));
  return &placed.first->second;
}

bool SchedulerCore::HeldByWorker(const Job& job) const {
  if (job.worker_id().empty()) return false;
  auto w = workers_.find(job.worker_id());
  return w != workers_.end() && w->second.jobs.contains(job.job_id());
}

void SchedulerCore::StatCounts::Add(const Job& job, int sign) {
  jobs += sign;
  if (job.state() == deja::v1::SUCCEEDED) succeeded += sign;
  if (job.state() == deja::v1::FAILED) failed += sign;
  if (job.state() == deja::v1::SUCCEEDED && !job.reused_from().empty()) {
    reused += sign;
    time_saved_ms += sign * job.time_saved_ms();
  } else {
    run_time_ms += sign * job.run_time_ms();
  }
}

void SchedulerCore::StatCounts::Add(const StatCounts& o) {
  jobs += o.jobs;
  succeeded += o.succeeded;
  failed += o.failed;
  reused += o.reused;
  time_saved_ms += o.time_saved_ms;
  run_time_ms += o.run_time_ms;
}

void SchedulerCore::CountStored(const Job& job, int sign) {
  stored_stats_[job.spec().project()][job.spec().app().name()].Add(job, sign);
}

SchedulerCore::MemoIndexKey SchedulerCore::IndexKey(const std::string& memo_id) {
  MemoIndexKey key;
  if (memo_id.size() == 16) {
    std::memcpy(&key.hi, memo_id.data(), 8);
    std::memcpy(&key.lo, memo_id.data() + 8, 8);
  }
  return key;
}

std::string SchedulerCore::IdOf(const MemoIndexKey& key) {
  std::string id(16, '\0');
  std::memcpy(id.data(), &key.hi, 8);
  std::memcpy(id.data() + 8, &key.lo, 8);
  return id;
}

uint32_t SchedulerCore::InternWorker(const std::string& worker_id) {
  auto [it, added] = worker_index_.try_emplace(worker_id, worker_names_.size());
  if (added) worker_names_.push_back(worker_id);
  return it->second;
}

const SchedulerCore::MemoRef* SchedulerCore::FindMemo(const std::string& memo_id) const {
  auto it = memo_index_.find(IndexKey(memo_id));
  return it == memo_index_.end() ? nullptr : &it->second;
}

absl::StatusOr<deja::v1::MemoEntry> SchedulerCore::ReadMemo(const std::string& memo_id) const {
  if (FindMemo(memo_id) == nullptr) return absl::NotFoundError("no such memo entry");
  if (auto it = memo_full_.find(memo_id); it != memo_full_.end()) return it->second;
  if (store_ == nullptr) return absl::NotFoundError("no such memo entry");
  if (!hot_memo_id_.empty() && hot_memo_id_ == memo_id) return hot_memo_;
  absl::StatusOr<deja::v1::MemoEntry> read = store_->ReadMemo(memo_id);
  if (read.ok()) {
    hot_memo_id_ = memo_id;
    hot_memo_ = *read;
  }
  return read;
}

absl::Status SchedulerCore::ForEachMemo(
    const std::function<void(const deja::v1::MemoEntry&)>& visit) const {
  for (const auto& [id, entry] : memo_full_) {
    if (FindMemo(id) != nullptr) visit(entry);
  }
  if (store_ == nullptr) return absl::OkStatus();
  return store_->ScanMemo([&](deja::v1::MemoEntry& entry) {
    const std::string id = MemoId(entry.project(), entry.job_hash());
    const MemoRef* ref = FindMemo(id);
    // Skips a stored version that an uncommitted put or drop replaced.
    if (ref != nullptr && !memo_full_.contains(id) &&
        ref->source_seq == ParseJobId(entry.source_job_id())) {
      visit(entry);
    }
    return true;
  });
}

void SchedulerCore::IndexMemo(const deja::v1::MemoEntry& entry) {
  hot_memo_id_.clear();
  MemoRef ref;
  ref.source_seq = ParseJobId(entry.source_job_id());
  const int64_t ms = entry.expires_at_ms();
  ref.expires_at_s = ms <= 0 ? 0 : static_cast<uint32_t>((ms + 999) / 1000);
  ref.worker = InternWorker(entry.worker_id());
  memo_index_[IndexKey(MemoId(entry.project(), entry.job_hash()))] = ref;
}

void SchedulerCore::PutMemo(deja::v1::MemoEntry entry, Effects* fx) {
  const std::string id = MemoId(entry.project(), entry.job_hash());
  IndexMemo(entry);
  fx->memo_deletes.erase(id);
  fx->memo_puts[id] = entry;
  memo_full_[id] = std::move(entry);
}

const deja::v1::ProjectSettings& SchedulerCore::Settings(const std::string& project) const {
  static const auto* defaults = new deja::v1::ProjectSettings(DefaultProjectSettings(""));
  auto it = projects_.find(project);
  return it == projects_.end() ? *defaults : it->second;
}

void SchedulerCore::DropMemo(const std::string& memo_id, Effects* fx) {
  hot_memo_id_.clear();
  memo_index_.erase(IndexKey(memo_id));
  memo_full_.erase(memo_id);
  fx->memo_puts.erase(memo_id);
  fx->memo_deletes.insert(memo_id);
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
  if (absl::Status st = CheckManualReuse(spec, now); !st.ok()) return st;
  deja::v1::SubmitResponse response;
  std::string request_key;
  if (!spec.request_id().empty()) {
    request_key = MemoKey(spec.project(), spec.request_id());
    std::string first;
    if (auto it = requests_.find(request_key); it != requests_.end()) {
      first = it->second;
    } else if (store_ != nullptr) {
      absl::StatusOr<uint64_t> seq = store_->ReadRequest(request_key);
      if (seq.ok()) {
        first = JobIdFromSeq(*seq);
      } else if (!absl::IsNotFound(seq.status())) {
        return seq.status();
      }
    }
    if (!first.empty()) {
      absl::StatusOr<Job> job = GetJob(first);
      if (!job.ok()) return job.status();
      *response.mutable_job() = *std::move(job);
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
  if (!request_key.empty()) {
    requests_[request_key] = job.job_id();
    fx->requests[request_key] = job.job_id();
  }

  const MemoPolicy policy = DecideMemoPolicy(job.spec(), Settings(job.spec().project()));
  job.set_memoization_off_reason(policy.off_reason);
  bool reused = LookUp(job, now, fx);
  // Single-flight: an identical fresh job in flight makes this one wait.
  const std::string key = MemoKey(job.spec().project(), job.job_hash());
  bool waiting = false;
  if (!reused && policy.lookup) {
    auto leader = inflight_.find(key);
    if (leader != inflight_.end()) {
      SetState(job, deja::v1::WAITING, now);
      job.set_waiting_for(leader->second);
      followers_[leader->second].push_back(job.job_id());
      waiting = true;
    }
  }
  if (!reused && !waiting && policy.record) inflight_.try_emplace(key, job.job_id());
  const std::string job_id = job.job_id();
  jobs_[job_id] = std::move(job);
  Job& stored = jobs_[job_id];
  if (!waiting) Enqueue(stored);
  fx->jobs[job_id] = stored;
  Dispatch(now, fx);
  *response.mutable_job() = jobs_[job_id];
  response.set_reused(reused);
  return response;
}

namespace {

std::string FormatMillis(int64_t ms) {
  return absl::FormatTime("%Y-%m-%d %H:%M:%S UTC", absl::FromUnixMillis(ms), absl::UTCTimeZone());
}

bool Expired(int64_t expires_at_ms, absl::Time now) {
  return expires_at_ms > 0 && absl::FromUnixMillis(expires_at_ms) <= now;
}

}  // namespace

absl::Status SchedulerCore::CheckManualReuse(const deja::v1::JobSpec& spec, absl::Time now) const {
  const std::string& id = spec.reuse_job_id();
  if (id.empty()) return absl::OkStatus();
  // Naming a job is an explicit wish: it overrides the project's setting and
  // an app's reuse: false, but not a contradiction in the same request, nor
  // an app that must always execute.
  if (spec.force() || spec.memoization() == deja::v1::MEMOIZATION_OFF) {
    return absl::InvalidArgumentError(
        "reuse_job_id: cannot be combined with force or memoization off");
  }
  if (spec.app().side_effects()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "reuse_job_id: app ", spec.app().name(), " has side_effects: true and always executes"));
  }
  absl::StatusOr<Job> read = GetJob(id);
  if (absl::IsNotFound(read.status())) {
    return absl::InvalidArgumentError(absl::StrCat("reuse_job_id: job ", id, " not found"));
  }
  if (!read.ok()) return read.status();
  const Job& src = *read;
  if (src.spec().project() != spec.project()) {
    return absl::InvalidArgumentError(absl::StrCat("reuse_job_id: ", id, " is in project ",
                                                   src.spec().project(), ", not ",
                                                   spec.project()));
  }
  if (src.spec().app().name() != spec.app().name()) {
    return absl::InvalidArgumentError(absl::StrCat("reuse_job_id: ", id, " is app ",
                                                   src.spec().app().name(), ", not ",
                                                   spec.app().name()));
  }
  if (src.state() != deja::v1::SUCCEEDED) {
    return absl::FailedPreconditionError(
        absl::StrCat("reuse_job_id: ", id, " is ", std::string(JobStateName(src.state())),
                     "; only a job that succeeded can be reused"));
  }
  if (src.workspace_expired() || Expired(src.expires_at_ms(), now)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "reuse_job_id: the workspace of ", id, " expired at ", FormatMillis(src.expires_at_ms())));
  }
  return absl::OkStatus();
}

SchedulerCore::ReuseDecision SchedulerCore::DecideReuse(const deja::v1::JobSpec& spec,
                                                        const std::string& job_hash,
                                                        absl::Time now) const {
  ReuseDecision d;
  // The source: a job the user named (--reuse), or the memo entry.
  google::protobuf::RepeatedPtrField<deja::v1::OutputFile> outputs;
  if (!spec.reuse_job_id().empty()) {
    absl::StatusOr<Job> src = GetJob(spec.reuse_job_id());  // checked at submit
    if (!src.ok()) {
      d.source_id = spec.reuse_job_id();
      d.problem = absl::StrCat("not reused: reading ", spec.reuse_job_id(), " failed (",
                               src.status().ToString(), "); running fresh");
      return d;
    }
    d.source_id = src->job_id();
    d.worker_id = src->worker_id();
    d.time_saved_ms = src->reused_from().empty() ? src->run_time_ms() : src->time_saved_ms();
    d.expires_at_ms = src->expires_at_ms();
    d.source_finished_at_ms = src->finished_at_ms();
    outputs = src->outputs();
  } else {
    MemoPolicy policy = DecideMemoPolicy(spec, Settings(spec.project()));
    if (!policy.lookup) {
      d.problem = policy.off_reason.empty() ? "--force: runs fresh"
                                            : "memoization off: " + policy.off_reason;
      return d;
    }
    const std::string memo_id = MemoId(spec.project(), job_hash);
    const MemoRef* ref = FindMemo(memo_id);
    if (ref == nullptr) {
      d.problem = "no memo entry has its hash";
      return d;
    }
    absl::StatusOr<deja::v1::MemoEntry> read = ReadMemo(memo_id);
    if (!read.ok()) {
      // Not dropped: the store may answer next time.
      d.source_id = JobIdFromSeq(ref->source_seq);
      d.problem = absl::StrCat("not reused: reading the memo entry from ", d.source_id,
                               " failed (", read.status().ToString(), "); running fresh");
      return d;
    }
    const deja::v1::MemoEntry& entry = *read;
    if (Expired(entry.expires_at_ms(), now)) {
      d.problem = absl::StrCat("not reused: the memo entry from ", entry.source_job_id(),
                               " expired at ", FormatMillis(entry.expires_at_ms()),
                               "; running fresh");
      d.drop_entry = true;
      return d;
    }
    std::string missing = MissingOutput(entry);
    if (!missing.empty()) {
      d.problem = absl::StrCat("memo entry from ", entry.source_job_id(), " dropped: ", missing,
                               "; running fresh");
      d.drop_entry = true;
      return d;
    }
    d.source_id = entry.source_job_id();
    d.worker_id = entry.worker_id();
    d.time_saved_ms = entry.run_time_ms();
    d.expires_at_ms = entry.expires_at_ms();
    // The entry is written with the source's success, at its finish time.
    d.source_finished_at_ms = entry.created_at_ms();
    outputs = entry.outputs();
  }
  if (blobs_ != nullptr) {
    for (const auto& output : outputs) {
      if (!blobs_->Has(output.digest(), output.size())) {
        d.problem = absl::StrCat("not reused: output ", output.path(), " of ", d.source_id,
                                 " is missing from the content store; running fresh");
        return d;
      }
    }
  }
  auto w = workers_.find(d.worker_id);
  if (w == workers_.end() || !w->second.connected) {
    d.problem = absl::StrCat("not reused: the workspace of ", d.source_id, " is on worker ",
                             d.worker_id, ", which is not connected; running fresh");
    return d;
  }
  d.outputs = std::move(outputs);
  d.reuse = true;
  return d;
}

bool SchedulerCore::LookUp(Job& job, absl::Time now, Effects* fx) {
  ReuseDecision d = DecideReuse(job.spec(), job.job_hash(), now);
  if (d.drop_entry) DropMemo(MemoId(job.spec().project(), job.job_hash()), fx);
  if (!d.reuse) {
    // Say why only when an entry or a named job existed but could not serve.
    if (!d.source_id.empty() || d.drop_entry) job.set_message(d.problem);
    return false;
  }
  job.set_reused_from(d.source_id);
  job.set_time_saved_ms(d.time_saved_ms);
  if (d.source_finished_at_ms != 0) job.set_reused_source_finished_at_ms(d.source_finished_at_ms);
  return true;
}

void SchedulerCore::Finished(Job& job, absl::Time now, Effects* fx) {
  DEJA_CHECK(IsTerminal(job.state()), job.job_id() + " is not finished");
  const deja::v1::ProjectSettings& settings = Settings(job.spec().project());
  if (!job.worker_id().empty() && job.expires_at_ms() == 0) {
    job.set_expires_at_ms(absl::ToUnixMillis(WorkspaceExpiry(now, settings)));
  }
  fx->jobs[job.job_id()] = job;
  const std::string key = MemoKey(job.spec().project(), job.job_hash());
  if (auto it = inflight_.find(key); it != inflight_.end() && it->second == job.job_id()) {
    inflight_.erase(it);
  }
  auto node = followers_.extract(job.job_id());
  if (node.empty()) return;
  std::vector<std::string> waiting;
  for (const auto& id : node.mapped()) {
    auto f = jobs_.find(id);
    if (f != jobs_.end() && f->second.state() == deja::v1::WAITING) waiting.push_back(id);
  }
  if (waiting.empty()) return;
  if (job.state() == deja::v1::SUCCEEDED) {
    // Every follower is served from the leader's fresh entry.
    for (const auto& id : waiting) {
      Job& f = jobs_.at(id);
      f.clear_waiting_for();
      SetState(f, deja::v1::QUEUED, now);
      if (!LookUp(f, now, fx) && f.message().empty()) {
        f.set_message(absl::StrCat("waited for ", job.job_id(),
                                   ", which left no memo entry; running fresh"));
      }
      Enqueue(f);
      fx->jobs[id] = f;
    }
    return;
  }
  // The leader failed: the oldest follower runs itself, the others wait on it.
  Job& next = jobs_.at(waiting.front());
  next.clear_waiting_for();
  next.set_message(absl::StrCat("the identical job ", job.job_id(), " it waited for ended ",
                                std::string(JobStateName(job.state())), "; running itself"));
  SetState(next, deja::v1::QUEUED, now);
  Enqueue(next);
  fx->jobs[next.job_id()] = next;
  inflight_[key] = next.job_id();
  std::vector<std::string> rest(waiting.begin() + 1, waiting.end());
  for (const auto& id : rest) {
    Job& f = jobs_.at(id);
    f.set_waiting_for(next.job_id());
    fx->jobs[id] = f;
  }
  if (!rest.empty()) followers_[next.job_id()] = std::move(rest);
}

deja::v1::ProjectSettings SchedulerCore::GetProject(const std::string& project) const {
  auto it = projects_.find(project);
  return it == projects_.end() ? DefaultProjectSettings(project) : it->second;
}

absl::StatusOr<deja::v1::ProjectSettings> SchedulerCore::SetProject(
    const deja::v1::SetProjectRequest& request, absl::Time now, Effects* fx) {
  auto updated = ApplyProjectSettings(GetProject(request.project()), request, now);
  if (!updated.ok()) return updated.status();
  projects_[request.project()] = *updated;
  fx->projects[request.project()] = *updated;
  return updated;
}

absl::StatusOr<std::vector<deja::v1::MemoEntry>> SchedulerCore::ListMemo(
    const deja::v1::ListMemoRequest& request) const {
  std::vector<deja::v1::MemoEntry> out;
  absl::Status scanned = ForEachMemo([&](const deja::v1::MemoEntry& entry) {
    if (!request.project().empty() && entry.project() != request.project()) return;
    if (!request.app_name().empty() && entry.app_name() != request.app_name()) return;
    out.push_back(entry);
  });
  if (!scanned.ok()) return scanned;
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
    return std::make_pair(a.created_at_ms(), a.job_hash()) <
           std::make_pair(b.created_at_ms(), b.job_hash());
  });
  if (request.limit() > 0 && out.size() > request.limit()) {
    out.erase(out.begin(), out.end() - request.limit());
  }
  return out;
}

absl::StatusOr<deja::v1::MemoEntry> SchedulerCore::GetMemo(
    const deja::v1::GetMemoRequest& request) const {
  if (!request.job_id().empty()) {
    absl::StatusOr<Job> job = GetJob(request.job_id());
    if (!job.ok()) return job.status();
    absl::StatusOr<deja::v1::MemoEntry> entry =
        ReadMemo(MemoId(job->spec().project(), job->job_hash()));
    if (absl::IsNotFound(entry.status())) {
      return absl::NotFoundError(absl::StrCat("no memo entry for job ", request.job_id(), " (hash ",
                                              job->job_hash(), ")"));
    }
    return entry;
  }
  const std::string project = request.project().empty() ? kDefaultProject : request.project();
  absl::StatusOr<deja::v1::MemoEntry> entry = ReadMemo(MemoId(project, request.job_hash()));
  if (absl::IsNotFound(entry.status())) {
    return absl::NotFoundError(
        absl::StrCat("no memo entry with hash ", request.job_hash(), " in project ", project));
  }
  return entry;
}

absl::StatusOr<deja::v1::EvictMemoResponse> SchedulerCore::EvictMemo(
    const deja::v1::EvictMemoRequest& request, Effects* fx) {
  int selectors = (request.job_hash().empty() ? 0 : 1) + (request.app_name().empty() ? 0 : 1) +
                  (request.before_ms() == 0 ? 0 : 1);
  if (selectors != 1) {
    return absl::InvalidArgumentError(
        "evict: give exactly one of job_hash, app_name or before_ms");
  }
  deja::v1::EvictMemoResponse response;
  absl::Status scanned = ForEachMemo([&](const deja::v1::MemoEntry& entry) {
    if (!request.project().empty() && entry.project() != request.project()) return;
    bool match = (!request.job_hash().empty() && entry.job_hash() == request.job_hash()) ||
                 (!request.app_name().empty() && entry.app_name() == request.app_name()) ||
                 (request.before_ms() != 0 && entry.created_at_ms() < request.before_ms());
    if (match) *response.add_evicted() = entry;
  });
  if (!scanned.ok()) return scanned;
  for (const auto& entry : response.evicted()) {
    DropMemo(MemoId(entry.project(), entry.job_hash()), fx);
  }
  return response;
}

absl::StatusOr<deja::v1::ExplainResponse> SchedulerCore::Explain(const std::string& job_id,
                                                                 absl::Time now) const {
  absl::StatusOr<Job> read = GetJob(job_id);
  if (!read.ok()) return read.status();
  const Job& job = *read;
  deja::v1::ExplainResponse out;
  out.set_job_id(job_id);
  auto verdict = [&](deja::v1::ExplainResponse::Verdict v, std::string summary) {
    out.set_verdict(v);
    out.set_summary(std::move(summary));
    return out;
  };
  if (!job.reused_from().empty()) {
    if (job.state() == deja::v1::SUCCEEDED) {
      return verdict(deja::v1::ExplainResponse::REUSED,
                     absl::StrCat("reused from ", job.reused_from(), ", saving ",
                                  absl::FormatDuration(absl::Milliseconds(job.time_saved_ms())),
                                  job.spec().reuse_job_id().empty() ? " (same job hash)"
                                                                    : " (named with --reuse)"));
    }
    return verdict(deja::v1::ExplainResponse::PENDING,
                   absl::StrCat("to be reused from ", job.reused_from(), " (",
                                std::string(JobStateName(job.state())), ")"));
  }
  if (job.state() == deja::v1::WAITING) {
    return verdict(deja::v1::ExplainResponse::WAITED,
                   absl::StrCat("waiting for the identical job ", job.waiting_for(),
                                ", which is in flight; reused when it succeeds"));
  }
  if (!job.memoization_off_reason().empty()) {
    return verdict(deja::v1::ExplainResponse::MEMOIZATION_OFF,
                   absl::StrCat("memoization was off: ", job.memoization_off_reason()));
  }
  if (job.spec().force()) {
    return verdict(deja::v1::ExplainResponse::FORCED,
                   "--force: ran fresh on purpose; its success replaces the memo entry");
  }
  if (absl::StartsWith(job.message(), "not reused:") ||
      absl::StartsWith(job.message(), "memo entry from") ||
      absl::StartsWith(job.message(), "the identical job")) {
    return verdict(deja::v1::ExplainResponse::ENTRY_UNUSABLE, job.message());
  }
  // No entry had its hash: compare with the nearest entry of the same app.
  // A scan of the memo index and a read of each candidate's source job: a
  // diagnostic, not a hot path.
  std::optional<deja::v1::MemoEntry> nearest;
  std::vector<deja::v1::FieldDiff> best;
  absl::Status scanned = ForEachMemo([&](const deja::v1::MemoEntry& entry) {
    if (entry.project() != job.spec().project() || entry.app_name() != job.spec().app().name() ||
        entry.source_job_id() == job_id) {
      return;
    }
    absl::StatusOr<Job> src = GetJob(entry.source_job_id());
    if (!src.ok()) return;
    std::vector<deja::v1::FieldDiff> diff = IdentityDiff(job.spec(), src->spec());
    if (!nearest.has_value() || diff.size() < best.size() ||
        (diff.size() == best.size() && entry.created_at_ms() > nearest->created_at_ms())) {
      nearest = entry;
      best = std::move(diff);
    }
  });
  if (!scanned.ok()) return scanned;
  if (!nearest.has_value()) {
    return verdict(deja::v1::ExplainResponse::NO_MATCHING_ENTRY,
                   absl::StrCat("no other success of app ", job.spec().app().name(),
                                " is in the memo index of project ", job.spec().project()));
  }
  *out.mutable_nearest() = *nearest;
  std::vector<std::string> fields;
  for (auto& d : best) {
    fields.push_back(d.field());
    *out.add_differences() = std::move(d);
  }
  std::string summary =
      best.empty()
          ? absl::StrCat("the nearest entry, from ", nearest->source_job_id(),
                         ", has the same identity but did not exist when this job was submitted")
          : absl::StrCat("no memo entry has its hash; the nearest, from ",
                         nearest->source_job_id(), ", differs in ", best.size(),
                         best.size() == 1 ? " field: " : " fields: ", absl::StrJoin(fields, ", "));
  (void)now;
  return verdict(deja::v1::ExplainResponse::NO_MATCHING_ENTRY, summary);
}

absl::StatusOr<deja::v1::StatsResponse> SchedulerCore::Stats(
    const deja::v1::StatsRequest& request) const {
  std::map<std::string, StatCounts> apps;
  auto count = [&](const Job& job) {
    if (!request.project().empty() && job.spec().project() != request.project()) return;
    if (job.created_at_ms() < request.since_ms()) return;
    apps[job.spec().app().name()].Add(job, +1);
  };
  if (request.since_ms() == 0) {
    for (const auto& [project, counts] : stored_stats_) {
      if (!request.project().empty() && project != request.project()) continue;
      for (const auto& [app, c] : counts) apps[app].Add(c);
    }
  } else if (store_ != nullptr) {
    absl::Status scanned = store_->ScanJobs(0, /*backward=*/false, [&](Job& job) {
      if (!jobs_.contains(job.job_id())) count(job);
      return true;
    });
    if (!scanned.ok()) return scanned;
  }
  for (const auto& [id, job] : jobs_) count(job);

  auto fill = [](const StatCounts& c, deja::v1::AppStats* s) {
    s->set_jobs(c.jobs);
    s->set_succeeded(c.succeeded);
    s->set_failed(c.failed);
    s->set_reused(c.reused);
    s->set_time_saved_ms(c.time_saved_ms);
    s->set_run_time_ms(c.run_time_ms);
    s->set_reuse_rate(c.succeeded == 0 ? 0 : double(c.reused) / double(c.succeeded));
  };
  deja::v1::StatsResponse response;
  StatCounts total;
  for (const auto& [name, c] : apps) {
    if (c.jobs == 0) continue;  // only jobs that moved back into memory
    total.Add(c);
    deja::v1::AppStats* app = response.add_apps();
    app->set_app_name(name);
    fill(c, app);
  }
  fill(total, response.mutable_total());
  return response;
}

void SchedulerCore::MarkWorkspacesExpired(const Worker& worker,
                                          const deja::v1::WorkspacesExpired& expired,
                                          Effects* fx) {
  for (const auto& id : expired.job_ids()) {
    absl::StatusOr<Job> job = GetJob(id);  // mostly ended jobs, from the store
    if (!job.ok() || job->worker_id() != worker.info.worker_id()) continue;
    if (!job->workspace_expired()) {
      // Back in memory until this change is committed.
      if (Job* resident = Resident(id); resident != nullptr) {
        resident->set_workspace_expired(true);
        fx->jobs[id] = *resident;
      }
    }
    const std::string memo_id = MemoId(job->spec().project(), job->job_hash());
    const MemoRef* ref = FindMemo(memo_id);
    if (ref != nullptr && ref->source_seq == ParseJobId(id)) DropMemo(memo_id, fx);
  }
}

absl::StatusOr<Job> SchedulerCore::GetJob(const std::string& job_id) const {
  auto it = jobs_.find(job_id);
  if (it != jobs_.end()) return it->second;
  const uint64_t seq = ParseJobId(job_id);
  if (store_ == nullptr || seq == 0) {
    return absl::NotFoundError(absl::StrCat("job ", job_id, " not found"));
  }
  absl::StatusOr<Job> stored = store_->ReadJob(seq);
  if (absl::IsNotFound(stored.status())) {
    return absl::NotFoundError(absl::StrCat("job ", job_id, " not found"));
  }
  return stored;
}

absl::StatusOr<std::vector<Job>> SchedulerCore::ListJobs(const std::string& project,
                                                         JobState state, size_t limit) const {
  // Newest first, merging the jobs in memory (newer versions, and jobs not
  // yet committed) into a backward scan of the store; stops at `limit`.
  std::vector<Job> out;
  auto full = [&] { return limit > 0 && out.size() >= limit; };
  auto consider = [&](const Job& job) {
    if (!project.empty() && job.spec().project() != project) return;
    if (state != deja::v1::JOB_STATE_UNSPECIFIED && job.state() != state) return;
    out.push_back(job);
  };
  auto memory = order_.rbegin();
  auto memory_newer_than = [&](uint64_t seq) {
    for (; memory != order_.rend() && memory->first > seq && !full(); ++memory) {
      consider(jobs_.at(memory->second));
    }
  };
  if (store_ != nullptr) {
    absl::Status scanned = store_->ScanJobs(0, /*backward=*/true, [&](Job& job) {
      memory_newer_than(ParseJobId(job.job_id()));
      if (!full() && !jobs_.contains(job.job_id())) consider(job);
      return !full();
    });
    if (!scanned.ok()) return scanned;
  }
  memory_newer_than(0);
  std::reverse(out.begin(), out.end());
  return out;
}

absl::StatusOr<Job> SchedulerCore::CancelJob(const std::string& job_id, absl::Time now,
                                             Effects* fx) {
  auto it = jobs_.find(job_id);
  if (it == jobs_.end()) {
    // Not in memory: it ended (or never was).
    absl::StatusOr<Job> stored = GetJob(job_id);
    if (!stored.ok()) return stored.status();
    return absl::FailedPreconditionError(absl::StrCat(
        "job ", job_id, " already ended (", std::string(JobStateName(stored->state())), ")"));
  }
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
  if (job.state() == deja::v1::WAITING) {
    // A follower leaves its group; the leader is not touched.
    auto group = followers_.find(job.waiting_for());
    if (group != followers_.end()) std::erase(group->second, job_id);
  }
  SetState(job, deja::v1::CANCELLED, now);
  job.set_message("cancelled by request");
  Finished(job, now, fx);
  Job result = job;
  Dispatch(now, fx);  // a promoted follower may run now
  return result;
}

absl::StatusOr<std::string> SchedulerCore::WorkspaceHolder(const std::string& job_id) const {
  absl::StatusOr<Job> read = GetJob(job_id);
  if (!read.ok()) return read.status();
  const Job& job = *read;
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
    if (it == jobs_.end()) {
      // Not in memory: ended and committed. Its result may still be on the
      // way; anything else of ours it holds is stopped.
      absl::StatusOr<Job> stored = GetJob(job_id);
      if (stored.ok() && stored->worker_id() == reg.worker_id() &&
          stored->attempt() == attempt) {
        continue;
      }
      deja::v1::SchedulerMessage msg;
      msg.mutable_cancel()->set_job_id(job_id);
      msg.mutable_cancel()->set_attempt(attempt);
      fx->to_workers.emplace_back(reg.worker_id(), std::move(msg));
      continue;
    }
    bool ours = it->second.worker_id() == reg.worker_id() && it->second.attempt() == attempt;
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
    case deja::v1::WorkerMessage::kExpired:
      MarkWorkspacesExpired(*worker, msg.expired(), fx);
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
  // The ack goes before anything this result causes (a fresh run of the same
  // job on this worker, say) and tells the worker how long to keep the
  // workspace: 0, not at all, unless the result is current and final.
  const size_t ack_index = fx->to_workers.size();
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
      Finished(job, now, fx);
    } else {
      const std::string memo_id = MemoId(job.spec().project(), job.job_hash());
      const MemoRef* ref = FindMemo(memo_id);
      if (result.verification_failed() && ref != nullptr &&
          ref->source_seq == ParseJobId(job.reused_from())) {
        DropMemo(memo_id, fx);
      }
      ClearReuse(job, absl::StrCat("not reused: copying the workspace of ", job.reused_from(),
                                   " failed (", result.error(), "); running fresh"));
      // A new attempt: the worker tells the failed copy's late ack ("not
      // kept") apart from the fresh run, which may land on the same worker.
      job.set_attempt(job.attempt() + 1);
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
      Finished(job, now, fx);
    } else {
      SetState(job, deja::v1::SUCCEEDED, now);
      *job.mutable_outputs() = result.outputs();
      // Fixed now, from the setting in force now; the entry lives as long.
      job.set_expires_at_ms(
          absl::ToUnixMillis(WorkspaceExpiry(now, Settings(job.spec().project()))));
      if (DecideMemoPolicy(job.spec(), Settings(job.spec().project())).record) {
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
        entry.set_expires_at_ms(job.expires_at_ms());
        PutMemo(std::move(entry), fx);
      }
      Finished(job, now, fx);  // after the entry: waiting followers reuse it
    }
  }
  fx->jobs[job.job_id()] = job;
  if (IsTerminal(job.state())) {
    fx->to_workers[ack_index].second.mutable_result_ack()->set_expires_at_ms(job.expires_at_ms());
  }
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
      // Nothing left to do for it; named (unchanged) so that, no longer held
      // by a worker, it leaves memory after the commit.
      fx->jobs[job_id] = job;
      continue;
    } else if (job.state() == deja::v1::MATERIALIZING) {
      ClearReuse(job, absl::StrCat("not reused: copying the workspace of ", job.reused_from(),
                                   " was interrupted (", why, "); running fresh"));
      job.set_attempt(job.attempt() + 1);
      SetState(job, deja::v1::QUEUED, now);
      Enqueue(job);
    } else if (static_cast<int>(job.attempt()) >= options_.max_attempts) {
      SetState(job, deja::v1::FAILED, now);
      job.set_message(absl::StrCat(why, "; gave up after ", job.attempt(), " attempts"));
      Finished(job, now, fx);
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
  // No reuse is ever served from an expired entry.
  // The index holds expiry rounded up to a second: an entry goes at most a
  // second late here, and a lookup checks the exact time on the full entry.
  std::vector<std::string> expired;
  const int64_t now_s = absl::ToUnixSeconds(now);
  for (const auto& [key, ref] : memo_index_) {
    if (ref.expires_at_s != 0 && static_cast<int64_t>(ref.expires_at_s) <= now_s) {
      expired.push_back(IdOf(key));
    }
  }
  for (const auto& id : expired) DropMemo(id, fx);

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

int SchedulerCore::Capacity(const Worker& worker) const {
  return static_cast<int>(worker.info.slots()) + options_.dispatch_ahead;
}

bool SchedulerCore::Fits(const Worker& worker, const Job& job) const {
  if (!worker.connected || worker.busy_slots >= Capacity(worker)) return false;
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
        static_cast<int>(worker.info.slots()) - worker.busy_slots >
            static_cast<int>(best->info.slots()) - best->busy_slots) {
      best = &worker;
    }
  }
  return best;
}

bool SchedulerCore::DispatchReuse(Job& job, absl::Time now, Effects* fx) {
  // The source: the job named with --reuse, or the memo entry.
  std::string source_id, worker_id;
  deja::v1::Manifest manifest;
  google::protobuf::RepeatedPtrField<deja::v1::OutputFile> outputs;
  if (!job.spec().reuse_job_id().empty()) {
    absl::StatusOr<Job> src = GetJob(job.spec().reuse_job_id());
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
    const MemoRef* ref = FindMemo(memo_id);
    absl::StatusOr<deja::v1::MemoEntry> entry =
        ref != nullptr && ref->source_seq == ParseJobId(job.reused_from())
            ? ReadMemo(memo_id)
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

void SchedulerCore::Dispatch(absl::Time now, Effects* fx) {
  for (auto it = queue_.begin(); it != queue_.end();) {
    bool any_free = false;
    for (const auto& [id, worker] : workers_) {
      any_free |= worker.connected && worker.busy_slots < Capacity(worker);
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
