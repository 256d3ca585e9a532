#include "worker/workspace_sweeper.h"

#include <sys/statvfs.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/bytes.h"
#include "worker/log.h"
#include "worker/paths.h"

namespace deja::worker {

constexpr char kWorkspacesDeleted[] = "deja_worker_workspaces_deleted_total";

absl::StatusOr<DiskSpace> ReadDiskSpace(const std::string& path) {
  struct statvfs vfs;
  if (statvfs(path.c_str(), &vfs) != 0) {
    return absl::Status(absl::ErrnoToStatusCode(errno),
                        absl::StrCat("statvfs ", path, ": ", std::strerror(errno)));
  }
  DiskSpace space;
  space.free_bytes = static_cast<uint64_t>(vfs.f_bavail) * vfs.f_frsize;
  space.total_bytes = static_cast<uint64_t>(vfs.f_blocks) * vfs.f_frsize;
  return space;
}

WorkspaceSweeper::WorkspaceSweeper(WorkspaceRetention* retention, SweeperHost* host,
                                   absl::Duration sweep_interval, std::string trash_dir,
                                   DiskPolicy disk, Metrics* metrics)
    : retention_(retention),
      host_(host),
      sweep_interval_(sweep_interval),
      trash_dir_(std::move(trash_dir)),
      disk_(std::move(disk)),
      metrics_(metrics) {
  if (metrics_ != nullptr) {
    metrics_->Declare(kWorkspacesDeleted, Metrics::Type::kCounter,
                      "Workspaces the worker deleted: expired (past their retention window), "
                      "not_kept (never memoized), disk_low (evicted early, the disk being low).",
                      {"reason"});
  }
}

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
  const bool watch_disk = disk_.min_free_bytes > 0 && disk_.read != nullptr;
  absl::Time next_disk_check = absl::Now();
  while (true) {
    std::deque<deja::v1::ResultAck> acks;
    SweepRequest* request = nullptr;
    absl::Time wake = next_sweep;
    if (watch_disk) wake = std::min(wake, next_disk_check);
    if (!retry_acks_.empty()) wake = std::min(wake, absl::Now() + disk_.check_interval);
    mu_.LockWhenWithDeadline(absl::Condition(this, &WorkspaceSweeper::HasWork), wake);
    const bool exit = exit_;
    acks.swap(retry_acks_);
    for (auto& ack : pending_acks_) acks.push_back(std::move(ack));
    pending_acks_.clear();
    bool report = std::exchange(report_requested_, false);
    if (!exit && !requests_.empty()) {
      request = requests_.front();
      requests_.pop_front();
    }
    mu_.Unlock();

    // Acks that came before the stop are still recorded.
    retry_acks_ = ApplyAcks(acks);
    if (exit) return;
    if (watch_disk && absl::Now() >= next_disk_check) {
      CheckDisk();
      next_disk_check = absl::Now() + disk_.check_interval;
    }
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

std::deque<deja::v1::ResultAck> WorkspaceSweeper::ApplyAcks(
    const std::deque<deja::v1::ResultAck>& acks) {
  std::deque<deja::v1::ResultAck> failed;
  std::set<std::pair<std::string, uint32_t>> not_recorded;
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
      // Not acknowledged (the result stays on disk): tried again at the
      // next wake, so that the workspace does not stay without a record.
      Log("cannot record the expiry of %s (trying again): %s", job_id, st.ToString());
      failed.push_back(ack);
      not_recorded.emplace(job_id, ack.attempt());
      continue;
    }
    if (expires_at_ms == 0) Sweep(&job_id);
  }
  if (acks.size() == failed.size()) return failed;
  if (absl::Status st = retention_->Sync(); !st.ok()) {
    Log("cannot sync %d expiry records: %s", acks.size(), st.ToString());
  }
  for (const deja::v1::ResultAck& ack : acks) {
    if (not_recorded.count({ack.job_id(), ack.attempt()}) == 0) host_->Acknowledged(ack);
  }
  return failed;
}

void WorkspaceSweeper::CheckDisk() {
  absl::StatusOr<DiskSpace> space = disk_.read();
  if (!space.ok()) {
    if (!std::exchange(disk_read_failed_, true)) {
      Log("cannot read the free space under %s: %s", disk_.where, space.status().ToString());
    }
    return;
  }
  disk_read_failed_ = false;
  const uint64_t min = disk_.min_free_bytes;
  if (space->free_bytes < min) {
    // Expired workspaces first, then kept ones, earliest expiry first.
    const uint64_t was_free = space->free_bytes;
    size_t deleted = Sweep().size();
    const uint64_t target = min + min / 4;
    for (auto again = disk_.read(); again.ok(); again = disk_.read()) {
      *space = *again;
      if (space->free_bytes >= target) break;
      std::vector<std::string> errors;
      std::vector<WorkspaceRetention::Doomed> doomed = host_->TakeOldest(&errors);
      for (const std::string& error : errors) Log("cannot evict a workspace: %s", error);
      if (doomed.empty()) break;
      if (absl::Status st = retention_->Dispose(doomed); !st.ok()) {
        Log("evicting workspaces: %s", st.ToString());
      }
      for (const auto& d : doomed) {
        Log("evicted the workspace of %s before its expiry: the disk is low", d.job_id);
      }
      if (metrics_ != nullptr) {
        metrics_->Add(kWorkspacesDeleted, {"disk_low"}, static_cast<double>(doomed.size()));
      }
      deleted += doomed.size();
    }
    if (deleted > 0) {
      Log("disk low (%s free under %s, below --min_free_disk %s): deleted %d workspaces, now %s "
          "free",
          FormatBytes(was_free), disk_.where, FormatBytes(min), deleted,
          FormatBytes(space->free_bytes));
      ReportExpired();
    }
  }
  host_->SetDisk(DiskStatusOf(*space, disk_));
}

deja::v1::DiskStatus DiskStatusOf(const DiskSpace& space, const DiskPolicy& policy) {
  deja::v1::DiskStatus status;
  status.set_free_bytes(space.free_bytes);
  status.set_total_bytes(space.total_bytes);
  if (space.free_bytes < policy.min_free_bytes) {
    status.set_refusing(absl::StrCat("disk full: ", FormatBytes(space.free_bytes), " free under ",
                                     policy.where, ", below --min_free_disk ",
                                     FormatBytes(policy.min_free_bytes)));
  }
  return status;
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
    if (metrics_ != nullptr) metrics_->Add(kWorkspacesDeleted, {d.report ? "expired" : "not_kept"});
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
