// SchedulerService's pipeline RPCs (see scheduler_service.h).
#include <algorithm>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/grpc_status.h"
#include "common/job_spec.h"
#include "scheduler/core/keys.h"
#include "scheduler/core/list_page.h"
#include "scheduler/service/scheduler_service.h"
#include "scheduler/service/watch_stream.h"

namespace deja {

using deja::v1::Pipeline;

grpc::ServerUnaryReactor* SchedulerService::SubmitPipeline(
    grpc::CallbackServerContext* ctx, const deja::v1::SubmitPipelineRequest* request,
    Pipeline* response) {
  auto project_of = [request](const Caller& caller) -> std::optional<std::string> {
    std::string project = AccessControl::Scope(caller, request->spec().project());
    return project.empty() ? kDefaultProject : project;
  };
  return Unary(
      ctx, "SubmitPipeline", Right::kSubmit, project_of,
      [this, loop = loop_, request, response](const Caller& caller) {
        for (const auto& node : request->spec().nodes()) {
          if (absl::Status st = CheckInputsReadable(
                  caller, node.inputs(), absl::StrCat("nodes[", node.name(), "].inputs"));
              !st.ok()) {
            return st;
          }
        }
        deja::v1::SubmitPipelineRequest submit = *request;
        submit.mutable_spec()->set_project(AccessControl::Scope(caller, request->spec().project()));
        auto p = loop->core().SubmitPipeline(submit, loop->Now(), loop->fx());
        if (!p.ok()) return p.status();
        *response = *std::move(p);
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* SchedulerService::GetPipeline(grpc::CallbackServerContext* ctx,
                                                        const deja::v1::GetPipelineRequest* request,
                                                        Pipeline* response) {
  return Unary(
      ctx, "GetPipeline", Right::kRead, Looked, [this, request, response](const Caller& caller) {
        auto p = loop_->core().GetPipeline(request->pipeline_id());
        if (!p.ok()) return p.status();
        if (auto s = access_->Authorize(caller, Right::kRead, p->spec().project()); !s.ok())
          return s;
        *response = *std::move(p);
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* SchedulerService::ListPipelines(
    grpc::CallbackServerContext* ctx, const deja::v1::ListPipelinesRequest* request,
    deja::v1::ListPipelinesResponse* response) {
  auto project_of = [request](const Caller& caller) -> std::optional<std::string> {
    return AccessControl::Scope(caller, request->project());
  };
  return Unary(ctx, "ListPipelines", Right::kRead, project_of,
               [loop = loop_, request, response](const Caller& caller) {
                 const std::string& token = request->page_token();
                 if (!token.empty() &&
                     (token.size() != 20 || !std::all_of(token.begin(), token.end(), [](char c) {
                        return c >= '0' && c <= '9';
                      }))) {
                   return absl::InvalidArgumentError(
                       absl::StrCat("page_token \"", token, "\": not one ListPipelines returned"));
                 }
                 size_t limit = request->limit() == 0 ? 1000 : request->limit();
                 auto key = [](const Pipeline& p) {
                   return absl::StrFormat("%020d", ParsePipelineId(p.pipeline_id()));
                 };
                 auto page = NewestPage(
                     loop->core().ListPipelines(AccessControl::Scope(caller, request->project())),
                     key, token, limit, kMaxListPageBytes);
                 for (auto& p : page.items) *response->add_pipelines() = std::move(p);
                 response->set_next_page_token(page.next);
                 return absl::OkStatus();
               });
}

grpc::ServerUnaryReactor* SchedulerService::CancelPipeline(
    grpc::CallbackServerContext* ctx, const deja::v1::GetPipelineRequest* request,
    Pipeline* response) {
  return Unary(
      ctx, "CancelPipeline", Right::kSubmit, Looked,
      [this, request, response](const Caller& caller) {
        if (auto s = AdmitPipeline(caller, Right::kSubmit, request->pipeline_id()); !s.ok())
          return s;
        auto p = loop_->core().CancelPipeline(request->pipeline_id(), loop_->Now(), loop_->fx());
        if (!p.ok()) return p.status();
        *response = *std::move(p);
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* SchedulerService::RetryPipeline(
    grpc::CallbackServerContext* ctx, const deja::v1::RetryPipelineRequest* request,
    Pipeline* response) {
  return Unary(ctx, "RetryPipeline", Right::kSubmit, Looked,
               [this, request, response](const Caller& caller) {
                 if (auto s = AdmitPipeline(caller, Right::kSubmit, request->pipeline_id());
                     !s.ok())
                   return s;
                 auto p = loop_->core().RetryPipeline(*request, loop_->Now(), loop_->fx());
                 if (!p.ok()) return p.status();
                 *response = *std::move(p);
                 return absl::OkStatus();
               });
}

grpc::ServerUnaryReactor* SchedulerService::PlanPipeline(
    grpc::CallbackServerContext* ctx, const deja::v1::SubmitPipelineRequest* request,
    deja::v1::PipelinePlan* response) {
  auto project_of = [request](const Caller& caller) -> std::optional<std::string> {
    std::string project = AccessControl::Scope(caller, request->spec().project());
    return project.empty() ? kDefaultProject : project;
  };
  return Unary(ctx, "PlanPipeline", Right::kRead, project_of,
               [loop = loop_, request, response](const Caller& caller) {
                 deja::v1::SubmitPipelineRequest plan_request = *request;
                 plan_request.mutable_spec()->set_project(
                     AccessControl::Scope(caller, request->spec().project()));
                 auto plan = loop->core().PlanPipeline(plan_request, loop->Now());
                 if (!plan.ok()) return plan.status();
                 *response = *std::move(plan);
                 return absl::OkStatus();
               });
}

grpc::ServerWriteReactor<Pipeline>* SchedulerService::WatchPipeline(
    grpc::CallbackServerContext* ctx, const deja::v1::GetPipelineRequest* request) {
  auto caller = Admit(access_, *ctx, "WatchPipeline", Right::kRead, std::nullopt);
  if (!caller.ok()) return new Refused<grpc::ServerWriteReactor<Pipeline>>(caller.status());
  auto* stream = new WatchStream<Pipeline>(loop_, request->pipeline_id());
  loop_->Post(
      [this, outbox = stream->outbox(), id = request->pipeline_id(), caller = *std::move(caller)] {
        if (absl::Status s = AdmitPipeline(caller, Right::kRead, id); !s.ok()) {
          loop_->AfterCommit([outbox, s] { outbox->Finish(ToGrpcStatus(s)); });
          return;
        }
        loop_->WatchPipeline(id, outbox);
      });
  return stream;
}

}  // namespace deja
