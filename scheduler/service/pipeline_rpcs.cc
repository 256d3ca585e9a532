// SchedulerService's pipeline RPCs (see scheduler_service.h).
#include <algorithm>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "scheduler/core/keys.h"
#include "scheduler/core/list_page.h"
#include "scheduler/service/scheduler_service.h"
#include "scheduler/service/watch_stream.h"

namespace deja {

using deja::v1::Pipeline;

grpc::ServerUnaryReactor* SchedulerService::SubmitPipeline(
    grpc::CallbackServerContext* ctx, const deja::v1::SubmitPipelineRequest* request,
    Pipeline* response) {
  return Unary(ctx, [loop = loop_, request, response] {
    auto p = loop->core().SubmitPipeline(*request, loop->Now(), loop->fx());
    if (!p.ok()) return p.status();
    *response = *std::move(p);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* SchedulerService::GetPipeline(grpc::CallbackServerContext* ctx,
                                                        const deja::v1::GetPipelineRequest* request,
                                                        Pipeline* response) {
  return Unary(ctx, [loop = loop_, request, response] {
    auto p = loop->core().GetPipeline(request->pipeline_id());
    if (!p.ok()) return p.status();
    *response = *std::move(p);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* SchedulerService::ListPipelines(
    grpc::CallbackServerContext* ctx, const deja::v1::ListPipelinesRequest* request,
    deja::v1::ListPipelinesResponse* response) {
  return Unary(ctx, [loop = loop_, request, response] {
    const std::string& token = request->page_token();
    if (!token.empty() &&
        (token.size() != 20 ||
         !std::all_of(token.begin(), token.end(), [](char c) { return c >= '0' && c <= '9'; }))) {
      return absl::InvalidArgumentError(
          absl::StrCat("page_token \"", token, "\": not one ListPipelines returned"));
    }
    size_t limit = request->limit() == 0 ? 1000 : request->limit();
    auto key = [](const Pipeline& p) {
      return absl::StrFormat("%020d", ParsePipelineId(p.pipeline_id()));
    };
    auto page = NewestPage(loop->core().ListPipelines(request->project()), key, token, limit,
                           kMaxListPageBytes);
    for (auto& p : page.items) *response->add_pipelines() = std::move(p);
    response->set_next_page_token(page.next);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* SchedulerService::CancelPipeline(
    grpc::CallbackServerContext* ctx, const deja::v1::GetPipelineRequest* request,
    Pipeline* response) {
  return Unary(ctx, [loop = loop_, request, response] {
    auto p = loop->core().CancelPipeline(request->pipeline_id(), loop->Now(), loop->fx());
    if (!p.ok()) return p.status();
    *response = *std::move(p);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* SchedulerService::RetryPipeline(
    grpc::CallbackServerContext* ctx, const deja::v1::RetryPipelineRequest* request,
    Pipeline* response) {
  return Unary(ctx, [loop = loop_, request, response] {
    auto p = loop->core().RetryPipeline(*request, loop->Now(), loop->fx());
    if (!p.ok()) return p.status();
    *response = *std::move(p);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* SchedulerService::PlanPipeline(
    grpc::CallbackServerContext* ctx, const deja::v1::SubmitPipelineRequest* request,
    deja::v1::PipelinePlan* response) {
  return Unary(ctx, [loop = loop_, request, response] {
    auto plan = loop->core().PlanPipeline(*request, loop->Now());
    if (!plan.ok()) return plan.status();
    *response = *std::move(plan);
    return absl::OkStatus();
  });
}

grpc::ServerWriteReactor<Pipeline>* SchedulerService::WatchPipeline(
    grpc::CallbackServerContext* /*ctx*/, const deja::v1::GetPipelineRequest* request) {
  auto* stream = new WatchStream<Pipeline>(loop_, request->pipeline_id());
  loop_->Post([loop = loop_, outbox = stream->outbox(), id = request->pipeline_id()] {
    loop->WatchPipeline(id, outbox);
  });
  return stream;
}

}  // namespace deja
