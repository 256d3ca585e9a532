// Empty workspaces made ahead of time, so that starting a job costs one
// rename instead of four inode creations (the workspace, logs/, logs/stdout,
// logs/stderr: 0.5-0.8 ms each on a busy ext4, the bulk of a no-op job's
// start on the worker side).
//
// A spare is <work_dir>/spare/<n>/ holding logs/stdout and logs/stderr,
// empty. Make() renames one into place as jobs/<job_id> (same filesystem),
// or creates the workspace directly when none is ready; Refill() tops the
// spares up and is meant to run off the critical path (the worker calls it
// on the job thread after the result is sent, while the scheduler's round
// trip keeps the slot idle anyway). Spares hold nothing of any job, so
// losing them in a crash is harmless: Init() removes leftovers.
//
// Thread-safety: thread-safe. Make() and Refill() may run concurrently.
#ifndef DEJA_WORKER_WORKSPACE_POOL_H_
#define DEJA_WORKER_WORKSPACE_POOL_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"

namespace deja::worker {

class WorkspacePool {
 public:
  // `work_dir` absolute; keeps up to `spares` ready.
  WorkspacePool(std::string work_dir, size_t spares);
  WorkspacePool(const WorkspacePool&) = delete;
  WorkspacePool& operator=(const WorkspacePool&) = delete;

  // Removes spares left by an earlier run and creates spare/. Until it
  // succeeds, Make() creates every workspace directly. I/O errors name the
  // path.
  absl::Status Init() ABSL_LOCKS_EXCLUDED(mu_);

  // Makes `workspace` (removing whatever is there first) an empty
  // workspace holding empty logs/stdout and logs/stderr. Errors name the
  // path.
  absl::Status Make(const std::string& workspace) ABSL_LOCKS_EXCLUDED(mu_);

  // Creates spares until `spares` are ready (best effort: a failure leaves
  // fewer, and Make() falls back to creating).
  void Refill() ABSL_LOCKS_EXCLUDED(mu_);

  size_t ready() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  const std::string work_dir_;
  const std::string dir_;  // <work_dir>/spare
  const size_t spares_;

  mutable absl::Mutex mu_;
  bool initialized_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::string> ready_ ABSL_GUARDED_BY(mu_);  // paths of spares
  size_t in_making_ ABSL_GUARDED_BY(mu_) = 0;            // being created by Refill
  uint64_t next_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace deja::worker

#endif  // DEJA_WORKER_WORKSPACE_POOL_H_
