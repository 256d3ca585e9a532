// Image jobs in containers, through the host's Docker Engine, and the limits
// of jobs with and without an image: real daemons and the deja CLI. Needs an
// engine at /var/run/docker.sock and busybox-static (the job image is built
// from it, tests/containers/make_job_image.sh); skipped, saying why, where
// either is missing.
#include <unistd.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/docker_engine.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/cluster.h"

namespace deja::testing {
namespace {

using ::testing::HasSubstr;

// Each test process builds its own (ctest runs the tests of this file in
// parallel processes): a rebuild gives the tag other content.
const std::string& Image() {
  static const std::string* image = new std::string(absl::StrCat("deja-test-job:it-", getpid()));
  return *image;
}

// Why container tests cannot run here, or "".
std::string WhyNoEngine() {
  absl::StatusOr<std::string> version = DockerEngine(kDefaultDockerSocket).Version();
  if (!version.ok()) return std::string(version.status().message());
  if (access("/bin/busybox", X_OK) != 0) return "no /bin/busybox (apt-get install busybox-static)";
  return "";
}

class ContainerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    why_skipped_ = WhyNoEngine();
    if (!why_skipped_.empty()) return;
    CommandResult built = RunCommand(
        "/bin/bash",
        {absl::StrCat(DEJA_SOURCE_DIR, "/tests/containers/make_job_image.sh"), Image(), "it"});
    if (built.exit_code != 0) {
      why_skipped_ = "building the job image failed: " + built.err;
      return;
    }
    image_id_ = std::string(absl::StripTrailingAsciiWhitespace(built.out));
  }
  static void TearDownTestSuite() {
    if (image_id_.empty()) return;
    RunCommand("/bin/sh", {"-c", absl::StrCat("docker rmi -f ", Image(), " >/dev/null 2>&1")});
  }
  void SetUp() override {
    if (!why_skipped_.empty()) GTEST_SKIP() << "no container engine: " << why_skipped_;
    cluster_ = std::make_unique<Cluster>();
  }
  CommandResult Deja(std::vector<std::string> args) { return cluster_->Cli(args); }
  static std::string FirstWord(const std::string& out) {
    return std::string(out.substr(0, out.find_first_of(" \n")));
  }
  // The containers of worker `id`'s attempts that the engine still has.
  std::vector<std::string> Containers(const std::string& id) {
    auto names =
        DockerEngine(kDefaultDockerSocket).ListLabelled("org.deja.work_dir", cluster_->WorkDir(id));
    EXPECT_TRUE(names.ok()) << names.status();
    return names.ok() ? *names : std::vector<std::string>{};
  }
  // Submits `args` (a `deja submit` after "submit") and waits for RUNNING.
  std::string SubmitRunning(std::vector<std::string> args) {
    args.insert(args.begin(), "submit");
    CommandResult submitted = Deja(args);
    EXPECT_EQ(submitted.exit_code, 0) << submitted.err;
    const std::string id = FirstWord(submitted.out);
    EXPECT_TRUE(PollUntil([&] {
      auto job = cluster_->client().GetJob(id);
      return job.ok() && job->state() == deja::v1::RUNNING;
    }));
    return id;
  }
  // The job's logs/stdout once it ended.
  std::string Finish(const std::string& id, deja::v1::JobState* state) {
    auto job = cluster_->client().WaitForJob(id, absl::Seconds(60));
    EXPECT_TRUE(job.ok()) << job.status();
    if (!job.ok()) return "";
    *state = job->state();
    auto out = cluster_->client().ReadLogs(id, deja::v1::LOG_STDOUT);
    return out.ok() ? *out : "";
  }

  static std::string why_skipped_;
  static std::string image_id_;
  std::unique_ptr<Cluster> cluster_;
};

std::string ContainerTest::why_skipped_;
std::string ContainerTest::image_id_;

TEST_F(ContainerTest, TheJobSeesItsImageAndWorkspaceAndNothingElse) {
  cluster_->StartWorker("w1", 1);
  ASSERT_TRUE(cluster_->WaitForWorkers(1));
  const std::string input = cluster_->root() + "/data.txt";
  ASSERT_EQ(RunCommand("/bin/sh", {"-c", "echo payload > " + input}).exit_code, 0);
  CommandResult run =
      Deja({"run", "--image", Image(), "--input", "data=" + input, "--output", "out.txt", "--",
            "sh", "-c",
            "head -1 /etc/os-release; pwd; id -u; cat inputs/data;"
            " (echo x >> inputs/data) 2>/dev/null && echo input-writable || echo input-read-only;"
            " grep -c : /proc/net/dev; echo made > out.txt"});
  ASSERT_EQ(run.exit_code, 0) << run.out << run.err;
  const std::string id = FirstWord(run.out);
  auto out = cluster_->client().ReadLogs(id, deja::v1::LOG_STDOUT);
  ASSERT_TRUE(out.ok()) << out.status();
  const std::vector<std::string> expected = {
      "PRETTY_NAME=\"Deja test image it\"",  // the image's file, not the host's
      "/workspace",                          // the workspace, at its fixed path
      "payload", "input-read-only", "1"};    // only lo: no network
  for (const std::string& line : expected) EXPECT_THAT(*out, HasSubstr(line + "\n"));
  EXPECT_THAT(*out, ::testing::Not(HasSubstr("\n0\n"))) << "not as root";
  auto job = cluster_->client().GetJob(id);
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(job->image_id(), image_id_);
  ASSERT_EQ(job->outputs_size(), 1);
  EXPECT_EQ(job->outputs(0).path(), "out.txt");
  CommandResult status = Deja({"status", id});
  EXPECT_THAT(status.out, ::testing::ContainsRegex(
                              absl::StrCat("\nimage +", Image(), " \\(", image_id_, "\\)\n")));
  EXPECT_THAT(status.out, HasSubstr("is not pinned to its content")) << "never memoized";
  EXPECT_TRUE(Containers("w1").empty()) << "removed when the job ended";

  // With --network the container has one.
  CommandResult net =
      Deja({"run", "--image", Image(), "--network", "--", "grep", "-c", ":", "/proc/net/dev"});
  ASSERT_EQ(net.exit_code, 0) << net.out << net.err;
  auto net_out = cluster_->client().ReadLogs(FirstWord(net.out), deja::v1::LOG_STDOUT);
  EXPECT_NE(*net_out, "1\n");
}

// The shim copies what the container prints as it prints it: `deja logs -f`
// follows an image job like any other, and nothing is written twice.
TEST_F(ContainerTest, ItsOutputReachesTheLogWhileItRuns) {
  cluster_->StartWorker("w1", 1);
  ASSERT_TRUE(cluster_->WaitForWorkers(1));
  const std::string id = SubmitRunning(
      {"--image", Image(), "--", "sh", "-c",
       "echo first; echo early >&2; while [ ! -e go ]; do sleep 0.05; done; echo second"});
  // The engine copies a container's stdout and stderr in two streams, so
  // the order between them is not kept: wait for both.
  std::string out, err;
  ASSERT_TRUE(PollUntil([&] {
    auto read_out = cluster_->client().ReadLogs(id, deja::v1::LOG_STDOUT);
    auto read_err = cluster_->client().ReadLogs(id, deja::v1::LOG_STDERR);
    out = read_out.ok() ? *read_out : read_out.status().ToString();
    err = read_err.ok() ? *read_err : read_err.status().ToString();
    return out == "first\n" && err == "early\n";
  })) << out
      << err;
  auto job = cluster_->client().GetJob(id);
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(job->state(), deja::v1::RUNNING) << "still waiting for go";
  WriteFile(cluster_->Workspace("w1", id) + "/go", "");
  deja::v1::JobState state;
  EXPECT_EQ(Finish(id, &state), "first\nsecond\n");
  EXPECT_EQ(state, deja::v1::SUCCEEDED);
}

TEST_F(ContainerTest, OverItsMemoryAJobFailsOutOfMemory) {
  cluster_->StartWorker("w1", 1);
  ASSERT_TRUE(cluster_->WaitForWorkers(1));
  CommandResult run = Deja({"run", "--image", Image(), "--memory", "32M", "--", "dd",
                            "if=/dev/zero", "of=/dev/null", "bs=256M", "count=1"});
  EXPECT_NE(run.exit_code, 0);
  const std::string id = FirstWord(run.out);
  auto job = cluster_->client().GetJob(id);
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(job->state(), deja::v1::FAILED);
  EXPECT_EQ(job->message(), "out of memory (limit 32 MiB)");
  EXPECT_THAT(run.out, HasSubstr("out of memory (limit 32 MiB)"));
  EXPECT_TRUE(cluster_->client().ListMemo("default", "", 0).value().empty()) << "never memoized";
  EXPECT_TRUE(Containers("w1").empty());
}

TEST_F(ContainerTest, PastItsTimeLimitAJobIsStoppedAndFails) {
  cluster_->StartWorker("w1", 2);
  ASSERT_TRUE(cluster_->WaitForWorkers(1));
  for (const bool image : {true, false}) {
    std::vector<std::string> args = {"run", "--time-limit", "1s"};
    if (image) args.insert(args.end(), {"--image", Image()});
    args.insert(args.end(), {"--", "sleep", "60"});
    CommandResult run = Deja(args);
    EXPECT_NE(run.exit_code, 0);
    auto job = cluster_->client().GetJob(FirstWord(run.out));
    ASSERT_TRUE(job.ok());
    EXPECT_EQ(job->state(), deja::v1::FAILED) << image;
    EXPECT_EQ(job->message(), "time limit 1s exceeded") << image;
  }
  EXPECT_TRUE(cluster_->client().ListMemo("default", "", 0).value().empty()) << "never memoized";
  EXPECT_TRUE(Containers("w1").empty());
}

TEST_F(ContainerTest, CancelAndAKilledWorkerLeaveNoContainer) {
  cluster_->StartWorker("w1", 1);
  ASSERT_TRUE(cluster_->WaitForWorkers(1));
  const std::string cancelled = SubmitRunning({"--image", Image(), "--", "sleep", "600"});
  ASSERT_EQ(Containers("w1").size(), 1u);
  ASSERT_TRUE(cluster_->client().CancelJob(cancelled).ok());
  EXPECT_TRUE(PollUntil([&] { return Containers("w1").empty(); }, absl::Seconds(30)));

  const std::string orphan = SubmitRunning({"--image", Image(), "--", "sleep", "601"});
  ASSERT_EQ(Containers("w1").size(), 1u);
  cluster_->KillWorker("w1", SIGKILL);  // its watchdog removes the container
  EXPECT_TRUE(PollUntil([&] { return Containers("w1").empty(); }, absl::Seconds(30)));
  // And nothing of the job runs on the host.
  CommandResult ps = RunCommand("/bin/sh", {"-c", "pgrep -f '[s]leep 601' || true"});
  EXPECT_EQ(ps.out, "");
}

TEST_F(ContainerTest, AWorkerWithoutAnEngineTakesNoImageJobAndSaysSo) {
  cluster_->StartWorker("plain", 1, {"--docker_socket="});
  ASSERT_TRUE(cluster_->WaitForWorkers(1));
  CommandResult workers = Deja({"workers"});
  EXPECT_THAT(workers.out,
              HasSubstr("plain takes no --image job: no container engine (--docker_socket is "
                        "empty)"));
  CommandResult submitted = Deja({"submit", "--image", Image(), "--", "true"});
  ASSERT_EQ(submitted.exit_code, 0) << submitted.err;
  const std::string id = FirstWord(submitted.out);
  CommandResult status = Deja({"status", id});
  EXPECT_THAT(status.out,
              HasSubstr(absl::StrCat("unplaceable  no worker has a container engine to run image ",
                                     Image(), " (see deja workers)")));
  CommandResult ls = Deja({"ls"});
  EXPECT_THAT(ls.out, HasSubstr(id + " cannot be placed: no worker has a container engine"));
  CommandResult fail =
      Deja({"run", "--unplaceable", "fail", "--image", Image(), "--", "echo", "other"});
  EXPECT_NE(fail.exit_code, 0);
  EXPECT_THAT(fail.out, HasSubstr("FAILED"));
  EXPECT_THAT(fail.out, HasSubstr("unplaceable: no worker has a container engine"));

  // A worker with one: the queued job runs there.
  cluster_->StartWorker("docker", 1);
  auto job = cluster_->client().WaitForJob(id, absl::Seconds(60));
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(job->state(), deja::v1::SUCCEEDED);
  EXPECT_EQ(job->worker_id(), "docker");
}

TEST_F(ContainerTest, APushedImageLoadsWhereItIsMissingAndIsReusedByContent) {
  const std::string tag = absl::StrCat("deja-test-push:", getpid());
  const std::string script = absl::StrCat(DEJA_SOURCE_DIR, "/tests/containers/make_job_image.sh");
  CommandResult built = RunCommand("/bin/bash", {script, tag, "A"});
  ASSERT_EQ(built.exit_code, 0) << built.err;
  const std::string id_a(absl::StripTrailingAsciiWhitespace(built.out));
  cluster_->StartWorker("w1", 1, {"--platform=node=w1"});
  cluster_->StartWorker("w2", 1, {"--platform=node=w2"});
  ASSERT_TRUE(cluster_->WaitForWorkers(2));

  CommandResult pushed = Deja({"image", "push", tag});
  ASSERT_EQ(pushed.exit_code, 0) << pushed.out << pushed.err;
  EXPECT_THAT(pushed.out, HasSubstr(tag + " " + id_a + " pushed: "));
  EXPECT_THAT(Deja({"image", "ls"}).out, HasSubstr(tag));
  // No engine here has it any more: the worker must load it.
  ASSERT_EQ(RunCommand("/bin/sh", {"-c", "docker rmi " + tag}).exit_code, 0);
  ASSERT_FALSE(DockerEngine(kDefaultDockerSocket).ImageId(id_a).ok());

  const std::vector<std::string> job = {
      "--image", tag,  "--output", "release.txt",
      "--",      "sh", "-c",       "head -1 /etc/os-release | tee release.txt"};
  std::vector<std::string> run = {"run"};
  run.insert(run.end(), job.begin(), job.end());
  CommandResult first = Deja(run);
  ASSERT_EQ(first.exit_code, 0) << first.out << first.err;
  const std::string first_id = FirstWord(first.out);
  auto ran = cluster_->client().GetJob(first_id);
  ASSERT_TRUE(ran.ok());
  EXPECT_EQ(ran->spec().app().image_id(), id_a) << "pinned at submit";
  EXPECT_EQ(ran->image_id(), id_a);
  EXPECT_EQ(*cluster_->client().ReadLogs(first_id, deja::v1::LOG_STDOUT),
            "PRETTY_NAME=\"Deja test image A\"\n");
  EXPECT_TRUE(DockerEngine(kDefaultDockerSocket).ImageId(id_a).ok()) << "loaded, and kept";

  // Reused on the other worker while the holder is busy: a copy, no run.
  const std::string holder = ran->worker_id();
  const std::string other = holder == "w1" ? "w2" : "w1";
  const std::string busy = SubmitRunning({"--platform", "node=" + holder, "--", "sleep", "30"});
  CommandResult reused = Deja(run);
  ASSERT_EQ(reused.exit_code, 0) << reused.out << reused.err;
  auto copy = cluster_->client().GetJob(FirstWord(reused.out));
  ASSERT_TRUE(copy.ok());
  EXPECT_EQ(copy->reused_from(), first_id);
  EXPECT_EQ(copy->worker_id(), other);
  EXPECT_EQ(copy->image_id(), id_a);
  ASSERT_TRUE(cluster_->client().CancelJob(busy).ok());

  // The tag now names other content: the old run is never served for it.
  built = RunCommand("/bin/bash", {script, tag, "B"});
  ASSERT_EQ(built.exit_code, 0) << built.err;
  const std::string id_b(absl::StripTrailingAsciiWhitespace(built.out));
  ASSERT_NE(id_b, id_a);
  ASSERT_EQ(Deja({"image", "push", tag}).exit_code, 0);
  CommandResult moved = Deja(run);
  ASSERT_EQ(moved.exit_code, 0) << moved.out << moved.err;
  auto fresh = cluster_->client().GetJob(FirstWord(moved.out));
  ASSERT_TRUE(fresh.ok());
  EXPECT_EQ(fresh->reused_from(), "");
  EXPECT_EQ(fresh->image_id(), id_b);
  EXPECT_EQ(*cluster_->client().ReadLogs(fresh->job_id(), deja::v1::LOG_STDOUT),
            "PRETTY_NAME=\"Deja test image B\"\n");
  RunCommand("/bin/sh", {"-c", absl::StrCat("docker rmi -f ", tag, " ", id_a, " ", id_b)});
}

TEST_F(ContainerTest, APlainJobOverItsMemoryFailsOutOfMemory) {
  cluster_->StartWorker("w1", 1, {"--docker_socket="});
  ASSERT_TRUE(cluster_->WaitForWorkers(1));
  CommandResult workers = Deja({"workers"});
  EXPECT_THAT(workers.out, HasSubstr("rlimits"));
  CommandResult run = Deja(
      {"run", "--memory", "64M", "--", "dd", "if=/dev/zero", "of=/dev/null", "bs=300M", "count=1"});
  EXPECT_NE(run.exit_code, 0);
  auto job = cluster_->client().GetJob(FirstWord(run.out));
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(job->state(), deja::v1::FAILED);
  EXPECT_EQ(job->message(), "out of memory (limit 64 MiB)");
  // Under the limit it runs.
  CommandResult fits = Deja(
      {"run", "--memory", "64M", "--", "dd", "if=/dev/zero", "of=/dev/null", "bs=1M", "count=1"});
  EXPECT_EQ(fits.exit_code, 0) << fits.out << fits.err;
}

}  // namespace
}  // namespace deja::testing
