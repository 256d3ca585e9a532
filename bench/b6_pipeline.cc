// B6: the example pipeline (examples/pipeline), run with the deja CLI; then
// a rerun after changing only what the last node uses, against that node's
// own run time.
#include <regex>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "bench/harness.h"

namespace deja::bench {
namespace {

using deja::testing::RunCommand;

struct PipelineRun {
  double seconds = 0;
  deja::v1::Pipeline pipeline;
};

PipelineRun RunPipeline(BenchCluster& cluster, const std::vector<std::string>& extra) {
  std::vector<std::string> args = {"pipeline", "run",
                                   DEJA_SOURCE_DIR "/examples/pipeline/pipeline.yaml"};
  args.insert(args.end(), extra.begin(), extra.end());
  const double t0 = Now();
  std::vector<std::string> env = cluster.CliEnv();
  env.push_back("DEJA_HASH_CACHE=" + cluster.root() + "/hashes");
  auto r = RunCommand(DEJA_CLI_BIN, args, env);
  PipelineRun run;
  run.seconds = Now() - t0;
  Check(r.exit_code == 0, "deja pipeline run: " + r.out + r.err);
  std::smatch m;
  static const std::regex kId("pipeline (p[0-9]+)");
  Check(std::regex_search(r.out, m, kId), "no pipeline id in: " + r.out);
  run.pipeline = Must(cluster.client().GetPipeline(m[1]), "get pipeline");
  Check(run.pipeline.state() == deja::v1::PIPELINE_SUCCEEDED, "pipeline did not succeed: " + r.out);
  return run;
}

const deja::v1::NodeStatus& Node(const deja::v1::Pipeline& p, const std::string& name) {
  for (const auto& n : p.nodes()) {
    if (n.name() == name) return n;
  }
  Fail("no node " + name);
}

}  // namespace

void RunB6(const Options& options, Report* report) {
  const int reps = options.Reps(3, 1);
  std::vector<double> first_s, first_nodes_s, rerun_s, last_s, overhead_s, first_ratio;
  for (int rep = 0; rep < reps; ++rep) {
    // A fresh cluster each time, so that the first run runs every node.
    BenchCluster cluster(options.tmp_root, "b6");
    cluster.StartWorker("w1", 1);
    cluster.StartWorker("w2", 1);
    cluster.WaitForWorkers(2);
    PipelineRun first = RunPipeline(cluster, {});
    double nodes = 0;
    for (const auto& n : first.pipeline.nodes()) {
      Check(n.reused_from().empty(), "first run reused " + n.name());
      nodes += static_cast<double>(n.run_time_ms()) / 1e3;
    }
    PipelineRun rerun = RunPipeline(cluster, {"--param", "threshold=0.6"});
    for (const char* reused : {"preprocess", "train"}) {
      Check(!Node(rerun.pipeline, reused).reused_from().empty(),
            absl::StrCat("the rerun did not reuse ", reused));
    }
    const auto& last = Node(rerun.pipeline, "evaluate");
    Check(last.reused_from().empty(), "the rerun reused evaluate");
    deja::v1::Job job = Must(cluster.client().GetJob(last.job_id()), "get evaluate's job");
    const double last_run = static_cast<double>(job.run_time_ms()) / 1e3;
    first_s.push_back(first.seconds);
    first_nodes_s.push_back(nodes);
    first_ratio.push_back(first.seconds / nodes);
    rerun_s.push_back(rerun.seconds);
    last_s.push_back(last_run);
    overhead_s.push_back(rerun.seconds - last_run);
    Log(absl::StrCat("B6 rep ", rep, ": first run ", FmtNum(first.seconds, 2), " s (nodes ",
                     FmtNum(nodes, 2), " s), rerun ", FmtNum(rerun.seconds, 3), " s, evaluate ran ",
                     FmtNum(last_run * 1e3, 0), " ms"));
  }
  std::vector<double> last_ms, overhead_ms;
  for (double s : last_s) last_ms.push_back(s * 1e3);
  for (double s : overhead_s) overhead_ms.push_back(s * 1e3);
  const Summary over = Summarize(overhead_s);
  report->Add({"B6 example pipeline, rerun after changing only the last node",
               Fmt(Summarize(rerun_s), 3, "s"),
               Fmt(Summarize(last_ms), 0, "ms") + " last node's run",
               "+" + Fmt(Summarize(overhead_ms), 0, "ms"), "≤ last + 500 ms", over.median <= 0.5});
  report->Add({"B6 example pipeline, first run", Fmt(Summarize(first_s), 2, "s"),
               Fmt(Summarize(first_nodes_s), 2, "s") + " sum of node runs",
               Fmt(Summarize(first_ratio), 2, "×"), "—", std::nullopt});
  report->Note(absl::StrCat(
      "**B6.** ", Reps(reps),
      ", each on a fresh scheduler with 2 workers × 1 slot: "
      "`deja pipeline run examples/pipeline/pipeline.yaml` (every node runs; `train` sleeps "
      "3 s), then the same with `--param threshold=0.6`, which only `evaluate` uses: "
      "`preprocess` and `train` are reused, `evaluate` runs. Times are whole CLI commands "
      "(hashing and upload checks, submit, watching to the end); the baseline is evaluate's "
      "`run_time_ms` from its job record in the same rerun."));
}

}  // namespace deja::bench
