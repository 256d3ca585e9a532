// What keeps a worker's jobs from outliving it, or its link to the scheduler.
//
// Contact: when the worker last heard from the scheduler (any message: the
// scheduler answers every heartbeat) and how long it may go without (its
// cut-off, a little less than the scheduler's --worker_timeout, after which
// the scheduler runs the worker's jobs elsewhere). Lock-free, so it can live
// in memory shared with the watchdog process.
//
// The watchdog: a small process the daemon forks first thing, before any
// thread, holding the read end of a pipe whose write end only the worker
// has. It acts when the worker cannot:
//   - the worker died (the pipe reads end of file: SIGKILL, OOM, a crash):
//     it kills every recorded job process group (worker/leftovers.h),
//     leaving the records to the worker's next life, and exits. So a job
//     never keeps running, and writing, while the scheduler runs it again
//     elsewhere;
//   - the worker is stopped (SIGSTOP, a debugger: state T): it stops the
//     recorded groups too (SIGSTOP), and resumes them (SIGCONT) when the
//     worker runs again. A job must not finish unseen while the scheduler
//     gives up on its worker and runs it elsewhere;
//   - the worker has not heard from the scheduler past its cut-off (it is
//     stuck, or cut off): it kills the recorded groups, which the
//     scheduler is about to requeue. The worker, when it runs again,
//     reports them handed back (a job killed while its worker was cut off
//     is not the job's failure) and drops the stale stream.
// The worker stops its jobs at the cut-off itself too (Worker's cut-off
// thread), when it can run.
//
// Thread-safety: Contact is lock-free and safe across processes.
#ifndef DEJA_WORKER_WATCHDOG_H_
#define DEJA_WORKER_WATCHDOG_H_

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace deja::worker {

class Contact {
 public:
  // Monotonic time (CLOCK_MONOTONIC) in milliseconds.
  static int64_t NowMs();

  // The scheduler was heard from now.
  void Heard() { last_heard_ms_.store(NowMs(), std::memory_order_relaxed); }
  // The cut-off the scheduler's timeout implies; zero (the default) means
  // none is known yet, and nothing is ever cut off.
  void SetCutoff(absl::Duration cutoff) {
    cutoff_ms_.store(absl::ToInt64Milliseconds(cutoff), std::memory_order_relaxed);
  }
  absl::Duration cutoff() const {
    return absl::Milliseconds(cutoff_ms_.load(std::memory_order_relaxed));
  }
  // How long since the scheduler was last heard from, when that is longer
  // than the cut-off; zero otherwise, and before any cut-off is known.
  absl::Duration CutOffFor() const;

 private:
  std::atomic<int64_t> last_heard_ms_{0};
  std::atomic<int64_t> cutoff_ms_{0};
};

// The cut-off for a scheduler with this --worker_timeout and heartbeat
// interval: two heartbeats short of the timeout (the worker's and the
// scheduler's clocks start a message apart), and at least half of it.
absl::Duration CutoffFor(absl::Duration worker_timeout, absl::Duration heartbeat_interval);

// Forks the watchdog of the worker whose work dir is `work_dir`. Returns the
// Contact the worker must keep current, in memory shared with the watchdog
// (never freed: it lives as long as the process). Call it before any thread
// is started.
absl::StatusOr<Contact*> StartWatchdog(const std::string& work_dir);

}  // namespace deja::worker

#endif  // DEJA_WORKER_WATCHDOG_H_
