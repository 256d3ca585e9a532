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
// Thread-safety: thread-safe (reactions only post). `loop` must outlive it.
#ifndef DEJA_SCHEDULER_SERVICE_SCHEDULER_SERVICE_H_
#define DEJA_SCHEDULER_SERVICE_SCHEDULER_SERVICE_H_

#include <grpcpp/grpcpp.h>

#include <functional>

#include "absl/status/status.h"
#include "deja/v1/scheduler.grpc.pb.h"
#include "scheduler/service/blob_collector.h"
#include "scheduler/service/scheduler_loop.h"

namespace deja {

class SchedulerService final : public deja::v1::Scheduler::CallbackService {
 public:
  // `collector` (may be null: Stats then has no content store figures) as
  // the loop, not owned.
  explicit SchedulerService(SchedulerLoop* loop, const BlobCollector* collector = nullptr)
      : loop_(loop), collector_(collector) {}

  // Jobs, workers, projects, memo (scheduler_service.cc).
  grpc::ServerUnaryReactor* Submit(grpc::CallbackServerContext* ctx,
                                   const deja::v1::SubmitRequest* request,
                                   deja::v1::SubmitResponse* response) override;
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

 private:
  // A unary call: `fn` runs on the loop and its status finishes the call
  // after the round's commit.
  grpc::ServerUnaryReactor* Unary(grpc::CallbackServerContext* ctx,
                                  std::function<absl::Status()> fn);

  SchedulerLoop* const loop_;
  const BlobCollector* const collector_;
  // ListJobFiles' last manifest read: paging through it parses it once.
  // Used on the loop thread only.
  std::shared_ptr<const deja::v1::Manifest> last_manifest_;
  std::string last_manifest_digest_;
};

}  // namespace deja

#endif  // DEJA_SCHEDULER_SERVICE_SCHEDULER_SERVICE_H_
