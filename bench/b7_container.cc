// B7: a no-op job in a container (docs/containers.md), submit to SUCCEEDED,
// against `docker run --rm IMAGE true` in the same run, interleaved.
#include <unistd.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "bench/harness.h"
#include "common/docker_engine.h"

namespace deja::bench {

using deja::testing::RunCommand;

void RunB7(const Options& options, Report* report) {
  if (absl::StatusOr<std::string> engine = DockerEngine(kDefaultDockerSocket).Version();
      !engine.ok() || access("/bin/busybox", X_OK) != 0) {
    const std::string why =
        engine.ok() ? "no /bin/busybox" : std::string(engine.status().message());
    report->Add({"B7 no-op job in a container: skipped", why, "", "", "", std::nullopt});
    return;
  }
  const std::string image = absl::StrCat("deja-bench-job:", getpid());
  auto built = RunCommand("/bin/bash",
                          {DEJA_SOURCE_DIR "/tests/containers/make_job_image.sh", image, "bench"});
  Check(built.exit_code == 0, "building the job image: " + built.err);
  const int reps = options.Reps(20, 2);
  BenchCluster cluster(options.tmp_root, "b7");
  cluster.StartWorker("w1", 1);
  cluster.WaitForWorkers(1);
  std::vector<double> deja_s, docker_s, ratio;
  for (int rep = 0; rep < reps; ++rep) {
    // The image is not pushed, so never memoized: each job runs.
    deja::v1::JobSpec spec;
    spec.mutable_app()->set_image(image);
    spec.mutable_app()->add_command("true");
    double t0 = Now();
    auto submitted = Must(cluster.client().Submit(spec), "submit");
    auto job = Must(cluster.client().WaitForJob(submitted.job().job_id(), absl::Seconds(60)),
                    "wait for the job");
    const double deja = Now() - t0;
    Check(job.state() == deja::v1::SUCCEEDED, "the job did not succeed: " + job.message());
    t0 = Now();
    auto run = RunCommand("/bin/sh", {"-c", absl::StrCat("docker run --rm ", image, " true")});
    const double docker = Now() - t0;
    Check(run.exit_code == 0, "docker run: " + run.err);
    deja_s.push_back(deja * 1e3);
    docker_s.push_back(docker * 1e3);
    ratio.push_back(deja / docker);
  }
  RunCommand("/bin/sh", {"-c", "docker rmi -f " + image + " >/dev/null"});
  const Summary r = Summarize(ratio);
  report->Add({"B7 no-op job in a container, submit → SUCCEEDED", Fmt(Summarize(deja_s), 0, "ms"),
               Fmt(Summarize(docker_s), 0, "ms") + " docker run --rm", Fmt(r, 2, "×"), "≤ 1.3×",
               r.median <= 1.3});
  report->Note(absl::StrCat(
      "**B7.** ", Reps(reps),
      ", interleaved: a `true` job with `--image` (busybox on an empty root, "
      "tests/containers/make_job_image.sh; not pushed, so never memoized) submitted with the "
      "client library and watched to SUCCEEDED, on 1 worker × 1 slot with the host's Docker "
      "Engine; against `docker run --rm IMAGE true` (the docker CLI, through sh) on the same "
      "engine. Deja's side includes the container's create, start, wait, log copy and remove "
      "through the Engine API, and the scheduler's commits."));
}

}  // namespace deja::bench
