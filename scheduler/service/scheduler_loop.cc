#include "scheduler/service/scheduler_loop.h"

#include <cstdio>
#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "common/event_log.h"
#include "common/grpc_status.h"
#include "common/job_state.h"
#include "common/tickets.h"

namespace deja {
namespace {

using deja::v1::Job;

constexpr uint32_t kMaxLogChunk = 1 << 20;
constexpr char kCommitLatency[] = "deja_store_commit_seconds";
constexpr char kMemoRemoved[] = "deja_memo_entries_removed_total";
constexpr absl::Duration kLogRequestTimeout = absl::Seconds(30);

}  // namespace

SchedulerLoop::SchedulerLoop(absl::Duration tick, const CoreOptions& options, Clock* clock,
                             RocksStore* store, BlobStore* blobs, BlobIndex* blob_index,
                             Metrics* metrics)
    : tick_(tick),
      clock_(clock),
      store_(store),
      blobs_(blobs),
      metrics_(metrics),
      core_(options, blob_index, store),
      job_events_(metrics, clock->Now()) {
  if (metrics_ != nullptr) {
    metrics_->Declare(kCommitLatency, Metrics::Type::kHistogram,
                      "Time to commit a round of records to the store (synced or not).", {"synced"},
                      LatencyBuckets());
    metrics_->Declare(kMemoRemoved, Metrics::Type::kCounter,
                      "Memo entries removed: expired past their retention window, or evicted.");
  }
}

SchedulerLoop::~SchedulerLoop() { Stop(); }

absl::Status SchedulerLoop::Load() {
  // Streams the store: only what the core keeps in memory stays.
  if (auto s = core_.LoadFromStore(clock_->Now()); !s.ok()) return s;
  core_.ResumePipelines(clock_->Now(), &fx_);  // committed by the loop's first round
  return absl::OkStatus();
}

void SchedulerLoop::Start() {
  next_tick_ = clock_->Now();
  thread_ = std::thread([this] { Run(); });
}

void SchedulerLoop::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

void SchedulerLoop::Post(std::function<void()> fn) {
  absl::MutexLock lock(&mu_);
  pending_.push_back(std::move(fn));
}

void SchedulerLoop::FinishAfterCommit(grpc::ServerUnaryReactor* reactor,
                                      const absl::Status& status) {
  after_commit_.push_back([reactor, s = ToGrpcStatus(status)] { reactor->Finish(s); });
}

void SchedulerLoop::Run() {
  while (true) {
    std::vector<std::function<void()>> batch;
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this]()
                       ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return !pending_.empty() || stop_; };
      mu_.AwaitWithTimeout(absl::Condition(&ready),
                           absl::ToInt64Milliseconds(tick_) > 0 ? tick_ : absl::Milliseconds(100));
      batch.swap(pending_);
      if (stop_ && batch.empty()) break;
    }
    for (auto& fn : batch) fn();
    absl::Time now = clock_->Now();
    if (now >= next_tick_) {
      Tick(now);
      next_tick_ = now + tick_;
    }
    Flush();
  }
  FailLogs("", absl::UnavailableError("scheduler shutting down"));
  Flush();
}

void SchedulerLoop::Tick(absl::Time now) {
  core_.Tick(now, &fx_);
  for (auto it = pending_logs_.begin(); it != pending_logs_.end();) {
    if (now >= it->second.deadline) {
      AfterCommit([done = std::move(it->second.done), worker = it->second.worker_id] {
        done(absl::DeadlineExceededError(
                 absl::StrCat("worker ", worker, " did not answer with the logs")),
             {});
      });
      it = pending_logs_.erase(it);
    } else {
      ++it;
    }
  }
}

// --- Worker streams ---------------------------------------------------------------

void SchedulerLoop::OnWorkerRegister(const std::shared_ptr<WorkerOutbox>& outbox,
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
  LogEvent(absl::StrCat("worker ", reg.worker_id(), " connected"),
           {{"slots", absl::StrCat(reg.slots())}, {"held", absl::StrCat(reg.held_size())}},
           {{"worker", reg.worker_id()}, {"event", "connected"}});
}

void SchedulerLoop::OnWorkerMessage(WorkerOutbox* outbox, const deja::v1::WorkerMessage& msg) {
  auto it = by_outbox_.find(outbox);
  if (it == by_outbox_.end()) return;  // superseded or rejected stream
  const auto& [worker_id, session] = it->second;
  if (msg.has_log_data()) {
    OnLogData(msg.log_data());
    core_.WorkerMessage(worker_id, session, deja::v1::WorkerMessage(), clock_->Now(), &fx_);
    return;
  }
  if (msg.has_heartbeat()) {
    // Answered at once, outside the round (it changes nothing to commit):
    // the worker measures from these how long it has been cut off.
    deja::v1::SchedulerMessage ack;
    ack.mutable_heartbeat_ack();
    outbox->Send(std::move(ack));
  }
  core_.WorkerMessage(worker_id, session, msg, clock_->Now(), &fx_);
}

void SchedulerLoop::OnWorkerGone(WorkerOutbox* outbox) {
  auto it = by_outbox_.find(outbox);
  if (it == by_outbox_.end()) return;
  auto [worker_id, session] = it->second;
  by_outbox_.erase(it);
  auto s = sessions_.find(worker_id);
  if (s != sessions_.end() && s->second.session == session) sessions_.erase(s);
  core_.WorkerDisconnected(worker_id, session, clock_->Now());
  FailLogs(worker_id, absl::UnavailableError(absl::StrCat("worker ", worker_id, " disconnected")));
  LogEvent(absl::StrCat("worker ", worker_id, " disconnected"), {},
           {{"worker", worker_id}, {"event", "disconnected"}});
}

// --- Watchers -------------------------------------------------------------------------

void SchedulerLoop::WatchJob(const std::string& job_id,
                             const std::shared_ptr<JobWatchOutbox>& outbox) {
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
}

void SchedulerLoop::WatchPipeline(const std::string& pipeline_id,
                                  const std::shared_ptr<PipelineWatchOutbox>& outbox) {
  auto p = core_.GetPipeline(pipeline_id);
  if (!p.ok()) {
    after_commit_.push_back([outbox, s = p.status()] { outbox->Finish(ToGrpcStatus(s)); });
    return;
  }
  if (p->state() != deja::v1::PIPELINE_RUNNING) {
    after_commit_.push_back([outbox, pl = *p] { outbox->SendAndFinish(pl); });
    return;
  }
  pipeline_watchers_[pipeline_id].push_back(outbox);
  after_commit_.push_back([outbox, pl = *p] { outbox->Send(pl); });
}

void SchedulerLoop::OnJobWatchDone(JobWatchOutbox* outbox, const std::string& job_id) {
  auto it = watchers_.find(job_id);
  if (it == watchers_.end()) return;
  std::erase_if(it->second, [outbox](const auto& w) { return w.get() == outbox; });
  if (it->second.empty()) watchers_.erase(it);
}

void SchedulerLoop::OnPipelineWatchDone(PipelineWatchOutbox* outbox,
                                        const std::string& pipeline_id) {
  auto it = pipeline_watchers_.find(pipeline_id);
  if (it == pipeline_watchers_.end()) return;
  std::erase_if(it->second, [outbox](const auto& w) { return w.get() == outbox; });
  if (it->second.empty()) pipeline_watchers_.erase(it);
}

// --- Log requests ---------------------------------------------------------------------

void SchedulerLoop::RequestLogs(const std::string& worker_id,
                                const deja::v1::ReadLogsRequest& request,
                                grpc::ServerUnaryReactor* reactor,
                                deja::v1::ReadLogsResponse* response) {
  RequestLogs(worker_id, request,
              [reactor, response](const absl::Status& status, deja::v1::ReadLogsResponse read) {
                if (status.ok()) *response = std::move(read);
                reactor->Finish(ToGrpcStatus(status));
              });
}

void SchedulerLoop::RequestLogs(const std::string& worker_id,
                                const deja::v1::ReadLogsRequest& request, LogsDone done) {
  uint64_t id = ++next_log_request_;
  pending_logs_[id] = PendingLog{worker_id, std::move(done), clock_->Now() + kLogRequestTimeout};
  deja::v1::SchedulerMessage msg;
  auto* req = msg.mutable_log_request();
  req->set_request_id(id);
  req->set_job_id(request.job_id());
  req->set_stream(request.stream());
  req->set_offset(request.offset());
  req->set_limit(request.limit() == 0 || request.limit() > kMaxLogChunk ? kMaxLogChunk
                                                                        : request.limit());
  fx_.to_workers.emplace_back(worker_id, std::move(msg));
}

void SchedulerLoop::OnLogData(const deja::v1::LogData& data) {
  auto it = pending_logs_.find(data.request_id());
  if (it == pending_logs_.end()) return;
  LogsDone done = std::move(it->second.done);
  pending_logs_.erase(it);
  if (!data.error().empty()) {
    AfterCommit([done, error = data.error()] { done(absl::NotFoundError(error), {}); });
    return;
  }
  deja::v1::ReadLogsResponse response;
  response.set_data(data.data());
  response.set_eof(data.eof());
  response.set_size(data.size());
  AfterCommit([done, response = std::move(response)]() mutable {
    done(absl::OkStatus(), std::move(response));
  });
}

void SchedulerLoop::FailLogs(const std::string& worker_id, const absl::Status& status) {
  for (auto it = pending_logs_.begin(); it != pending_logs_.end();) {
    if (worker_id.empty() || it->second.worker_id == worker_id) {
      AfterCommit([done = std::move(it->second.done), status] { done(status, {}); });
      it = pending_logs_.erase(it);
    } else {
      ++it;
    }
  }
}

// --- Metrics ---------------------------------------------------------------------------

void SchedulerLoop::CollectMetrics(Metrics& metrics) {
  using Type = Metrics::Type;
  metrics.Declare("deja_queue_depth", Type::kGauge, "Jobs QUEUED, waiting for a worker.");
  metrics.Declare("deja_jobs", Type::kGauge, "Jobs that have not ended, by state.", {"state"});
  metrics.Declare("deja_workers_connected", Type::kGauge, "Workers connected now.");
  metrics.Declare("deja_worker_slots", Type::kGauge,
                  "Job slots of the connected workers: all of them, and those busy.", {"kind"});
  metrics.Declare("deja_worker_disk_free_bytes", Type::kGauge,
                  "Free disk under each worker's work dir, as it last reported.", {"worker"});
  metrics.Declare("deja_store_bytes", Type::kGauge,
                  "Size of the scheduler's RocksDB store (files and memtables).");
  const std::map<deja::v1::JobState, size_t> live = core_.LiveJobsByState();
  for (deja::v1::JobState state : NonTerminalStates()) {
    auto it = live.find(state);
    metrics.Set("deja_jobs", {std::string(JobStateName(state))},
                static_cast<double>(it == live.end() ? 0 : it->second));
  }
  auto queued = live.find(deja::v1::QUEUED);
  metrics.Set("deja_queue_depth", {},
              static_cast<double>(queued == live.end() ? 0 : queued->second));
  size_t connected = 0;
  uint64_t slots = 0;
  uint64_t busy = 0;
  metrics.Clear("deja_worker_disk_free_bytes");
  for (const deja::v1::WorkerInfo& worker : core_.ListWorkers()) {
    if (!worker.connected()) continue;
    ++connected;
    slots += worker.slots();
    busy += worker.busy_slots();
    metrics.Set("deja_worker_disk_free_bytes", {worker.worker_id()},
                static_cast<double>(worker.disk().free_bytes()));
  }
  metrics.Set("deja_workers_connected", {}, static_cast<double>(connected));
  metrics.Set("deja_worker_slots", {"total"}, static_cast<double>(slots));
  metrics.Set("deja_worker_slots", {"busy"}, static_cast<double>(busy));
  metrics.Set("deja_store_bytes", {}, static_cast<double>(store_->ApproximateBytes()));
}

// --- The commit path --------------------------------------------------------------------

void SchedulerLoop::Flush() {
  if (fx_.empty() && after_commit_.empty()) return;
  core_.SyncPipelines(clock_->Now(), &fx_);  // may add jobs: before the commit
  // Blobs first: the records committed next may name them.
  for (const auto& [digest, bytes] : fx_.blob_puts) {
    if (absl::Status s = blobs_->Put(bytes); !s.ok()) {
      LogEvent(absl::StrCat("FATAL: storing blob ", digest, ": ", s.ToString()));
      std::abort();
    }
  }
  const bool durable = RoundTellsAnyone();
  const absl::Time commit_start = absl::Now();
  if (absl::Status s = store_->Commit(fx_, durable); !s.ok()) {
    // The in-memory state is ahead of the disk; a restart recovers from
    // what was committed.
    LogEvent(absl::StrCat("FATAL: ", s.ToString()));
    std::abort();
  }
  if (metrics_ != nullptr) {
    metrics_->Observe(kCommitLatency, {durable ? "true" : "false"},
                      absl::ToDoubleSeconds(absl::Now() - commit_start));
    if (!fx_.memo_deletes.empty()) {
      metrics_->Add(kMemoRemoved, {}, static_cast<double>(fx_.memo_deletes.size()));
    }
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
    if (it == sessions_.end()) continue;
    if (msg.has_assignment() && ticket_signer_.has_value()) {
      // Unsigned, the holder refuses the copy (the job runs fresh) or the
      // content store the inputs (the attempt fails and is retried).
      deja::v1::Assignment* assignment = msg.mutable_assignment();
      absl::Status st = StampPeerTicket(*ticket_signer_, worker_id, clock_->Now(), assignment);
      if (st.ok()) st = StampBlobTicket(*ticket_signer_, worker_id, clock_->Now(), assignment);
      if (!st.ok()) {
        LogEvent(
            absl::StrCat("signing the tickets of ", assignment->job_id(), ": ", st.ToString()));
      }
    }
    it->second.outbox->Send(std::move(msg));
  }
  const absl::Time now = clock_->Now();
  for (const auto& [job_id, job] : fx.jobs) {
    for (const JobEvent& event : job_events_.Observe(job, now)) event.Log();
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
bool SchedulerLoop::RoundTellsAnyone() const {
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

}  // namespace deja
