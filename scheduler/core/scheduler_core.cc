#include "scheduler/core/scheduler_core.h"

#include <utility>
#include <vector>

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

SchedulerCore::SchedulerCore(CoreOptions options, BlobIndex* blobs, StoreReader* store)
    : options_(options),
      blobs_(blobs),
      store_(store),
      jobs_(store),
      memo_(store),
      dispatcher_(options_, &jobs_, &memo_,
                  [this](Job& job, absl::Time now, Effects* fx) { Finished(job, now, fx); }),
      reuse_(&jobs_, &memo_, &projects_, &dispatcher_, blobs),
      single_flight_(&jobs_, &reuse_, &projects_),
      reports_(&jobs_, &memo_, &projects_, &dispatcher_,
               [this](Job& job, absl::Time now, Effects* fx) { Finished(job, now, fx); }),
      pipelines_(this, &jobs_, &reuse_, blobs, &images_) {
  dispatcher_.SetImages(&images_);
}

// --- Loading and committing ---------------------------------------------------

void SchedulerCore::LoadJob(Job job, absl::Time now) {
  dispatcher_.ClaimAtLoad(job, now);
  const bool held = dispatcher_.Holds(job);
  jobs_.Load(std::move(job), held);
}

absl::Status SchedulerCore::LoadFromStore(absl::Time now) {
  DEJA_CHECK(store_ != nullptr, "LoadFromStore needs a StoreReader");
  if (absl::Status s = store_->ScanProjects([&](auto& p) { projects_.Load(std::move(p)); });
      !s.ok()) {
    return s;
  }
  if (absl::Status s = store_->ScanImages([&](auto& i) { images_.Load(std::move(i)); }); !s.ok()) {
    return s;
  }
  if (absl::Status s = store_->ScanPipelines([&](auto& p) { pipelines_.Load(std::move(p)); });
      !s.ok()) {
    return s;
  }
  if (absl::Status s = store_->ScanJobs(0, false,
                                        [&](Job& job) {
                                          LoadJob(std::move(job), now);
                                          return true;
                                        });
      !s.ok()) {
    return s;
  }
  if (absl::Status s = store_->ScanMemo([&](deja::v1::MemoEntry& entry) {
        memo_.Index(entry);
        return true;
      });
      !s.ok()) {
    return s;
  }
  jobs_.ForEachResident([&](const Job& job) { single_flight_.Restore(job); });
  return absl::OkStatus();
}

void SchedulerCore::Load(std::vector<Job> jobs, std::vector<deja::v1::MemoEntry> memo,
                         std::vector<deja::v1::ProjectSettings> projects,
                         std::vector<deja::v1::Pipeline> pipelines, absl::Time now) {
  DEJA_CHECK(store_ == nullptr, "a core with a StoreReader loads with LoadFromStore");
  for (auto& settings : projects) projects_.Load(std::move(settings));
  for (auto& pipeline : pipelines) pipelines_.Load(std::move(pipeline));
  for (Job& job : jobs) LoadJob(std::move(job), now);
  for (auto& entry : memo) memo_.Load(std::move(entry));
  jobs_.ForEachResident([&](const Job& job) { single_flight_.Restore(job); });
}

void SchedulerCore::Committed(const Effects& fx) {
  memo_.Committed(fx);
  jobs_.Committed(fx, [this](const Job& job) { return dispatcher_.Holds(job); });
}

// --- Jobs ------------------------------------------------------------------------

bool SchedulerCore::HasInput(const deja::v1::InputRef& input, const Effects& fx) const {
  if (blobs_ == nullptr) return true;
  auto pending = fx.blob_puts.find(input.digest());
  if (pending != fx.blob_puts.end() && pending->second.size() == input.size()) return true;
  return blobs_->Has(input.digest(), input.size());
}

absl::Status SchedulerCore::PrepareSpec(deja::v1::JobSpec* spec, absl::Time now,
                                        const Effects& fx) {
  NormalizeJobSpec(spec);
  if (absl::Status s = ValidateJobSpec(*spec); !s.ok()) return s;
  // A pushed image's name means its content now: that enters the identity.
  images_.Pin(spec);
  for (int i = 0; i < spec->inputs_size(); ++i) {
    const auto& input = spec->inputs(i);
    if (!HasInput(input, fx)) {
      return absl::FailedPreconditionError(
          absl::StrCat("inputs[", i, "] (", input.name(), "): blob ", input.digest(),
                       " is not in the content store; upload it first (deja submit --input does)"));
    }
  }
  return reuse_.CheckManualReuse(*spec, now);
}

absl::StatusOr<deja::v1::SubmitResponse> SchedulerCore::Submit(deja::v1::JobSpec spec,
                                                               absl::Time now, Effects* fx) {
  if (absl::Status s = PrepareSpec(&spec, now, *fx); !s.ok()) return s;
  deja::v1::SubmitResponse response;
  std::string request_key;
  if (!spec.request_id().empty()) {
    request_key = RequestKey(spec.project(), spec.request_id());
    absl::StatusOr<std::string> first = jobs_.FindRequest(request_key);
    if (first.ok()) {
      absl::StatusOr<Job> job = GetJob(*first);
      if (!job.ok()) return job.status();
      *response.mutable_job() = *std::move(job);
      response.set_reused(!response.job().reused_from().empty());
      return response;
    }
    if (!absl::IsNotFound(first.status())) return first.status();
  }
  Job job = NewJob(std::move(spec), now);
  if (!request_key.empty()) jobs_.AddRequest(request_key, job.job_id(), fx);
  const std::string job_id = job.job_id();
  const bool reused = Create(std::move(job), now, fx);
  dispatcher_.Dispatch(now, fx);
  *response.mutable_job() = jobs_.At(job_id);
  response.set_reused(reused);
  return response;
}

Job SchedulerCore::NewJob(deja::v1::JobSpec spec, absl::Time now) {
  Job job;
  job.set_job_id(JobIdFromSeq(jobs_.TakeSeq()));
  job.set_job_hash(JobHash(spec));
  *job.mutable_spec() = std::move(spec);
  job.set_attempt(1);
  job.set_created_at_ms(absl::ToUnixMillis(now));
  SetJobState(job, deja::v1::QUEUED, now);
  return job;
}

bool SchedulerCore::Create(Job job, absl::Time now, Effects* fx) {
  const MemoPolicy policy = DecideMemoPolicy(job.spec(), projects_.Settings(job.spec().project()));
  job.set_memoization_off_reason(policy.off_reason);
  const bool reused = reuse_.LookUp(job, now, fx);
  if (!reused && job.spec().fail_unplaceable()) {
    // Judged before it may wait for an identical job in flight (queued jobs
    // are judged as they are dispatched).
    if (std::string why = dispatcher_.WhyUnplaceable(job);
        !why.empty() && why != Dispatcher::kNoWorker) {
      SetJobState(job, deja::v1::FAILED, now);
      job.set_unplaceable(why);
      job.set_message(UnplaceableMessage(why));
      Finished(jobs_.Add(std::move(job)), now, fx);
      return false;
    }
  }
  // Single-flight: an identical fresh job in flight makes this one wait.
  const bool waiting = single_flight_.Join(job, policy, reused, now);
  Job& stored = jobs_.Add(std::move(job));
  if (!waiting) jobs_.Enqueue(stored);
  fx->jobs[stored.job_id()] = stored;
  return reused;
}

// --- Job arrays --------------------------------------------------------------------

namespace {

deja::v1::ArrayJob ArrayJobOf(const Job& job) {
  deja::v1::ArrayJob out;
  out.set_job_id(job.job_id());
  out.set_state(job.state());
  out.set_reused(!job.reused_from().empty());
  *out.mutable_params() = job.spec().params();
  return out;
}

}  // namespace

absl::StatusOr<deja::v1::SubmitArrayResponse> SchedulerCore::SubmitArray(
    const deja::v1::SubmitArrayRequest& request, absl::Time now, Effects* fx) {
  const int size = request.elements_size();
  if (size < 1 || static_cast<size_t>(size) > kMaxArrayElements) {
    return absl::InvalidArgumentError(
        absl::StrCat("an array has 1 to ", kMaxArrayElements, " elements, not ", size));
  }
  const std::string& request_id = request.spec().request_id();
  auto element_spec = [&](int i) {
    deja::v1::JobSpec spec = request.spec();
    for (const auto& [key, value] : request.elements(i).params()) {
      (*spec.mutable_params())[key] = value;
    }
    if (!request_id.empty()) spec.set_request_id(absl::StrCat(request_id, "#", i));
    return spec;
  };
  // Every element is checked before any is stored: a bad one leaves nothing.
  std::vector<deja::v1::JobSpec> specs;
  specs.reserve(size);
  std::vector<std::string> request_keys(size);
  for (int i = 0; i < size; ++i) {
    deja::v1::JobSpec spec = element_spec(i);
    if (absl::Status s = PrepareSpec(&spec, now, *fx); !s.ok()) {
      return absl::Status(s.code(), absl::StrCat("elements[", i, "]: ", s.message()));
    }
    if (!request_id.empty()) {
      request_keys[i] = RequestKey(spec.project(), spec.request_id());
      absl::StatusOr<std::string> first = jobs_.FindRequest(request_keys[i]);
      if (first.ok()) {
        // A retry: the array its first element belongs to.
        absl::StatusOr<Job> job = GetJob(*first);
        if (!job.ok()) return job.status();
        if (i == 0 && !job->array_id().empty()) {
          absl::StatusOr<deja::v1::JobArray> array = GetArray(job->array_id());
          if (!array.ok()) return array.status();
          deja::v1::SubmitArrayResponse response;
          response.set_array_id(array->array_id());
          *response.mutable_jobs() = std::move(*array->mutable_jobs());
          return response;
        }
        return absl::FailedPreconditionError(absl::StrCat("elements[", i, "]: request id ",
                                                          spec.request_id(), " already names job ",
                                                          *first, ", which is not this array's"));
      }
      if (!absl::IsNotFound(first.status())) return first.status();
    }
    specs.push_back(std::move(spec));
  }
  deja::v1::SubmitArrayResponse response;
  std::vector<std::string> ids;
  ids.reserve(size);
  for (int i = 0; i < size; ++i) {
    Job job = NewJob(std::move(specs[i]), now);
    if (i == 0) response.set_array_id(ArrayIdFromSeq(ParseJobId(job.job_id())));
    job.set_array_id(response.array_id());
    job.set_array_index(i);
    job.set_array_size(size);
    if (!request_id.empty()) jobs_.AddRequest(request_keys[i], job.job_id(), fx);
    ids.push_back(job.job_id());
    Create(std::move(job), now, fx);
  }
  dispatcher_.Dispatch(now, fx);
  for (const std::string& id : ids) {
    *response.add_jobs() = ArrayJobOf(jobs_.At(id));
  }
  return response;
}

absl::StatusOr<deja::v1::JobArray> SchedulerCore::GetArray(const std::string& array_id) const {
  const uint64_t first = ParseArrayId(array_id);
  absl::Status not_found = absl::NotFoundError(absl::StrCat("array ", array_id, " not found"));
  if (first == 0) return not_found;
  absl::StatusOr<Job> head = jobs_.Get(JobIdFromSeq(first));
  if (absl::IsNotFound(head.status())) return not_found;
  if (!head.ok()) return head.status();
  if (head->array_id() != array_id) return not_found;
  deja::v1::JobArray array;
  array.set_array_id(array_id);
  array.set_project(head->spec().project());
  array.set_created_at_ms(head->created_at_ms());
  for (uint64_t i = 0; i < head->array_size(); ++i) {
    absl::StatusOr<Job> job = i == 0 ? head : jobs_.Get(JobIdFromSeq(first + i));
    if (!job.ok()) return job.status();
    ++(*array.mutable_states())[deja::v1::JobState_Name(job->state())];
    if (!job->reused_from().empty()) array.set_reused(array.reused() + 1);
    *array.add_jobs() = ArrayJobOf(*job);
  }
  return array;
}

void SchedulerCore::Finished(Job& job, absl::Time now, Effects* fx) {
  DEJA_CHECK(IsTerminal(job.state()), job.job_id() + " is not finished");
  const deja::v1::ProjectSettings& settings = projects_.Settings(job.spec().project());
  if (!job.worker_id().empty() && job.expires_at_ms() == 0) {
    job.set_expires_at_ms(absl::ToUnixMillis(WorkspaceExpiry(now, settings)));
  }
  fx->jobs[job.job_id()] = job;
  single_flight_.LeaderEnded(job, now, fx);
}

absl::StatusOr<Job> SchedulerCore::GetJob(const std::string& job_id) const {
  return jobs_.Get(job_id);
}

absl::StatusOr<std::vector<Job>> SchedulerCore::ListJobs(const std::string& project,
                                                         deja::v1::JobState state, size_t limit,
                                                         uint64_t before, size_t max_bytes,
                                                         uint64_t* next_before) const {
  return jobs_.List(project, state, limit, before, max_bytes, next_before);
}

absl::StatusOr<std::vector<Job>> SchedulerCore::ListJobs(const JobFilter& filter, size_t limit,
                                                         uint64_t before, size_t max_bytes,
                                                         uint64_t* next_before) const {
  return jobs_.List(filter, limit, before, max_bytes, next_before);
}

absl::StatusOr<Job> SchedulerCore::CancelJob(const std::string& job_id, absl::Time now,
                                             Effects* fx) {
  Job* found = jobs_.Find(job_id);
  if (found == nullptr) {
    // Not in memory: it ended (or never was).
    absl::StatusOr<Job> stored = GetJob(job_id);
    if (!stored.ok()) return stored.status();
    return absl::FailedPreconditionError(absl::StrCat(
        "job ", job_id, " already ended (", std::string(JobStateName(stored->state())), ")"));
  }
  Job& job = *found;
  if (IsTerminal(job.state())) {
    return absl::FailedPreconditionError(absl::StrCat("job ", job_id, " already ended (",
                                                      std::string(JobStateName(job.state())), ")"));
  }
  if (OnWorker(job.state())) {
    // The worker kills the process group and reports; the slot frees then.
    fx->to_workers.emplace_back(job.worker_id(), CancelMessage(job_id, job.attempt()));
  }
  jobs_.Dequeue(job_id);
  if (job.state() == deja::v1::WAITING) single_flight_.Leave(job);
  SetJobState(job, deja::v1::CANCELLED, now);
  job.set_message("cancelled by request");
  Finished(job, now, fx);
  Job result = job;
  dispatcher_.Dispatch(now, fx);  // a promoted follower may run now
  return result;
}

absl::StatusOr<deja::v1::ImageRecord> SchedulerCore::PushImage(
    const deja::v1::PushImageRequest& request, const std::string& pushed_by, absl::Time now,
    Effects* fx) {
  if (blobs_ != nullptr && IsDigest(request.digest()) &&
      !blobs_->Has(request.digest(), request.size())) {
    return absl::FailedPreconditionError(
        absl::StrCat("blob ", request.digest(), " (", request.size(),
                     " bytes) is not in the content store; upload the image's docker save "
                     "first (deja image push does)"));
  }
  return images_.Push(request, pushed_by, now, fx);
}

std::map<deja::v1::JobState, size_t> SchedulerCore::LiveJobsByState() const {
  std::map<deja::v1::JobState, size_t> counts;
  jobs_.ForEachResident([&counts](const Job& job) {
    if (!IsTerminal(job.state())) ++counts[job.state()];
  });
  return counts;
}

absl::StatusOr<std::string> SchedulerCore::WorkspaceHolder(const std::string& job_id) const {
  absl::StatusOr<Job> read = GetJob(job_id);
  if (!read.ok()) return read.status();
  const Job& job = *read;
  if (job.worker_id().empty()) {
    return absl::FailedPreconditionError(absl::StrCat("job ", job_id, " has no workspace yet (",
                                                      std::string(JobStateName(job.state())), ")"));
  }
  if (!dispatcher_.IsConnected(job.worker_id())) {
    return absl::UnavailableError(absl::StrCat("worker ", job.worker_id(), " holding job ", job_id,
                                               "'s workspace is not connected"));
  }
  return job.worker_id();
}

// --- Projects, memo, explain, stats ---------------------------------------------

deja::v1::ProjectSettings SchedulerCore::GetProject(const std::string& project) const {
  return projects_.Get(project);
}

absl::StatusOr<deja::v1::ProjectSettings> SchedulerCore::SetProject(
    const deja::v1::SetProjectRequest& request, absl::Time now, Effects* fx) {
  return projects_.Set(request, now, fx);
}

absl::StatusOr<std::vector<deja::v1::MemoEntry>> SchedulerCore::ListMemo(
    const deja::v1::ListMemoRequest& request) const {
  return memo_.List(request);
}

absl::StatusOr<deja::v1::MemoEntry> SchedulerCore::GetMemo(
    const deja::v1::GetMemoRequest& request) const {
  if (!request.job_id().empty()) {
    absl::StatusOr<Job> job = GetJob(request.job_id());
    if (!job.ok()) return job.status();
    absl::StatusOr<deja::v1::MemoEntry> entry =
        memo_.Read(MemoId(job->spec().project(), job->job_hash()));
    if (absl::IsNotFound(entry.status())) {
      return absl::NotFoundError(absl::StrCat("no memo entry for job ", request.job_id(), " (hash ",
                                              job->job_hash(), ")"));
    }
    return entry;
  }
  const std::string project = request.project().empty() ? kDefaultProject : request.project();
  absl::StatusOr<deja::v1::MemoEntry> entry = memo_.Read(MemoId(project, request.job_hash()));
  if (absl::IsNotFound(entry.status())) {
    return absl::NotFoundError(
        absl::StrCat("no memo entry with hash ", request.job_hash(), " in project ", project));
  }
  return entry;
}

absl::StatusOr<deja::v1::EvictMemoResponse> SchedulerCore::EvictMemo(
    const deja::v1::EvictMemoRequest& request, Effects* fx) {
  return memo_.Evict(request, fx);
}

absl::StatusOr<deja::v1::ExplainResponse> SchedulerCore::Explain(const std::string& job_id,
                                                                 absl::Time /*now*/) const {
  return ExplainJob(job_id, memo_, jobs_);
}

absl::StatusOr<deja::v1::StatsResponse> SchedulerCore::Stats(
    const deja::v1::StatsRequest& request) const {
  return jobs_.stored_stats().Report(request, jobs_);
}

// --- Pipelines -------------------------------------------------------------------

absl::StatusOr<deja::v1::Pipeline> SchedulerCore::SubmitPipeline(
    const deja::v1::SubmitPipelineRequest& request, absl::Time now, Effects* fx) {
  return pipelines_.Submit(request, now, fx);
}

absl::StatusOr<deja::v1::Pipeline> SchedulerCore::GetPipeline(
    const std::string& pipeline_id) const {
  return pipelines_.Get(pipeline_id);
}

std::vector<deja::v1::Pipeline> SchedulerCore::ListPipelines(const std::string& project) const {
  return pipelines_.List(project);
}

absl::StatusOr<deja::v1::Pipeline> SchedulerCore::CancelPipeline(const std::string& pipeline_id,
                                                                 absl::Time now, Effects* fx) {
  return pipelines_.Cancel(pipeline_id, now, fx);
}

absl::StatusOr<deja::v1::Pipeline> SchedulerCore::RetryPipeline(
    const deja::v1::RetryPipelineRequest& request, absl::Time now, Effects* fx) {
  return pipelines_.Retry(request, now, fx);
}

absl::StatusOr<deja::v1::PipelinePlan> SchedulerCore::PlanPipeline(
    const deja::v1::SubmitPipelineRequest& request, absl::Time now) const {
  return pipelines_.Plan(request, now);
}

void SchedulerCore::SyncPipelines(absl::Time now, Effects* fx) { pipelines_.Sync(now, fx); }

void SchedulerCore::ResumePipelines(absl::Time now, Effects* fx) { pipelines_.Resume(now, fx); }

// --- Workers -----------------------------------------------------------------------

std::vector<deja::v1::WorkerInfo> SchedulerCore::ListWorkers() const { return dispatcher_.List(); }

absl::Status SchedulerCore::WorkerConnected(const deja::v1::Register& reg, uint64_t session,
                                            absl::Time now, Effects* fx) {
  return dispatcher_.Connect(reg, session, now, fx);
}

void SchedulerCore::WorkerDisconnected(const std::string& worker_id, uint64_t session,
                                       absl::Time now) {
  dispatcher_.Disconnect(worker_id, session, now);
}

void SchedulerCore::WorkerMessage(const std::string& worker_id, uint64_t session,
                                  const deja::v1::WorkerMessage& msg, absl::Time now, Effects* fx) {
  if (!dispatcher_.Touch(worker_id, session, now)) return;  // an older or unknown session
  switch (msg.msg_case()) {
    case deja::v1::WorkerMessage::kStarted:
      reports_.Started(worker_id, msg.started(), now, fx);
      return;
    case deja::v1::WorkerMessage::kResult:
      reports_.Result(worker_id, msg.result(), now, fx);
      return;
    case deja::v1::WorkerMessage::kExpired:
      reports_.WorkspacesExpired(worker_id, msg.expired(), fx);
      return;
    case deja::v1::WorkerMessage::kLeaving:
      dispatcher_.Leaving(worker_id, session, msg.leaving().reason(), now, fx);
      return;
    case deja::v1::WorkerMessage::kHeartbeat:
      dispatcher_.SetDisk(worker_id, msg.heartbeat().disk(), now, fx);
      return;
    default:
      return;  // log data is the service's
  }
}

void SchedulerCore::Tick(absl::Time now, Effects* fx) {
  // No reuse is ever served from an expired entry (a lookup checks the
  // exact time on the full entry; this drops them from the index).
  memo_.DropExpired(now, fx);
  dispatcher_.CheckLiveness(now, fx);
}

}  // namespace deja
