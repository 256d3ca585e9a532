// Job processes a previous life of this worker left running.
//
// A killed worker (SIGKILL, OOM, a crash) cannot kill its jobs, whose
// process groups keep running, and writing, while the scheduler runs the
// same jobs again elsewhere. So each started job's process group is recorded
// in <work_dir>/meta/running/<pgid> ("<job_id> <attempt> <start time>\n",
// the start time in clock ticks since boot, from /proc/<pid>/stat) while it
// runs, and at start, before it registers, the worker kills (SIGKILL) every
// recorded group still there and waits until it is gone.
//
// A group's id is its leader's pid, which Linux does not hand out again while
// the group has a member: a recorded group is killed when its leader is the
// recorded process (same start time) or gone (members may survive it), and
// left alone when the pid now belongs to another process (then the old group
// has no member left). A process that left its group (setsid) escapes; so
// does a job that started and lost its worker before the record was written.
//
// Thread-safety: the functions touch only the record of the group given;
// RecordRunning and ForgetRunning may run on any runner thread.
#ifndef DEJA_WORKER_LEFTOVERS_H_
#define DEJA_WORKER_LEFTOVERS_H_

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace deja::worker {

// Records the running process group `pgid` (its leader's pid) of `job_id`.
absl::Status RecordRunning(const std::string& work_dir, pid_t pgid, const std::string& job_id,
                           uint32_t attempt);

// Removes the record of `pgid` (its group was killed and its leader reaped).
void ForgetRunning(const std::string& work_dir, pid_t pgid);

// Kills the recorded groups of a previous life, waiting up to `wait` for
// each to be gone, and removes their records. Returns a line per group
// killed ("job j12 attempt 1, process group 4242"), for the log.
std::vector<std::string> KillLeftovers(const std::string& work_dir, absl::Duration wait);

}  // namespace deja::worker

#endif  // DEJA_WORKER_LEFTOVERS_H_
