// Runs one job's command in its workspace, in its own process group.
//
// Execution model: Start() returns at once; a runner thread owned by the
// JobRunner prepares the workspace (an earlier attempt's directory is removed,
// logs/ is created, JobLaunch::prepare runs), spawns the command with
// posix_spawn, calls `on_started`, waits for the leader (calling
// JobLaunch::leader_exited as soon as it has exited), SIGKILLs whatever is left of the process
// group while the leader is still an unreaped zombie (so the group id cannot have been recycled),
// reaps it, and finally calls `on_exit` exactly once. Both callbacks run on the runner thread, in
// that order; they must not destroy the JobRunner.
//
// The child gets a clean environment (PATH, HOME=<workspace>, DEJA_JOB_ID,
// DEJA_WORKSPACE, then the app's env on top), cwd = workspace, stdin from
// /dev/null, stdout/stderr into logs/stdout and logs/stderr (0644), default
// signal dispositions, an empty signal mask and no inherited descriptors
// beyond 0-2. argv[0] is resolved against the child's PATH, not the worker's.
//
// Limits: a time limit ends the group (SIGTERM, then SIGKILL); a memory
// limit is an rlimit of the command (RLIMIT_DATA, through prlimit).
//
// Thread-safety: JobRunner is thread-safe; Cancel/Kill/Wait may be called
// from any thread, concurrently.
#ifndef DEJA_WORKER_JOB_RUNNER_H_
#define DEJA_WORKER_JOB_RUNNER_H_

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "worker/job_user.h"

namespace deja::worker {

// The PATH a job gets unless its app env sets one.
inline constexpr char kDefaultJobPath[] =
    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

// How a plain job's limits are enforced (Capacity.limits, `deja workers`).
inline constexpr char kPlainJobLimits[] = "rlimits";

// Exit code reported when the command could not be started at all.
inline constexpr int kExitCannotStart = 127;
// Exit code reported when the workspace could not be prepared.
inline constexpr int kExitInternal = -1;

struct JobLaunch {
  std::string job_id;
  // Absolute path of the job's workspace (paths::WorkspaceDir).
  std::string workspace;
  std::vector<std::string> argv;
  // The app's env; overrides the worker-provided variables.
  std::map<std::string, std::string> env;
  // Time between SIGTERM and SIGKILL on Cancel().
  absl::Duration cancel_grace = absl::Seconds(2);
  // Optional. Runs on the runner thread once the workspace and its logs
  // exist, right before the spawn (the worker places inputs here). An error
  // fails the job unstarted: exit code kExitInternal, the message in
  // `error` and logs/stderr. A Cancel()/Kill() that arrives while it runs
  // stops the job before the spawn (exit code -SIGTERM / -SIGKILL).
  std::function<absl::Status(const std::string& workspace)> prepare;
  // Optional. Makes the empty workspace with empty logs/stdout and
  // logs/stderr, replacing whatever is there (the worker renames a spare
  // into place, worker/workspace_pool.h). Default: remove, then mkdir.
  std::function<absl::Status(const std::string& workspace)> make_workspace;
  // Optional. Runs on the runner thread the moment the leader has exited
  // (`exit_code` as in JobOutcome), before the rest of the group is killed
  // and the leader reaped: the worker records the exit here, so that its
  // next life can report a command that ended while it was dying.
  std::function<void(pid_t pid, int exit_code)> leader_exited;
  // Whom the command runs as (worker/job_user.h): the workspace is given
  // to this user right before the spawn, and the command started through
  // setpriv. nullopt: as the worker.
  std::optional<JobUser> user;
  // Limits (zero: none). Past `time_limit` after the spawn the group gets
  // SIGTERM, SIGKILL `cancel_grace` later, and the outcome's error reads
  // "time limit 2h exceeded". `memory_limit` bytes: the command is started
  // through prlimit --data (RLIMIT_DATA: an allocation past it fails); a
  // failed command whose stderr ends saying an allocation failed ("Cannot
  // allocate memory", "MemoryError", "std::bad_alloc"...) gets the error
  // "out of memory (limit 4 GiB)".
  absl::Duration time_limit = absl::ZeroDuration();
  uint64_t memory_limit = 0;
  // Optional: the command runs in a container (worker/containers.h).
  // Called on the runner thread after `prepare`, once the workspace is the
  // user's: creates the container and returns the argv of the process that
  // stands for it (the shim), spawned in place of the command, as the
  // worker (not through setpriv or prlimit: the engine enforces the
  // limits). An error fails the job unstarted with its message.
  std::function<absl::StatusOr<std::vector<std::string>>()> container_create;
  // Called once the leader is reaped, when container_create succeeded:
  // removes the container, and may set `error` ("out of memory ...").
  std::function<void(std::string* error)> container_end;
};

struct JobOutcome {
  // WEXITSTATUS, or -signal when the leader was killed by a signal;
  // kExitCannotStart / kExitInternal when it never ran (see `error`).
  int exit_code = 0;
  // Empty when the command ran. Otherwise what went wrong, e.g.
  // "foo: No such file or directory" (also written to logs/stderr).
  std::string error;
  absl::Time started_at;   // after spawn (or the failed attempt)
  absl::Time finished_at;  // after the leader was reaped
  absl::Duration run_time;
  bool cancelled = false;      // Cancel() or Kill() was called while it ran
  bool never_started = false;  // spawn failed: exit_code is ours, not the command's
  pid_t pid = 0;               // the leader's (the group's id), once spawned
};

class JobRunner {
 public:
  // `pid` is the leader's pid, which is also the process group id.
  using StartedCallback = std::function<void(pid_t pid, absl::Time started_at)>;
  using ExitCallback = std::function<void(const JobOutcome& outcome)>;

  // Starts the runner thread and returns. Never fails: a job that cannot be
  // started reports it through `on_exit` (and `Wait()`). `clock` must outlive
  // the JobRunner. Callbacks may be empty.
  static std::unique_ptr<JobRunner> Start(JobLaunch launch, Clock* clock,
                                          StartedCallback on_started = nullptr,
                                          ExitCallback on_exit = nullptr);

  // Kills the process group if it still runs (SIGKILL) and joins the runner
  // thread. Must not be called from the runner's own callbacks.
  ~JobRunner();

  JobRunner(const JobRunner&) = delete;
  JobRunner& operator=(const JobRunner&) = delete;

  // SIGTERM to the whole process group, then SIGKILL to the group if the
  // leader has not exited after `cancel_grace`. No-op when already finished;
  // a cancel that arrives before the spawn takes effect right after it.
  void Cancel();

  // SIGKILL to the whole process group now (worker shutdown).
  void Kill();

  // Blocks until the command was spawned or failed to spawn. Returns the
  // leader's pid (= process group id), or -1 when it never started.
  pid_t WaitForSpawn();

  // Blocks until the job finished and returns its outcome.
  JobOutcome Wait();

  // True once the outcome is known (and `on_exit` has been called).
  bool Finished();

  const std::string& job_id() const { return launch_.job_id; }

 private:
  JobRunner(JobLaunch launch, Clock* clock, StartedCallback on_started, ExitCallback on_exit);

  void RunThread();
  // Creates the workspace and log files, spawns. Returns the pid, or sets
  // `outcome` and returns -1.
  pid_t Spawn(JobOutcome* outcome);
  // Sends `sig` to the group if the leader is not reaped yet.
  void SignalGroupLocked(int sig) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void GraceThread();
  // Ends the group past launch_.time_limit.
  void LimitThread();

  // Constant after construction.
  const JobLaunch launch_;
  Clock* const clock_;
  const StartedCallback on_started_;
  const ExitCallback on_exit_;

  absl::Mutex mu_;
  bool spawn_done_ ABSL_GUARDED_BY(mu_) = false;
  pid_t pid_ ABSL_GUARDED_BY(mu_) = -1;
  bool reaped_ ABSL_GUARDED_BY(mu_) = false;  // pid_ must not be signalled any more
  bool cancel_requested_ ABSL_GUARDED_BY(mu_) = false;
  bool kill_requested_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  JobOutcome outcome_ ABSL_GUARDED_BY(mu_);
  std::thread grace_thread_ ABSL_GUARDED_BY(mu_);
  std::thread limit_thread_ ABSL_GUARDED_BY(mu_);
  bool time_limit_hit_ ABSL_GUARDED_BY(mu_) = false;
  // container_create succeeded: container_end is owed. Runner thread only.
  bool container_created_ = false;

  std::thread thread_;  // set in Start(), joined in the destructor
};

}  // namespace deja::worker

#endif  // DEJA_WORKER_JOB_RUNNER_H_
