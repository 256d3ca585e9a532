// FakeScheduler: a deja.v1.Scheduler service for the client's tests (the
// `deja` CLI, DejaClient). It answers from what each test sets up — jobs,
// memo entries, project settings, a pipeline script, canned replies — and
// records every request it gets, so a test checks both what the CLI printed
// and what it asked. RPCs a test sets nothing up for answer as the fake
// documents below (empty lists, NOT_FOUND); the others are UNIMPLEMENTED.
//
// FakeSchedulerServer serves it on 127.0.0.1:0 together with a
// FakeContentStore, as the real scheduler serves the content store on its
// own port.
//
// Thread-safe: gRPC calls the fake on its own threads while the test sets it
// up and inspects it.
#ifndef DEJA_TESTS_FAKES_FAKE_SCHEDULER_H_
#define DEJA_TESTS_FAKES_FAKE_SCHEDULER_H_

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "deja/v1/scheduler.grpc.pb.h"
#include "gtest/gtest.h"
#include "tests/fakes/fake_content_store.h"

namespace deja::testing {

class FakeScheduler final : public deja::v1::Scheduler::Service {
 public:
  // ---------------------------------------------------------------------
  // Jobs.

  // Submit records the spec and answers `reply`; until one is set, a job
  // "j<n>" QUEUED, n counting the submits from 1.
  void SetSubmitReply(const deja::v1::SubmitResponse& reply) {
    absl::MutexLock lock(&mu_);
    submit_reply_ = reply;
  }
  // GetJob answers the job added last with that id; NOT_FOUND "job <id> not
  // found" for any other.
  void AddJob(const deja::v1::Job& job) {
    absl::MutexLock lock(&mu_);
    jobs_[job.job_id()] = job;
  }
  // WatchJob writes these, in order, then ends the stream.
  void SetJobWatch(std::vector<deja::v1::Job> updates) {
    absl::MutexLock lock(&mu_);
    job_watch_ = std::move(updates);
  }
  // The specs submitted, in order.
  std::vector<deja::v1::JobSpec> submitted() {
    absl::MutexLock lock(&mu_);
    return submitted_;
  }

  grpc::Status Submit(grpc::ServerContext*, const deja::v1::SubmitRequest* request,
                      deja::v1::SubmitResponse* response) override {
    absl::MutexLock lock(&mu_);
    submitted_.push_back(request->spec());
    if (submit_reply_.has_value()) {
      *response = *submit_reply_;
    } else {
      response->mutable_job()->set_job_id("j" + std::to_string(submitted_.size()));
      response->mutable_job()->set_state(deja::v1::QUEUED);
    }
    return grpc::Status::OK;
  }
  grpc::Status GetJob(grpc::ServerContext*, const deja::v1::GetJobRequest* request,
                      deja::v1::Job* job) override {
    absl::MutexLock lock(&mu_);
    auto it = jobs_.find(request->job_id());
    if (it == jobs_.end()) return NotFound("job " + request->job_id());
    *job = it->second;
    return grpc::Status::OK;
  }
  grpc::Status WatchJob(grpc::ServerContext*, const deja::v1::GetJobRequest*,
                        grpc::ServerWriter<deja::v1::Job>* writer) override {
    std::vector<deja::v1::Job> updates;
    {
      absl::MutexLock lock(&mu_);
      updates = job_watch_;
    }
    for (const deja::v1::Job& job : updates) writer->Write(job);
    return grpc::Status::OK;
  }

  // ---------------------------------------------------------------------
  // Project settings.

  // GetProject answers `settings` for whichever project is asked. SetProject
  // changes the fields the request sets — a retention outside 1 to 120
  // hours is INVALID_ARGUMENT, as the scheduler says it — stamps
  // updated_at_ms with `set_at_ms`, and answers the result.
  void SetProjectSettings(const deja::v1::ProjectSettings& settings, int64_t set_at_ms) {
    absl::MutexLock lock(&mu_);
    settings_ = settings;
    settings_set_at_ms_ = set_at_ms;
  }
  std::vector<deja::v1::SetProjectRequest> set_project_requests() {
    absl::MutexLock lock(&mu_);
    return set_project_requests_;
  }

  grpc::Status GetProject(grpc::ServerContext*, const deja::v1::GetProjectRequest* request,
                          deja::v1::ProjectSettings* settings) override {
    absl::MutexLock lock(&mu_);
    *settings = settings_;
    settings->set_project(request->project());
    return grpc::Status::OK;
  }
  grpc::Status SetProject(grpc::ServerContext*, const deja::v1::SetProjectRequest* request,
                          deja::v1::ProjectSettings* settings) override {
    absl::MutexLock lock(&mu_);
    set_project_requests_.push_back(*request);
    if (request->has_intermediate_files_hours()) {
      int32_t hours = request->intermediate_files_hours();
      if (hours < 1 || hours > 120) {
        return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                            "intermediate_files_hours: " + std::to_string(hours) +
                                " is out of range; allowed 1 to 120");
      }
      settings_.set_intermediate_files_hours(hours);
    }
    if (request->has_use_memoization()) settings_.set_use_memoization(request->use_memoization());
    settings_.set_updated_at_ms(settings_set_at_ms_);
    *settings = settings_;
    settings->set_project(request->project());
    return grpc::Status::OK;
  }

  // ---------------------------------------------------------------------
  // The memo index, explain, stats.

  // ListMemo answers these, filtered by the request's project and app name
  // and cut at its limit. GetMemo answers the first whose source job is the
  // request's job id or whose hash is its hash (NOT_FOUND "no memo entry"
  // otherwise). EvictMemo answers the entries of the request's app name —
  // the only selector it evaluates — and keeps them.
  void SetMemoEntries(std::vector<deja::v1::MemoEntry> entries) {
    absl::MutexLock lock(&mu_);
    memo_entries_ = std::move(entries);
  }
  // Explain answers `response` for `job_id`; NOT_FOUND "job <id> not found"
  // for any other job.
  void SetExplanation(const std::string& job_id, const deja::v1::ExplainResponse& response) {
    absl::MutexLock lock(&mu_);
    explanations_[job_id] = response;
  }
  // Stats answers `reply` (empty until set).
  void SetStatsReply(const deja::v1::StatsResponse& reply) {
    absl::MutexLock lock(&mu_);
    stats_reply_ = reply;
  }
  std::vector<deja::v1::ListMemoRequest> list_memo_requests() {
    absl::MutexLock lock(&mu_);
    return list_memo_requests_;
  }
  std::vector<deja::v1::GetMemoRequest> get_memo_requests() {
    absl::MutexLock lock(&mu_);
    return get_memo_requests_;
  }
  std::vector<deja::v1::EvictMemoRequest> evict_memo_requests() {
    absl::MutexLock lock(&mu_);
    return evict_memo_requests_;
  }
  std::vector<deja::v1::StatsRequest> stats_requests() {
    absl::MutexLock lock(&mu_);
    return stats_requests_;
  }

  grpc::Status ListMemo(grpc::ServerContext*, const deja::v1::ListMemoRequest* request,
                        deja::v1::ListMemoResponse* response) override {
    absl::MutexLock lock(&mu_);
    list_memo_requests_.push_back(*request);
    for (const deja::v1::MemoEntry& entry : memo_entries_) {
      if (!request->project().empty() && entry.project() != request->project()) continue;
      if (!request->app_name().empty() && entry.app_name() != request->app_name()) continue;
      if (request->limit() > 0 && response->entries_size() >= static_cast<int>(request->limit())) {
        break;
      }
      *response->add_entries() = entry;
    }
    return grpc::Status::OK;
  }
  grpc::Status GetMemo(grpc::ServerContext*, const deja::v1::GetMemoRequest* request,
                       deja::v1::MemoEntry* entry) override {
    absl::MutexLock lock(&mu_);
    get_memo_requests_.push_back(*request);
    for (const deja::v1::MemoEntry& known : memo_entries_) {
      if ((!request->job_id().empty() && known.source_job_id() == request->job_id()) ||
          (!request->job_hash().empty() && known.job_hash() == request->job_hash())) {
        *entry = known;
        return grpc::Status::OK;
      }
    }
    return grpc::Status(grpc::StatusCode::NOT_FOUND, "no memo entry");
  }
  grpc::Status EvictMemo(grpc::ServerContext*, const deja::v1::EvictMemoRequest* request,
                         deja::v1::EvictMemoResponse* response) override {
    absl::MutexLock lock(&mu_);
    evict_memo_requests_.push_back(*request);
    for (const deja::v1::MemoEntry& entry : memo_entries_) {
      if (!request->app_name().empty() && entry.app_name() == request->app_name()) {
        *response->add_evicted() = entry;
      }
    }
    response->set_evicted_count(static_cast<uint64_t>(response->evicted_size()));
    return grpc::Status::OK;
  }
  grpc::Status Explain(grpc::ServerContext*, const deja::v1::GetJobRequest* request,
                       deja::v1::ExplainResponse* response) override {
    absl::MutexLock lock(&mu_);
    auto it = explanations_.find(request->job_id());
    if (it == explanations_.end()) return NotFound("job " + request->job_id());
    *response = it->second;
    return grpc::Status::OK;
  }
  grpc::Status Stats(grpc::ServerContext*, const deja::v1::StatsRequest* request,
                     deja::v1::StatsResponse* response) override {
    absl::MutexLock lock(&mu_);
    stats_requests_.push_back(*request);
    *response = stats_reply_;
    return grpc::Status::OK;
  }

  // ---------------------------------------------------------------------
  // Pipelines.

  // The life of one pipeline, as its watch shows it; must not be empty once
  // a pipeline RPC is made. SubmitPipeline answers its first state;
  // GetPipeline and ListPipelines its last (GetPipeline: NOT_FOUND
  // "pipeline <id> not found" for another id); RetryPipeline its first state
  // one run later. WatchPipeline plays it; with `break_after` > 0 the first
  // watch breaks (UNAVAILABLE "scheduler restarting") after that many
  // updates, and every later one starts over from the update it broke at.
  void SetPipelineScript(std::vector<deja::v1::Pipeline> script, int break_after = 0) {
    absl::MutexLock lock(&mu_);
    script_ = std::move(script);
    break_after_ = break_after;
  }
  // PlanPipeline answers `plan` (empty until set).
  void SetPlanReply(const deja::v1::PipelinePlan& plan) {
    absl::MutexLock lock(&mu_);
    plan_reply_ = plan;
  }
  // CancelPipeline answers `pipeline`, with the id asked for.
  void SetCancelReply(const deja::v1::Pipeline& pipeline) {
    absl::MutexLock lock(&mu_);
    cancel_reply_ = pipeline;
  }
  std::vector<deja::v1::SubmitPipelineRequest> submitted_pipelines() {
    absl::MutexLock lock(&mu_);
    return submitted_pipelines_;
  }
  std::vector<deja::v1::SubmitPipelineRequest> planned_pipelines() {
    absl::MutexLock lock(&mu_);
    return planned_pipelines_;
  }
  // The pipeline id of every watch, in order.
  std::vector<std::string> watched_pipelines() {
    absl::MutexLock lock(&mu_);
    return watched_pipelines_;
  }
  std::vector<deja::v1::ListPipelinesRequest> list_pipelines_requests() {
    absl::MutexLock lock(&mu_);
    return list_pipelines_requests_;
  }
  std::vector<deja::v1::RetryPipelineRequest> retry_requests() {
    absl::MutexLock lock(&mu_);
    return retry_requests_;
  }

  grpc::Status SubmitPipeline(grpc::ServerContext*, const deja::v1::SubmitPipelineRequest* request,
                              deja::v1::Pipeline* pipeline) override {
    absl::MutexLock lock(&mu_);
    submitted_pipelines_.push_back(*request);
    *pipeline = script_.front();
    return grpc::Status::OK;
  }
  grpc::Status PlanPipeline(grpc::ServerContext*, const deja::v1::SubmitPipelineRequest* request,
                            deja::v1::PipelinePlan* plan) override {
    absl::MutexLock lock(&mu_);
    planned_pipelines_.push_back(*request);
    *plan = plan_reply_;
    return grpc::Status::OK;
  }
  grpc::Status WatchPipeline(grpc::ServerContext*, const deja::v1::GetPipelineRequest* request,
                             grpc::ServerWriter<deja::v1::Pipeline>* writer) override {
    std::vector<deja::v1::Pipeline> script;
    size_t start = 0;
    int break_after = 0;
    {
      absl::MutexLock lock(&mu_);
      watched_pipelines_.push_back(request->pipeline_id());
      script = script_;
      if (watched_pipelines_.size() == 1) {
        break_after = break_after_;
      } else if (break_after_ > 0) {
        start = static_cast<size_t>(break_after_ - 1);
      }
    }
    for (size_t i = start; i < script.size(); ++i) {
      if (break_after > 0 && static_cast<int>(i) == break_after) {
        return grpc::Status(grpc::StatusCode::UNAVAILABLE, "scheduler restarting");
      }
      writer->Write(script[i]);
    }
    return grpc::Status::OK;
  }
  grpc::Status GetPipeline(grpc::ServerContext*, const deja::v1::GetPipelineRequest* request,
                           deja::v1::Pipeline* pipeline) override {
    absl::MutexLock lock(&mu_);
    if (request->pipeline_id() != script_.back().pipeline_id()) {
      return NotFound("pipeline " + request->pipeline_id());
    }
    *pipeline = script_.back();
    return grpc::Status::OK;
  }
  grpc::Status ListPipelines(grpc::ServerContext*, const deja::v1::ListPipelinesRequest* request,
                             deja::v1::ListPipelinesResponse* response) override {
    absl::MutexLock lock(&mu_);
    list_pipelines_requests_.push_back(*request);
    *response->add_pipelines() = script_.back();
    return grpc::Status::OK;
  }
  grpc::Status CancelPipeline(grpc::ServerContext*, const deja::v1::GetPipelineRequest* request,
                              deja::v1::Pipeline* pipeline) override {
    absl::MutexLock lock(&mu_);
    *pipeline = cancel_reply_;
    pipeline->set_pipeline_id(request->pipeline_id());
    return grpc::Status::OK;
  }
  grpc::Status RetryPipeline(grpc::ServerContext*, const deja::v1::RetryPipelineRequest* request,
                             deja::v1::Pipeline* pipeline) override {
    absl::MutexLock lock(&mu_);
    retry_requests_.push_back(*request);
    *pipeline = script_.front();
    pipeline->set_run(pipeline->run() + 1);
    return grpc::Status::OK;
  }

 private:
  // The scheduler's NOT_FOUND: "<what> not found".
  static grpc::Status NotFound(const std::string& what) {
    return grpc::Status(grpc::StatusCode::NOT_FOUND, what + " not found");
  }

  absl::Mutex mu_;
  // Jobs.
  std::optional<deja::v1::SubmitResponse> submit_reply_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, deja::v1::Job> jobs_ ABSL_GUARDED_BY(mu_);
  std::vector<deja::v1::Job> job_watch_ ABSL_GUARDED_BY(mu_);
  std::vector<deja::v1::JobSpec> submitted_ ABSL_GUARDED_BY(mu_);
  // Project settings.
  deja::v1::ProjectSettings settings_ ABSL_GUARDED_BY(mu_);
  int64_t settings_set_at_ms_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<deja::v1::SetProjectRequest> set_project_requests_ ABSL_GUARDED_BY(mu_);
  // The memo index, explain, stats.
  std::vector<deja::v1::MemoEntry> memo_entries_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, deja::v1::ExplainResponse> explanations_ ABSL_GUARDED_BY(mu_);
  deja::v1::StatsResponse stats_reply_ ABSL_GUARDED_BY(mu_);
  std::vector<deja::v1::ListMemoRequest> list_memo_requests_ ABSL_GUARDED_BY(mu_);
  std::vector<deja::v1::GetMemoRequest> get_memo_requests_ ABSL_GUARDED_BY(mu_);
  std::vector<deja::v1::EvictMemoRequest> evict_memo_requests_ ABSL_GUARDED_BY(mu_);
  std::vector<deja::v1::StatsRequest> stats_requests_ ABSL_GUARDED_BY(mu_);
  // Pipelines.
  std::vector<deja::v1::Pipeline> script_ ABSL_GUARDED_BY(mu_);
  int break_after_ ABSL_GUARDED_BY(mu_) = 0;
  deja::v1::PipelinePlan plan_reply_ ABSL_GUARDED_BY(mu_);
  deja::v1::Pipeline cancel_reply_ ABSL_GUARDED_BY(mu_);
  std::vector<deja::v1::SubmitPipelineRequest> submitted_pipelines_ ABSL_GUARDED_BY(mu_);
  std::vector<deja::v1::SubmitPipelineRequest> planned_pipelines_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> watched_pipelines_ ABSL_GUARDED_BY(mu_);
  std::vector<deja::v1::ListPipelinesRequest> list_pipelines_requests_ ABSL_GUARDED_BY(mu_);
  std::vector<deja::v1::RetryPipelineRequest> retry_requests_ ABSL_GUARDED_BY(mu_);
};

// A FakeScheduler and a FakeContentStore served on 127.0.0.1:<free port>:
// what `deja --scheduler <address()>` talks to.
class FakeSchedulerServer {
 public:
  FakeSchedulerServer() {
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    builder.RegisterService(&scheduler_);
    builder.RegisterService(&store_);
    server_ = builder.BuildAndStart();
    EXPECT_NE(server_, nullptr);
    EXPECT_NE(port_, 0);
  }
  ~FakeSchedulerServer() {
    store_.HoldDownloads(false);
    server_->Shutdown(absl::ToChronoTime(absl::Now() + absl::Seconds(1)));
  }
  FakeSchedulerServer(const FakeSchedulerServer&) = delete;
  FakeSchedulerServer& operator=(const FakeSchedulerServer&) = delete;

  FakeScheduler& scheduler() { return scheduler_; }
  FakeContentStore& store() { return store_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

 private:
  FakeScheduler scheduler_;
  FakeContentStore store_;
  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
};

}  // namespace deja::testing

#endif  // DEJA_TESTS_FAKES_FAKE_SCHEDULER_H_
