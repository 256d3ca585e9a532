// WorkspaceSweeper: the retention orchestration of the worker. It records
// the expiry each ResultAck carries (in WorkspaceRetention, worker/retention.h),
// deletes a "not kept" workspace at once, deletes the expired ones every
// sweep interval, and reports the deletions to the scheduler.
//
// Execution model: one sweeper thread (Start() to Stop()) does every disk
// operation of retention, so none of it needs a lock of its own and none
// ever runs on the stream reader:
//   - at start it empties trash/ and sweeps;
//   - QueueAck() (the reader) only queues an ack; the thread takes every
//     queued ack at once, asks the host whether each may be recorded
//     (WorkerCore::ApplyAck: the newer-attempt rule), skips a "not kept" ack
//     whose workspace another attempt's record keeps, writes the records
//     unsynced, deletes each "not kept" workspace, then syncs the batch once
//     (group commit);
//   - every `sweep_interval` (real time; the expiry itself is compared with
//     the retention's Clock) it deletes the expired, unleased workspaces of
//     jobs the host does not hold, and reports them in one
//     WorkspacesExpired; a report that cannot be sent (no stream) is kept
//     (in the records, so also across a restart) and sent after
//     RequestReport(), which the worker calls after each Register;
//   - SweepNow() asks the thread for one more sweep and waits for it;
//   - with a DiskPolicy, every `check_interval` it reads the free space
//     under the work dir; below `min_free_bytes` it deletes the expired
//     workspaces, then the kept ones, earliest expiry first (unleased, of
//     jobs not held), until 5/4 of the bound is free or none is left, and
//     reports them like expired ones (the scheduler drops their memo
//     entries). It tells the host the disk's state each time
//     (SweeperHost::SetDisk), refusing while still below the bound.
// An ack whose expiry cannot be recorded (a full disk) is not acknowledged
// and is tried again at the next wake, so no workspace is left without a
// record.
// A workspace leaves jobs/ by one rename under the host's lock
// (SweeperHost::TakeExpired), so no job of that id can start meanwhile; its
// tree is removed afterwards, with no lock held.
//
// Thread-safety: QueueAck, RequestReport and SweepNow may be called from any
// thread; Load, Start and Stop by the owner, in that order. mu_ is a leaf
// lock: nothing else is locked, and the host is never called, while it is
// held.
#ifndef DEJA_WORKER_WORKSPACE_SWEEPER_H_
#define DEJA_WORKER_WORKSPACE_SWEEPER_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/metrics.h"
#include "deja/v1/worker.pb.h"
#include "worker/retention.h"

namespace deja::worker {

// What the sweeper needs of the worker. Called on the sweeper thread, with
// no sweeper lock held.
class SweeperHost {
 public:
  virtual ~SweeperHost() = default;
  // Whether the expiry of `ack` may be recorded (WorkerCore::ApplyAck);
  // false with the line to log in `*left_alone`.
  virtual bool ApplyAck(const deja::v1::ResultAck& ack, std::string* left_alone) = 0;
  // WorkspaceRetention::TakeExpired with the job ids held here as `busy`,
  // under the lock that starting a job takes.
  virtual std::vector<WorkspaceRetention::Doomed> TakeExpired(
      const std::string* only, std::vector<std::string>* skipped_leased,
      std::vector<std::string>* errors) = 0;
  // The scheduler acknowledged this result and its expiry is recorded (or
  // need not be): the result need not be kept any longer.
  virtual void Acknowledged(const deja::v1::ResultAck& ack) = 0;
  // Sends on the scheduler stream; false when there is none.
  virtual bool Send(const deja::v1::WorkerMessage& message) = 0;
  // WorkspaceRetention::TakeOldest with the job ids held here as `busy`,
  // under the lock that starting a job takes.
  virtual std::vector<WorkspaceRetention::Doomed> TakeOldest(std::vector<std::string>* errors) = 0;
  // The disk's state after a check (DiskPolicy).
  virtual void SetDisk(const deja::v1::DiskStatus& disk) = 0;
};

// Free and total bytes of a file system.
struct DiskSpace {
  uint64_t free_bytes = 0;
  uint64_t total_bytes = 0;
};

// The statvfs(3) of `path`: f_bavail and f_blocks times f_frsize.
absl::StatusOr<DiskSpace> ReadDiskSpace(const std::string& path);

// How the sweeper watches the work dir's disk.
struct DiskPolicy {
  // 0: not watched.
  uint64_t min_free_bytes = 0;
  absl::Duration check_interval = absl::Seconds(2);
  // Where (for messages, e.g. the work dir), and how to read its space.
  std::string where;
  std::function<absl::StatusOr<DiskSpace>()> read;
};

// What the worker reports of `space` under `policy`: refusing (with the
// reason) below min_free_bytes.
deja::v1::DiskStatus DiskStatusOf(const DiskSpace& space, const DiskPolicy& policy);

class WorkspaceSweeper {
 public:
  // `retention` and `host` (not owned) must outlive the sweeper.
  // `metrics` (not owned; null: none) counts the workspaces deleted.
  WorkspaceSweeper(WorkspaceRetention* retention, SweeperHost* host, absl::Duration sweep_interval,
                   std::string trash_dir, DiskPolicy disk = {}, Metrics* metrics = nullptr);
  // Stops the thread if it runs.
  ~WorkspaceSweeper();

  WorkspaceSweeper(const WorkspaceSweeper&) = delete;
  WorkspaceSweeper& operator=(const WorkspaceSweeper&) = delete;

  // Loads the expiry records (an unreadable old-layout record is logged and
  // skipped). Returns the retention's error. Before Start().
  absl::Status Load();

  // Starts the sweeper thread (after a successful Load()).
  void Start() ABSL_LOCKS_EXCLUDED(mu_);

  // Records the acks queued so far, ends the thread and waits for it. A
  // SweepNow() waiting then fails. No-op when not started.
  void Stop() ABSL_LOCKS_EXCLUDED(mu_);

  // Queues a ResultAck for the thread. Never blocks on disk.
  void QueueAck(deja::v1::ResultAck ack) ABSL_LOCKS_EXCLUDED(mu_);

  // A stream registered: the deletions not reported yet are sent now.
  void RequestReport() ABSL_LOCKS_EXCLUDED(mu_);

  // Records the acks queued so far, then deletes every expired, unleased
  // workspace of a job not held here and reports the deletions, on the
  // thread; blocks until that is done (and while another sweep runs).
  // Returns the job ids whose workspace this sweep deleted.
  // FAILED_PRECONDITION when the thread does not run (before Start(), after
  // Stop()).
  absl::StatusOr<std::vector<std::string>> SweepNow() ABSL_LOCKS_EXCLUDED(mu_);

 private:
  // A SweepNow() waiting for the thread.
  struct SweepRequest {
    bool done = false;
    absl::StatusOr<std::vector<std::string>> deleted;
  };

  void Thread() ABSL_LOCKS_EXCLUDED(mu_);
  bool HasWork() const ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    return exit_ || report_requested_ || !pending_acks_.empty() || !requests_.empty();
  }
  // Records the expiry of each acknowledged job (deleting a "not kept"
  // workspace at once). Returns the acks whose expiry could not be
  // recorded (not acknowledged to the host: tried again).
  std::deque<deja::v1::ResultAck> ApplyAcks(const std::deque<deja::v1::ResultAck>& acks);
  // The DiskPolicy check: evicts while the disk is low, tells the host.
  void CheckDisk();
  // Deletes the expired, unleased workspaces of jobs not held here
  // (restricted to `only` when given); returns the job ids deleted.
  std::vector<std::string> Sweep(const std::string* only = nullptr);
  // Sends one WorkspacesExpired with every deletion not reported yet.
  void ReportExpired();

  // Constant after construction.
  WorkspaceRetention* const retention_;
  SweeperHost* const host_;
  const absl::Duration sweep_interval_;
  const std::string trash_dir_;
  const DiskPolicy disk_;
  Metrics* const metrics_;

  // The thread's own.
  std::deque<deja::v1::ResultAck> retry_acks_;  // expiry not recorded yet
  bool disk_read_failed_ = false;               // logged once

  std::thread thread_;  // owned by Start() and Stop()

  mutable absl::Mutex mu_;
  bool started_ ABSL_GUARDED_BY(mu_) = false;  // Start() was called
  bool running_ ABSL_GUARDED_BY(mu_) = false;  // the thread takes requests
  bool exit_ ABSL_GUARDED_BY(mu_) = false;
  // ResultAcks whose expiry the thread has not recorded yet.
  std::deque<deja::v1::ResultAck> pending_acks_ ABSL_GUARDED_BY(mu_);
  bool report_requested_ ABSL_GUARDED_BY(mu_) = false;  // a new stream: report
  std::deque<SweepRequest*> requests_ ABSL_GUARDED_BY(mu_);
};

}  // namespace deja::worker

#endif  // DEJA_WORKER_WORKSPACE_SWEEPER_H_
