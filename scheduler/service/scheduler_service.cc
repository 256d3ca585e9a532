#include "scheduler/service/scheduler_service.h"

#include <algorithm>
#include <memory>
#include <string>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/job_spec.h"
#include "common/job_state.h"
#include "scheduler/core/list_page.h"
#include "scheduler/service/watch_stream.h"

namespace deja {
namespace {

// The most jobs one CancelJobs may name.
constexpr int kMaxCancelJobs = 10000;

// ListJobFiles' page sizes in files (a page also ends at kMaxListPageBytes).
constexpr uint32_t kDefaultFilesPage = 1000;
constexpr uint32_t kMaxFilesPage = 10000;

// ListMemo's page keys: entries sort by creation time, then hash.
std::string MemoPageKey(const deja::v1::MemoEntry& entry) {
  return absl::StrFormat("%020d/%s", entry.created_at_ms(), entry.job_hash());
}
bool IsMemoPageKey(const std::string& key) {
  return key.size() > 21 && key[20] == '/' &&
         std::all_of(key.begin(), key.begin() + 20, [](char c) { return c >= '0' && c <= '9'; });
}

}  // namespace

using deja::v1::Job;

SchedulerService::ProjectOf SchedulerService::SubmitsTo(const deja::v1::JobSpec& spec) {
  return [&spec](const Caller& caller) -> std::optional<std::string> {
    std::string project = AccessControl::Scope(caller, spec.project());
    return project.empty() ? kDefaultProject : project;
  };
}

grpc::ServerUnaryReactor* SchedulerService::Unary(grpc::CallbackServerContext* ctx,
                                                  const char* method, Right right,
                                                  const ProjectOf& project_of,
                                                  std::function<absl::Status(const Caller&)> fn) {
  auto* reactor = ctx->DefaultReactor();
  auto caller = Authenticate(access_, *ctx, method);
  if (caller.ok()) {
    const std::optional<std::string> project = project_of(*caller);
    absl::Status allowed = access_->Authorize(
        *caller, right, project.has_value() ? *project : caller->principal.project);
    if (!allowed.ok()) caller = allowed;
  }
  if (!caller.ok()) {
    reactor->Finish(ToGrpcStatus(caller.status()));
    return reactor;
  }
  loop_->Post([loop = loop_, reactor, fn = std::move(fn), caller = *std::move(caller)] {
    loop->FinishAfterCommit(reactor, fn(caller));
  });
  return reactor;
}

absl::Status SchedulerService::AdmitJob(const Caller& caller, Right right,
                                        const std::string& job_id) const {
  auto job = loop_->core().GetJob(job_id);
  if (!job.ok()) return job.status();
  return access_->Authorize(caller, right, job->spec().project());
}

absl::Status SchedulerService::AdmitPipeline(const Caller& caller, Right right,
                                             const std::string& pipeline_id) const {
  auto pipeline = loop_->core().GetPipeline(pipeline_id);
  if (!pipeline.ok()) return pipeline.status();
  return access_->Authorize(caller, right, pipeline->spec().project());
}

absl::Status SchedulerService::CheckInputsReadable(
    const Caller& caller, const google::protobuf::RepeatedPtrField<deja::v1::InputRef>& inputs,
    const std::string& field) const {
  for (int i = 0; i < inputs.size(); ++i) {
    if (!loop_->blobs()->Readable(inputs[i].digest(), caller.principal.project)) {
      return absl::FailedPreconditionError(
          absl::StrCat(field, "[", i, "] (", inputs[i].name(), "): blob ", inputs[i].digest(),
                       " is not in the content store; upload it first"));
    }
  }
  return absl::OkStatus();
}

grpc::ServerUnaryReactor* SchedulerService::Submit(grpc::CallbackServerContext* ctx,
                                                   const deja::v1::SubmitRequest* request,
                                                   deja::v1::SubmitResponse* response) {
  return Unary(
      ctx, "Submit", Right::kSubmit, SubmitsTo(request->spec()),
      [this, loop = loop_, request, response](const Caller& caller) {
        if (absl::Status st = CheckInputsReadable(caller, request->spec().inputs(), "inputs");
            !st.ok()) {
          return st;
        }
        deja::v1::JobSpec spec = request->spec();
        spec.set_project(AccessControl::Scope(caller, spec.project()));
        auto result = loop->core().Submit(spec, loop->Now(), loop->fx());
        if (!result.ok()) return result.status();
        *response = *std::move(result);
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* SchedulerService::SubmitArray(grpc::CallbackServerContext* ctx,
                                                        const deja::v1::SubmitArrayRequest* request,
                                                        deja::v1::SubmitArrayResponse* response) {
  return Unary(
      ctx, "SubmitArray", Right::kSubmit, SubmitsTo(request->spec()),
      [this, loop = loop_, request, response](const Caller& caller) {
        if (absl::Status st = CheckInputsReadable(caller, request->spec().inputs(), "spec.inputs");
            !st.ok()) {
          return st;
        }
        deja::v1::SubmitArrayRequest scoped = *request;
        scoped.mutable_spec()->set_project(AccessControl::Scope(caller, request->spec().project()));
        auto result = loop->core().SubmitArray(scoped, loop->Now(), loop->fx());
        if (!result.ok()) return result.status();
        *response = *std::move(result);
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* SchedulerService::GetArray(grpc::CallbackServerContext* ctx,
                                                     const deja::v1::GetArrayRequest* request,
                                                     deja::v1::JobArray* response) {
  return Unary(ctx, "GetArray", Right::kRead, Looked,
               [this, request, response](const Caller& caller) {
                 auto array = loop_->core().GetArray(request->array_id());
                 if (!array.ok()) return array.status();
                 if (auto s = access_->Authorize(caller, Right::kRead, array->project()); !s.ok())
                   return s;
                 *response = *std::move(array);
                 return absl::OkStatus();
               });
}

grpc::ServerUnaryReactor* SchedulerService::GetJob(grpc::CallbackServerContext* ctx,
                                                   const deja::v1::GetJobRequest* request,
                                                   Job* response) {
  return Unary(
      ctx, "GetJob", Right::kRead, Looked, [this, request, response](const Caller& caller) {
        auto job = loop_->core().GetJob(request->job_id());
        if (!job.ok()) return job.status();
        if (auto s = access_->Authorize(caller, Right::kRead, job->spec().project()); !s.ok())
          return s;
        *response = *std::move(job);
        return absl::OkStatus();
      });
}

grpc::ServerWriteReactor<Job>* SchedulerService::WatchJob(grpc::CallbackServerContext* ctx,
                                                          const deja::v1::GetJobRequest* request) {
  auto caller = Admit(access_, *ctx, "WatchJob", Right::kRead, std::nullopt);
  if (!caller.ok()) return new Refused<grpc::ServerWriteReactor<Job>>(caller.status());
  auto* stream = new WatchStream<Job>(loop_, request->job_id());
  loop_->Post(
      [this, outbox = stream->outbox(), job_id = request->job_id(), caller = *std::move(caller)] {
        if (absl::Status s = AdmitJob(caller, Right::kRead, job_id); !s.ok()) {
          loop_->AfterCommit([outbox, s] { outbox->Finish(ToGrpcStatus(s)); });
          return;
        }
        loop_->WatchJob(job_id, outbox);
      });
  return stream;
}

grpc::ServerUnaryReactor* SchedulerService::ListJobs(grpc::CallbackServerContext* ctx,
                                                     const deja::v1::ListJobsRequest* request,
                                                     deja::v1::ListJobsResponse* response) {
  auto project_of = [request](const Caller& caller) -> std::optional<std::string> {
    return AccessControl::Scope(caller, request->project());
  };
  return Unary(ctx, "ListJobs", Right::kRead, project_of,
               [loop = loop_, request, response](const Caller& caller) {
                 const std::string project = AccessControl::Scope(caller, request->project());
                 uint64_t before = 0;
                 if (!request->page_token().empty() &&
                     (!absl::SimpleAtoi(request->page_token(), &before) || before == 0)) {
                   return absl::InvalidArgumentError(absl::StrCat(
                       "page_token \"", request->page_token(), "\": not one ListJobs returned"));
                 }
                 JobFilter filter = JobFilterOf(*request);
                 filter.project = project;
                 size_t limit = request->limit() == 0 ? 1000 : request->limit();
                 uint64_t next_before = 0;
                 auto jobs =
                     loop->core().ListJobs(filter, limit, before, kMaxListPageBytes, &next_before);
                 if (!jobs.ok()) return jobs.status();
                 for (auto& job : *jobs) *response->add_jobs() = std::move(job);
                 if (next_before != 0) response->set_next_page_token(absl::StrCat(next_before));
                 return absl::OkStatus();
               });
}

grpc::ServerUnaryReactor* SchedulerService::ListJobFiles(
    grpc::CallbackServerContext* ctx, const deja::v1::ListJobFilesRequest* request,
    deja::v1::ListJobFilesResponse* response) {
  return Unary(
      ctx, "ListJobFiles", Right::kRead, Looked,
      [this, request, response](const Caller& caller) -> absl::Status {
        uint64_t start = 0;
        if (!request->page_token().empty() && !absl::SimpleAtoi(request->page_token(), &start)) {
          return absl::InvalidArgumentError(absl::StrCat("page_token \"", request->page_token(),
                                                         "\": not one ListJobFiles returned"));
        }
        if (request->page_size() > kMaxFilesPage) {
          return absl::InvalidArgumentError(absl::StrCat(
              "page_size: ", request->page_size(), " is more than the maximum, ", kMaxFilesPage));
        }
        auto job = loop_->core().GetJob(request->job_id());
        if (!job.ok()) return job.status();
        if (auto s = access_->Authorize(caller, Right::kRead, job->spec().project()); !s.ok())
          return s;
        const deja::v1::ManifestRef& ref = job->manifest();
        if (ref.digest().empty()) {
          return absl::FailedPreconditionError(absl::StrCat(
              "job ", job->job_id(), " has no list of files: it is ",
              std::string(JobStateName(job->state())),
              IsTerminal(job->state()) ? " and left no workspace" : " and has not finished"));
        }
        if (last_manifest_digest_ != ref.digest()) {
          auto manifest = loop_->blobs()->ReadManifest(ref);
          if (!manifest.ok()) return manifest.status();
          last_manifest_ = std::make_shared<const deja::v1::Manifest>(*std::move(manifest));
          last_manifest_digest_ = ref.digest();
        }
        const auto& files = last_manifest_->files();
        const uint64_t size = request->page_size() == 0 ? kDefaultFilesPage : request->page_size();
        if (start > static_cast<uint64_t>(files.size())) {
          return absl::InvalidArgumentError(absl::StrCat("page_token \"", request->page_token(),
                                                         "\": past the last of ", files.size(),
                                                         " files"));
        }
        // A page ends at `size` files or kMaxListPageBytes, whichever comes first
        // (paths may be long), but holds at least one file.
        uint64_t end = start;
        size_t bytes = 0;
        for (; end < static_cast<uint64_t>(files.size()) && end < start + size; ++end) {
          const deja::v1::FileEntry& file = files[static_cast<int>(end)];
          bytes += file.ByteSizeLong();
          if (end > start && bytes > kMaxListPageBytes) break;
          *response->add_files() = file;
        }
        if (end < static_cast<uint64_t>(files.size()))
          response->set_next_page_token(absl::StrCat(end));
        *response->mutable_manifest() = ref;
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* SchedulerService::CancelJobs(grpc::CallbackServerContext* ctx,
                                                       const deja::v1::CancelJobsRequest* request,
                                                       deja::v1::CancelJobsResponse* response) {
  // Each job is authorized on its own project, below.
  return Unary(
      ctx, "CancelJobs", Right::kSubmit, Looked,
      [this, request, response](const Caller& caller) -> absl::Status {
        if (request->job_ids_size() > kMaxCancelJobs) {
          return absl::InvalidArgumentError(absl::StrCat(
              "job_ids: ", request->job_ids_size(), " is more than the maximum, ", kMaxCancelJobs));
        }
        for (const std::string& id : request->job_ids()) {
          absl::Status admitted = AdmitJob(caller, Right::kSubmit, id);
          absl::StatusOr<Job> job = admitted.ok()
                                        ? loop_->core().CancelJob(id, loop_->Now(), loop_->fx())
                                        : absl::StatusOr<Job>(admitted);
          if (job.ok()) {
            *response->add_jobs() = *std::move(job);
          } else {
            response->add_errors(absl::StrCat(id, ": ", job.status().message()));
          }
        }
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* SchedulerService::CancelJob(grpc::CallbackServerContext* ctx,
                                                      const deja::v1::GetJobRequest* request,
                                                      Job* response) {
  return Unary(ctx, "CancelJob", Right::kSubmit, Looked,
               [this, request, response](const Caller& caller) {
                 if (auto s = AdmitJob(caller, Right::kSubmit, request->job_id()); !s.ok())
                   return s;
                 auto job = loop_->core().CancelJob(request->job_id(), loop_->Now(), loop_->fx());
                 if (!job.ok()) return job.status();
                 *response = *std::move(job);
                 return absl::OkStatus();
               });
}

grpc::ServerUnaryReactor* SchedulerService::ReadLogs(grpc::CallbackServerContext* ctx,
                                                     const deja::v1::ReadLogsRequest* request,
                                                     deja::v1::ReadLogsResponse* response) {
  auto* reactor = ctx->DefaultReactor();
  auto caller = Admit(access_, *ctx, "ReadLogs", Right::kRead, std::nullopt);
  if (!caller.ok()) {
    reactor->Finish(ToGrpcStatus(caller.status()));
    return reactor;
  }
  loop_->Post([this, loop = loop_, reactor, request, response, caller = *std::move(caller)] {
    if (absl::Status s = AdmitJob(caller, Right::kRead, request->job_id()); !s.ok()) {
      loop->FinishAfterCommit(reactor, s);
      return;
    }
    auto holder = loop->core().WorkspaceHolder(request->job_id());
    if (!holder.ok()) {
      loop->FinishAfterCommit(reactor, holder.status());
      return;
    }
    // Finished when the worker answers (or not): see SchedulerLoop.
    loop->RequestLogs(*holder, *request, reactor, response);
  });
  return reactor;
}

grpc::ServerUnaryReactor* SchedulerService::ListWorkers(
    grpc::CallbackServerContext* ctx, const deja::v1::ListWorkersRequest* /*request*/,
    deja::v1::ListWorkersResponse* response) {
  return Unary(ctx, "ListWorkers", Right::kRead, Looked, [loop = loop_, response](const Caller&) {
    for (auto& info : loop->core().ListWorkers()) *response->add_workers() = std::move(info);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* SchedulerService::GetProject(grpc::CallbackServerContext* ctx,
                                                       const deja::v1::GetProjectRequest* request,
                                                       deja::v1::ProjectSettings* response) {
  return Unary(ctx, "GetProject", Right::kRead, Named(request->project()),
               [loop = loop_, request, response](const Caller&) {
                 if (auto s = ValidateName("project", request->project()); !s.ok()) return s;
                 *response = loop->core().GetProject(request->project());
                 return absl::OkStatus();
               });
}

grpc::ServerUnaryReactor* SchedulerService::SetProject(grpc::CallbackServerContext* ctx,
                                                       const deja::v1::SetProjectRequest* request,
                                                       deja::v1::ProjectSettings* response) {
  return Unary(ctx, "SetProject", Right::kAdmin, Named(request->project()),
               [this, request, response](const Caller& caller) {
                 auto settings = loop_->core().SetProject(*request, loop_->Now(), loop_->fx());
                 if (!settings.ok()) return settings.status();
                 access_->AuditAction(caller, absl::StrCat("set project ", request->project(), ": ",
                                                           request->ShortDebugString()));
                 *response = *std::move(settings);
                 return absl::OkStatus();
               });
}

grpc::ServerUnaryReactor* SchedulerService::PushImage(grpc::CallbackServerContext* ctx,
                                                      const deja::v1::PushImageRequest* request,
                                                      deja::v1::ImageRecord* response) {
  // What a name means is every project's: the cluster admin's to change.
  return Unary(ctx, "PushImage", Right::kAdmin, Named(""),
               [this, request, response](const Caller& caller) {
                 auto record = loop_->core().PushImage(*request, caller.principal.Describe(),
                                                       loop_->Now(), loop_->fx());
                 if (!record.ok()) return record.status();
                 access_->AuditAction(
                     caller, absl::StrCat("pushed image ", record->name(), " = ",
                                          record->image_id(), " (blob ", record->digest(), ")"));
                 *response = *std::move(record);
                 return absl::OkStatus();
               });
}

grpc::ServerUnaryReactor* SchedulerService::ListImages(
    grpc::CallbackServerContext* ctx, const deja::v1::ListImagesRequest* /*request*/,
    deja::v1::ListImagesResponse* response) {
  return Unary(ctx, "ListImages", Right::kRead, Looked, [loop = loop_, response](const Caller&) {
    for (auto& image : loop->core().ListImages()) *response->add_images() = std::move(image);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* SchedulerService::ListMemo(grpc::CallbackServerContext* ctx,
                                                     const deja::v1::ListMemoRequest* request,
                                                     deja::v1::ListMemoResponse* response) {
  auto project_of = [request](const Caller& caller) -> std::optional<std::string> {
    return AccessControl::Scope(caller, request->project());
  };
  return Unary(ctx, "ListMemo", Right::kRead, project_of,
               [loop = loop_, request, response](const Caller& caller) {
                 if (!request->page_token().empty() && !IsMemoPageKey(request->page_token())) {
                   return absl::InvalidArgumentError(absl::StrCat(
                       "page_token \"", request->page_token(), "\": not one ListMemo returned"));
                 }
                 deja::v1::ListMemoRequest all = *request;
                 all.set_project(AccessControl::Scope(caller, request->project()));
                 all.set_limit(0);  // paged below
                 auto entries = loop->core().ListMemo(all);
                 if (!entries.ok()) return entries.status();
                 auto page = NewestPage(*std::move(entries), MemoPageKey, request->page_token(),
                                        request->limit(), kMaxListPageBytes);
                 for (auto& entry : page.items) *response->add_entries() = std::move(entry);
                 response->set_next_page_token(page.next);
                 return absl::OkStatus();
               });
}

grpc::ServerUnaryReactor* SchedulerService::GetMemo(grpc::CallbackServerContext* ctx,
                                                    const deja::v1::GetMemoRequest* request,
                                                    deja::v1::MemoEntry* response) {
  // By hash: in the project named, else the caller's, else the default.
  auto project_of = [request](const Caller& caller) -> std::optional<std::string> {
    if (!request->job_id().empty()) return std::nullopt;
    std::string project = AccessControl::Scope(caller, request->project());
    return project.empty() ? kDefaultProject : project;
  };
  return Unary(ctx, "GetMemo", Right::kRead, project_of,
               [this, request, response, project_of](const Caller& caller) {
                 deja::v1::GetMemoRequest get = *request;
                 if (get.job_id().empty()) {
                   get.set_project(*project_of(caller));
                 } else if (auto s = AdmitJob(caller, Right::kRead, get.job_id()); !s.ok()) {
                   return s;
                 }
                 auto entry = loop_->core().GetMemo(get);
                 if (!entry.ok()) return entry.status();
                 *response = *std::move(entry);
                 return absl::OkStatus();
               });
}

grpc::ServerUnaryReactor* SchedulerService::EvictMemo(grpc::CallbackServerContext* ctx,
                                                      const deja::v1::EvictMemoRequest* request,
                                                      deja::v1::EvictMemoResponse* response) {
  auto project_of = [request](const Caller& caller) -> std::optional<std::string> {
    return AccessControl::Scope(caller, request->project());
  };
  return Unary(
      ctx, "EvictMemo", Right::kAdmin, project_of, [this, request, response](const Caller& caller) {
        deja::v1::EvictMemoRequest evict = *request;
        evict.set_project(AccessControl::Scope(caller, evict.project()));
        auto evicted = loop_->core().EvictMemo(evict, loop_->fx());
        if (!evicted.ok()) return evicted.status();
        access_->AuditAction(caller, absl::StrCat("evicted ", evicted->evicted_size(),
                                                  " memo entries: ", evict.ShortDebugString()));
        // All are evicted; the response lists the newest that fit.
        std::vector<deja::v1::MemoEntry> entries(
            std::make_move_iterator(evicted->mutable_evicted()->begin()),
            std::make_move_iterator(evicted->mutable_evicted()->end()));
        response->set_evicted_count(entries.size());
        std::sort(entries.begin(), entries.end(),
                  [](const auto& a, const auto& b) { return MemoPageKey(a) < MemoPageKey(b); });
        auto page = NewestPage(std::move(entries), MemoPageKey, "", 0, kMaxListPageBytes);
        for (auto& entry : page.items) *response->add_evicted() = std::move(entry);
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* SchedulerService::Explain(grpc::CallbackServerContext* ctx,
                                                    const deja::v1::GetJobRequest* request,
                                                    deja::v1::ExplainResponse* response) {
  return Unary(ctx, "Explain", Right::kRead, Looked,
               [this, request, response](const Caller& caller) {
                 if (auto s = AdmitJob(caller, Right::kRead, request->job_id()); !s.ok()) return s;
                 auto explained = loop_->core().Explain(request->job_id(), loop_->Now());
                 if (!explained.ok()) return explained.status();
                 *response = *std::move(explained);
                 return absl::OkStatus();
               });
}

grpc::ServerUnaryReactor* SchedulerService::Stats(grpc::CallbackServerContext* ctx,
                                                  const deja::v1::StatsRequest* request,
                                                  deja::v1::StatsResponse* response) {
  auto project_of = [request](const Caller& caller) -> std::optional<std::string> {
    return AccessControl::Scope(caller, request->project());
  };
  return Unary(ctx, "Stats", Right::kRead, project_of,
               [loop = loop_, collector = collector_, request, response](const Caller& caller) {
                 deja::v1::StatsRequest scoped = *request;
                 scoped.set_project(AccessControl::Scope(caller, scoped.project()));
                 auto stats = loop->core().Stats(scoped);
                 if (!stats.ok()) return stats.status();
                 *response = *std::move(stats);
                 // The whole store's figures: for a token of every project only.
                 if (collector != nullptr && caller.principal.project.empty()) {
                   *response->mutable_content_store() = collector->Last();
                 }
                 return absl::OkStatus();
               });
}

}  // namespace deja
