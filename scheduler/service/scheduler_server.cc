#include "scheduler/service/scheduler_server.h"

#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>

#include <cstdio>
#include <cstdlib>
#include <thread>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/grpc_status.h"
#include "common/hash.h"
#include "common/job_spec.h"
#include "common/job_state.h"
#include "common/transfer_window.h"
#include "deja/v1/scheduler.grpc.pb.h"
#include "deja/v1/worker.grpc.pb.h"
#include "scheduler/content/blob_store.h"
#include "scheduler/content/content_service.h"
#include "scheduler/service/stream_outbox.h"
#include "scheduler/store/rocks_store.h"

namespace deja {
namespace {

using deja::v1::Job;
using WorkerOutbox = StreamOutbox<deja::v1::SchedulerMessage>;
using WatchOutbox = StreamOutbox<Job>;
using PipelineOutbox = StreamOutbox<deja::v1::Pipeline>;

constexpr uint32_t kMaxLogChunk = 1 << 20;
constexpr absl::Duration kLogRequestTimeout = absl::Seconds(30);
constexpr int kMaxMessageBytes = 64 << 20;

class ServerImpl;

// The core's view of the content store.
class StoreBlobIndex : public BlobIndex {
 public:
  explicit StoreBlobIndex(BlobStore* blobs) : blobs_(blobs) {}
  bool Has(const std::string& digest, uint64_t size) override {
    deja::v1::BlobRef ref;
    ref.set_digest(digest);
    ref.set_size(size);
    return blobs_->Has(ref);
  }
  absl::Status Put(const std::string& bytes) override {
    deja::v1::BlobRef ref;
    ref.set_digest(HashBytes(bytes));
    ref.set_size(bytes.size());
    if (blobs_->Has(ref)) return absl::OkStatus();
    auto writer = blobs_->BeginWrite(ref);
    if (!writer.ok()) return writer.status();
    if (absl::Status s = (*writer)->Append(bytes); !s.ok()) return s;
    return (*writer)->Commit().status();
  }

 private:
  BlobStore* const blobs_;
};

// One worker's Connect stream. Deletes itself in OnDone.
class WorkerStream : public grpc::ServerBidiReactor<deja::v1::WorkerMessage,
                                                    deja::v1::SchedulerMessage> {
 public:
  explicit WorkerStream(ServerImpl* server);
  void OnReadDone(bool ok) override;
  void OnWriteDone(bool ok) override { outbox_->OnWriteDone(ok); }
  void OnDone() override;

 private:
  ServerImpl* const server_;
  const std::shared_ptr<WorkerOutbox> outbox_;
  deja::v1::WorkerMessage in_;
  bool registered_ = false;  // only touched by OnReadDone, which never overlaps itself
};

// One WatchJob or WatchPipeline stream of `Message`s about the record `id`.
// Deletes itself in OnDone, after telling the server.
template <typename Message>
class RecordWatchStream : public grpc::ServerWriteReactor<Message> {
 public:
  RecordWatchStream(ServerImpl* server, std::string id)
      : server_(server),
        id_(std::move(id)),
        outbox_(std::make_shared<StreamOutbox<Message>>(
            [this](const Message* m) { this->StartWrite(m); },
            [this](const grpc::Status& s) { this->Finish(s); })) {}
  const std::shared_ptr<StreamOutbox<Message>>& outbox() const { return outbox_; }
  void OnWriteDone(bool ok) override { outbox_->OnWriteDone(ok); }
  void OnCancel() override { outbox_->Finish(grpc::Status::CANCELLED); }
  void OnDone() override;

 private:
  ServerImpl* const server_;
  const std::string id_;
  const std::shared_ptr<StreamOutbox<Message>> outbox_;
};
using WatchStream = RecordWatchStream<Job>;
using PipelineWatchStream = RecordWatchStream<deja::v1::Pipeline>;

class ServerImpl final : public SchedulerServer,
                         public deja::v1::Scheduler::CallbackService,
                         public deja::v1::WorkerService::CallbackService {
 public:
  ServerImpl(const SchedulerConfig& config, Clock* clock, std::unique_ptr<RocksStore> store,
             std::unique_ptr<BlobStore> blobs)
      : config_(config),
        clock_(clock),
        store_(std::move(store)),
        blobs_(std::move(blobs)),
        blob_index_(blobs_.get()),
        content_(blobs_.get()),
        core_(config.core, &blob_index_, store_.get()) {}

  ~ServerImpl() override { Shutdown(); }

  absl::Status Init() {
    // Streams the store: only what the core keeps in memory stays.
    if (auto s = core_.LoadFromStore(clock_->Now()); !s.ok()) return s;
    std::fprintf(stderr, "deja-scheduler: restored state from %s\n", config_.data_dir.c_str());
    core_.ResumePipelines(clock_->Now(), &fx_);  // committed by the loop's first round

    grpc::EnableDefaultHealthCheckService(true);
    grpc::ServerBuilder builder;
    builder.AddListeningPort(config_.listen, grpc::InsecureServerCredentials(), &port_);
    builder.SetMaxReceiveMessageSize(kMaxMessageBytes);
    builder.SetMaxSendMessageSize(kMaxMessageBytes);
    BoundTransferWindow(&builder);  // uploads stay small whatever the blob size
    builder.RegisterService(static_cast<deja::v1::Scheduler::CallbackService*>(this));
    builder.RegisterService(static_cast<deja::v1::WorkerService::CallbackService*>(this));
    builder.RegisterService(&content_);
    server_ = builder.BuildAndStart();
    if (server_ == nullptr || port_ == 0) {
      return absl::UnavailableError(absl::StrCat("cannot listen on ", config_.listen));
    }
    next_tick_ = clock_->Now();
    loop_ = std::thread([this] { Loop(); });
    return absl::OkStatus();
  }

  int port() const override { return port_; }

  void Wait() override {
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(&shut_down_));
  }

  void Shutdown() override {
    {
      absl::MutexLock lock(&mu_);
      if (shutting_down_) {
        mu_.Await(absl::Condition(&shut_down_));
        return;
      }
      shutting_down_ = true;
    }
    // The loop keeps running while gRPC cancels the streams, so that every
    // pending call is finished.
    if (server_ != nullptr) {
      server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
    }
    {
      absl::MutexLock lock(&mu_);
      stop_ = true;
    }
    if (loop_.joinable()) loop_.join();
    absl::MutexLock lock(&mu_);
    shut_down_ = true;
  }

  // Runs `fn` on the loop thread. Any thread.
  void Post(std::function<void()> fn) {
    absl::MutexLock lock(&mu_);
    pending_.push_back(std::move(fn));
  }

  // --- Scheduler service (reactions: post and return) -----------------------

  grpc::ServerUnaryReactor* Submit(grpc::CallbackServerContext* ctx,
                                   const deja::v1::SubmitRequest* request,
                                   deja::v1::SubmitResponse* response) override {
    auto* reactor = ctx->DefaultReactor();
    Post([this, reactor, request, response] {
      auto result = core_.Submit(request->spec(), clock_->Now(), &fx_);
      if (result.ok()) *response = *std::move(result);
      FinishAfterCommit(reactor, result.status());
    });
    return reactor;
  }

  grpc::ServerUnaryReactor* GetJob(grpc::CallbackServerContext* ctx,
                                   const deja::v1::GetJobRequest* request,
                                   Job* response) override {
    auto* reactor = ctx->DefaultReactor();
    Post([this, reactor, request, response] {
      auto job = core_.GetJob(request->job_id());
      if (job.ok()) *response = *std::move(job);
      FinishAfterCommit(reactor, job.status());
    });
    return reactor;
  }

  grpc::ServerWriteReactor<Job>* WatchJob(grpc::CallbackServerContext* /*ctx*/,
                                          const deja::v1::GetJobRequest* request) override {
    auto* stream = new WatchStream(this, request->job_id());
    std::shared_ptr<WatchOutbox> outbox = stream->outbox();
    std::string job_id = request->job_id();
    Post([this, outbox, job_id] {
      auto job = core_.GetJob(job_id);
      if (!job.ok()) {
        after_commit_.push_back([outbox, s = job.status()] { outbox->Finish(ToGrpcStatus(s)); });
        return;
      }
      if (IsTerminal(job->state())) {
        after_commit_.push_back([outbox, j = *job] { outbox->SendAndFinish(j); });
        return;
      }
      watchers_[job_id].push_back(outbox);
      after_commit_.push_back([outbox, j = *job] { outbox->Send(j); });
    });
    return stream;
  }

  grpc::ServerUnaryReactor* ListJobs(grpc::CallbackServerContext* ctx,
                                     const deja::v1::ListJobsRequest* request,
                                     deja::v1::ListJobsResponse* response) override {
    auto* reactor = ctx->DefaultReactor();
    Post([this, reactor, request, response] {
      size_t limit = request->limit() == 0 ? 1000 : request->limit();
      auto jobs = core_.ListJobs(request->project(), request->state(), limit);
      if (jobs.ok()) {
        for (auto& job : *jobs) *response->add_jobs() = std::move(job);
      }
      FinishAfterCommit(reactor, jobs.status());
    });
    return reactor;
  }

  grpc::ServerUnaryReactor* CancelJob(grpc::CallbackServerContext* ctx,
                                      const deja::v1::GetJobRequest* request,
                                      Job* response) override {
    auto* reactor = ctx->DefaultReactor();
    Post([this, reactor, request, response] {
      auto job = core_.CancelJob(request->job_id(), clock_->Now(), &fx_);
      if (job.ok()) *response = *std::move(job);
      FinishAfterCommit(reactor, job.status());
    });
    return reactor;
  }

  grpc::ServerUnaryReactor* ReadLogs(grpc::CallbackServerContext* ctx,
                                     const deja::v1::ReadLogsRequest* request,
                                     deja::v1::ReadLogsResponse* response) override {
    auto* reactor = ctx->DefaultReactor();
    Post([this, reactor, request, response] {
      auto holder = core_.WorkspaceHolder(request->job_id());
      if (!holder.ok()) {
        FinishAfterCommit(reactor, holder.status());
        return;
      }
      uint64_t id = ++next_log_request_;
      pending_logs_[id] = PendingLog{*holder, reactor, response,
                                     clock_->Now() + kLogRequestTimeout};
      deja::v1::SchedulerMessage msg;
      auto* req = msg.mutable_log_request();
      req->set_request_id(id);
      req->set_job_id(request->job_id());
      req->set_stream(request->stream());
      req->set_offset(request->offset());
      req->set_limit(request->limit() == 0 || request->limit() > kMaxLogChunk ? kMaxLogChunk
                                                                            : request->limit());
      fx_.to_workers.emplace_back(*holder, std::move(msg));
    });
    return reactor;
  }

  grpc::ServerUnaryReactor* ListWorkers(grpc::CallbackServerContext* ctx,
                                        const deja::v1::ListWorkersRequest* /*request*/,
                                        deja::v1::ListWorkersResponse* response) override {
    auto* reactor = ctx->DefaultReactor();
    Post([this, reactor, response] {
      for (auto& info : core_.ListWorkers()) *response->add_workers() = std::move(info);
      FinishAfterCommit(reactor, absl::OkStatus());
    });
    return reactor;
  }

  grpc::ServerUnaryReactor* GetProject(grpc::CallbackServerContext* ctx,
                                       const deja::v1::GetProjectRequest* request,
                                       deja::v1::ProjectSettings* response) override {
    return Unary(ctx, [this, request, response] {
      if (auto s = ValidateName("project", request->project()); !s.ok()) return s;
      *response = core_.GetProject(request->project());
      return absl::OkStatus();
    });
  }

  grpc::ServerUnaryReactor* SetProject(grpc::CallbackServerContext* ctx,
                                       const deja::v1::SetProjectRequest* request,
                                       deja::v1::ProjectSettings* response) override {
    return Unary(ctx, [this, request, response] {
      auto settings = core_.SetProject(*request, clock_->Now(), &fx_);
      if (settings.ok()) *response = *std::move(settings);
      return settings.status();
    });
  }

  grpc::ServerUnaryReactor* ListMemo(grpc::CallbackServerContext* ctx,
                                     const deja::v1::ListMemoRequest* request,
                                     deja::v1::ListMemoResponse* response) override {
    return Unary(ctx, [this, request, response] {
      auto entries = core_.ListMemo(*request);
      if (!entries.ok()) return entries.status();
      for (auto& entry : *entries) *response->add_entries() = std::move(entry);
      return absl::OkStatus();
    });
  }

  grpc::ServerUnaryReactor* GetMemo(grpc::CallbackServerContext* ctx,
                                    const deja::v1::GetMemoRequest* request,
                                    deja::v1::MemoEntry* response) override {
    return Unary(ctx, [this, request, response] {
      auto entry = core_.GetMemo(*request);
      if (entry.ok()) *response = *std::move(entry);
      return entry.status();
    });
  }

  grpc::ServerUnaryReactor* EvictMemo(grpc::CallbackServerContext* ctx,
                                      const deja::v1::EvictMemoRequest* request,
                                      deja::v1::EvictMemoResponse* response) override {
    return Unary(ctx, [this, request, response] {
      auto evicted = core_.EvictMemo(*request, &fx_);
      if (evicted.ok()) *response = *std::move(evicted);
      return evicted.status();
    });
  }

  grpc::ServerUnaryReactor* Explain(grpc::CallbackServerContext* ctx,
                                    const deja::v1::GetJobRequest* request,
                                    deja::v1::ExplainResponse* response) override {
    return Unary(ctx, [this, request, response] {
      auto explained = core_.Explain(request->job_id(), clock_->Now());
      if (explained.ok()) *response = *std::move(explained);
      return explained.status();
    });
  }

  grpc::ServerUnaryReactor* Stats(grpc::CallbackServerContext* ctx,
                                  const deja::v1::StatsRequest* request,
                                  deja::v1::StatsResponse* response) override {
    return Unary(ctx, [this, request, response] {
      auto stats = core_.Stats(*request);
      if (stats.ok()) *response = *std::move(stats);
      return stats.status();
    });
  }

  grpc::ServerUnaryReactor* SubmitPipeline(grpc::CallbackServerContext* ctx,
                                           const deja::v1::SubmitPipelineRequest* request,
                                           deja::v1::Pipeline* response) override {
    return Unary(ctx, [this, request, response] {
      auto p = core_.SubmitPipeline(*request, clock_->Now(), &fx_);
      if (p.ok()) *response = *std::move(p);
      return p.status();
    });
  }

  grpc::ServerUnaryReactor* GetPipeline(grpc::CallbackServerContext* ctx,
                                        const deja::v1::GetPipelineRequest* request,
                                        deja::v1::Pipeline* response) override {
    return Unary(ctx, [this, request, response] {
      auto p = core_.GetPipeline(request->pipeline_id());
      if (p.ok()) *response = *std::move(p);
      return p.status();
    });
  }

  grpc::ServerUnaryReactor* ListPipelines(grpc::CallbackServerContext* ctx,
                                          const deja::v1::ListPipelinesRequest* request,
                                          deja::v1::ListPipelinesResponse* response) override {
    return Unary(ctx, [this, request, response] {
      size_t limit = request->limit() == 0 ? 1000 : request->limit();
      for (auto& p : core_.ListPipelines(request->project(), limit)) {
        *response->add_pipelines() = std::move(p);
      }
      return absl::OkStatus();
    });
  }

  grpc::ServerUnaryReactor* CancelPipeline(grpc::CallbackServerContext* ctx,
                                           const deja::v1::GetPipelineRequest* request,
                                           deja::v1::Pipeline* response) override {
    return Unary(ctx, [this, request, response] {
      auto p = core_.CancelPipeline(request->pipeline_id(), clock_->Now(), &fx_);
      if (p.ok()) *response = *std::move(p);
      return p.status();
    });
  }

  grpc::ServerUnaryReactor* RetryPipeline(grpc::CallbackServerContext* ctx,
                                          const deja::v1::RetryPipelineRequest* request,
                                          deja::v1::Pipeline* response) override {
    return Unary(ctx, [this, request, response] {
      auto p = core_.RetryPipeline(*request, clock_->Now(), &fx_);
      if (p.ok()) *response = *std::move(p);
      return p.status();
    });
  }

  grpc::ServerUnaryReactor* PlanPipeline(grpc::CallbackServerContext* ctx,
                                         const deja::v1::SubmitPipelineRequest* request,
                                         deja::v1::PipelinePlan* response) override {
    return Unary(ctx, [this, request, response] {
      auto plan = core_.PlanPipeline(*request, clock_->Now());
      if (plan.ok()) *response = *std::move(plan);
      return plan.status();
    });
  }

  grpc::ServerWriteReactor<deja::v1::Pipeline>* WatchPipeline(
      grpc::CallbackServerContext* /*ctx*/, const deja::v1::GetPipelineRequest* request) override {
    auto* stream = new PipelineWatchStream(this, request->pipeline_id());
    std::shared_ptr<PipelineOutbox> outbox = stream->outbox();
    std::string id = request->pipeline_id();
    Post([this, outbox, id] {
      auto p = core_.GetPipeline(id);
      if (!p.ok()) {
        after_commit_.push_back([outbox, s = p.status()] { outbox->Finish(ToGrpcStatus(s)); });
        return;
      }
      if (p->state() != deja::v1::PIPELINE_RUNNING) {
        after_commit_.push_back([outbox, pl = *p] { outbox->SendAndFinish(pl); });
        return;
      }
      pipeline_watchers_[id].push_back(outbox);
      after_commit_.push_back([outbox, pl = *p] { outbox->Send(pl); });
    });
    return stream;
  }

  void OnPipelineWatchDone(PipelineOutbox* outbox, const std::string& id) {
    auto it = pipeline_watchers_.find(id);
    if (it == pipeline_watchers_.end()) return;
    std::erase_if(it->second, [outbox](const auto& w) { return w.get() == outbox; });
    if (it->second.empty()) pipeline_watchers_.erase(it);
  }

  // --- Worker service --------------------------------------------------------

  grpc::ServerBidiReactor<deja::v1::WorkerMessage, deja::v1::SchedulerMessage>* Connect(
      grpc::CallbackServerContext* /*ctx*/) override {
    return new WorkerStream(this);
  }

  // Loop-thread handlers of worker stream events.
  void OnWorkerRegister(const std::shared_ptr<WorkerOutbox>& outbox,
                        const deja::v1::Register& reg) {
    uint64_t session = ++next_session_;
    absl::Status s = core_.WorkerConnected(reg, session, clock_->Now(), &fx_);
    if (!s.ok()) {
      after_commit_.push_back([outbox, s] { outbox->Finish(ToGrpcStatus(s)); });
      return;
    }
    auto previous = sessions_.find(reg.worker_id());
    if (previous != sessions_.end()) {
      std::shared_ptr<WorkerOutbox> old = previous->second.outbox;
      by_outbox_.erase(old.get());
      after_commit_.push_back([old] {
        old->Finish(grpc::Status(grpc::StatusCode::ABORTED, "replaced by a newer connection"));
      });
    }
    sessions_[reg.worker_id()] = Session{session, outbox};
    by_outbox_[outbox.get()] = {reg.worker_id(), session};
    std::fprintf(stderr, "deja-scheduler: worker %s connected (%u slots, %d jobs held)\n",
                 reg.worker_id().c_str(), reg.slots(), reg.held_size());
  }

  void OnWorkerMessage(WorkerOutbox* outbox, const deja::v1::WorkerMessage& msg) {
    auto it = by_outbox_.find(outbox);
    if (it == by_outbox_.end()) return;  // superseded or rejected stream
    const auto& [worker_id, session] = it->second;
    if (msg.has_log_data()) {
      OnLogData(msg.log_data());
      core_.WorkerMessage(worker_id, session, deja::v1::WorkerMessage(), clock_->Now(), &fx_);
      return;
    }
    core_.WorkerMessage(worker_id, session, msg, clock_->Now(), &fx_);
  }

  void OnWorkerGone(WorkerOutbox* outbox) {
    auto it = by_outbox_.find(outbox);
    if (it == by_outbox_.end()) return;
    auto [worker_id, session] = it->second;
    by_outbox_.erase(it);
    auto s = sessions_.find(worker_id);
    if (s != sessions_.end() && s->second.session == session) sessions_.erase(s);
    core_.WorkerDisconnected(worker_id, session, clock_->Now());
    FailLogs(worker_id, absl::UnavailableError(
                            absl::StrCat("worker ", worker_id, " disconnected")));
    std::fprintf(stderr, "deja-scheduler: worker %s disconnected\n", worker_id.c_str());
  }

  void OnWatchDone(WatchOutbox* outbox, const std::string& job_id) {
    auto it = watchers_.find(job_id);
    if (it == watchers_.end()) return;
    std::erase_if(it->second, [outbox](const auto& w) { return w.get() == outbox; });
    if (it->second.empty()) watchers_.erase(it);
  }

 private:
  struct Session {
    uint64_t session;
    std::shared_ptr<WorkerOutbox> outbox;
  };
  struct PendingLog {
    std::string worker_id;
    grpc::ServerUnaryReactor* reactor;
    deja::v1::ReadLogsResponse* response;
    absl::Time deadline;
  };

  // A unary call: `fn` runs on the loop and its status finishes the call
  // after the round's commit.
  grpc::ServerUnaryReactor* Unary(grpc::CallbackServerContext* ctx,
                                  std::function<absl::Status()> fn) {
    auto* reactor = ctx->DefaultReactor();
    Post([this, reactor, fn = std::move(fn)] { FinishAfterCommit(reactor, fn()); });
    return reactor;
  }

  void FinishAfterCommit(grpc::ServerUnaryReactor* reactor, const absl::Status& status) {
    after_commit_.push_back([reactor, s = ToGrpcStatus(status)] { reactor->Finish(s); });
  }

  void OnLogData(const deja::v1::LogData& data) {
    auto it = pending_logs_.find(data.request_id());
    if (it == pending_logs_.end()) return;
    PendingLog pending = it->second;
    pending_logs_.erase(it);
    if (!data.error().empty()) {
      FinishAfterCommit(pending.reactor, absl::NotFoundError(data.error()));
      return;
    }
    pending.response->set_data(data.data());
    pending.response->set_eof(data.eof());
    FinishAfterCommit(pending.reactor, absl::OkStatus());
  }

  void FailLogs(const std::string& worker_id, const absl::Status& status) {
    for (auto it = pending_logs_.begin(); it != pending_logs_.end();) {
      if (worker_id.empty() || it->second.worker_id == worker_id) {
        FinishAfterCommit(it->second.reactor, status);
        it = pending_logs_.erase(it);
      } else {
        ++it;
      }
    }
  }

  void Tick(absl::Time now) {
    core_.Tick(now, &fx_);
    for (auto it = pending_logs_.begin(); it != pending_logs_.end();) {
      if (now >= it->second.deadline) {
        FinishAfterCommit(it->second.reactor,
                          absl::DeadlineExceededError(absl::StrCat(
                              "worker ", it->second.worker_id, " did not answer with the logs")));
        it = pending_logs_.erase(it);
      } else {
        ++it;
      }
    }
  }

  void Loop() {
    while (true) {
      std::vector<std::function<void()>> batch;
      {
        absl::MutexLock lock(&mu_);
        auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
          return !pending_.empty() || stop_;
        };
        mu_.AwaitWithTimeout(absl::Condition(&ready), absl::ToInt64Milliseconds(config_.tick) > 0
                                                          ? config_.tick
                                                          : absl::Milliseconds(100));
        batch.swap(pending_);
        if (stop_ && batch.empty()) break;
      }
      for (auto& fn : batch) fn();
      absl::Time now = clock_->Now();
      if (now >= next_tick_) {
        Tick(now);
        next_tick_ = now + config_.tick;
      }
      Flush();
    }
    FailLogs("", absl::UnavailableError("scheduler shutting down"));
    Flush();
  }

  // Commits, then acts: nothing leaves the process before it is durable.
  void Flush() {
    if (fx_.empty() && after_commit_.empty()) return;
    core_.SyncPipelines(clock_->Now(), &fx_);  // may add jobs: before the commit
    if (absl::Status s = store_->Commit(fx_, RoundTellsAnyone()); !s.ok()) {
      // The in-memory state is ahead of the disk; a restart recovers from
      // what was committed.
      std::fprintf(stderr, "deja-scheduler: FATAL: %s\n", s.ToString().c_str());
      std::abort();
    }
    core_.Committed(fx_);  // what it names may leave memory now
    Effects fx;
    fx.jobs.swap(fx_.jobs);
    fx.pipelines.swap(fx_.pipelines);
    fx.to_workers.swap(fx_.to_workers);
    fx.close_sessions.swap(fx_.close_sessions);
    fx_ = Effects();
    std::vector<std::function<void()>> after;
    after.swap(after_commit_);
    for (auto& fn : after) fn();
    for (auto& [worker_id, msg] : fx.to_workers) {
      auto it = sessions_.find(worker_id);
      if (it != sessions_.end()) it->second.outbox->Send(std::move(msg));
    }
    for (auto& [job_id, job] : fx.jobs) {
      auto it = watchers_.find(job_id);
      if (it == watchers_.end()) continue;
      if (IsTerminal(job.state())) {
        for (auto& w : it->second) w->SendAndFinish(job);
        watchers_.erase(it);
      } else {
        for (auto& w : it->second) w->Send(job);
      }
    }
    for (auto& [id, pipeline] : fx.pipelines) {
      auto it = pipeline_watchers_.find(id);
      if (it == pipeline_watchers_.end()) continue;
      if (pipeline.state() != deja::v1::PIPELINE_RUNNING) {
        for (auto& w : it->second) w->SendAndFinish(pipeline);
        pipeline_watchers_.erase(it);
      } else {
        for (auto& w : it->second) w->Send(pipeline);
      }
    }
    for (const auto& [worker_id, session] : fx.close_sessions) {
      auto it = sessions_.find(worker_id);
      if (it == sessions_.end() || it->second.session != session) continue;
      std::shared_ptr<WorkerOutbox> outbox = it->second.outbox;
      by_outbox_.erase(outbox.get());
      sessions_.erase(it);
      outbox->Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE, "heartbeats missed"));
    }
  }

  // Whether this round's commit must be durable before it is acted on: it
  // answers a client, sends to a worker or ends a stream, or a watcher will
  // see one of its changes. Otherwise (a worker's JobStarted, say) nothing
  // leaves the process, and the next durable commit syncs it with its own.
  bool RoundTellsAnyone() const {
    if (!after_commit_.empty() || !fx_.to_workers.empty() || !fx_.close_sessions.empty()) {
      return true;
    }
    for (const auto& [job_id, job] : fx_.jobs) {
      if (watchers_.contains(job_id)) return true;
    }
    for (const auto& [id, pipeline] : fx_.pipelines) {
      if (pipeline_watchers_.contains(id)) return true;
    }
    return false;
  }

  // Constant after construction.
  const SchedulerConfig config_;
  Clock* const clock_;
  // Writes to the store happen on the loop thread only; blobs_ uses its db.
  const std::unique_ptr<RocksStore> store_;
  const std::unique_ptr<BlobStore> blobs_;  // thread-safe
  StoreBlobIndex blob_index_;
  ContentService content_;  // sync handlers on gRPC's thread pool

  absl::Mutex mu_;
  std::vector<std::function<void()>> pending_ ABSL_GUARDED_BY(mu_);
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  bool shutting_down_ ABSL_GUARDED_BY(mu_) = false;
  bool shut_down_ ABSL_GUARDED_BY(mu_) = false;

  // Owned by the loop thread (after Init).
  SchedulerCore core_;
  Effects fx_;
  std::vector<std::function<void()>> after_commit_;
  absl::Time next_tick_;
  uint64_t next_session_ = 0;
  std::map<std::string, Session> sessions_;  // by worker id: the current stream
  absl::flat_hash_map<WorkerOutbox*, std::pair<std::string, uint64_t>> by_outbox_;
  absl::flat_hash_map<std::string, std::vector<std::shared_ptr<WatchOutbox>>> watchers_;
  absl::flat_hash_map<std::string, std::vector<std::shared_ptr<PipelineOutbox>>>
      pipeline_watchers_;
  uint64_t next_log_request_ = 0;
  std::map<uint64_t, PendingLog> pending_logs_;

  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
  std::thread loop_;
};

WorkerStream::WorkerStream(ServerImpl* server)
    : server_(server),
      outbox_(std::make_shared<WorkerOutbox>(
          [this](const deja::v1::SchedulerMessage* msg) { StartWrite(msg); },
          [this](const grpc::Status& s) { Finish(s); })) {
  StartRead(&in_);
}

void WorkerStream::OnReadDone(bool ok) {
  if (!ok) {
    outbox_->Finish(grpc::Status::OK);
    return;
  }
  auto msg = std::make_shared<deja::v1::WorkerMessage>(std::move(in_));
  in_.Clear();
  if (!registered_) {
    if (!msg->has_register_()) {
      outbox_->Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                   "the first message on a worker stream must be register"));
      return;
    }
    registered_ = true;
    server_->Post([server = server_, outbox = outbox_, msg] {
      server->OnWorkerRegister(outbox, msg->register_());
    });
  } else {
    server_->Post([server = server_, outbox = outbox_.get(), msg] {
      server->OnWorkerMessage(outbox, *msg);
    });
  }
  StartRead(&in_);
}

void WorkerStream::OnDone() {
  // The outbox stays alive in the closure so its address is not reused
  // before the loop forgets it.
  server_->Post([server = server_, outbox = outbox_] { server->OnWorkerGone(outbox.get()); });
  delete this;
}

template <>
void RecordWatchStream<Job>::OnDone() {
  server_->Post([server = server_, outbox = outbox_, id = id_] {
    server->OnWatchDone(outbox.get(), id);
  });
  delete this;
}

template <>
void RecordWatchStream<deja::v1::Pipeline>::OnDone() {
  server_->Post([server = server_, outbox = outbox_, id = id_] {
    server->OnPipelineWatchDone(outbox.get(), id);
  });
  delete this;
}

}  // namespace

absl::StatusOr<std::unique_ptr<SchedulerServer>> SchedulerServer::Start(
    const SchedulerConfig& config, Clock* clock) {
  if (config.data_dir.empty()) return absl::InvalidArgumentError("--data_dir: must be set");
  auto store = RocksStore::Open(config.data_dir);
  if (!store.ok()) return store.status();
  auto blobs = BlobStore::Open(config.data_dir + "/blobs", (*store)->db(), (*store)->blobs_family());
  if (!blobs.ok()) return blobs.status();
  auto server = std::make_unique<ServerImpl>(config, clock, *std::move(store), *std::move(blobs));
  if (auto s = server->Init(); !s.ok()) return s;
  return server;
}

}  // namespace deja
