#include "tests/integration/cluster.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"

extern char** environ;

namespace deja::testing {

namespace fs = std::filesystem;

namespace {

pid_t Spawn(const std::string& binary, const std::vector<std::string>& args, int out_fd, int err_fd,
            char** env) {
  std::vector<std::string> words = {binary};
  words.insert(words.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& w : words) argv.push_back(w.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, out_fd, 1);
  posix_spawn_file_actions_adddup2(&actions, err_fd, 2);
  pid_t pid = -1;
  int rc = posix_spawn(&pid, binary.c_str(), &actions, nullptr, argv.data(), env);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) {
    ADD_FAILURE() << "spawn " << binary << ": " << strerror(rc);
    return -1;
  }
  return pid;
}

constexpr char kGnuTime[] = "/usr/bin/time";

int WaitPid(pid_t pid) {
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
}

long StatusField(pid_t pid, const std::string& field) {
  std::string status = ReadFile("/proc/" + std::to_string(pid) + "/status");
  size_t at = status.find(field + ":");
  if (at == std::string::npos) return -1;
  return std::strtol(status.c_str() + at + field.size() + 1, nullptr, 10);
}

// The child named deja-worker of `watchdog`; -1 if there is none.
pid_t WorkerProcessOf(pid_t watchdog) {
  const std::string parent = std::to_string(watchdog);
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/proc", ec)) {
    const std::string stat = ReadFile(entry.path().string() + "/stat");
    const size_t open = stat.find('(');
    const size_t close = stat.rfind(')');
    if (open == std::string::npos || close == std::string::npos) continue;
    std::vector<std::string> fields = absl::StrSplit(stat.substr(close + 2), ' ');
    // A fork (it signals SIGCHLD as it ends: field 38, exit_signal), not
    // the task LeakSanitizer clones to check a daemon that is exiting on
    // its own: that one shares the daemon's memory, and killing it would
    // leave the daemon waiting for it for ever.
    if (stat.substr(open + 1, close - open - 1) == "deja-worker" && fields.size() > 35 &&
        fields[1] == parent && fields[35] == std::to_string(SIGCHLD)) {
      return std::stoi(entry.path().filename().string());
    }
  }
  return -1;
}

}  // namespace

long RssKb(pid_t pid) { return StatusField(pid, "VmRSS"); }
long PeakRssKb(pid_t pid) { return StatusField(pid, "VmHWM"); }

void KillStrayJobs(const std::string& root) {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/proc", ec)) {
    std::string name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::error_code link_ec;
    fs::path cwd = fs::read_symlink(entry.path() / "cwd", link_ec);
    if (!link_ec && cwd.string().rfind(root, 0) == 0) kill(std::stoi(name), SIGKILL);
  }
}

Process::Process(const std::string& binary, const std::vector<std::string>& args,
                 const std::string& log_path) {
  int fd = open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  pid_ = Spawn(binary, args, fd, fd, environ);
  close(fd);
}

Process::~Process() {
  if (pid_ > 0) {
    Kill(SIGKILL);
    Wait();
  }
}

void Process::Kill(int signal) {
  if (pid_ > 0) kill(pid_, signal);
}

int Process::Wait() {
  if (pid_ <= 0) return -1;
  int code = WaitPid(pid_);
  pid_ = -1;
  return code;
}

CommandResult RunCommand(const std::string& binary, const std::vector<std::string>& args,
                         const std::vector<std::string>& env, bool measure_peak_rss) {
  char out_path[] = "/tmp/deja-cmd-out-XXXXXX";
  char err_path[] = "/tmp/deja-cmd-err-XXXXXX";
  char rss_path[] = "/tmp/deja-cmd-rss-XXXXXX";
  int out_fd = mkstemp(out_path);
  int err_fd = mkstemp(err_path);
  int rss_fd = -1;
  std::string program = binary;
  std::vector<std::string> argv = args;
  if (measure_peak_rss) {
    rss_fd = mkstemp(rss_path);
    program = kGnuTime;
    argv = {"-q", "-f", "%M", "-o", rss_path, binary};
    argv.insert(argv.end(), args.begin(), args.end());
  }
  std::vector<std::string> env_words;
  for (char** e = environ; *e != nullptr; ++e) env_words.emplace_back(*e);
  env_words.insert(env_words.end(), env.begin(), env.end());
  std::vector<char*> envp;
  for (auto& w : env_words) envp.push_back(w.data());
  envp.push_back(nullptr);
  pid_t pid = Spawn(program, argv, out_fd, err_fd, envp.data());
  int code = pid > 0 ? WaitPid(pid) : -1;
  CommandResult result{code, ReadFile(out_path), ReadFile(err_path)};
  if (measure_peak_rss) {
    // The last line is the figure (a line before it names a fatal signal).
    std::string report = ReadFile(rss_path);
    size_t line = report.find_last_of('\n', report.size() >= 2 ? report.size() - 2 : 0);
    result.max_rss_kb =
        std::strtol(report.c_str() + (line == std::string::npos ? 0 : line + 1), nullptr, 10);
    EXPECT_GT(result.max_rss_kb, 0) << kGnuTime << " reported '" << report << "'";
    close(rss_fd);
    unlink(rss_path);
  }
  close(out_fd);
  close(err_fd);
  unlink(out_path);
  unlink(err_path);
  return result;
}

SchedulerAccess::SchedulerAccess(std::string data_dir,
                                 const std::vector<std::string>& scheduler_flags)
    : data_dir_(std::move(data_dir)),
      insecure_(std::find(scheduler_flags.begin(), scheduler_flags.end(), "--insecure") !=
                scheduler_flags.end()) {
  for (const std::string& flag : scheduler_flags) {
    if (absl::StartsWith(flag, "--tls_ca=")) operator_ca_ = flag.substr(strlen("--tls_ca="));
  }
}

ClientSecurity SchedulerAccess::Security() const {
  ClientSecurity security;
  security.insecure = insecure_;
  if (!insecure_) {
    security.ca_pem = ReadFile(CaFile());
    security.token = std::string(absl::StripAsciiWhitespace(ReadFile(AdminTokenFile())));
  }
  return security;
}

CommandResult Cluster::Cli(const std::vector<std::string>& args) const {
  return RunCommand(DEJA_CLI_BIN, args, CliEnv());
}

std::vector<std::string> SchedulerAccess::CliEnv(const std::string& address) const {
  std::vector<std::string> env = {"DEJA_SCHEDULER=" + address};
  if (insecure_) {
    env.push_back("DEJA_INSECURE=1");
  } else {
    env.push_back("DEJA_TLS_CA=" + CaFile());
    env.push_back("DEJA_TOKEN_FILE=" + AdminTokenFile());
  }
  return env;
}

std::vector<std::string> SchedulerAccess::WorkerFlags(const DejaClient& admin) const {
  if (insecure_) return {"--insecure"};
  if (ReadFile(WorkerTokenFile()).empty()) {
    deja::v1::CreateTokenRequest request;
    request.set_role(deja::v1::WORKER);
    request.set_description("test workers");
    auto created = admin.CreateToken(request);
    EXPECT_TRUE(created.ok()) << created.status();
    if (created.ok()) std::ofstream(WorkerTokenFile()) << created->secret() << "\n";
  }
  return {"--tls_ca=" + CaFile(), "--token_file=" + WorkerTokenFile()};
}

namespace {

std::string NewRoot() {
  std::string tmpl = absl::StrCat(
      "/tmp/deja-it-", ::testing::UnitTest::GetInstance()->current_test_info()->name(), "-XXXXXX");
  std::string root = mkdtemp(tmpl.data());
  // A worker started as root runs its jobs as deja-job, which must pass
  // through to their workspaces; tests' commands also leave marks here (like
  // /tmp: anyone may add a file, only its owner remove it).
  chmod(root.c_str(), 01777);
  return root;
}

}  // namespace

Cluster::Cluster(std::vector<std::string> scheduler_flags)
    : root_(NewRoot()),
      scheduler_flags_(std::move(scheduler_flags)),
      access_(DataDir(), scheduler_flags_) {
  StartScheduler();
}

Cluster::~Cluster() {
  if (::testing::Test::HasFailure()) DumpLogs();
  // As crashes: each watchdog kills its worker's jobs and ends (a daemon
  // whose worker is gone or never forked is killed outright, and its jobs
  // below).
  for (const auto& [id, daemon] : workers_) {
    if (const pid_t worker = WorkerProcessOf(daemon->pid()); worker > 0) {
      kill(worker, SIGKILL);
      daemon->Wait();
    }
  }
  workers_.clear();
  scheduler_.reset();
  KillStrayJobs(root_);
  if (!::testing::Test::HasFailure()) {
    std::error_code ec;
    fs::remove_all(root_, ec);
  }
}

void Cluster::StartScheduler() {
  std::string port_file = root_ + "/scheduler.port";
  fs::remove(port_file);
  std::vector<std::string> args = {
      "--data_dir=" + root_ + "/scheduler-data",
      "--listen=127.0.0.1:" + std::to_string(port_),
      "--port_file=" + port_file,
  };
  args.insert(args.end(), scheduler_flags_.begin(), scheduler_flags_.end());
  scheduler_ = std::make_unique<Process>(DEJA_SCHEDULER_BIN, args, root_ + "/scheduler.log");
  ++scheduler_starts_;
  ASSERT_TRUE(PollUntil([&] { return !ReadFile(port_file).empty(); }))
      << "scheduler did not start:\n"
      << ReadFile(root_ + "/scheduler.log");
  port_ = std::stoi(ReadFile(port_file));
  if (client_ == nullptr) {
    DejaClientOptions options;
    options.security = access_.Security();
    client_ = std::make_unique<DejaClient>(address(), options);
  }
}

void Cluster::StopScheduler(int signal) {
  scheduler_->Kill(signal);
  scheduler_->Wait();
}

std::string Cluster::address() const { return absl::StrCat("127.0.0.1:", port_); }

void Cluster::StartWorker(const std::string& id, int slots, const std::vector<std::string>& flags) {
  fs::create_directories(WorkDir(id));
  std::vector<std::string> args{"--scheduler=" + address(), "--work_dir=" + WorkDir(id),
                                "--slots=" + std::to_string(slots), "--id=" + id,
                                "--advertise=127.0.0.1:0"};
  for (std::string& flag : access_.WorkerFlags(*client_)) args.push_back(std::move(flag));
  args.insert(args.end(), flags.begin(), flags.end());
  workers_[id] = std::make_unique<Process>(DEJA_WORKER_BIN, args, root_ + "/worker-" + id + ".log");
}

pid_t Cluster::worker_pid(const std::string& id) const {
  pid_t worker = -1;
  PollUntil([&] { return (worker = WorkerProcessOf(workers_.at(id)->pid())) > 0; });
  return worker;
}

void Cluster::KillWorker(const std::string& id, int signal) {
  auto it = workers_.find(id);
  ASSERT_NE(it, workers_.end());
  const pid_t worker = WorkerProcessOf(it->second->pid());
  if (signal == SIGKILL && worker > 0) {
    kill(worker, SIGKILL);
  } else {
    it->second->Kill(signal);
  }
  it->second->Wait();
  workers_.erase(it);
}

void Cluster::SignalWorker(const std::string& id, int signal) {
  ASSERT_NE(workers_.find(id), workers_.end());
  const pid_t worker = worker_pid(id);
  ASSERT_GT(worker, 0) << "worker " << id << " has no worker process";
  kill(worker, signal);
}

std::string Cluster::WorkDir(const std::string& worker_id) const {
  return root_ + "/worker-" + worker_id;
}

std::string Cluster::Workspace(const std::string& worker_id, const std::string& job_id) const {
  return WorkDir(worker_id) + "/jobs/" + job_id;
}

std::optional<size_t> ConnectedWorkers(DejaClient& client) {
  auto workers = client.ListWorkers();
  if (!workers.ok()) return std::nullopt;
  size_t n = 0;
  for (const auto& w : *workers) n += w.connected() ? 1 : 0;
  return n;
}

bool Cluster::WaitForWorkers(size_t connected, absl::Duration timeout) {
  return PollUntil([&] { return ConnectedWorkers(*client_) == connected; }, timeout);
}

void Cluster::DumpLogs() const {
  for (const auto& entry : fs::directory_iterator(root_)) {
    if (entry.path().extension() != ".log") continue;
    std::fprintf(stderr, "===== %s =====\n%s\n", entry.path().c_str(),
                 ReadFile(entry.path().string()).c_str());
  }
}

}  // namespace deja::testing
