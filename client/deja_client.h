// DejaClient: the client side of the Scheduler API (protos/deja/v1/scheduler.proto),
// shared by every `deja` CLI command and by the integration tests.
//
// Thread-compatible: one DejaClient may be used from several threads only if
// the caller serializes calls to set_rpc_timeout(); the RPC methods themselves
// are const with respect to client state and may run concurrently.
//
// Errors: every method returns the scheduler's gRPC status converted with
// deja::FromGrpcStatus (same code, same message). A scheduler that cannot be
// reached gives UNAVAILABLE; a unary call that takes longer than rpc_timeout
// gives DEADLINE_EXCEEDED.
#ifndef DEJA_CLIENT_DEJA_CLIENT_H_
#define DEJA_CLIENT_DEJA_CLIENT_H_

#include <google/protobuf/repeated_ptr_field.h>
#include <grpcpp/channel.h>
#include <grpcpp/client_context.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/call_once.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/blob_client.h"
#include "common/credentials.h"
#include "deja/v1/job.pb.h"
#include "deja/v1/scheduler.grpc.pb.h"
#include "grpc/health/v1/health.grpc.pb.h"

namespace deja {

inline constexpr absl::Duration kDefaultRpcTimeout = absl::Seconds(30);

struct DejaClientOptions {
  // Deadline of every unary call (Submit, GetJob, ListJobs, CancelJob, each
  // ReadLogs chunk, ListWorkers, the project, memo, Explain and Stats calls,
  // the pipeline calls other than the watch).
  // Watches have no deadline unless stated.
  absl::Duration rpc_timeout = kDefaultRpcTimeout;
  // How the channel is secured: TLS unless `insecure`, with the token sent
  // on every call (common/credentials.h).
  ClientSecurity security;
};

class DejaClient {
 public:
  // Connects lazily to `target` ("host:port") as options.security says; the
  // constructor never fails, an unreachable scheduler shows up as UNAVAILABLE
  // on the first call. The channel itself, and with it gRPC's threads, is
  // created on the first call that needs it, so a command that never talks
  // to the scheduler (`deja submit --dry-run`) does not start gRPC at all.
  explicit DejaClient(const std::string& target, const DejaClientOptions& options = {});
  // Uses an existing channel (e.g. an in-process server in tests). `target` is
  // only used in messages.
  DejaClient(std::shared_ptr<grpc::ChannelInterface> channel, std::string target,
             const DejaClientOptions& options = {});

  DejaClient(const DejaClient&) = delete;
  DejaClient& operator=(const DejaClient&) = delete;

  const std::string& target() const { return target_; }
  absl::Duration rpc_timeout() const { return options_.rpc_timeout; }
  const ClientSecurity& security() const { return options_.security; }
  void set_rpc_timeout(absl::Duration timeout) { options_.rpc_timeout = timeout; }

  // Submits `spec` as is (the scheduler normalizes and validates it; an
  // invalid spec is INVALID_ARGUMENT naming the field). Idempotent by
  // spec.request_id within a project.
  absl::StatusOr<deja::v1::SubmitResponse> Submit(const deja::v1::JobSpec& spec) const;

  // A job array (scheduler.proto's SubmitArray): every element in one call,
  // one commit, one reply. Idempotent by request.spec.request_id.
  absl::StatusOr<deja::v1::SubmitArrayResponse> SubmitArray(
      const deja::v1::SubmitArrayRequest& request) const;
  // NOT_FOUND when no such array.
  absl::StatusOr<deja::v1::JobArray> GetArray(const std::string& array_id) const;

  // NOT_FOUND when no such job.
  absl::StatusOr<deja::v1::Job> GetJob(const std::string& job_id) const;

  // Streams the job: `on_update` (may be empty) is called with the job as it
  // is now, then after every change, on the calling thread. Returns the last
  // job received when the job reaches a terminal state or the server ends the
  // stream (the returned job may then be non-terminal). Returns the stream's
  // error if it breaks (e.g. UNAVAILABLE when the scheduler restarts) — the
  // caller has seen every update through `on_update` and may watch again.
  // INTERNAL when the stream ends cleanly without sending anything.
  absl::StatusOr<deja::v1::Job> WatchJob(
      const std::string& job_id, const std::function<void(const deja::v1::Job&)>& on_update) const;

  // Watches until the job is terminal and returns it. A broken stream
  // (UNAVAILABLE and other transient codes) is re-watched with backoff until
  // `timeout` has passed. DEADLINE_EXCEEDED ("job j12 did not finish within
  // 30s (last state RUNNING)") when the time runs out; other errors
  // (NOT_FOUND...) are returned at once.
  absl::StatusOr<deja::v1::Job> WaitForJob(const std::string& job_id, absl::Duration timeout) const;

  // The newest `limit` jobs (0: 1000), oldest first, asked for a page at a
  // time (each response stays under the message size limit). `project`
  // empty: every project. `state` JOB_STATE_UNSPECIFIED: every state.
  absl::StatusOr<std::vector<deja::v1::Job>> ListJobs(const std::string& project,
                                                      deja::v1::JobState state,
                                                      uint32_t limit) const;
  static constexpr uint32_t kDefaultListLimit = 1000;

  // Up to `limit` (0: every one) of the newest jobs `request` matches
  // (request.limit and page_token are set here; start from `cursor`, a
  // `next_cursor` returned before, to continue), oldest first, a page at a
  // time; `next_cursor` is empty when no older job matches.
  struct JobPage {
    std::vector<deja::v1::Job> jobs;
    std::string next_cursor;
  };
  absl::StatusOr<JobPage> ListJobPage(deja::v1::ListJobsRequest request, uint32_t limit,
                                      const std::string& cursor) const;

  // One page of a finished job's files (`page_token` empty: the first;
  // `page_size` 0: the scheduler's default, 1000).
  absl::StatusOr<deja::v1::ListJobFilesResponse> ListJobFiles(const std::string& job_id,
                                                              const std::string& page_token,
                                                              uint32_t page_size) const;

  // Returns the job after the cancel request (CANCELLED, or its terminal
  // state if it had already ended).
  absl::StatusOr<deja::v1::Job> CancelJob(const std::string& job_id) const;
  // Cancels many (at most 10000) in one request and one commit.
  absl::StatusOr<deja::v1::CancelJobsResponse> CancelJobs(
      const std::vector<std::string>& job_ids) const;

  // Reads the whole log file by looping ReadLogs with increasing offsets until
  // eof (or an empty chunk). Each chunk has its own rpc_timeout deadline.
  absl::StatusOr<std::string> ReadLogs(const std::string& job_id, deja::v1::LogStream stream) const;
  // The same, handing each chunk to `on_chunk` instead of keeping the whole
  // log in memory, from byte `from` on. Returns the offset reached (a
  // running job's log grows: call again from there).
  absl::StatusOr<uint64_t> StreamLogs(const std::string& job_id, deja::v1::LogStream stream,
                                      const std::function<void(absl::string_view)>& on_chunk,
                                      uint64_t from = 0) const;
  // The last `bytes` (at most) of a log: two calls, one for its size.
  absl::StatusOr<std::string> ReadLogTail(const std::string& job_id, deja::v1::LogStream stream,
                                          uint32_t bytes) const;

  absl::StatusOr<std::vector<deja::v1::WorkerInfo>> ListWorkers() const;

  // grpc.health.v1 Check of the server at `target` ("host:port"; empty: the
  // scheduler), with this client's security and deadline. `identity`, if
  // set, is the client certificate presented (a worker's peer port takes
  // only callers with one). The server's answer, or why there was none.
  absl::StatusOr<grpc::health::v1::HealthCheckResponse::ServingStatus> CheckHealth(
      const std::string& target, const tls::KeyCert& identity = {}) const;

  // Project settings (memoization on/off, intermediate files retention). A
  // project never set has the defaults (on, 24 h).
  absl::StatusOr<deja::v1::ProjectSettings> GetProject(const std::string& project) const;
  // Changes the fields `request` sets and returns the settings after the
  // change. INVALID_ARGUMENT (the scheduler's message names the field and its
  // range) on a bad value.
  absl::StatusOr<deja::v1::ProjectSettings> SetProject(
      const deja::v1::SetProjectRequest& request) const;

  // Tokens and the audit log (docs/security.md).
  absl::StatusOr<deja::v1::CreateTokenResponse> CreateToken(
      const deja::v1::CreateTokenRequest& request) const;
  absl::StatusOr<deja::v1::ListTokensResponse> ListTokens(bool include_revoked) const;
  absl::StatusOr<deja::v1::Token> RevokeToken(const std::string& id) const;
  absl::StatusOr<deja::v1::ListAuditResponse> ListAudit(
      const deja::v1::ListAuditRequest& request) const;

  // Images without a registry (docs/containers.md).
  absl::StatusOr<deja::v1::ImageRecord> PushImage(const deja::v1::PushImageRequest& request) const;
  absl::StatusOr<deja::v1::ListImagesResponse> ListImages() const;

  // The memo index, oldest first, asked for a page at a time. `project` /
  // `app_name` empty: every one; `limit` 0: no limit.
  absl::StatusOr<std::vector<deja::v1::MemoEntry>> ListMemo(const std::string& project,
                                                            const std::string& app_name,
                                                            uint32_t limit) const;
  // One entry, by project + job_hash or by job_id. NOT_FOUND when none.
  absl::StatusOr<deja::v1::MemoEntry> GetMemo(const deja::v1::GetMemoRequest& request) const;
  // Evicts the entries `request` selects: how many, and the newest of them
  // (as many as fit one response).
  absl::StatusOr<deja::v1::EvictMemoResponse> EvictMemo(
      const deja::v1::EvictMemoRequest& request) const;

  // Why the job was or was not reused.
  absl::StatusOr<deja::v1::ExplainResponse> Explain(const std::string& job_id) const;
  // Jobs, reuses and time saved per app. `project` empty: every project;
  // `since_ms` 0: every job.
  absl::StatusOr<deja::v1::StatsResponse> Stats(const std::string& project, int64_t since_ms) const;

  // Pipelines (protos/deja/v1/pipeline.proto). SubmitPipeline stores the
  // pipeline and starts it; INVALID_ARGUMENT names the node and field at
  // fault. Idempotent by request.request_id within a project.
  absl::StatusOr<deja::v1::Pipeline> SubmitPipeline(
      const deja::v1::SubmitPipelineRequest& request) const;
  // NOT_FOUND when no such pipeline.
  absl::StatusOr<deja::v1::Pipeline> GetPipeline(const std::string& pipeline_id) const;
  // Streams the pipeline like WatchJob: `on_update` (may be empty) gets the
  // pipeline as it is now, then every change, on the calling thread. Returns
  // the last pipeline received once it has ended (state other than
  // PIPELINE_RUNNING) or the server closed the stream; the stream's error if
  // it breaks (the caller may watch again); INTERNAL when the stream ends
  // cleanly without sending anything.
  absl::StatusOr<deja::v1::Pipeline> WatchPipeline(
      const std::string& pipeline_id,
      const std::function<void(const deja::v1::Pipeline&)>& on_update) const;
  // Watches until the pipeline has ended and returns it, re-watching a
  // broken stream with backoff, like WaitForJob. DEADLINE_EXCEEDED when
  // `timeout` passes first.
  absl::StatusOr<deja::v1::Pipeline> WaitForPipeline(const std::string& pipeline_id,
                                                     absl::Duration timeout) const;
  // The newest `limit` (0: 1000), oldest first, a page at a time. `project`
  // empty: every project.
  absl::StatusOr<std::vector<deja::v1::Pipeline>> ListPipelines(const std::string& project,
                                                                uint32_t limit) const;
  // Returns the pipeline after the cancel request.
  absl::StatusOr<deja::v1::Pipeline> CancelPipeline(const std::string& pipeline_id) const;
  // `node` empty: every node that did not succeed; else that node and what
  // depends on it. FAILED_PRECONDITION while the pipeline still runs.
  absl::StatusOr<deja::v1::Pipeline> RetryPipeline(const std::string& pipeline_id,
                                                   const std::string& node) const;
  // Which nodes SubmitPipeline would reuse and which it would run; submits
  // nothing.
  absl::StatusOr<deja::v1::PipelinePlan> PlanPipeline(
      const deja::v1::SubmitPipelineRequest& request) const;

  // The content store (protos/deja/v1/content.proto), served by the
  // scheduler on the same channel. Its unary calls use the rpc_timeout given
  // at construction.
  // Creates the channel if no call has yet.
  const BlobClient& blobs() const { return Connection().blobs; }

  // True when the channel currently has a live connection to the scheduler
  // (false when no call has created it yet). Tells "the scheduler answered
  // UNAVAILABLE" apart from "no connection".
  bool Connected() const;

 private:
  // One ReadLogs call (limit 0: the maximum).
  absl::StatusOr<deja::v1::ReadLogsResponse> ReadLogChunk(const std::string& job_id,
                                                          deja::v1::LogStream stream,
                                                          uint64_t offset, uint32_t limit) const;
  struct Conn {
    std::shared_ptr<grpc::ChannelInterface> channel;
    std::unique_ptr<deja::v1::Scheduler::Stub> stub;
    BlobClient blobs;
  };
  // The channel, stub and blob client, created on the first use (thread-safe).
  const Conn& Connection() const;
  deja::v1::Scheduler::Stub* stub() const { return Connection().stub.get(); }

  // Sets the unary deadline on `context`.
  void SetDeadline(grpc::ClientContext* context) const;
  // One unary call with the rpc_timeout deadline.
  template <typename Request, typename Response, typename Method>
  absl::StatusOr<Response> Unary(Method method, const Request& request) const;
  // One unary call whose response is a list (the repeated field `items` of
  // the response, e.g. &ListJobsResponse::mutable_jobs), returned as a
  // vector: the unpaged list calls (ListWorkers) go through here.
  template <typename Request, typename Response, typename Item, typename Method>
  absl::StatusOr<std::vector<Item>> UnaryList(
      Method method, const Request& request,
      google::protobuf::RepeatedPtrField<Item>* (Response::*items)()) const;
  // One server stream of snapshots of the `what` ("job", "pipeline") named
  // `id`, ending at `deadline` at the latest, or as soon as `done` holds for
  // a snapshot (the call is then cancelled: nothing follows). Each snapshot
  // goes to `on_update` (may be empty). Returns the last snapshot when it is
  // done or the server closed the stream cleanly; else the stream's error;
  // INTERNAL when the stream ended cleanly without a snapshot.
  // A list RPC with pages (ListJobs, ListMemo, ListPipelines): asks again
  // with each next_page_token until `limit` (0: all) items came, and returns
  // them oldest first. `next_token` (if given) gets the last page's
  // next_page_token: where a listing that stopped at `limit` continues.
  template <typename Item, typename Request, typename Response, typename Method>
  absl::StatusOr<std::vector<Item>> PagedList(
      Method method, Request request, uint32_t limit,
      google::protobuf::RepeatedPtrField<Item>* (Response::*items)(),
      std::string* next_token = nullptr) const;
  template <typename Item, typename Request, typename Method>
  absl::StatusOr<Item> WatchStream(Method method, const Request& request, absl::Time deadline,
                                   bool (*done)(const Item&),
                                   const std::function<void(const Item&)>& on_update,
                                   absl::string_view what, const std::string& id) const;
  // One pipeline watch stream, ending at `deadline` at the latest.
  absl::StatusOr<deja::v1::Pipeline> WatchPipelineUntil(
      const std::string& pipeline_id, absl::Time deadline,
      const std::function<void(const deja::v1::Pipeline&)>& on_update) const;
  // One watch stream, ending at `deadline` at the latest.
  absl::StatusOr<deja::v1::Job> WatchUntil(
      const std::string& job_id, absl::Time deadline,
      const std::function<void(const deja::v1::Job&)>& on_update) const;

  // Constant after construction.
  const std::string target_;
  // The channel given to the constructor; null: make one to target_.
  const std::shared_ptr<grpc::ChannelInterface> given_channel_;
  // The blob client's deadline (rpc_timeout at construction).
  const absl::Duration blob_rpc_timeout_;

  // Set once, by Connection() under connect_once_; constant afterwards.
  mutable absl::once_flag connect_once_;
  mutable std::unique_ptr<Conn> conn_;
  // True once conn_ is set; lets Connected() look without creating it.
  mutable std::atomic<bool> connected_once_{false};

  DejaClientOptions options_;
};

// True for a pipeline that has ended: SUCCEEDED, FAILED or CANCELLED.
bool IsPipelineDone(deja::v1::PipelineState state);

// True for the codes a broken watch stream ends with when the scheduler
// restarts or the network blips (UNAVAILABLE, INTERNAL, UNKNOWN, ABORTED,
// CANCELLED, RESOURCE_EXHAUSTED, DEADLINE_EXCEEDED): watching again may work.
bool IsRetryableWatchError(const absl::Status& status);

}  // namespace deja

#endif  // DEJA_CLIENT_DEJA_CLIENT_H_
