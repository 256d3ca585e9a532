// What keeps a worker's jobs from outliving it, or its link to the scheduler.
//
// Contact: when the worker last heard from the scheduler (any message: the
// scheduler answers every heartbeat) and how long it may go without (its
// cut-off, a little less than the scheduler's --worker_timeout, after which
// the scheduler runs the worker's jobs elsewhere). Lock-free, so it can live
// in memory shared with the watchdog process.
//
// The watchdog: the process the daemon was started as. First thing, before
// any thread, it forks: the worker goes on in the child, and the parent
// becomes the watchdog, a small process that does nothing but watch the
// worker (it shows as `deja-watchdog`). It is a child subreaper
// (PR_SET_CHILD_SUBREAPER): every job process orphaned below it comes to
// it, not to init. It passes the signals a supervisor sends the daemon
// (SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2) on to the worker, and
// acts when the worker cannot:
//   - the worker died (SIGKILL, OOM, a crash): it records the exit of each
//     job whose command exited on its own before the worker could (the
//     command's leader comes to it as an orphan, a zombie holding its exit
//     status), kills every process below it (recorded job process groups,
//     jobs spawned in the instant before the death, processes that left
//     their group), reaps them, leaves the records to the worker's next life
//     (worker/leftovers.h) and ends as the worker did (its exit code, or
//     128 + the signal). So a job never keeps running, and writing, while
//     the scheduler runs it again elsewhere, and a command that completed is
//     reported as completed;
//   - the worker is stopped (SIGSTOP, a debugger: state T): it stops every
//     process of its jobs too (SIGSTOP), and resumes them (SIGCONT) when
//     the worker runs again. A job must not finish unseen while the
//     scheduler gives up on its worker and runs it elsewhere;
//   - the worker has not heard from the scheduler past its cut-off (it is
//     stuck, or cut off): it kills the worker's jobs, which the scheduler is
//     about to requeue. The worker, when it runs again, reports them handed
//     back (a job killed while its worker was cut off is not the job's
//     failure) and drops the stale stream.
// The worker stops its jobs at the cut-off itself too (Worker's cut-off
// thread), when it can run. Should the watchdog die, the worker gets a
// SIGTERM (PR_SET_PDEATHSIG) and stops as on any SIGTERM, handing its jobs
// back.
//
// Thread-safety: Contact is lock-free and safe across processes.
#ifndef DEJA_WORKER_WATCHDOG_H_
#define DEJA_WORKER_WATCHDOG_H_

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
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

// Takes the work dir for this daemon alone: an exclusive lock on
// <work_dir>/meta/lock (flock), which holds the pid of its watchdog. Two
// workers on one work dir would kill each other's jobs and take each
// other's records. The lock is held, across the fork, until both the
// watchdog and the worker are gone (jobs never hold it: the descriptor is
// close-on-exec). Fails, naming the holder, when it is taken.
absl::Status LockWorkDir(const std::string& work_dir);

// Forks the worker whose work dir is `work_dir`: returns, in the child, the
// Contact the worker must keep current, in memory shared with the watchdog
// (never freed: it lives as long as the process); the calling process
// becomes the watchdog and never returns (it exits as the worker did). Call
// it before any thread is started.
absl::StatusOr<Contact*> StartWatchdog(const std::string& work_dir);

}  // namespace deja::worker

#endif  // DEJA_WORKER_WATCHDOG_H_
