// SchedulerService: the client-facing deja.v1.Scheduler service (callback
// API) over the SchedulerLoop.
//
// Every reaction posts a closure to the loop and returns at once: the
// closure calls the core, and the call finishes after the round's commit,
// so a client never hears of a write a crash could lose. Watch streams are
// registered with the loop, which pushes each committed change.
//
// The pipeline RPCs are in pipeline_rpcs.cc (one class, two files: the job
// and the pipeline halves of the service change for different reasons).
//
// Every call is admitted first (scheduler/access): its token is checked on
// the gRPC thread, with the right the call needs on the project it names;
// a call naming a job or a pipeline has that one's project checked on the
// loop, once it is looked up. A call naming no project (a list, stats) is
// of the caller's own project when its token has one.
//
// Thread-safety: thread-safe (reactions only post). `loop` must outlive it.
#ifndef DEJA_SCHEDULER_SERVICE_SCHEDULER_SERVICE_H_
#define DEJA_SCHEDULER_SERVICE_SCHEDULER_SERVICE_H_

#include <grpcpp/grpcpp.h>

#include <functional>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "deja/v1/scheduler.grpc.pb.h"
#include "scheduler/access/call_auth.h"
#include "scheduler/service/blob_collector.h"
#include "scheduler/service/scheduler_loop.h"

namespace deja {

class SchedulerService final : public deja::v1::Scheduler::CallbackService {
 public:
  // `collector` (may be null: Stats then has no content store figures) as
  // the loop, not owned.
  SchedulerService(SchedulerLoop* loop, AccessControl* access,
                   const BlobCollector* collector = nullptr)
      : loop_(loop), access_(access), collector_(collector) {}

  // Jobs, workers, projects, memo (scheduler_service.cc).
  grpc::ServerUnaryReactor* Submit(grpc::CallbackServerContext* ctx,
                                   const deja::v1::SubmitRequest* request,
                                   deja::v1::SubmitResponse* response) override;
  grpc::ServerUnaryReactor* SubmitArray(grpc::CallbackServerContext* ctx,
                                        const deja::v1::SubmitArrayRequest* request,
                                        deja::v1::SubmitArrayResponse* response) override;
  grpc::ServerUnaryReactor* GetArray(grpc::CallbackServerContext* ctx,
                                     const deja::v1::GetArrayRequest* request,
                                     deja::v1::JobArray* response) override;
  grpc::ServerUnaryReactor* GetJob(grpc::CallbackServerContext* ctx,
                                   const deja::v1::GetJobRequest* request,
                                   deja::v1::Job* response) override;
  grpc::ServerWriteReactor<deja::v1::Job>* WatchJob(
      grpc::CallbackServerContext* ctx, const deja::v1::GetJobRequest* request) override;
  grpc::ServerUnaryReactor* ListJobs(grpc::CallbackServerContext* ctx,
                                     const deja::v1::ListJobsRequest* request,
                                     deja::v1::ListJobsResponse* response) override;
  grpc::ServerUnaryReactor* ListJobFiles(grpc::CallbackServerContext* ctx,
                                         const deja::v1::ListJobFilesRequest* request,
                                         deja::v1::ListJobFilesResponse* response) override;
  grpc::ServerUnaryReactor* CancelJobs(grpc::CallbackServerContext* ctx,
                                       const deja::v1::CancelJobsRequest* request,
                                       deja::v1::CancelJobsResponse* response) override;
  grpc::ServerUnaryReactor* CancelJob(grpc::CallbackServerContext* ctx,
                                      const deja::v1::GetJobRequest* request,
                                      deja::v1::Job* response) override;
  grpc::ServerUnaryReactor* ReadLogs(grpc::CallbackServerContext* ctx,
                                     const deja::v1::ReadLogsRequest* request,
                                     deja::v1::ReadLogsResponse* response) override;
  grpc::ServerUnaryReactor* ListWorkers(grpc::CallbackServerContext* ctx,
                                        const deja::v1::ListWorkersRequest* request,
                                        deja::v1::ListWorkersResponse* response) override;
  grpc::ServerUnaryReactor* GetProject(grpc::CallbackServerContext* ctx,
                                       const deja::v1::GetProjectRequest* request,
                                       deja::v1::ProjectSettings* response) override;
  grpc::ServerUnaryReactor* SetProject(grpc::CallbackServerContext* ctx,
                                       const deja::v1::SetProjectRequest* request,
                                       deja::v1::ProjectSettings* response) override;
  grpc::ServerUnaryReactor* ListMemo(grpc::CallbackServerContext* ctx,
                                     const deja::v1::ListMemoRequest* request,
                                     deja::v1::ListMemoResponse* response) override;
  grpc::ServerUnaryReactor* GetMemo(grpc::CallbackServerContext* ctx,
                                    const deja::v1::GetMemoRequest* request,
                                    deja::v1::MemoEntry* response) override;
  grpc::ServerUnaryReactor* EvictMemo(grpc::CallbackServerContext* ctx,
                                      const deja::v1::EvictMemoRequest* request,
                                      deja::v1::EvictMemoResponse* response) override;
  grpc::ServerUnaryReactor* Explain(grpc::CallbackServerContext* ctx,
                                    const deja::v1::GetJobRequest* request,
                                    deja::v1::ExplainResponse* response) override;
  grpc::ServerUnaryReactor* Stats(grpc::CallbackServerContext* ctx,
                                  const deja::v1::StatsRequest* request,
                                  deja::v1::StatsResponse* response) override;

  // Pipelines (pipeline_rpcs.cc).
  grpc::ServerUnaryReactor* SubmitPipeline(grpc::CallbackServerContext* ctx,
                                           const deja::v1::SubmitPipelineRequest* request,
                                           deja::v1::Pipeline* response) override;
  grpc::ServerUnaryReactor* GetPipeline(grpc::CallbackServerContext* ctx,
                                        const deja::v1::GetPipelineRequest* request,
                                        deja::v1::Pipeline* response) override;
  grpc::ServerUnaryReactor* ListPipelines(grpc::CallbackServerContext* ctx,
                                          const deja::v1::ListPipelinesRequest* request,
                                          deja::v1::ListPipelinesResponse* response) override;
  grpc::ServerUnaryReactor* CancelPipeline(grpc::CallbackServerContext* ctx,
                                           const deja::v1::GetPipelineRequest* request,
                                           deja::v1::Pipeline* response) override;
  grpc::ServerUnaryReactor* RetryPipeline(grpc::CallbackServerContext* ctx,
                                          const deja::v1::RetryPipelineRequest* request,
                                          deja::v1::Pipeline* response) override;
  grpc::ServerUnaryReactor* PlanPipeline(grpc::CallbackServerContext* ctx,
                                         const deja::v1::SubmitPipelineRequest* request,
                                         deja::v1::PipelinePlan* response) override;
  grpc::ServerWriteReactor<deja::v1::Pipeline>* WatchPipeline(
      grpc::CallbackServerContext* ctx, const deja::v1::GetPipelineRequest* request) override;

  // Tokens and the audit log (access_rpcs.cc).
  grpc::ServerUnaryReactor* CreateToken(grpc::CallbackServerContext* ctx,
                                        const deja::v1::CreateTokenRequest* request,
                                        deja::v1::CreateTokenResponse* response) override;
  grpc::ServerUnaryReactor* ListTokens(grpc::CallbackServerContext* ctx,
                                       const deja::v1::ListTokensRequest* request,
                                       deja::v1::ListTokensResponse* response) override;
  grpc::ServerUnaryReactor* RevokeToken(grpc::CallbackServerContext* ctx,
                                        const deja::v1::RevokeTokenRequest* request,
                                        deja::v1::Token* response) override;
  grpc::ServerUnaryReactor* ListAudit(grpc::CallbackServerContext* ctx,
                                      const deja::v1::ListAuditRequest* request,
                                      deja::v1::ListAuditResponse* response) override;
  grpc::ServerUnaryReactor* PushImage(grpc::CallbackServerContext* ctx,
                                      const deja::v1::PushImageRequest* request,
                                      deja::v1::ImageRecord* response) override;
  grpc::ServerUnaryReactor* ListImages(grpc::CallbackServerContext* ctx,
                                       const deja::v1::ListImagesRequest* request,
                                       deja::v1::ListImagesResponse* response) override;

 private:
  // The project a call is admitted on, given its caller; nullopt: on some
  // project (the call names a job or pipeline, whose project is checked on
  // the loop).
  using ProjectOf = std::function<std::optional<std::string>(const Caller&)>;
  static ProjectOf Named(std::string project) {
    return [project = std::move(project)](const Caller&) { return project; };
  }
  static std::optional<std::string> Looked(const Caller&) { return std::nullopt; }
  // The project a submit of `spec` (which must outlive the call) goes to:
  // its own, else the token's, else the default project.
  static ProjectOf SubmitsTo(const deja::v1::JobSpec& spec);

  // A unary call `method`, admitted for `right` on `project_of(caller)`:
  // `fn` runs on the loop with the caller, and its status finishes the call
  // after the round's commit. A refused call finishes at once.
  grpc::ServerUnaryReactor* Unary(grpc::CallbackServerContext* ctx, const char* method, Right right,
                                  const ProjectOf& project_of,
                                  std::function<absl::Status(const Caller&)> fn);
  // On the loop: whether `caller` holds `right` on the project of job
  // `job_id` (NOT_FOUND when there is no such job).
  absl::Status AdmitJob(const Caller& caller, Right right, const std::string& job_id) const;
  absl::Status AdmitPipeline(const Caller& caller, Right right,
                             const std::string& pipeline_id) const;
  // On the loop: FAILED_PRECONDITION, as for a blob not in the store, when
  // an input is a blob the caller's project may not read (BlobStore::
  // Readable: it neither uploaded it nor used or produced it in a job).
  // `field`: "inputs" or "nodes[N].inputs", for the message.
  absl::Status CheckInputsReadable(
      const Caller& caller, const google::protobuf::RepeatedPtrField<deja::v1::InputRef>& inputs,
      const std::string& field) const;

  SchedulerLoop* const loop_;
  AccessControl* const access_;
  const BlobCollector* const collector_;
  // ListJobFiles' last manifest read: paging through it parses it once.
  // Used on the loop thread only.
  std::shared_ptr<const deja::v1::Manifest> last_manifest_;
  std::string last_manifest_digest_;
};

}  // namespace deja

#endif  // DEJA_SCHEDULER_SERVICE_SCHEDULER_SERVICE_H_
