#include "worker/workspace_sweeper.h"

#include <algorithm>
#include <cstdint>
#include <utility>

#include "worker/log.h"
#include "worker/paths.h"

namespace deja::worker {

WorkspaceSweeper::WorkspaceSweeper(WorkspaceRetention* retention, SweeperHost* host,
                                   absl::Duration sweep_interval, std::string trash_dir)
    : retention_(retention),
      host_(host),
      sweep_interval_(sweep_interval),
      trash_dir_(std::move(trash_dir)) {}

WorkspaceSweeper::~WorkspaceSweeper() { Stop(); }

absl::Status WorkspaceSweeper::Load() {
  std::vector<std::string> skipped;
  if (absl::Status st = retention_->Load(&skipped); !st.ok()) return st;
  for (const std::string& path : skipped) Log("ignoring unreadable expiry record %s", path);
  return absl::OkStatus();
}

void WorkspaceSweeper::Start() {
  {
    absl::MutexLock lock(&mu_);
    started_ = true;
    running_ = true;
    exit_ = false;
  }
  thread_ = std::thread([this] { Thread(); });
}

void WorkspaceSweeper::Stop() {
  {
    absl::MutexLock lock(&mu_);
    if (!running_) return;
    running_ = false;
    exit_ = true;
    // The thread takes no request once it sees exit_.
    for (SweepRequest* request : requests_) {
      request->deleted = absl::FailedPreconditionError("the sweeper has stopped");
      request->done = true;
    }
    requests_.clear();
  }
  thread_.join();
}

void WorkspaceSweeper::QueueAck(deja::v1::ResultAck ack) {
  absl::MutexLock lock(&mu_);
  pending_acks_.push_back(std::move(ack));
}

void WorkspaceSweeper::RequestReport() {
  absl::MutexLock lock(&mu_);
  report_requested_ = true;
}

absl::StatusOr<std::vector<std::string>> WorkspaceSweeper::SweepNow() {
  SweepRequest request;
  absl::MutexLock lock(&mu_);
  if (!running_) {
    return absl::FailedPreconditionError(
        started_ ? "the sweeper has stopped"
                 : "the expiry records are not loaded yet (Run() first)");
  }
  requests_.push_back(&request);
  mu_.Await(absl::Condition(&request.done));
  return std::move(request.deleted);
}

void WorkspaceSweeper::Thread() {
  if (absl::Status st = retention_->EmptyTrash(); !st.ok()) {
    Log("emptying %s: %s", trash_dir_, st.ToString());
  }
  absl::Time next_sweep = absl::Now();  // a restarted worker sweeps at once
  while (true) {
    std::deque<deja::v1::ResultAck> acks;
    SweepRequest* request = nullptr;
    mu_.LockWhenWithDeadline(absl::Condition(this, &WorkspaceSweeper::HasWork), next_sweep);
    const bool exit = exit_;
    acks.swap(pending_acks_);
    bool report = std::exchange(report_requested_, false);
    if (!exit && !requests_.empty()) {
      request = requests_.front();
      requests_.pop_front();
    }
    mu_.Unlock();

    // Acks that came before the stop are still recorded.
    ApplyAcks(acks);
    if (exit) return;
    const bool due = absl::Now() >= next_sweep;
    std::vector<std::string> deleted;
    if (due || request != nullptr) {
      deleted = Sweep();
      report = true;
      if (due) next_sweep = absl::Now() + sweep_interval_;
    }
    if (report) ReportExpired();
    if (request != nullptr) {
      absl::MutexLock lock(&mu_);
      request->deleted = std::move(deleted);
      request->done = true;
    }
  }
}

void WorkspaceSweeper::ApplyAcks(const std::deque<deja::v1::ResultAck>& acks) {
  for (const deja::v1::ResultAck& ack : acks) {
    const std::string& job_id = ack.job_id();
    if (!paths::ValidateJobId(job_id).ok()) continue;  // never a workspace here
    const int64_t expires_at_ms = std::max<int64_t>(ack.expires_at_ms(), 0);
    if (std::string left_alone; !host_->ApplyAck(ack, &left_alone)) {
      Log("%s", left_alone);
      continue;
    }
    if (expires_at_ms == 0) {
      const auto record = retention_->GetRecord(job_id);
      if (record.has_value() && record->attempt != ack.attempt() && record->expires_at_ms > 0) {
        Log("workspace of %s attempt %d not kept, but attempt %d's is (until %d): left alone",
            job_id, ack.attempt(), record->attempt, record->expires_at_ms);
        continue;
      }
    }
    // Synced once for the whole batch, below.
    if (absl::Status st = retention_->SetExpiry(job_id, ack.attempt(), expires_at_ms,
                                                /*sync=*/false);
        !st.ok()) {
      // Without a record the workspace is simply kept.
      Log("cannot record the expiry of %s: %s", job_id, st.ToString());
      continue;
    }
    if (expires_at_ms == 0) Sweep(&job_id);
  }
  if (acks.empty()) return;
  if (absl::Status st = retention_->Sync(); !st.ok()) {
    Log("cannot sync %d expiry records: %s", acks.size(), st.ToString());
  }
  for (const deja::v1::ResultAck& ack : acks) host_->Acknowledged(ack);
}

std::vector<std::string> WorkspaceSweeper::Sweep(const std::string* only) {
  std::vector<std::string> leased;
  std::vector<std::string> errors;
  std::vector<WorkspaceRetention::Doomed> doomed = host_->TakeExpired(only, &leased, &errors);
  for (const std::string& job_id : leased) {
    Log("workspace of %s expired, but a copy of it is in progress: kept until it ends", job_id);
  }
  for (const std::string& error : errors) Log("cannot delete an expired workspace: %s", error);
  if (absl::Status st = retention_->Dispose(doomed); !st.ok()) {
    Log("deleting expired workspaces: %s", st.ToString());
  }
  std::vector<std::string> deleted;
  for (const auto& d : doomed) {
    deleted.push_back(d.job_id);
    Log("deleted the workspace of %s (%s)", d.job_id, d.report ? "expired" : "not kept");
  }
  return deleted;
}

void WorkspaceSweeper::ReportExpired() {
  const std::vector<std::string> ids = retention_->Unreported();
  if (ids.empty()) return;
  deja::v1::WorkerMessage message;
  for (const std::string& id : ids) message.mutable_expired()->add_job_ids(id);
  if (!host_->Send(message)) return;  // kept; re-sent after the next Register
  retention_->Reported(ids);
  Log("reported %d expired workspaces", ids.size());
}

}  // namespace deja::worker
