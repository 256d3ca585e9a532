#include "worker/watchdog.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <new>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "worker/leftovers.h"
#include "worker/log.h"

namespace deja::worker {
namespace {

// Often enough that a job hardly runs on once its worker is stopped.
constexpr int kPollMs = 20;

// Whether process `pid` is stopped (SIGSTOP, a debugger): state T or t.
bool Stopped(pid_t pid) {
  const char state = ProcessState(pid);
  return state == 'T' || state == 't';
}

[[noreturn]] void WatchdogMain(int parent_fd, pid_t parent, const std::string& work_dir,
                               const Contact* contact) {
  prctl(PR_SET_NAME, "deja-watchdog");
  bool frozen = false;         // the jobs are stopped with their stopped worker
  bool stopped_stuck = false;  // this cut-off's kill is done (logged once)
  int polls_since_kill = 0;    // while cut off: the kill is repeated every half second
  while (true) {
    struct pollfd p = {parent_fd, POLLIN, 0};
    const int n = poll(&p, 1, kPollMs);
    if (n < 0 && errno != EINTR) break;
    if (n > 0) {
      char byte;
      if (read(parent_fd, &byte, 1) <= 0) break;  // end of file: the worker is gone
    }
    // A stopped worker's jobs stop with it: they must not finish unseen
    // while the scheduler gives up on the worker and runs them elsewhere.
    const bool stopped = Stopped(parent);
    if (stopped != frozen) {
      const size_t jobs = SignalRecorded(work_dir, stopped ? SIGSTOP : SIGCONT);
      if (jobs > 0) {
        Log("watchdog: the worker is %s: %s its %d jobs", stopped ? "stopped" : "running again",
            stopped ? "stopped" : "resumed", jobs);
      }
      frozen = stopped;
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
    if (!stopped_stuck && !killed.empty()) {
      Log("watchdog: the worker has not heard from the scheduler for %s (stuck or cut off): "
          "killed %d jobs, which the scheduler runs again",
          absl::FormatDuration(absl::Trunc(cut_off, absl::Milliseconds(100))), killed.size());
      stopped_stuck = true;
    }
  }
  // The records stay: the worker's next life reads them (a command that
  // had exited is finished and reported then).
  for (const std::string& killed : KillRecorded(work_dir, absl::Seconds(5))) {
    Log("watchdog: the worker is gone; killed %s", killed);
  }
  _exit(0);
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

absl::StatusOr<Contact*> StartWatchdog(const std::string& work_dir) {
  void* shared =
      mmap(nullptr, sizeof(Contact), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (shared == MAP_FAILED) {
    return absl::InternalError(absl::StrCat("watchdog: mmap: ", std::strerror(errno)));
  }
  auto* contact = new (shared) Contact();
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) {
    return absl::InternalError(absl::StrCat("watchdog: pipe: ", std::strerror(errno)));
  }
  const pid_t pid = fork();
  if (pid < 0) return absl::InternalError(absl::StrCat("watchdog: fork: ", std::strerror(errno)));
  if (pid == 0) {
    close(fds[1]);
    WatchdogMain(fds[0], getppid(), work_dir, contact);
  }
  close(fds[0]);
  // fds[1] stays open, unread, until this process ends; its close-on-exec
  // keeps it out of the jobs.
  return contact;
}

}  // namespace deja::worker
