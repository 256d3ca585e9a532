// The benchmark harness: options, statistics, the report table, and a
// cluster of real daemons (deja-scheduler, deja-worker) on loopback port 0
// in a temp dir, started the way tests/integration/cluster.cc starts them.
//
// Errors throw BenchError: every daemon and temp dir is owned by an object
// whose destructor kills or removes it, so a failing benchmark leaves
// nothing behind.
#ifndef DEJA_BENCH_HARNESS_H_
#define DEJA_BENCH_HARNESS_H_

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "client/deja_client.h"
#include "tests/integration/cluster.h"

namespace deja::bench {

using deja::testing::Process;

struct BenchError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

[[noreturn]] void Fail(const std::string& what);
inline void Check(bool ok, const std::string& what) {
  if (!ok) Fail(what);
}
void Must(const absl::Status& status, const std::string& what);
template <typename T>
T Must(absl::StatusOr<T> value, const std::string& what) {
  Must(value.status(), what);
  return *std::move(value);
}

// A progress line on stderr.
void Log(const std::string& line);

struct Options {
  bool quick = false;
  // Repetitions; 0: each benchmark's default.
  int reps = 0;
  // Every temp dir of the run lives under it.
  std::string tmp_root;
  // This binary (helpers run as `deja-bench --mode=...`).
  std::string self;
  int Reps(int full, int quick) const { return reps > 0 ? reps : (this->quick ? quick : full); }
};

// Monotonic seconds.
inline double Now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

struct Summary {
  double median = 0, min = 0, max = 0;
};
Summary Summarize(std::vector<double> samples);
// Nearest-rank percentile, p in [0, 100].
double Percentile(std::vector<double> samples, double p);

// "12.3 (11.0–14.2)" with `digits` decimals, then " unit".
std::string Fmt(const Summary& s, int digits, const std::string& unit = "");
std::string FmtNum(double v, int digits);
// "1 repetition", "5 repetitions".
std::string Reps(int n);

struct Row {
  std::string benchmark, deja, baseline, ratio, target;
  std::optional<bool> met;  // nullopt: context, no target
};

class Report {
 public:
  void Add(Row row) { rows_.push_back(std::move(row)); }
  // A paragraph under the table, per benchmark.
  void Note(const std::string& text) { notes_.push_back(text); }
  std::string Markdown() const;
  int Missed() const;

 private:
  std::vector<Row> rows_;
  std::vector<std::string> notes_;
};

// A temp dir under `root`. Removed (with everything in it) on destruction
// only when `remove`: the run's dirs stay until the run's root goes, so that
// deleting thousands of files (which makes ext4 slower at creating the next
// ones) does not happen between measurements.
class TempDir {
 public:
  TempDir(const std::string& root, const std::string& name, bool remove = false);
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  bool remove_;
};

// Polls every `every` until `done` or `timeout`; BenchError naming `what` then.
void WaitFor(const std::function<bool()>& done, absl::Duration timeout, const std::string& what,
             absl::Duration every = absl::Milliseconds(5));

// Reads the port a daemon wrote to `port_file`, waiting for it.
int WaitForPortFile(const std::string& port_file, absl::Duration timeout, const Process& process,
                    const std::string& log);

class BenchCluster {
 public:
  // A scheduler on 127.0.0.1:0 with its data in a fresh temp dir under
  // `root`; `data_dir` non-empty: that existing store instead.
  BenchCluster(const std::string& root, const std::string& name,
               std::vector<std::string> scheduler_flags = {}, const std::string& data_dir = "",
               absl::Duration start_timeout = absl::Seconds(30));
  // SIGKILLs the workers, their jobs and the scheduler; removes the dir.
  ~BenchCluster();
  BenchCluster(const BenchCluster&) = delete;
  BenchCluster& operator=(const BenchCluster&) = delete;

  const std::string& root() const { return dir_.path(); }
  std::string address() const;
  DejaClient& client() { return *client_; }
  // The environment of a `deja` command run against this cluster.
  std::vector<std::string> CliEnv() const { return access_.CliEnv(address()); }
  const deja::testing::SchedulerAccess& access() const { return access_; }
  pid_t scheduler_pid() const { return scheduler_->pid(); }
  double start_seconds() const { return start_seconds_; }

  void StartWorker(const std::string& id, int slots);
  void WaitForWorkers(size_t connected);
  // Waits until no worker has a busy slot.
  void WaitIdle();
  std::string Workspace(const std::string& worker_id, const std::string& job_id) const;
  std::string SchedulerLog() const;
  // Sends `signal` (SIGSTOP, SIGCONT) to a running worker.
  void SignalWorker(const std::string& id, int signal);

  // Submits, or throws naming `what`.
  deja::v1::SubmitResponse Submit(const deja::v1::JobSpec& spec, const std::string& what);
  deja::v1::Job Wait(const std::string& job_id, absl::Duration timeout);

 private:
  TempDir dir_;
  deja::testing::SchedulerAccess access_;
  int port_ = 0;
  double start_seconds_ = 0;
  std::unique_ptr<Process> scheduler_;
  std::map<std::string, std::unique_ptr<Process>> workers_;
  std::unique_ptr<DejaClient> client_;
};

// A random-looking, incompressible byte stream (splitmix64), fast to make.
void FillPseudoRandom(uint64_t seed, char* data, size_t size);
// Writes `size` such bytes to `path`.
void WritePseudoRandomFile(const std::string& path, uint64_t seed, uint64_t size);

std::string RandomHex(int chars);

// The benchmarks. Each adds its rows and notes to `report`.
void RunB1(const Options& options, Report* report);
void RunB2(const Options& options, Report* report);
void RunB3(const Options& options, Report* report);
void RunB4(const Options& options, Report* report);
void RunB5(const Options& options, Report* report);
void RunB6(const Options& options, Report* report);
void RunB7(const Options& options, Report* report);

// Helper modes of the binary (run as separate processes).
// The echo server serves TLS with a certificate of its own CA, made in
// `tls_dir` (ca.crt is what its client trusts).
int EchoServerMain(const std::string& port_file, const std::string& tls_dir);
int TcpReceiverMain(const std::string& dir, const std::string& port_file);
int GenTreeMain(const std::string& dir, int files, uint64_t total_bytes);

}  // namespace deja::bench

#endif  // DEJA_BENCH_HARNESS_H_
