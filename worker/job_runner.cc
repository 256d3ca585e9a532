#include "worker/job_runner.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/resources.h"
#include "worker/paths.h"

namespace deja::worker {
namespace {

// util-linux, like setpriv.
constexpr char kPrlimit[] = "/usr/bin/prlimit";

// Resolves `argv0` the way execvp would, but against the child's PATH and
// with relative PATH entries taken from the workspace (the child's cwd).
// Returns 0 and sets `resolved`, or the errno execvp would have failed with.
int ResolveExecutable(const std::string& argv0, const std::string& path_value,
                      const std::string& workspace, std::string* resolved) {
  if (argv0.empty()) return ENOENT;
  if (argv0.find('/') != std::string::npos) {
    *resolved = argv0;  // relative to the workspace: posix_spawn chdirs first
    return 0;
  }
  bool saw_eacces = false;
  for (absl::string_view dir : absl::StrSplit(path_value, ':')) {
    std::string candidate = absl::StrCat(dir.empty() ? "." : dir, "/", argv0);
    if (candidate.front() != '/') candidate = absl::StrCat(workspace, "/", candidate);
    struct stat st;
    if (stat(candidate.c_str(), &st) != 0) continue;
    if (S_ISREG(st.st_mode) && access(candidate.c_str(), X_OK) == 0) {
      *resolved = std::move(candidate);
      return 0;
    }
    saw_eacces = true;
  }
  return saw_eacces ? EACCES : ENOENT;
}

absl::StatusOr<int> OpenLog(const std::string& path) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (fd < 0) return absl::InternalError(absl::StrCat("open ", path, ": ", std::strerror(errno)));
  fchmod(fd, 0644);  // whatever the umask says
  return fd;
}

void WriteAll(int fd, const std::string& text) {
  size_t done = 0;
  while (done < text.size()) {
    ssize_t n = write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    done += static_cast<size_t>(n);
  }
}

// Whether the end of a job's stderr says an allocation failed, as programs
// under RLIMIT_DATA say it (C's strerror, Python, C++, Go, the JVM, Rust).
bool RanOutOfMemory(const std::string& stderr_path) {
  static constexpr absl::string_view kMarks[] = {
      "Cannot allocate memory", "MemoryError",   "std::bad_alloc",   "out of memory",
      "memory exhausted",       "Out of memory", "OutOfMemoryError", "memory allocation of"};
  int fd = open(stderr_path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return false;
  std::string tail(4096, '\0');
  struct stat st;
  const off_t from = fstat(fd, &st) == 0 && st.st_size > 4096 ? st.st_size - 4096 : 0;
  const ssize_t n = pread(fd, tail.data(), tail.size(), from);
  close(fd);
  if (n <= 0) return false;
  tail.resize(static_cast<size_t>(n));
  for (absl::string_view mark : kMarks) {
    if (absl::StrContains(tail, mark)) return true;
  }
  return false;
}

bool ValidEnvKey(const std::string& key) {
  return !key.empty() && key.find('=') == std::string::npos && key.find('\0') == std::string::npos;
}

}  // namespace

std::unique_ptr<JobRunner> JobRunner::Start(JobLaunch launch, Clock* clock,
                                            StartedCallback on_started, ExitCallback on_exit) {
  std::unique_ptr<JobRunner> runner(
      new JobRunner(std::move(launch), clock, std::move(on_started), std::move(on_exit)));
  runner->thread_ = std::thread([r = runner.get()] { r->RunThread(); });
  return runner;
}

JobRunner::JobRunner(JobLaunch launch, Clock* clock, StartedCallback on_started,
                     ExitCallback on_exit)
    : launch_(std::move(launch)),
      clock_(clock),
      on_started_(std::move(on_started)),
      on_exit_(std::move(on_exit)) {}

JobRunner::~JobRunner() {
  Kill();
  if (thread_.joinable()) thread_.join();
  std::thread grace;
  std::thread limit;
  {
    absl::MutexLock lock(&mu_);
    grace = std::move(grace_thread_);
    limit = std::move(limit_thread_);
  }
  if (grace.joinable()) grace.join();
  if (limit.joinable()) limit.join();
}

void JobRunner::SignalGroupLocked(int sig) {
  // Only while the leader is unreaped: its pid, which is the group id, cannot
  // have been given to anyone else yet.
  if (pid_ > 0 && !reaped_) kill(-pid_, sig);
}

void JobRunner::Cancel() {
  absl::MutexLock lock(&mu_);
  if (cancel_requested_ || finished_) return;
  cancel_requested_ = true;
  if (pid_ > 0 && !reaped_) {
    SignalGroupLocked(SIGTERM);
    grace_thread_ = std::thread([this] { GraceThread(); });
  }
}

void JobRunner::Kill() {
  absl::MutexLock lock(&mu_);
  if (finished_) return;
  kill_requested_ = true;
  SignalGroupLocked(SIGKILL);
}

void JobRunner::GraceThread() {
  mu_.LockWhenWithTimeout(absl::Condition(&reaped_), launch_.cancel_grace);
  SignalGroupLocked(SIGKILL);
  mu_.Unlock();
}

void JobRunner::LimitThread() {
  if (!mu_.LockWhenWithTimeout(absl::Condition(&reaped_), launch_.time_limit)) {
    time_limit_hit_ = !cancel_requested_ && !kill_requested_;
    SignalGroupLocked(SIGTERM);
    mu_.Unlock();
    mu_.LockWhenWithTimeout(absl::Condition(&reaped_), launch_.cancel_grace);
    SignalGroupLocked(SIGKILL);
  }
  mu_.Unlock();
}

pid_t JobRunner::WaitForSpawn() {
  absl::MutexLock lock(&mu_);
  mu_.Await(absl::Condition(&spawn_done_));
  return pid_;
}

JobOutcome JobRunner::Wait() {
  absl::MutexLock lock(&mu_);
  mu_.Await(absl::Condition(&finished_));
  return outcome_;
}

bool JobRunner::Finished() {
  absl::MutexLock lock(&mu_);
  return finished_;
}

pid_t JobRunner::Spawn(JobOutcome* outcome) {
  const std::string& ws = launch_.workspace;
  auto fail = [&](int code, std::string error, int log_fd) {
    outcome->exit_code = code;
    outcome->never_started = true;
    outcome->error = std::move(error);
    if (log_fd >= 0) WriteAll(log_fd, outcome->error + "\n");
    return -1;
  };

  absl::Status st;
  if (launch_.make_workspace) {
    st = launch_.make_workspace(ws);
  } else {
    st = paths::RemoveTree(ws);
    if (st.ok()) st = paths::MakeDirs(absl::StrCat(ws, "/", paths::kLogsDir));
  }
  if (!st.ok()) return fail(kExitInternal, absl::StrCat("prepare workspace: ", st.message()), -1);
  auto out_fd = OpenLog(absl::StrCat(ws, "/", paths::kStdoutFile));
  if (!out_fd.ok()) return fail(kExitInternal, std::string(out_fd.status().message()), -1);
  auto err_fd = OpenLog(absl::StrCat(ws, "/", paths::kStderrFile));
  if (!err_fd.ok()) {
    close(*out_fd);
    return fail(kExitInternal, std::string(err_fd.status().message()), -1);
  }
  struct Closer {
    int a, b;
    ~Closer() {
      close(a);
      close(b);
    }
  } closer{*out_fd, *err_fd};

  if (launch_.argv.empty()) return fail(kExitCannotStart, "argv is empty", *err_fd);
  const std::string& argv0 = launch_.argv[0];

  // The child's environment first: its PATH decides where argv[0] is found.
  std::map<std::string, std::string> env = {
      {"PATH", kDefaultJobPath},
      {"HOME", ws},
      {"DEJA_JOB_ID", launch_.job_id},
      {"DEJA_WORKSPACE", ws},
  };
  for (const auto& [key, value] : launch_.env) {
    if (!ValidEnvKey(key)) {
      return fail(kExitCannotStart, absl::StrCat(argv0, ": env key \"", key, "\" is invalid"),
                  *err_fd);
    }
    env[key] = value;
  }
  std::vector<std::string> env_strings;
  env_strings.reserve(env.size());
  for (const auto& [key, value] : env) env_strings.push_back(absl::StrCat(key, "=", value));

  if (launch_.prepare) {
    if (absl::Status prepared = launch_.prepare(ws); !prepared.ok()) {
      return fail(kExitInternal, std::string(prepared.message()), *err_fd);
    }
    // Preparing may take long (inputs are downloaded): a cancel that came
    // meanwhile stops the job before it starts.
    absl::MutexLock lock(&mu_);
    if (kill_requested_ || cancel_requested_) {
      outcome->cancelled = true;
      return fail(kill_requested_ ? -SIGKILL : -SIGTERM,
                  "cancelled while the workspace was being prepared", *err_fd);
    }
  }

  std::string program;
  std::vector<std::string> argv;
  if (launch_.user.has_value()) {
    if (absl::Status st = GiveWorkspace(ws, *launch_.user); !st.ok()) {
      return fail(
          kExitInternal,
          absl::StrCat("giving the workspace to user ", launch_.user->name, ": ", st.message()),
          *err_fd);
    }
  }
  if (launch_.container_create) {
    absl::StatusOr<std::vector<std::string>> shim = launch_.container_create();
    if (!shim.ok()) return fail(kExitCannotStart, std::string(shim.status().message()), *err_fd);
    container_created_ = true;
    argv = *std::move(shim);
    program = argv[0];
  } else {
    if (int err = ResolveExecutable(argv0, env["PATH"], ws, &program); err != 0) {
      return fail(kExitCannotStart, absl::StrCat(argv0, ": ", std::strerror(err)), *err_fd);
    }
    argv = launch_.argv;
    if (launch_.user.has_value()) {
      argv = AsUser(*launch_.user, program, launch_.argv);
      program = kSetpriv;
    }
    if (launch_.memory_limit > 0) {
      // Set by a program of its own, so the limit holds from the command's
      // first instruction (posix_spawn sets no rlimit).
      std::vector<std::string> limited = {kPrlimit, absl::StrCat("--data=", launch_.memory_limit),
                                          "--"};
      limited.push_back(program);
      limited.insert(limited.end(), argv.begin() + 1, argv.end());
      argv = std::move(limited);
      program = kPrlimit;
    }
  }

  std::vector<char*> argv_ptrs;
  argv_ptrs.reserve(argv.size() + 1);
  for (const auto& arg : argv) argv_ptrs.push_back(const_cast<char*>(arg.c_str()));
  argv_ptrs.push_back(nullptr);
  std::vector<char*> env_ptrs;
  env_ptrs.reserve(env_strings.size() + 1);
  for (auto& entry : env_strings) env_ptrs.push_back(entry.data());
  env_ptrs.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, *out_fd, 1);
  posix_spawn_file_actions_adddup2(&actions, *err_fd, 2);
  posix_spawn_file_actions_addchdir_np(&actions, ws.c_str());
  posix_spawn_file_actions_addclosefrom_np(&actions, 3);

  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  posix_spawnattr_setflags(&attr,
                           POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  posix_spawnattr_setpgroup(&attr, 0);
  sigset_t signals;
  sigemptyset(&signals);
  posix_spawnattr_setsigmask(&attr, &signals);
  sigfillset(&signals);  // the worker may ignore SIGPIPE or block SIGTERM; the job must not
  posix_spawnattr_setsigdefault(&attr, &signals);

  pid_t pid = -1;
  int err = posix_spawn(&pid, program.c_str(), &actions, &attr, argv_ptrs.data(), env_ptrs.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (err != 0) {
    return fail(kExitCannotStart, absl::StrCat(argv0, ": ", std::strerror(err)), *err_fd);
  }
  return pid;
}

void JobRunner::RunThread() {
  JobOutcome outcome;
  const pid_t pid = Spawn(&outcome);
  outcome.started_at = clock_->Now();
  {
    absl::MutexLock lock(&mu_);
    spawn_done_ = true;
    pid_ = pid;
    if (pid < 0) {
      reaped_ = true;
    } else if (kill_requested_) {
      SignalGroupLocked(SIGKILL);
    } else if (cancel_requested_) {
      SignalGroupLocked(SIGTERM);
      grace_thread_ = std::thread([this] { GraceThread(); });
    }
    if (pid > 0 && launch_.time_limit > absl::ZeroDuration()) {
      limit_thread_ = std::thread([this] { LimitThread(); });
    }
  }

  if (pid > 0) {
    outcome.pid = pid;
    if (on_started_) on_started_(pid, outcome.started_at);
    // Wait without reaping: while the leader is a zombie its pid (the group
    // id) stays reserved, so killing the group cannot hit a stranger.
    siginfo_t info = {};
    while (waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOWAIT) != 0 && errno == EINTR) {
    }
    if (launch_.leader_exited) {
      launch_.leader_exited(pid, info.si_code == CLD_EXITED ? info.si_status : -info.si_status);
    }
    int status = 0;
    {
      absl::MutexLock lock(&mu_);
      SignalGroupLocked(SIGKILL);  // no stray children outlive the job
      while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
      }
      reaped_ = true;
      outcome.cancelled = cancel_requested_ || kill_requested_;
    }
    if (WIFEXITED(status)) {
      outcome.exit_code = WEXITSTATUS(status);
    } else if (WIFSIGNALED(status)) {
      outcome.exit_code = -WTERMSIG(status);
    }
    if (outcome.exit_code != 0 && launch_.memory_limit > 0 && !container_created_ &&
        RanOutOfMemory(absl::StrCat(launch_.workspace, "/", paths::kStderrFile))) {
      outcome.error =
          absl::StrCat("out of memory (limit ", FormatMemory(launch_.memory_limit), ")");
    }
    absl::MutexLock lock(&mu_);
    if (time_limit_hit_) {
      outcome.error = absl::StrCat(
          "time limit ",
          FormatTimeLimit(static_cast<uint64_t>(absl::ToInt64Milliseconds(launch_.time_limit))),
          " exceeded");
    }
  }
  if (container_created_ && launch_.container_end) launch_.container_end(&outcome.error);
  outcome.finished_at = clock_->Now();
  outcome.run_time = outcome.finished_at - outcome.started_at;
  if (on_exit_) on_exit_(outcome);
  absl::MutexLock lock(&mu_);
  outcome_ = std::move(outcome);
  finished_ = true;
}

}  // namespace deja::worker
