// The records of running job processes, and what a worker's next life (or
// its watchdog) does with them.
//
// A killed worker (SIGKILL, OOM, a crash) cannot kill its jobs, whose
// process groups would keep running, and writing, while the scheduler runs
// the same jobs again elsewhere; nor report a command that had just exited.
// So each started RUN attempt is recorded in <work_dir>/meta/running/<pgid>
// (a deja.v1.RunningRecord: job, attempt, the leader's start time from
// /proc/<pid>/stat, output globs), the record is marked exited with the exit
// code the moment the leader exits, and it is removed only once the
// attempt's result is kept on disk (worker/result_store.h). When the worker
// dies, its watchdog (worker/watchdog.h) marks the exits the worker could
// not and kills every process below it, recorded or not; the next life
// kills what is left (the watchdog died too), finishes the attempts whose
// command had exited and reports them, and forgets the rest (the scheduler
// runs those again).
//
// A group's id is its leader's pid, which Linux does not hand out again while
// the group has a member: a recorded group is killed when its leader is the
// recorded process (same start time) or gone (members may survive it), and
// left alone when the pid now belongs to another process (then the old group
// has no member left). A process that left its group (setsid) escapes the
// next life's kill (not the watchdog's); so does a job that started and lost
// its worker and watchdog at once, before the record was written.
//
// Thread-safety: the functions touch only the record of the group given;
// RecordRunning and ForgetRunning may run on any runner thread.
#ifndef DEJA_WORKER_LEFTOVERS_H_
#define DEJA_WORKER_LEFTOVERS_H_

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "deja/v1/worker.pb.h"

namespace deja::worker {

// The state of process `pid` (field 3 of /proc/<pid>/stat: 'R', 'S', 'T'
// for stopped, 'Z' for a zombie...), or '\0' when there is no such process.
char ProcessState(pid_t pid);

// Writes (replaces) the record of `record.pgid()`, atomically. A record
// without a start time gets the leader's, read now.
absl::Status RecordRunning(const std::string& work_dir, deja::v1::RunningRecord record);

// Removes the record of `pgid` (its attempt's result is kept, or it never
// will be).
void ForgetRunning(const std::string& work_dir, pid_t pgid);

// The records in the work dir, sorted by pgid. With `remove_strays` (only
// when no record is being written), a file that does not hold a record (a
// crash while writing one leaves its temporary) is removed.
std::vector<deja::v1::RunningRecord> ReadRunning(const std::string& work_dir, bool remove_strays);

// SIGKILLs each recorded group still there and its own (see above), all
// first, then waits up to `wait` for them to be gone (no member left but
// zombies), then removes the container of each image job recorded (through
// its engine). Returns a line for the log per group killed ("job j12 attempt
// 1, process group 4242") and per container removed.
std::vector<std::string> KillGroups(const std::vector<deja::v1::RunningRecord>& records,
                                    absl::Duration wait);

// The start time of process `pid` in clock ticks since boot (field 22 of
// /proc/<pid>/stat; a zombie still has one), or 0 when there is no such
// process.
uint64_t StartTime(pid_t pid);

// The processes below `root` (children, their children...), in no order.
std::vector<pid_t> Descendants(pid_t root);

// Marks the record of `pgid` exited with `exit_code`, when there is one for
// that very process (its start time is `start_ticks`) not yet marked.
// Returns whether it did. For a leader whose worker died before it could
// record the exit (the watchdog reaps it then).
bool MarkExited(const std::string& work_dir, pid_t pgid, uint64_t start_ticks, int exit_code);

// KillGroups for every record in the work dir, keeping the records.
std::vector<std::string> KillRecorded(const std::string& work_dir, absl::Duration wait);

}  // namespace deja::worker

#endif  // DEJA_WORKER_LEFTOVERS_H_
