// Retention of finished workspaces: expiry records and leases.
//
// The scheduler fixes a workspace's expiry when the job finishes and sends
// it with ResultAck. WorkspaceRetention keeps it durably in one append-only
// log, <work_dir>/meta/expiry.log (worker/record_log.h): each record is a
// batch of operations, "set <job_id> <expires_at_ms> <attempt>" or "forget
// <job_id>", replayed in order at Load. A set is fdatasynced before
// SetExpiry returns — or, for a batch, by one Sync() after several
// SetExpiry(sync = false) — so that a restarted worker still sweeps; a
// forget is not synced (a record that comes back after a crash is swept and
// reported again, which is harmless). The log is compacted (one set per
// record held, written to a temp file, fsynced, renamed) at Load and when it
// holds more than twice as many operations as records plus 1024. Records
// of the old layout (one file per job in meta/expiry/) are imported at Load.
// A workspace without a record (its result was never acknowledged) is never
// touched here. expires_at_ms 0 means "not kept" (a superseded attempt):
// expired at once, and never reported.
//
// A lease marks a workspace that is the source of a copy in progress (a
// local reuse reading it, or the peer service streaming it to another
// worker): an in-memory count per job id, released by the Lease's
// destructor. Acquire() refuses a workspace whose expiry has passed, and
// TakeExpired() skips leased ones, both under one mutex: a copy never starts
// on a workspace the sweeper is about to delete, and the sweeper never
// deletes one a copy reads.
//
// Deleting is done in two steps so that no lock is held while a tree is
// removed: TakeExpired() renames each doomed workspace into <work_dir>/trash/
// (one rename, under the lock), Dispose() then removes the trees. A record
// whose workspace is gone stays (in memory and on disk) until Reported(): a
// deletion the scheduler has not heard of survives a restart and is
// reported again (the scheduler treats a repeat as harmless).
//
// Thread-safety: WorkspaceRetention is thread-safe. Acquire(), LeaseCount()
// and the Lease destructor may run on any thread at any time; the record and
// trash functions (Load, SetExpiry, Sync, TakeExpired, Dispose, EmptyTrash,
// Reported) must be serialised by the caller, since they write files: the
// worker calls Load before its sweeper thread starts and the others only on
// that thread (worker/workspace_sweeper.h).
#ifndef DEJA_WORKER_RETENTION_H_
#define DEJA_WORKER_RETENTION_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/clock.h"
#include "worker/record_log.h"

namespace deja::worker {

class WorkspaceRetention {
 public:
  // Holds a workspace against deletion while it is copied. Movable; the
  // lease is released when the (non-moved-from) Lease is destroyed.
  class Lease {
   public:
    Lease() = default;
    Lease(Lease&& other) noexcept;
    Lease& operator=(Lease&& other) noexcept;
    ~Lease();

    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;

   private:
    friend class WorkspaceRetention;
    Lease(WorkspaceRetention* owner, std::string job_id)
        : owner_(owner), job_id_(std::move(job_id)) {}
    void Release();

    WorkspaceRetention* owner_ = nullptr;
    std::string job_id_;
  };

  struct Record {
    int64_t expires_at_ms = 0;  // 0: not kept
    uint32_t attempt = 0;
  };

  // A workspace taken out of jobs/ by TakeExpired().
  struct Doomed {
    std::string job_id;
    // Where it was moved to; empty when there was no workspace any more.
    std::string trash_path;
    // False for a "not kept" workspace (expires_at_ms 0): the scheduler
    // did not keep it and is not told.
    bool report = true;
  };

  // `work_dir` absolute; `clock` (not owned) must outlive this.
  WorkspaceRetention(std::string work_dir, Clock* clock);

  WorkspaceRetention(const WorkspaceRetention&) = delete;
  WorkspaceRetention& operator=(const WorkspaceRetention&) = delete;

  // Creates meta/ and trash/, removes temp files left by a crash, replays
  // meta/expiry.log (a torn tail is dropped) and compacts it, imports the
  // old layout's meta/expiry/<job_id> files (one that cannot be parsed is
  // skipped, left in place and named in `*skipped`, if given). A record
  // whose workspace is already gone is taken, and so reported, by the first
  // sweep after its expiry.
  absl::Status Load(std::vector<std::string>* skipped = nullptr);

  // Records (in memory, then in the log) that jobs/<job_id> expires at
  // `expires_at_ms` (0: now, and it is not reported). Replaces any record
  // of the job. With `sync` the record is durable on return; without, only
  // after the next Sync(). INVALID_ARGUMENT for a bad job id;
  // FAILED_PRECONDITION before Load(); I/O errors name the path.
  absl::Status SetExpiry(const std::string& job_id, uint32_t attempt, int64_t expires_at_ms,
                         bool sync = true);

  // Makes every SetExpiry so far durable (one fdatasync).
  absl::Status Sync();

  // The records as the log (and any old-layout files) under `work_dir` say,
  // read without changing anything: for inspection (tests, tools) while a
  // worker runs.
  static absl::StatusOr<std::map<std::string, Record>> ReadRecords(const std::string& work_dir);

  // The job's record, if any.
  std::optional<Record> GetRecord(const std::string& job_id) const ABSL_LOCKS_EXCLUDED(mu_);

  // A lease on jobs/<job_id>. NOT_FOUND "workspace of <job_id> expired" when
  // its expiry has passed (also when it was deleted). A job without a record
  // can be leased.
  absl::StatusOr<Lease> Acquire(const std::string& job_id) ABSL_LOCKS_EXCLUDED(mu_);

  // Leases currently held on the job's workspace.
  int LeaseCount(const std::string& job_id) const ABSL_LOCKS_EXCLUDED(mu_);

  // Moves out of jobs/ every workspace whose expiry has passed, that has no
  // lease and whose job id is not in `busy` (restricted to `only` when
  // given). Each is renamed into trash/ under the lease mutex; a workspace
  // that is already gone is taken too (with an empty trash_path). A rename
  // that fails leaves the workspace for the next sweep, named in `*errors`.
  // `*skipped_leased`, if given, gets the expired ones kept for a lease.
  std::vector<Doomed> TakeExpired(const std::set<std::string>& busy,
                                  const std::string* only = nullptr,
                                  std::vector<std::string>* skipped_leased = nullptr,
                                  std::vector<std::string>* errors = nullptr)
      ABSL_LOCKS_EXCLUDED(mu_);

  // The disk is low: moves out of jobs/ the one kept workspace (a record
  // with an expiry) that expires first, unleased and not in `busy`, as
  // TakeExpired does (it is reported like an expired one). Empty when there
  // is none, or its rename failed (named in `*errors`).
  std::vector<Doomed> TakeOldest(const std::set<std::string>& busy,
                                 std::vector<std::string>* errors = nullptr)
      ABSL_LOCKS_EXCLUDED(mu_);

  // Removes the trees of `doomed` and the records of those not to report.
  // Returns the first error (the others are still attempted).
  absl::Status Dispose(const std::vector<Doomed>& doomed) ABSL_LOCKS_EXCLUDED(mu_);

  // Job ids whose workspace was deleted and not reported yet, sorted.
  std::vector<std::string> Unreported() const ABSL_LOCKS_EXCLUDED(mu_);

  // The scheduler was told about `job_ids`: their records go.
  void Reported(const std::vector<std::string>& job_ids) ABSL_LOCKS_EXCLUDED(mu_);

  // Removes whatever is in trash/ (left by a crash mid-delete).
  absl::Status EmptyTrash();

 private:
  struct Entry {
    Record record;
    bool deleted = false;  // the workspace is gone; the record awaits reporting
  };

  void Release(const std::string& job_id) ABSL_LOCKS_EXCLUDED(mu_);
  bool ExpiredLocked(const Entry& entry, int64_t now_ms) const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // Renames jobs/<job_id> into trash/. Empty path: it was gone already.
  absl::StatusOr<std::string> MoveToTrash(const std::string& job_id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Appends "forget" operations (not synced).
  void ForgetRecords(const std::vector<std::string>& job_ids) ABSL_LOCKS_EXCLUDED(log_mu_);
  // Appends `payload`; compacts the log when it has grown.
  absl::Status AppendLocked(const std::string& payload, bool sync, size_t ops)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(log_mu_);
  // Replaces the log by one set per record (durably).
  absl::Status RewriteLogLocked(const std::map<std::string, Record>& records)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(log_mu_);

  const std::string work_dir_;
  Clock* const clock_;

  // Lock order: log_mu_ before mu_.
  absl::Mutex log_mu_;
  std::unique_ptr<RecordLog> log_ ABSL_GUARDED_BY(log_mu_);  // null before Load
  size_t log_ops_ ABSL_GUARDED_BY(log_mu_) = 0;              // operations in the log

  mutable absl::Mutex mu_;
  std::map<std::string, Entry> entries_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, int> leases_ ABSL_GUARDED_BY(mu_);
  uint64_t trash_seq_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace deja::worker

#endif  // DEJA_WORKER_RETENTION_H_
