#include "scheduler/service/scheduler_service.h"

#include <memory>
#include <string>
#include <utility>

#include "common/job_spec.h"
#include "scheduler/service/watch_stream.h"

namespace deja {

using deja::v1::Job;

grpc::ServerUnaryReactor* SchedulerService::Unary(grpc::CallbackServerContext* ctx,
                                                  std::function<absl::Status()> fn) {
  auto* reactor = ctx->DefaultReactor();
  loop_->Post(
      [loop = loop_, reactor, fn = std::move(fn)] { loop->FinishAfterCommit(reactor, fn()); });
  return reactor;
}

grpc::ServerUnaryReactor* SchedulerService::Submit(grpc::CallbackServerContext* ctx,
                                                   const deja::v1::SubmitRequest* request,
                                                   deja::v1::SubmitResponse* response) {
  return Unary(ctx, [loop = loop_, request, response] {
    auto result = loop->core().Submit(request->spec(), loop->Now(), loop->fx());
    if (!result.ok()) return result.status();
    *response = *std::move(result);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* SchedulerService::GetJob(grpc::CallbackServerContext* ctx,
                                                   const deja::v1::GetJobRequest* request,
                                                   Job* response) {
  return Unary(ctx, [loop = loop_, request, response] {
    auto job = loop->core().GetJob(request->job_id());
    if (!job.ok()) return job.status();
    *response = *std::move(job);
    return absl::OkStatus();
  });
}

grpc::ServerWriteReactor<Job>* SchedulerService::WatchJob(grpc::CallbackServerContext* /*ctx*/,
                                                          const deja::v1::GetJobRequest* request) {
  auto* stream = new WatchStream<Job>(loop_, request->job_id());
  loop_->Post([loop = loop_, outbox = stream->outbox(), job_id = request->job_id()] {
    loop->WatchJob(job_id, outbox);
  });
  return stream;
}

grpc::ServerUnaryReactor* SchedulerService::ListJobs(grpc::CallbackServerContext* ctx,
                                                     const deja::v1::ListJobsRequest* request,
                                                     deja::v1::ListJobsResponse* response) {
  return Unary(ctx, [loop = loop_, request, response] {
    size_t limit = request->limit() == 0 ? 1000 : request->limit();
    auto jobs = loop->core().ListJobs(request->project(), request->state(), limit);
    if (jobs.ok()) {
      for (auto& job : *jobs) *response->add_jobs() = std::move(job);
    }
    return jobs.status();
  });
}

grpc::ServerUnaryReactor* SchedulerService::CancelJob(grpc::CallbackServerContext* ctx,
                                                      const deja::v1::GetJobRequest* request,
                                                      Job* response) {
  return Unary(ctx, [loop = loop_, request, response] {
    auto job = loop->core().CancelJob(request->job_id(), loop->Now(), loop->fx());
    if (!job.ok()) return job.status();
    *response = *std::move(job);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* SchedulerService::ReadLogs(grpc::CallbackServerContext* ctx,
                                                     const deja::v1::ReadLogsRequest* request,
                                                     deja::v1::ReadLogsResponse* response) {
  auto* reactor = ctx->DefaultReactor();
  loop_->Post([loop = loop_, reactor, request, response] {
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
  return Unary(ctx, [loop = loop_, response] {
    for (auto& info : loop->core().ListWorkers()) *response->add_workers() = std::move(info);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* SchedulerService::GetProject(grpc::CallbackServerContext* ctx,
                                                       const deja::v1::GetProjectRequest* request,
                                                       deja::v1::ProjectSettings* response) {
  return Unary(ctx, [loop = loop_, request, response] {
    if (auto s = ValidateName("project", request->project()); !s.ok()) return s;
    *response = loop->core().GetProject(request->project());
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* SchedulerService::SetProject(grpc::CallbackServerContext* ctx,
                                                       const deja::v1::SetProjectRequest* request,
                                                       deja::v1::ProjectSettings* response) {
  return Unary(ctx, [loop = loop_, request, response] {
    auto settings = loop->core().SetProject(*request, loop->Now(), loop->fx());
    if (!settings.ok()) return settings.status();
    *response = *std::move(settings);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* SchedulerService::ListMemo(grpc::CallbackServerContext* ctx,
                                                     const deja::v1::ListMemoRequest* request,
                                                     deja::v1::ListMemoResponse* response) {
  return Unary(ctx, [loop = loop_, request, response] {
    auto entries = loop->core().ListMemo(*request);
    if (!entries.ok()) return entries.status();
    for (auto& entry : *entries) *response->add_entries() = std::move(entry);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* SchedulerService::GetMemo(grpc::CallbackServerContext* ctx,
                                                    const deja::v1::GetMemoRequest* request,
                                                    deja::v1::MemoEntry* response) {
  return Unary(ctx, [loop = loop_, request, response] {
    auto entry = loop->core().GetMemo(*request);
    if (!entry.ok()) return entry.status();
    *response = *std::move(entry);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* SchedulerService::EvictMemo(grpc::CallbackServerContext* ctx,
                                                      const deja::v1::EvictMemoRequest* request,
                                                      deja::v1::EvictMemoResponse* response) {
  return Unary(ctx, [loop = loop_, request, response] {
    auto evicted = loop->core().EvictMemo(*request, loop->fx());
    if (!evicted.ok()) return evicted.status();
    *response = *std::move(evicted);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* SchedulerService::Explain(grpc::CallbackServerContext* ctx,
                                                    const deja::v1::GetJobRequest* request,
                                                    deja::v1::ExplainResponse* response) {
  return Unary(ctx, [loop = loop_, request, response] {
    auto explained = loop->core().Explain(request->job_id(), loop->Now());
    if (!explained.ok()) return explained.status();
    *response = *std::move(explained);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* SchedulerService::Stats(grpc::CallbackServerContext* ctx,
                                                  const deja::v1::StatsRequest* request,
                                                  deja::v1::StatsResponse* response) {
  return Unary(ctx, [loop = loop_, request, response] {
    auto stats = loop->core().Stats(*request);
    if (!stats.ok()) return stats.status();
    *response = *std::move(stats);
    return absl::OkStatus();
  });
}

}  // namespace deja
