#include "bench/harness.h"

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <random>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"

namespace deja::bench {

namespace fs = std::filesystem;
using deja::testing::ConnectedWorkers;
using deja::testing::ReadFile;

void Fail(const std::string& what) { throw BenchError(what); }

void Must(const absl::Status& status, const std::string& what) {
  if (!status.ok()) Fail(absl::StrCat(what, ": ", status.ToString()));
}

void Log(const std::string& line) {
  static const double start = Now();
  std::fprintf(stderr, "[%7.1fs] %s\n", Now() - start, line.c_str());
}

Summary Summarize(std::vector<double> samples) {
  Check(!samples.empty(), "no samples to summarize");
  std::sort(samples.begin(), samples.end());
  Summary s;
  size_t n = samples.size();
  s.median = n % 2 == 1 ? samples[n / 2] : (samples[n / 2 - 1] + samples[n / 2]) / 2;
  s.min = samples.front();
  s.max = samples.back();
  return s;
}

double Percentile(std::vector<double> samples, double p) {
  Check(!samples.empty(), "no samples for a percentile");
  std::sort(samples.begin(), samples.end());
  size_t rank = static_cast<size_t>(std::ceil(p / 100.0 * static_cast<double>(samples.size())));
  rank = std::clamp<size_t>(rank, 1, samples.size());
  return samples[rank - 1];
}

std::string FmtNum(double v, int digits) { return absl::StrFormat("%.*f", digits, v); }

std::string Reps(int n) { return n == 1 ? "1 repetition" : absl::StrCat(n, " repetitions"); }

std::string Fmt(const Summary& s, int digits, const std::string& unit) {
  std::string out = FmtNum(s.median, digits);
  if (s.min != s.max)
    absl::StrAppend(&out, " (", FmtNum(s.min, digits), "–", FmtNum(s.max, digits), ")");
  // "1.50×", "3× faster", "12 ms".
  if (!unit.empty()) absl::StrAppend(&out, unit.rfind("×", 0) == 0 ? "" : " ", unit);
  return out;
}

std::string Report::Markdown() const {
  std::string out =
      "| benchmark | Deja | baseline | ratio | target | met? |\n|---|---|---|---|---|---|\n";
  for (const Row& r : rows_) {
    std::string met = !r.met.has_value() ? "—" : (*r.met ? "yes" : "**no**");
    absl::StrAppend(&out, "| ", r.benchmark, " | ", r.deja, " | ", r.baseline, " | ", r.ratio,
                    " | ", r.target, " | ", met, " |\n");
  }
  if (!notes_.empty()) absl::StrAppend(&out, "\n");
  for (const std::string& n : notes_) absl::StrAppend(&out, n, "\n\n");
  return out;
}

int Report::Missed() const {
  int n = 0;
  for (const Row& r : rows_) n += r.met.has_value() && !*r.met ? 1 : 0;
  return n;
}

TempDir::TempDir(const std::string& root, const std::string& name, bool remove) : remove_(remove) {
  std::string tmpl = absl::StrCat(root, "/", name, "-XXXXXX");
  Check(mkdtemp(tmpl.data()) != nullptr, "mkdtemp " + tmpl);
  // A root worker's jobs run as deja-job, which passes through to them.
  Check(chmod(tmpl.c_str(), 0711) == 0, "chmod " + tmpl);
  path_ = tmpl;
}

TempDir::~TempDir() {
  if (!remove_) return;
  std::error_code ec;
  fs::remove_all(path_, ec);
}

void WaitFor(const std::function<bool()>& done, absl::Duration timeout, const std::string& what,
             absl::Duration every) {
  const double deadline = Now() + absl::ToDoubleSeconds(timeout);
  while (!done()) {
    if (Now() > deadline)
      Fail(absl::StrCat("timed out after ", absl::FormatDuration(timeout), " waiting for ", what));
    absl::SleepFor(every);
  }
}

int WaitForPortFile(const std::string& port_file, absl::Duration timeout, const Process& process,
                    const std::string& log) {
  Check(process.pid() > 0, "could not start the process logging to " + log);
  const double deadline = Now() + absl::ToDoubleSeconds(timeout);
  while (true) {
    std::string port = ReadFile(port_file);
    if (!port.empty()) return std::stoi(port);
    if (kill(process.pid(), 0) != 0 || Now() > deadline) {
      Fail(absl::StrCat("no port in ", port_file, "; log ", log, ":\n", ReadFile(log)));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

BenchCluster::BenchCluster(const std::string& root, const std::string& name,
                           std::vector<std::string> scheduler_flags, const std::string& data_dir,
                           absl::Duration start_timeout)
    : dir_(root, name),
      access_(data_dir.empty() ? dir_.path() + "/scheduler-data" : data_dir, scheduler_flags) {
  const std::string port_file = dir_.path() + "/scheduler.port";
  std::vector<std::string> args = {
      "--data_dir=" + (data_dir.empty() ? dir_.path() + "/scheduler-data" : data_dir),
      "--listen=127.0.0.1:0", "--port_file=" + port_file};
  args.insert(args.end(), scheduler_flags.begin(), scheduler_flags.end());
  const double t0 = Now();
  scheduler_ = std::make_unique<Process>(DEJA_SCHEDULER_BIN, args, dir_.path() + "/scheduler.log");
  port_ = WaitForPortFile(port_file, start_timeout, *scheduler_, dir_.path() + "/scheduler.log");
  start_seconds_ = Now() - t0;
  DejaClientOptions options;
  options.security = access_.Security();
  client_ = std::make_unique<DejaClient>(address(), options);
}

BenchCluster::~BenchCluster() {
  client_.reset();
  workers_.clear();  // SIGKILL and wait
  scheduler_.reset();
  deja::testing::KillStrayJobs(dir_.path());
}

void BenchCluster::SignalWorker(const std::string& id, int signal) {
  auto it = workers_.find(id);
  Check(it != workers_.end(), "no worker " + id);
  it->second->Kill(signal);
}

std::string BenchCluster::address() const { return absl::StrCat("127.0.0.1:", port_); }

std::string BenchCluster::SchedulerLog() const { return ReadFile(dir_.path() + "/scheduler.log"); }

void BenchCluster::StartWorker(const std::string& id, int slots) {
  const std::string work_dir = dir_.path() + "/worker-" + id;
  fs::create_directories(work_dir);
  std::vector<std::string> args = {"--scheduler=" + address(), "--work_dir=" + work_dir,
                                   absl::StrCat("--slots=", slots), "--id=" + id,
                                   "--advertise=127.0.0.1:0"};
  for (std::string& flag : access_.WorkerFlags(*client_)) args.push_back(std::move(flag));
  workers_[id] =
      std::make_unique<Process>(DEJA_WORKER_BIN, args, dir_.path() + "/worker-" + id + ".log");
  Check(workers_[id]->pid() > 0, "could not start worker " + id);
}

void BenchCluster::WaitForWorkers(size_t connected) {
  WaitFor([&] { return ConnectedWorkers(*client_) == connected; }, absl::Seconds(30),
          absl::StrCat(connected, " connected workers"));
}

void BenchCluster::WaitIdle() {
  WaitFor(
      [&] {
        auto workers = client_->ListWorkers();
        if (!workers.ok()) return false;
        for (const auto& w : *workers) {
          if (w.busy_slots() > 0) return false;
        }
        return true;
      },
      absl::Seconds(60), "idle workers");
}

std::string BenchCluster::Workspace(const std::string& worker_id, const std::string& job_id) const {
  return dir_.path() + "/worker-" + worker_id + "/jobs/" + job_id;
}

deja::v1::SubmitResponse BenchCluster::Submit(const deja::v1::JobSpec& spec,
                                              const std::string& what) {
  return Must(client_->Submit(spec), "submit " + what);
}

deja::v1::Job BenchCluster::Wait(const std::string& job_id, absl::Duration timeout) {
  return Must(client_->WaitForJob(job_id, timeout), "wait for " + job_id);
}

void FillPseudoRandom(uint64_t seed, char* data, size_t size) {
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
  size_t i = 0;
  for (; i + 8 <= size; i += 8) {
    uint64_t z = (x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    std::memcpy(data + i, &z, 8);
  }
  for (; i < size; ++i) data[i] = static_cast<char>(x >> (8 * (i % 8)));
}

void WritePseudoRandomFile(const std::string& path, uint64_t seed, uint64_t size) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  Check(fd >= 0, "create " + path);
  std::string buffer(std::min<uint64_t>(size, 1 << 20), '\0');
  uint64_t done = 0;
  uint64_t chunk = 0;
  while (done < size) {
    size_t n = static_cast<size_t>(std::min<uint64_t>(buffer.size(), size - done));
    FillPseudoRandom(seed * 1000003 + chunk++, buffer.data(), n);
    size_t off = 0;
    while (off < n) {
      ssize_t w = write(fd, buffer.data() + off, n - off);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) {
        close(fd);
        Fail("write " + path);
      }
      off += static_cast<size_t>(w);
    }
    done += n;
  }
  close(fd);
}

std::string RandomHex(int chars) {
  static std::mt19937_64 rng(std::random_device{}());
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (int i = 0; i < chars; ++i) out.push_back(kDigits[rng() % 16]);
  return out;
}

}  // namespace deja::bench
