// Test harness: real deja-scheduler and deja-worker processes on loopback
// port 0, each cluster in its own temp dir, talked to over gRPC.
#ifndef DEJA_TESTS_INTEGRATION_CLUSTER_H_
#define DEJA_TESTS_INTEGRATION_CLUSTER_H_

#include <signal.h>
#include <sys/types.h>

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "client/deja_client.h"
#include "tests/fakes/poll_until.h"
#include "tests/fakes/temp_dir.h"

namespace deja::testing {

// A child process whose stdout and stderr go to `log_path`. Killed with
// SIGKILL when destroyed.
class Process {
 public:
  Process(const std::string& binary, const std::vector<std::string>& args,
          const std::string& log_path);
  ~Process();
  pid_t pid() const { return pid_; }
  void Kill(int signal);
  // Waits for exit; returns the exit code, or -signal.
  int Wait();
  bool running() const { return pid_ > 0; }

 private:
  pid_t pid_ = -1;
};

// Runs `binary args...` to completion, returning its exit code and output.
struct CommandResult {
  int exit_code;
  std::string out;
  std::string err;
  // The command's own peak resident set, with `measure_peak_rss`; else 0.
  long max_rss_kb = 0;
};
// With `measure_peak_rss` the command runs under GNU time (/usr/bin/time),
// which forks it from its own small process: the command's ru_maxrss is then
// its own peak, while a child spawned straight from the test (vfork + exec)
// starts its peak at the test process's resident set.
CommandResult RunCommand(const std::string& binary, const std::vector<std::string>& args,
                         const std::vector<std::string>& env = {}, bool measure_peak_rss = false);

// SIGKILLs every process whose working directory is under `root`: jobs
// orphaned by a SIGKILLed worker, as on a lost machine.
void KillStrayJobs(const std::string& root);

// VmRSS and VmHWM (peak) of a live process, in KiB.
long RssKb(pid_t pid);
long PeakRssKb(pid_t pid);

// How many workers the scheduler behind `client` lists as connected;
// nullopt when it cannot be asked.
std::optional<size_t> ConnectedWorkers(DejaClient& client);

// How clients and workers reach a scheduler under test whose data is in
// `data_dir`: TLS trusting its CA (data_dir/tls/ca.crt, or the operator's
// --tls_ca), unless it runs with --insecure (one of `scheduler_flags`).
class SchedulerAccess {
 public:
  SchedulerAccess(std::string data_dir, const std::vector<std::string>& scheduler_flags);
  bool insecure() const { return insecure_; }
  std::string CaFile() const {
    return operator_ca_.empty() ? data_dir_ + "/tls/ca.crt" : operator_ca_;
  }
  // The first admin token, which the scheduler writes on first start.
  std::string AdminTokenFile() const { return data_dir_ + "/admin.token"; }
  // A worker token, made with the admin token on first use.
  std::string WorkerTokenFile() const { return data_dir_ + "-worker.token"; }
  // A DejaClient's, with the admin token.
  ClientSecurity Security() const;
  // The environment of a `deja` command (the admin token).
  std::vector<std::string> CliEnv(const std::string& address) const;
  // A deja-worker's flags; the first call makes the worker token with
  // `admin` (a client with the admin token).
  std::vector<std::string> WorkerFlags(const DejaClient& admin) const;

 private:
  std::string data_dir_;
  bool insecure_;
  std::string operator_ca_;  // --tls_ca, if given
};

class Cluster {
 public:
  // `scheduler_flags` are added to every scheduler start.
  explicit Cluster(std::vector<std::string> scheduler_flags = {});
  ~Cluster();

  const std::string& root() const { return root_; }
  // Starts (or restarts, on the same port and data dir) the scheduler.
  void StartScheduler();
  void StopScheduler(int signal = SIGTERM);
  std::string address() const;
  DejaClient& client() { return *client_; }
  const SchedulerAccess& access() const { return access_; }
  std::string CaFile() const { return access_.CaFile(); }
  // The environment of a `deja` command run against this cluster.
  std::vector<std::string> CliEnv() const { return access_.CliEnv(address()); }
  // Runs the `deja` CLI against this cluster, with CliEnv().
  CommandResult Cli(const std::vector<std::string>& args) const;

  // `flags` are added to the worker's.
  void StartWorker(const std::string& id, int slots = 1,
                   const std::vector<std::string>& flags = {});
  // Sends `signal` to the worker, waits for the daemon to end and forgets
  // it. SIGKILL goes to the worker process itself, as a crash would (its
  // watchdog, the daemon's first process, then kills its jobs and ends);
  // any other signal to the daemon's process, which passes it on.
  void KillWorker(const std::string& id, int signal = SIGKILL);
  // Sends `signal` (SIGSTOP, SIGCONT...) to the worker process of a daemon
  // that keeps running.
  void SignalWorker(const std::string& id, int signal);
  std::string WorkDir(const std::string& worker_id) const;
  std::string Workspace(const std::string& worker_id, const std::string& job_id) const;
  // Waits until exactly these workers are connected.
  bool WaitForWorkers(size_t connected, absl::Duration timeout = absl::Seconds(20));

  pid_t scheduler_pid() const { return scheduler_->pid(); }
  // The worker process of daemon `id` (worker/watchdog.h: the daemon's
  // process is its watchdog, the worker its child), once it has forked;
  // -1 if it never does.
  pid_t worker_pid(const std::string& id) const;
  pid_t watchdog_pid(const std::string& id) const { return workers_.at(id)->pid(); }
  std::string DataDir() const { return root_ + "/scheduler-data"; }

  // Dumps daemon logs to stderr (call when a test failed).
  void DumpLogs() const;

 private:
  std::string root_;
  std::vector<std::string> scheduler_flags_;
  SchedulerAccess access_;
  int port_ = 0;
  std::unique_ptr<Process> scheduler_;
  int scheduler_starts_ = 0;
  std::map<std::string, std::unique_ptr<Process>> workers_;
  std::unique_ptr<DejaClient> client_;
};

}  // namespace deja::testing

#endif  // DEJA_TESTS_INTEGRATION_CLUSTER_H_
