#include "client/deja_client.h"

#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/support/channel_arguments.h>

#include <algorithm>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/check.h"
#include "common/grpc_status.h"
#include "common/job_spec.h"
#include "common/job_state.h"
#include "common/retry.h"
#include "common/transfer_window.h"

namespace deja {

using deja::v1::Job;

namespace {

constexpr absl::Duration kInitialBackoff = absl::Milliseconds(100);
constexpr absl::Duration kMaxBackoff = absl::Seconds(2);

std::shared_ptr<grpc::Channel> MakeChannel(const std::string& target,
                                           const DejaClientOptions& options) {
  grpc::ChannelArguments args;
  // gRPC's default reconnect backoff grows to 120 s; a client re-watching a
  // restarting scheduler wants to notice it is back within seconds.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 250);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 2000);
  // gRPC gives each connection attempt (TCP, TLS, the server's first HTTP/2
  // frame) at least the minimum backoff: it is the connect deadline, which
  // must be the client's own deadline (--timeout), not a fraction of a second
  // that a slow link or a busy scheduler overruns.
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS,
              static_cast<int>(std::clamp<int64_t>(absl::ToInt64Milliseconds(options.rpc_timeout),
                                                   250, int64_t{24} * 3600 * 1000)));
  // As large as the scheduler sends: a large array's reply passes gRPC's
  // default 4 MiB.
  args.SetMaxReceiveMessageSize(kMaxGrpcMessageBytes);
  BoundTransferWindow(&args);  // `deja get` of a large output stays small
  return grpc::CreateCustomChannel(target, MakeChannelCredentials(options.security), args);
}

// Where a watch stream ends: nothing follows a terminal job or an ended
// pipeline.
bool JobDone(const Job& job) { return IsTerminal(job.state()); }
bool PipelineDone(const deja::v1::Pipeline& pipeline) { return IsPipelineDone(pipeline.state()); }

}  // namespace

bool IsPipelineDone(deja::v1::PipelineState state) {
  return state == deja::v1::PIPELINE_SUCCEEDED || state == deja::v1::PIPELINE_FAILED ||
         state == deja::v1::PIPELINE_CANCELLED;
}

// A watch stream is re-opened after anything transient (common/retry.h), and
// after the errors a stream cut mid-way ends with.
bool IsRetryableWatchError(const absl::Status& status) {
  return IsTransient(status.code()) || status.code() == absl::StatusCode::kInternal ||
         status.code() == absl::StatusCode::kUnknown ||
         status.code() == absl::StatusCode::kCancelled;
}

DejaClient::DejaClient(const std::string& target, const DejaClientOptions& options)
    : target_(target), blob_rpc_timeout_(options.rpc_timeout), options_(options) {}

DejaClient::DejaClient(std::shared_ptr<grpc::ChannelInterface> channel, std::string target,
                       const DejaClientOptions& options)
    : target_(std::move(target)),
      given_channel_(std::move(channel)),
      blob_rpc_timeout_(options.rpc_timeout),
      options_(options) {
  DEJA_CHECK(given_channel_ != nullptr, "DejaClient for " + target_ + " given no channel");
}

const DejaClient::Conn& DejaClient::Connection() const {
  absl::call_once(connect_once_, [this] {
    std::shared_ptr<grpc::ChannelInterface> channel =
        given_channel_ != nullptr ? given_channel_ : MakeChannel(target_, options_);
    conn_ = std::unique_ptr<Conn>(new Conn{channel, deja::v1::Scheduler::NewStub(channel),
                                           BlobClient(channel, blob_rpc_timeout_)});
    connected_once_.store(true, std::memory_order_release);
  });
  return *conn_;
}

bool DejaClient::Connected() const {
  // No channel yet: nothing has tried to connect, so there is no connection.
  if (!connected_once_.load(std::memory_order_acquire)) return false;
  return conn_->channel->GetState(/*try_to_connect=*/false) == GRPC_CHANNEL_READY;
}

void DejaClient::SetDeadline(grpc::ClientContext* context) const {
  context->set_deadline(absl::ToChronoTime(absl::Now() + options_.rpc_timeout));
}

template <typename Request, typename Response, typename Method>
absl::StatusOr<Response> DejaClient::Unary(Method method, const Request& request) const {
  grpc::ClientContext context;
  SetDeadline(&context);
  Response response;
  grpc::Status status = (stub()->*method)(&context, request, &response);
  if (!status.ok()) return FromGrpcStatus(status);
  return response;
}

template <typename Request, typename Response, typename Item, typename Method>
absl::StatusOr<std::vector<Item>> DejaClient::UnaryList(
    Method method, const Request& request,
    google::protobuf::RepeatedPtrField<Item>* (Response::*items)()) const {
  absl::StatusOr<Response> response = Unary<Request, Response>(method, request);
  if (!response.ok()) return response.status();
  google::protobuf::RepeatedPtrField<Item>* list = (*response.*items)();
  return std::vector<Item>(std::make_move_iterator(list->begin()),
                           std::make_move_iterator(list->end()));
}

template <typename Item, typename Request, typename Response, typename Method>
absl::StatusOr<std::vector<Item>> DejaClient::PagedList(
    Method method, Request request, uint32_t limit,
    google::protobuf::RepeatedPtrField<Item>* (Response::*items)(), std::string* next_token) const {
  // Pages come newest first, each oldest first; the result is oldest first.
  std::vector<std::vector<Item>> pages;
  size_t total = 0;
  while (true) {
    request.set_limit(limit == 0 ? 0 : static_cast<uint32_t>(limit - total));
    absl::StatusOr<Response> response = Unary<Request, Response>(method, request);
    if (!response.ok()) return response.status();
    google::protobuf::RepeatedPtrField<Item>* page = (*response.*items)();
    total += static_cast<size_t>(page->size());
    const bool more =
        !response->next_page_token().empty() && !page->empty() && (limit == 0 || total < limit);
    pages.emplace_back(std::make_move_iterator(page->begin()),
                       std::make_move_iterator(page->end()));
    if (next_token != nullptr) *next_token = response->next_page_token();
    if (!more) break;
    request.set_page_token(response->next_page_token());
  }
  std::vector<Item> out;
  out.reserve(total);
  for (auto page = pages.rbegin(); page != pages.rend(); ++page) {
    out.insert(out.end(), std::make_move_iterator(page->begin()),
               std::make_move_iterator(page->end()));
  }
  return out;
}

template <typename Item, typename Request, typename Method>
absl::StatusOr<Item> DejaClient::WatchStream(Method method, const Request& request,
                                             absl::Time deadline, bool (*done)(const Item&),
                                             const std::function<void(const Item&)>& on_update,
                                             absl::string_view what, const std::string& id) const {
  grpc::ClientContext context;
  if (deadline != absl::InfiniteFuture()) context.set_deadline(absl::ToChronoTime(deadline));
  std::unique_ptr<grpc::ClientReader<Item>> reader = (stub()->*method)(&context, request);
  std::optional<Item> last;
  Item item;
  while (reader->Read(&item)) {
    if (on_update) on_update(item);
    last = item;
    if (done(item)) {
      // Nothing follows the end; do not wait for the server to close.
      context.TryCancel();
      break;
    }
  }
  grpc::Status status = reader->Finish();
  if (last.has_value() && done(*last)) return *std::move(last);
  if (!status.ok()) return FromGrpcStatus(status);
  if (!last.has_value()) {
    return absl::InternalError(
        absl::StrCat("watch of ", what, " ", id, " ended without sending the ", what));
  }
  return *std::move(last);
}

absl::StatusOr<deja::v1::SubmitResponse> DejaClient::Submit(const deja::v1::JobSpec& spec) const {
  deja::v1::SubmitRequest request;
  *request.mutable_spec() = spec;
  return Unary<deja::v1::SubmitRequest, deja::v1::SubmitResponse>(
      &deja::v1::Scheduler::Stub::Submit, request);
}

absl::StatusOr<deja::v1::SubmitArrayResponse> DejaClient::SubmitArray(
    const deja::v1::SubmitArrayRequest& request) const {
  return Unary<deja::v1::SubmitArrayRequest, deja::v1::SubmitArrayResponse>(
      &deja::v1::Scheduler::Stub::SubmitArray, request);
}

absl::StatusOr<deja::v1::JobArray> DejaClient::GetArray(const std::string& array_id) const {
  deja::v1::GetArrayRequest request;
  request.set_array_id(array_id);
  return Unary<deja::v1::GetArrayRequest, deja::v1::JobArray>(&deja::v1::Scheduler::Stub::GetArray,
                                                              request);
}

absl::StatusOr<Job> DejaClient::GetJob(const std::string& job_id) const {
  deja::v1::GetJobRequest request;
  request.set_job_id(job_id);
  return Unary<deja::v1::GetJobRequest, Job>(&deja::v1::Scheduler::Stub::GetJob, request);
}

absl::StatusOr<Job> DejaClient::WatchUntil(const std::string& job_id, absl::Time deadline,
                                           const std::function<void(const Job&)>& on_update) const {
  deja::v1::GetJobRequest request;
  request.set_job_id(job_id);
  return WatchStream<Job>(&deja::v1::Scheduler::Stub::WatchJob, request, deadline, &JobDone,
                          on_update, "job", job_id);
}

absl::StatusOr<Job> DejaClient::WatchJob(const std::string& job_id,
                                         const std::function<void(const Job&)>& on_update) const {
  return WatchUntil(job_id, absl::InfiniteFuture(), on_update);
}

absl::StatusOr<Job> DejaClient::WaitForJob(const std::string& job_id,
                                           absl::Duration timeout) const {
  const absl::Time deadline = absl::Now() + timeout;
  std::optional<Job> last;
  auto remember = [&last](const Job& job) { last = job; };
  // Why the last watch broke, other than by running into the deadline.
  std::string last_error;
  absl::Duration backoff = kInitialBackoff;
  while (true) {
    absl::StatusOr<Job> job = WatchUntil(job_id, deadline, remember);
    if (job.ok() && IsTerminal(job->state())) return job;
    if (!job.ok() && !IsRetryableWatchError(job.status())) return job.status();
    if (!job.ok() && job.status().code() != absl::StatusCode::kDeadlineExceeded) {
      last_error = std::string(job.status().message());
    }
    absl::Time now = absl::Now();
    if (now >= deadline) {
      std::string detail;
      if (last.has_value()) {
        detail = absl::StrCat(" (last state ", std::string(JobStateName(last->state())), ")");
      } else if (!last_error.empty()) {
        detail = absl::StrCat(" (", last_error, ")");
      }
      return absl::DeadlineExceededError(absl::StrCat("job ", job_id, " did not finish within ",
                                                      absl::FormatDuration(timeout), detail));
    }
    absl::SleepFor(std::min(backoff, deadline - now));
    backoff = std::min(backoff * 2, kMaxBackoff);
  }
}

absl::StatusOr<std::vector<Job>> DejaClient::ListJobs(const std::string& project,
                                                      deja::v1::JobState state,
                                                      uint32_t limit) const {
  deja::v1::ListJobsRequest request;
  request.set_project(project);
  request.set_state(state);
  return PagedList(&deja::v1::Scheduler::Stub::ListJobs, request,
                   limit == 0 ? kDefaultListLimit : limit,
                   &deja::v1::ListJobsResponse::mutable_jobs);
}

absl::StatusOr<DejaClient::JobPage> DejaClient::ListJobPage(deja::v1::ListJobsRequest request,
                                                            uint32_t limit,
                                                            const std::string& cursor) const {
  request.set_page_token(cursor);
  JobPage page;
  absl::StatusOr<std::vector<Job>> jobs =
      PagedList(&deja::v1::Scheduler::Stub::ListJobs, std::move(request), limit,
                &deja::v1::ListJobsResponse::mutable_jobs, &page.next_cursor);
  if (!jobs.ok()) return jobs.status();
  page.jobs = *std::move(jobs);
  return page;
}

absl::StatusOr<deja::v1::CancelJobsResponse> DejaClient::CancelJobs(
    const std::vector<std::string>& job_ids) const {
  deja::v1::CancelJobsRequest request;
  for (const std::string& id : job_ids) request.add_job_ids(id);
  return Unary<deja::v1::CancelJobsRequest, deja::v1::CancelJobsResponse>(
      &deja::v1::Scheduler::Stub::CancelJobs, request);
}

absl::StatusOr<deja::v1::ListJobFilesResponse> DejaClient::ListJobFiles(
    const std::string& job_id, const std::string& page_token, uint32_t page_size) const {
  deja::v1::ListJobFilesRequest request;
  request.set_job_id(job_id);
  request.set_page_token(page_token);
  request.set_page_size(page_size);
  return Unary<deja::v1::ListJobFilesRequest, deja::v1::ListJobFilesResponse>(
      &deja::v1::Scheduler::Stub::ListJobFiles, request);
}

absl::StatusOr<Job> DejaClient::CancelJob(const std::string& job_id) const {
  deja::v1::GetJobRequest request;
  request.set_job_id(job_id);
  return Unary<deja::v1::GetJobRequest, Job>(&deja::v1::Scheduler::Stub::CancelJob, request);
}

absl::StatusOr<deja::v1::ReadLogsResponse> DejaClient::ReadLogChunk(const std::string& job_id,
                                                                    deja::v1::LogStream stream,
                                                                    uint64_t offset,
                                                                    uint32_t limit) const {
  grpc::ClientContext context;
  SetDeadline(&context);
  deja::v1::ReadLogsRequest request;
  request.set_job_id(job_id);
  request.set_stream(stream);
  request.set_offset(offset);
  request.set_limit(limit);
  deja::v1::ReadLogsResponse response;
  grpc::Status status = stub()->ReadLogs(&context, request, &response);
  if (!status.ok()) return FromGrpcStatus(status);
  return response;
}

absl::StatusOr<uint64_t> DejaClient::StreamLogs(
    const std::string& job_id, deja::v1::LogStream stream,
    const std::function<void(absl::string_view)>& on_chunk, uint64_t from) const {
  uint64_t offset = from;
  while (true) {
    auto response = ReadLogChunk(job_id, stream, offset, /*limit=*/0);
    if (!response.ok()) return response.status();
    if (!response->data().empty() && on_chunk) on_chunk(response->data());
    offset += response->data().size();
    // An empty chunk without eof would loop forever; the log has no more now.
    if (response->eof() || response->data().empty()) return offset;
  }
}

absl::StatusOr<std::string> DejaClient::ReadLogTail(const std::string& job_id,
                                                    deja::v1::LogStream stream,
                                                    uint32_t bytes) const {
  auto sized = ReadLogChunk(job_id, stream, 0, 1);  // only for the size
  if (!sized.ok()) return sized.status();
  if (sized->size() <= 1) return std::move(*sized->mutable_data());
  auto tail =
      ReadLogChunk(job_id, stream, sized->size() > bytes ? sized->size() - bytes : 0, bytes);
  if (!tail.ok()) return tail.status();
  return std::move(*tail->mutable_data());
}

absl::StatusOr<std::string> DejaClient::ReadLogs(const std::string& job_id,
                                                 deja::v1::LogStream stream) const {
  std::string data;
  absl::StatusOr<uint64_t> read = StreamLogs(job_id, stream, [&data](absl::string_view chunk) {
    data.append(chunk.data(), chunk.size());
  });
  if (!read.ok()) return read.status();
  return data;
}

absl::StatusOr<std::vector<deja::v1::WorkerInfo>> DejaClient::ListWorkers() const {
  return UnaryList(&deja::v1::Scheduler::Stub::ListWorkers, deja::v1::ListWorkersRequest(),
                   &deja::v1::ListWorkersResponse::mutable_workers);
}

absl::StatusOr<grpc::health::v1::HealthCheckResponse::ServingStatus> DejaClient::CheckHealth(
    const std::string& target, const tls::KeyCert& identity) const {
  std::shared_ptr<grpc::ChannelInterface> channel;
  if (target.empty()) {
    channel = Connection().channel;
  } else {
    DejaClientOptions options = options_;
    options.security.client = identity;
    channel = MakeChannel(target, options);
  }
  auto stub = grpc::health::v1::Health::NewStub(channel);
  grpc::ClientContext context;
  SetDeadline(&context);
  grpc::health::v1::HealthCheckResponse response;
  grpc::Status status = stub->Check(&context, grpc::health::v1::HealthCheckRequest(), &response);
  if (!status.ok()) return FromGrpcStatus(status);
  return response.status();
}

absl::StatusOr<deja::v1::ProjectSettings> DejaClient::GetProject(const std::string& project) const {
  deja::v1::GetProjectRequest request;
  request.set_project(project);
  return Unary<deja::v1::GetProjectRequest, deja::v1::ProjectSettings>(
      &deja::v1::Scheduler::Stub::GetProject, request);
}

absl::StatusOr<deja::v1::ProjectSettings> DejaClient::SetProject(
    const deja::v1::SetProjectRequest& request) const {
  return Unary<deja::v1::SetProjectRequest, deja::v1::ProjectSettings>(
      &deja::v1::Scheduler::Stub::SetProject, request);
}

absl::StatusOr<deja::v1::CreateTokenResponse> DejaClient::CreateToken(
    const deja::v1::CreateTokenRequest& request) const {
  return Unary<deja::v1::CreateTokenRequest, deja::v1::CreateTokenResponse>(
      &deja::v1::Scheduler::Stub::CreateToken, request);
}

absl::StatusOr<deja::v1::ListTokensResponse> DejaClient::ListTokens(bool include_revoked) const {
  deja::v1::ListTokensRequest request;
  request.set_include_revoked(include_revoked);
  return Unary<deja::v1::ListTokensRequest, deja::v1::ListTokensResponse>(
      &deja::v1::Scheduler::Stub::ListTokens, request);
}

absl::StatusOr<deja::v1::Token> DejaClient::RevokeToken(const std::string& id) const {
  deja::v1::RevokeTokenRequest request;
  request.set_id(id);
  return Unary<deja::v1::RevokeTokenRequest, deja::v1::Token>(
      &deja::v1::Scheduler::Stub::RevokeToken, request);
}

absl::StatusOr<deja::v1::ImageRecord> DejaClient::PushImage(
    const deja::v1::PushImageRequest& request) const {
  return Unary<deja::v1::PushImageRequest, deja::v1::ImageRecord>(
      &deja::v1::Scheduler::Stub::PushImage, request);
}

absl::StatusOr<deja::v1::ListImagesResponse> DejaClient::ListImages() const {
  return Unary<deja::v1::ListImagesRequest, deja::v1::ListImagesResponse>(
      &deja::v1::Scheduler::Stub::ListImages, deja::v1::ListImagesRequest());
}

absl::StatusOr<deja::v1::ListAuditResponse> DejaClient::ListAudit(
    const deja::v1::ListAuditRequest& request) const {
  return Unary<deja::v1::ListAuditRequest, deja::v1::ListAuditResponse>(
      &deja::v1::Scheduler::Stub::ListAudit, request);
}

absl::StatusOr<std::vector<deja::v1::MemoEntry>> DejaClient::ListMemo(const std::string& project,
                                                                      const std::string& app_name,
                                                                      uint32_t limit) const {
  deja::v1::ListMemoRequest request;
  request.set_project(project);
  request.set_app_name(app_name);
  return PagedList(&deja::v1::Scheduler::Stub::ListMemo, request, limit,
                   &deja::v1::ListMemoResponse::mutable_entries);
}

absl::StatusOr<deja::v1::MemoEntry> DejaClient::GetMemo(
    const deja::v1::GetMemoRequest& request) const {
  return Unary<deja::v1::GetMemoRequest, deja::v1::MemoEntry>(&deja::v1::Scheduler::Stub::GetMemo,
                                                              request);
}

absl::StatusOr<deja::v1::EvictMemoResponse> DejaClient::EvictMemo(
    const deja::v1::EvictMemoRequest& request) const {
  return Unary<deja::v1::EvictMemoRequest, deja::v1::EvictMemoResponse>(
      &deja::v1::Scheduler::Stub::EvictMemo, request);
}

absl::StatusOr<deja::v1::ExplainResponse> DejaClient::Explain(const std::string& job_id) const {
  deja::v1::GetJobRequest request;
  request.set_job_id(job_id);
  return Unary<deja::v1::GetJobRequest, deja::v1::ExplainResponse>(
      &deja::v1::Scheduler::Stub::Explain, request);
}

absl::StatusOr<deja::v1::StatsResponse> DejaClient::Stats(const std::string& project,
                                                          int64_t since_ms) const {
  deja::v1::StatsRequest request;
  request.set_project(project);
  request.set_since_ms(since_ms);
  return Unary<deja::v1::StatsRequest, deja::v1::StatsResponse>(&deja::v1::Scheduler::Stub::Stats,
                                                                request);
}

absl::StatusOr<deja::v1::Pipeline> DejaClient::SubmitPipeline(
    const deja::v1::SubmitPipelineRequest& request) const {
  return Unary<deja::v1::SubmitPipelineRequest, deja::v1::Pipeline>(
      &deja::v1::Scheduler::Stub::SubmitPipeline, request);
}

absl::StatusOr<deja::v1::Pipeline> DejaClient::GetPipeline(const std::string& pipeline_id) const {
  deja::v1::GetPipelineRequest request;
  request.set_pipeline_id(pipeline_id);
  return Unary<deja::v1::GetPipelineRequest, deja::v1::Pipeline>(
      &deja::v1::Scheduler::Stub::GetPipeline, request);
}

absl::StatusOr<deja::v1::Pipeline> DejaClient::WatchPipelineUntil(
    const std::string& pipeline_id, absl::Time deadline,
    const std::function<void(const deja::v1::Pipeline&)>& on_update) const {
  deja::v1::GetPipelineRequest request;
  request.set_pipeline_id(pipeline_id);
  return WatchStream<deja::v1::Pipeline>(&deja::v1::Scheduler::Stub::WatchPipeline, request,
                                         deadline, &PipelineDone, on_update, "pipeline",
                                         pipeline_id);
}

absl::StatusOr<deja::v1::Pipeline> DejaClient::WatchPipeline(
    const std::string& pipeline_id,
    const std::function<void(const deja::v1::Pipeline&)>& on_update) const {
  return WatchPipelineUntil(pipeline_id, absl::InfiniteFuture(), on_update);
}

absl::StatusOr<deja::v1::Pipeline> DejaClient::WaitForPipeline(const std::string& pipeline_id,
                                                               absl::Duration timeout) const {
  const absl::Time deadline = absl::Now() + timeout;
  std::optional<deja::v1::Pipeline> last;
  auto remember = [&last](const deja::v1::Pipeline& pipeline) { last = pipeline; };
  std::string last_error;
  absl::Duration backoff = kInitialBackoff;
  while (true) {
    absl::StatusOr<deja::v1::Pipeline> pipeline =
        WatchPipelineUntil(pipeline_id, deadline, remember);
    if (pipeline.ok() && IsPipelineDone(pipeline->state())) return pipeline;
    if (!pipeline.ok() && !IsRetryableWatchError(pipeline.status())) return pipeline.status();
    if (!pipeline.ok() && pipeline.status().code() != absl::StatusCode::kDeadlineExceeded) {
      last_error = std::string(pipeline.status().message());
    }
    absl::Time now = absl::Now();
    if (now >= deadline) {
      std::string detail;
      if (last.has_value()) {
        detail = absl::StrCat(" (last state ", deja::v1::PipelineState_Name(last->state()), ")");
      } else if (!last_error.empty()) {
        detail = absl::StrCat(" (", last_error, ")");
      }
      return absl::DeadlineExceededError(absl::StrCat("pipeline ", pipeline_id,
                                                      " did not finish within ",
                                                      absl::FormatDuration(timeout), detail));
    }
    absl::SleepFor(std::min(backoff, deadline - now));
    backoff = std::min(backoff * 2, kMaxBackoff);
  }
}

absl::StatusOr<std::vector<deja::v1::Pipeline>> DejaClient::ListPipelines(
    const std::string& project, uint32_t limit) const {
  deja::v1::ListPipelinesRequest request;
  request.set_project(project);
  return PagedList(&deja::v1::Scheduler::Stub::ListPipelines, request,
                   limit == 0 ? kDefaultListLimit : limit,
                   &deja::v1::ListPipelinesResponse::mutable_pipelines);
}

absl::StatusOr<deja::v1::Pipeline> DejaClient::CancelPipeline(
    const std::string& pipeline_id) const {
  deja::v1::GetPipelineRequest request;
  request.set_pipeline_id(pipeline_id);
  return Unary<deja::v1::GetPipelineRequest, deja::v1::Pipeline>(
      &deja::v1::Scheduler::Stub::CancelPipeline, request);
}

absl::StatusOr<deja::v1::Pipeline> DejaClient::RetryPipeline(const std::string& pipeline_id,
                                                             const std::string& node) const {
  deja::v1::RetryPipelineRequest request;
  request.set_pipeline_id(pipeline_id);
  request.set_node(node);
  return Unary<deja::v1::RetryPipelineRequest, deja::v1::Pipeline>(
      &deja::v1::Scheduler::Stub::RetryPipeline, request);
}

absl::StatusOr<deja::v1::PipelinePlan> DejaClient::PlanPipeline(
    const deja::v1::SubmitPipelineRequest& request) const {
  return Unary<deja::v1::SubmitPipelineRequest, deja::v1::PipelinePlan>(
      &deja::v1::Scheduler::Stub::PlanPipeline, request);
}

}  // namespace deja
