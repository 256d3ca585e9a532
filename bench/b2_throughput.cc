// B2: throughput of fresh no-op jobs on 2 workers x 1 slot, against the
// same commands spawned locally 2 at a time.
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "bench/harness.h"

extern char** environ;

namespace deja::bench {
namespace {

using deja::testing::RunCommand;

// Runs /bin/true `n` times, `parallel` at a time (posix_spawn + waitpid);
// returns the seconds taken.
double RunLocally(int n, int parallel) {
  std::atomic<int> next{0};
  std::atomic<int> failures{0};
  auto loop = [&] {
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
    for (int i = next++; i < n; i = next++) {
      std::string param = absl::StrCat("--i=", i);  // distinct params, like the jobs
      char* argv[] = {const_cast<char*>("/bin/true"), param.data(), nullptr};
      pid_t pid = -1;
      if (posix_spawn(&pid, "/bin/true", &actions, nullptr, argv, environ) != 0) {
        ++failures;
        continue;
      }
      int status = 0;
      while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
      }
      if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) ++failures;
    }
    posix_spawn_file_actions_destroy(&actions);
  };
  const double t0 = Now();
  std::vector<std::thread> threads;
  for (int t = 0; t < parallel; ++t) threads.emplace_back(loop);
  for (auto& t : threads) t.join();
  const double t = Now() - t0;
  Check(failures == 0, "local /bin/true failed");
  return t;
}

// Waits until `n` jobs of `project` succeeded (Stats, polled; none may
// fail).
void WaitSucceeded(BenchCluster& cluster, const std::string& project, int n) {
  WaitFor(
      [&] {
        auto stats = cluster.client().Stats(project, 0);
        if (!stats.ok()) return false;
        Check(stats->total().failed() == 0, "a B2 job failed");
        return stats->total().succeeded() == static_cast<uint64_t>(n);
      },
      absl::Seconds(600), "B2 jobs to succeed");
}

constexpr int kSubmitters = 4;

// Submits `n` distinct /bin/true jobs in `project` from kSubmitters
// threads, then waits until all succeeded; returns the seconds taken.
double RunOnDeja(BenchCluster& cluster, const std::string& project, int n) {
  std::atomic<int> next{0};
  std::atomic<int> errors{0};
  std::atomic<uint64_t> last_seq{0};
  std::string first_error;
  auto loop = [&] {
    deja::v1::JobSpec spec;
    spec.set_project(project);
    spec.mutable_app()->set_name("noop");
    spec.mutable_app()->set_version("1");
    spec.mutable_app()->add_command("/bin/true");
    for (int i = next++; i < n; i = next++) {
      (*spec.mutable_params())["i"] = absl::StrCat(i);
      spec.set_request_id(absl::StrCat(project, "-", i));
      auto r = cluster.client().Submit(spec);
      if (!r.ok()) {
        if (errors++ == 0) first_error = r.status().ToString();
        continue;
      }
      uint64_t seq = std::stoull(r->job().job_id().substr(1));
      for (uint64_t seen = last_seq; seq > seen && !last_seq.compare_exchange_weak(seen, seq);) {
      }
    }
  };
  const double t0 = Now();
  std::vector<std::thread> threads;
  for (int t = 0; t < kSubmitters; ++t) threads.emplace_back(loop);
  for (auto& t : threads) t.join();
  Check(errors == 0, "B2 submit: " + first_error);
  // The last job submitted is about the last to finish (FIFO dispatch):
  // watch it, then count, so that polling does not load the scheduler.
  cluster.Wait(absl::StrCat("j", last_seq.load()), absl::Seconds(600));
  WaitSucceeded(cluster, project, n);
  return Now() - t0;
}

// The same `n` jobs as one job array (SubmitArray: one call, one commit);
// returns the seconds from the call until all succeeded.
double RunArrayOnDeja(BenchCluster& cluster, const std::string& project, int n) {
  deja::v1::SubmitArrayRequest request;
  deja::v1::JobSpec& spec = *request.mutable_spec();
  spec.set_project(project);
  spec.mutable_app()->set_name("noop");
  spec.mutable_app()->set_version("1");
  spec.mutable_app()->add_command("/bin/true");
  spec.set_request_id(project);
  for (int i = 0; i < n; ++i) (*request.add_elements()->mutable_params())["i"] = absl::StrCat(i);
  const double t0 = Now();
  auto submitted = cluster.client().SubmitArray(request);
  Check(submitted.ok(), "B2 SubmitArray: " + submitted.status().ToString());
  cluster.Wait(submitted->jobs(n - 1).job_id(), absl::Seconds(600));
  WaitSucceeded(cluster, project, n);
  return Now() - t0;
}

// The same `n` jobs as one `deja submit --array` command; returns the
// seconds from its start until all succeeded.
double RunCliArrayOnDeja(BenchCluster& cluster, const std::string& project, int n) {
  const double t0 = Now();
  auto r = RunCommand(DEJA_CLI_BIN,
                      {"submit", "--project", project, "--name", "noop", "--array",
                       absl::StrCat("i=0-", n - 1), "--", "/bin/true"},
                      cluster.CliEnv());
  Check(r.exit_code == 0, "B2 deja submit --array: " + r.err);
  WaitSucceeded(cluster, project, n);
  return Now() - t0;
}

// `seq n | xargs -P2 -n1 /bin/true`: the shell's way to run them; seconds.
double RunXargs(int n) {
  const double t0 = Now();
  auto r = RunCommand("/bin/sh", {"-c", absl::StrCat("seq ", n, " | xargs -P2 -n1 /bin/true")});
  Check(r.exit_code == 0, "xargs: " + r.err);
  return Now() - t0;
}

}  // namespace

void RunB2(const Options& options, Report* report) {
  const int n = options.quick ? 50 : 2000;
  const int reps = options.Reps(5, 1);
  // The scheduler as it starts by default (TLS and tokens on), with one job
  // sent ahead of a free slot to each worker (--dispatch_ahead=1), and with
  // TLS and tokens off (--insecure): the cost of security.
  struct Setup {
    std::string label, flag;
    std::unique_ptr<BenchCluster> cluster;
    std::vector<double> rate, ratio;
  };
  std::vector<Setup> setups;
  setups.push_back({"default", "", nullptr, {}, {}});
  setups.push_back({"`--dispatch_ahead=1`", "--dispatch_ahead=1", nullptr, {}, {}});
  setups.push_back({"`--insecure` (no TLS, no tokens)", "--insecure", nullptr, {}, {}});
  for (Setup& setup : setups) {
    std::vector<std::string> flags;
    if (!setup.flag.empty()) flags.push_back(setup.flag);
    setup.cluster = std::make_unique<BenchCluster>(options.tmp_root, "b2", flags);
    setup.cluster->StartWorker("w1", 1);
    setup.cluster->StartWorker("w2", 1);
    setup.cluster->WaitForWorkers(2);
    RunOnDeja(*setup.cluster, "b2-warmup", 10);
  }
  RunLocally(10, 2);

  std::vector<double> local_rate, array_rate, array_ratio, cli_rate, xargs_rate, cli_ratio;
  for (int rep = 0; rep < reps; ++rep) {
    const std::string project = absl::StrCat("b2-", rep);
    // Interleaved: the local baseline first on even repetitions, last on odd.
    double local_s = rep % 2 == 0 ? RunLocally(n, 2) : 0;
    std::vector<double> deja_s;
    for (Setup& setup : setups) deja_s.push_back(RunOnDeja(*setup.cluster, project, n));
    // One array, by the client and by the CLI, on the default scheduler.
    const double array_s = RunArrayOnDeja(*setups[0].cluster, project + "-array", n);
    const double xargs_s = rep % 2 == 0 ? RunXargs(n) : 0;
    const double cli_s = RunCliArrayOnDeja(*setups[0].cluster, project + "-cli", n);
    if (rep % 2 != 0) local_s = RunLocally(n, 2);
    const double xargs_after = rep % 2 != 0 ? RunXargs(n) : xargs_s;
    local_rate.push_back(n / local_s);
    array_rate.push_back(n / array_s);
    array_ratio.push_back(local_s / array_s);
    cli_rate.push_back(n / cli_s);
    xargs_rate.push_back(n / xargs_after);
    cli_ratio.push_back(xargs_after / cli_s);
    std::string line =
        absl::StrCat("B2 rep ", rep, ": local ", FmtNum(local_rate.back(), 0), " jobs/s");
    for (size_t i = 0; i < setups.size(); ++i) {
      setups[i].rate.push_back(n / deja_s[i]);
      setups[i].ratio.push_back(local_s / deja_s[i]);
      absl::StrAppend(&line, ", Deja ", setups[i].label, " ", FmtNum(setups[i].rate.back(), 0),
                      " jobs/s");
    }
    absl::StrAppend(&line, ", one SubmitArray ", FmtNum(array_rate.back(), 0),
                    " jobs/s, deja submit --array ", FmtNum(cli_rate.back(), 0),
                    " jobs/s, xargs -P2 ", FmtNum(xargs_rate.back(), 0), " jobs/s");
    Log(line);
  }
  for (const Setup& setup : setups) {
    const Summary r = Summarize(setup.ratio);
    report->Add(
        {absl::StrCat("B2 ", n, " fresh no-op jobs, 2 workers × 1 slot, scheduler ", setup.label),
         Fmt(Summarize(setup.rate), 0, "jobs/s"),
         Fmt(Summarize(local_rate), 0, "jobs/s") + " local, 2 in flight", Fmt(r, 2, "×"), "≥ 0.5×",
         r.median >= 0.5});
  }
  const Summary array = Summarize(array_ratio);
  report->Add({absl::StrCat("B2 ", n,
                            " fresh no-op jobs as one job array (SubmitArray), scheduler default"),
               Fmt(Summarize(array_rate), 0, "jobs/s"),
               Fmt(Summarize(local_rate), 0, "jobs/s") + " local, 2 in flight", Fmt(array, 2, "×"),
               "≥ 0.5×", array.median >= 0.5});
  report->Add({absl::StrCat("B2 ", n, " no-op jobs: one `deja submit --array` command, end to end"),
               Fmt(Summarize(cli_rate), 0, "jobs/s"),
               Fmt(Summarize(xargs_rate), 0, "jobs/s") + " `xargs -P2 /bin/true`",
               Fmt(Summarize(cli_ratio), 2, "×"), "—", std::nullopt});
  // TLS and tokens on (the default) against off (--insecure), run for run.
  std::vector<double> security_cost;
  for (int rep = 0; rep < reps; ++rep) {
    security_cost.push_back(setups[2].rate[rep] / setups[0].rate[rep]);
  }
  const Summary cost = Summarize(security_cost);
  report->Add({absl::StrCat("B2 ", n, " fresh no-op jobs: TLS and tokens on (default) vs off"),
               Fmt(Summarize(setups[0].rate), 0, "jobs/s"),
               Fmt(Summarize(setups[2].rate), 0, "jobs/s") + " `--insecure`",
               Fmt(cost, 2, "× slower"), "≤ 1.2×", cost.median <= 1.2});
  report->Note(absl::StrCat(
      "**B2.** ", Reps(reps), ": ", n,
      " `/bin/true` jobs with distinct params, "
      "submitted by ",
      kSubmitters,
      " client threads, timed from the first submit until "
      "`Stats` counts them all SUCCEEDED (polled every 5 ms); durable commits on, memoization "
      "on (each success records a memo entry). Three clusters, run one after the other in each "
      "repetition: the scheduler with its defaults, where a worker gets a job only when it "
      "has a free slot, so each job waits for one scheduler round trip after the previous "
      "ended; and with `--dispatch_ahead=1`, where each worker holds one job beyond its slot "
      "and starts it the moment the slot frees; and with `--insecure` (plaintext, no tokens), "
      "against which the default's cost of TLS and tokens is its rate's ratio, run for run "
      "(≤ 1.2× slower is the target). Baseline: the same ",
      n,
      " commands run locally by posix_spawn + waitpid, 2 in flight, interleaved. The array rows: "
      "the same jobs in one `SubmitArray` call (one commit) on the default cluster, timed from "
      "the call until all succeeded, against the same local baseline; and one `deja submit "
      "--array i=0-",
      n - 1, " -- /bin/true` process, timed from its start, against `seq ", n,
      " | xargs -P2 -n1 /bin/true` in the same repetition."));
}

}  // namespace deja::bench
