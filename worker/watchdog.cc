#include "worker/watchdog.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <new>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "worker/leftovers.h"
#include "worker/log.h"
#include "worker/paths.h"

namespace deja::worker {
namespace {

// How often the watchdog looks at the worker's state and its contact with
// the scheduler, when no signal wakes it (a stop or a death of a child
// does, at once; a debugger's stop, state t, does not).
constexpr int kPollMs = 20;
// How long the watchdog, once the worker is gone, waits for its jobs' last
// processes to die before it exits anyway.
constexpr absl::Duration kLastKillWait = absl::Seconds(5);

// The signals the watchdog passes on to the worker: those a user or a
// supervisor sends the daemon's process (docker stop, systemd, ^C).
constexpr int kForwarded[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};

// Whether process `pid` is stopped (SIGSTOP, a debugger): state T or t.
bool Stopped(pid_t pid) {
  const char state = ProcessState(pid);
  return state == 'T' || state == 't';
}

// A process the watchdog stopped with its stopped worker, to resume with it.
struct Frozen {
  pid_t pid;
  uint64_t start_ticks;
};

// Whether a process below the watchdog in process group `group` is the
// worker's own rather than a job's: jobs have process groups of their own,
// while what the worker runs for itself stays in the worker's group, which
// is the watchdog's (a sanitizer's leak checker ptrace-stops the worker
// from such a child at exit: stopping or killing it would hang the worker).
bool WorkersOwn(pid_t group) { return group == getpgrp(); }

// Stops every job process below the worker (recorded or not) and the
// orphans of its jobs, which are below the watchdog; returns them. Again
// until no new one shows: a job may fork while it is being stopped.
std::vector<Frozen> Freeze(pid_t worker) {
  std::vector<Frozen> frozen;
  absl::flat_hash_set<pid_t> seen = {worker};
  for (int round = 0; round < 5; ++round) {
    bool more = false;
    for (pid_t pid : Descendants(getpid())) {
      if (!seen.insert(pid).second || WorkersOwn(getpgid(pid))) continue;
      more = true;
      if (kill(pid, SIGSTOP) == 0) frozen.push_back({pid, StartTime(pid)});
    }
    if (!more) break;
  }
  return frozen;
}

void Thaw(const std::vector<Frozen>& frozen) {
  for (const Frozen& f : frozen) {
    if (StartTime(f.pid) == f.start_ticks) kill(f.pid, SIGCONT);  // still that process
  }
}

// SIGKILLs every process below `root` (with `jobs_only`, every job
// process: the worker lives), and their process groups (never the
// watchdog's own: the worker's, and maybe its launcher's). Returns how many
// processes there were, zombies included.
size_t KillBelow(pid_t root, bool jobs_only) {
  size_t killed = 0;
  for (pid_t pid : Descendants(root)) {
    const pid_t group = getpgid(pid);
    if (jobs_only && WorkersOwn(group)) continue;
    if (group > 1 && !WorkersOwn(group)) kill(-group, SIGKILL);
    kill(pid, SIGKILL);
    ++killed;
  }
  return killed;
}

// Reaps the watchdog's children that have ended, but the worker (whose end
// is reported through `worker_status`: its waitpid status). A child other
// than the worker is a job's process orphaned by the worker's death, or
// by its own parent's: when it is a recorded leader that exited on its own
// (not by a SIGKILL, which is the watchdog's or the kernel's), its exit is
// recorded, as the worker would have: the worker's next life then reports
// the command as completed. Returns whether any child is left.
bool Reap(pid_t worker, const std::string& work_dir, std::optional<int>* worker_status) {
  while (true) {
    siginfo_t info = {};
    if (waitid(P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT) != 0) return errno != ECHILD;
    const pid_t pid = info.si_pid;
    if (pid == 0) return true;  // children, none ended
    if (pid != worker && !(info.si_code == CLD_KILLED && info.si_status == SIGKILL)) {
      // Still a zombie: its start time tells it from a later process.
      const int exit_code = info.si_code == CLD_EXITED ? info.si_status : -info.si_status;
      if (MarkExited(work_dir, pid, StartTime(pid), exit_code)) {
        Log("watchdog: recorded the exit (%d) of process group %d, whose worker is gone", exit_code,
            pid);
      }
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (pid == worker) *worker_status = status;
  }
}

// What is left once the worker is gone: its jobs are killed, orphans and
// all, and the watchdog ends as the worker did.
[[noreturn]] void Bury(pid_t worker, const std::string& work_dir, int worker_status) {
  std::optional<int> ignored;
  // Commands that exited before the kill get their exit recorded first.
  Reap(worker, work_dir, &ignored);
  for (const std::string& killed : KillRecorded(work_dir, absl::ZeroDuration())) {
    Log("watchdog: the worker is gone; killed %s", killed);
  }
  // Every process below this one is a job's: recorded or not (spawned in
  // the instant before the worker died), in its group or not (setsid).
  const absl::Time deadline = absl::Now() + kLastKillWait;
  while (KillBelow(getpid(), /*jobs_only=*/false) > 0 && absl::Now() < deadline) {
    Reap(worker, work_dir, &ignored);
    absl::SleepFor(absl::Milliseconds(10));
  }
  Reap(worker, work_dir, &ignored);
  // The records stay: the worker's next life reads them (a command that had
  // exited is finished and reported then).
  if (WIFSIGNALED(worker_status)) {
    Log("watchdog: the worker was killed by signal %d (%s)", WTERMSIG(worker_status),
        strsignal(WTERMSIG(worker_status)));
    _exit(128 + WTERMSIG(worker_status));
  }
  _exit(WIFEXITED(worker_status) ? WEXITSTATUS(worker_status) : 1);
}

[[noreturn]] void WatchdogMain(pid_t worker, const std::string& work_dir, const Contact* contact) {
  prctl(PR_SET_NAME, "deja-watchdog");
  bool frozen = false;          // the jobs are stopped with their stopped worker
  std::vector<Frozen> stopped;  // which processes, to resume with it
  bool stopped_stuck = false;   // this cut-off's kill is done (logged once)
  int polls_since_kill = 0;     // while cut off: the kill is repeated every half second
  sigset_t wake;                // blocked since before the fork
  sigemptyset(&wake);
  for (int sig : kForwarded) sigaddset(&wake, sig);
  sigaddset(&wake, SIGCHLD);
  while (true) {
    const struct timespec tick = {0, static_cast<long>(kPollMs) * 1000 * 1000};
    const int sig = sigtimedwait(&wake, nullptr, &tick);
    if (sig > 0 && sig != SIGCHLD) kill(worker, sig);
    std::optional<int> worker_status;
    Reap(worker, work_dir, &worker_status);
    if (worker_status.has_value()) Bury(worker, work_dir, *worker_status);
    // A stopped worker's jobs stop with it: they must not finish unseen
    // while the scheduler gives up on the worker and runs them elsewhere.
    if (Stopped(worker) != frozen) {
      frozen = !frozen;
      if (frozen) {
        stopped = Freeze(worker);
      } else {
        Thaw(stopped);
      }
      if (!stopped.empty()) {
        Log("watchdog: the worker is %s: %s %d processes of its jobs",
            frozen ? "stopped" : "running again", frozen ? "stopped" : "resumed", stopped.size());
      }
      if (!frozen) stopped.clear();
    }
    const absl::Duration cut_off = contact->CutOffFor();
    if (cut_off == absl::ZeroDuration()) {
      stopped_stuck = false;
      continue;
    }
    // Nothing starts while the worker is cut off: once the jobs are killed,
    // a look every half second is enough (each one may scan /proc).
    if (stopped_stuck && ++polls_since_kill < 500 / kPollMs) continue;
    polls_since_kill = 0;
    std::vector<std::string> killed = KillRecorded(work_dir, absl::ZeroDuration());
    KillBelow(worker, /*jobs_only=*/true);  // and any job not recorded yet
    if (!stopped_stuck && !killed.empty()) {
      Log("watchdog: the worker has not heard from the scheduler for %s (stuck or cut off): "
          "killed %d jobs, which the scheduler runs again",
          absl::FormatDuration(absl::Trunc(cut_off, absl::Milliseconds(100))), killed.size());
      stopped_stuck = true;
    }
  }
}

}  // namespace

int64_t Contact::NowMs() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

absl::Duration Contact::CutOffFor() const {
  const int64_t cutoff = cutoff_ms_.load(std::memory_order_relaxed);
  const int64_t heard = last_heard_ms_.load(std::memory_order_relaxed);
  if (cutoff <= 0 || heard <= 0) return absl::ZeroDuration();
  const absl::Duration silent = absl::Milliseconds(NowMs() - heard);
  return silent > absl::Milliseconds(cutoff) ? silent : absl::ZeroDuration();
}

absl::Duration CutoffFor(absl::Duration worker_timeout, absl::Duration heartbeat_interval) {
  return std::max(worker_timeout - 2 * heartbeat_interval, worker_timeout / 2);
}

absl::Status LockWorkDir(const std::string& work_dir) {
  const std::string meta = paths::MetaDir(work_dir);
  if (absl::Status st = paths::MakeDirs(meta); !st.ok()) return st;
  const std::string path = absl::StrCat(meta, "/lock");
  const int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return absl::InternalError(absl::StrCat(path, ": ", std::strerror(errno)));
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    std::string holder = paths::ReadSmallFile(path);
    close(fd);
    if (err != EWOULDBLOCK) {
      return absl::InternalError(absl::StrCat("locking ", path, ": ", std::strerror(err)));
    }
    return absl::FailedPreconditionError(
        absl::StrCat("--work_dir ", work_dir, " is in use by another deja-worker (pid ",
                     holder.empty() ? "unknown" : absl::StripAsciiWhitespace(holder),
                     "); stop it first, or give this one its own --work_dir"));
  }
  // The descriptor stays open, and the lock held, until the process ends.
  const std::string pid = absl::StrCat(getpid(), "\n");
  if (ftruncate(fd, 0) != 0 || pwrite(fd, pid.data(), pid.size(), 0) < 0) {
    // The lock is what counts; the pid only names the holder.
  }
  return absl::OkStatus();
}

absl::StatusOr<Contact*> StartWatchdog(const std::string& work_dir) {
  void* shared =
      mmap(nullptr, sizeof(Contact), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (shared == MAP_FAILED) {
    return absl::InternalError(absl::StrCat("watchdog: mmap: ", std::strerror(errno)));
  }
  auto* contact = new (shared) Contact();
  // Jobs orphaned anywhere below come to the watchdog, not to init.
  if (prctl(PR_SET_CHILD_SUBREAPER, 1) != 0) {
    return absl::InternalError(absl::StrCat("watchdog: subreaper: ", std::strerror(errno)));
  }
  // Held from before the fork: a signal that comes before the watchdog
  // waits for it is passed on, not acted on by default.
  sigset_t forwarded;
  sigemptyset(&forwarded);
  for (int sig : kForwarded) sigaddset(&forwarded, sig);
  sigaddset(&forwarded, SIGCHLD);
  sigset_t before;
  sigprocmask(SIG_BLOCK, &forwarded, &before);
  const pid_t watchdog = getpid();
  const pid_t worker = fork();
  if (worker < 0) {
    sigprocmask(SIG_SETMASK, &before, nullptr);
    return absl::InternalError(absl::StrCat("watchdog: fork: ", std::strerror(errno)));
  }
  if (worker > 0) WatchdogMain(worker, work_dir, contact);
  // The worker. Should its watchdog die, it stops as on SIGTERM (handing
  // its jobs back): nothing would kill its jobs if it died later.
  sigprocmask(SIG_SETMASK, &before, nullptr);
  if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0 || getppid() != watchdog) kill(getpid(), SIGTERM);
  return contact;
}

}  // namespace deja::worker
