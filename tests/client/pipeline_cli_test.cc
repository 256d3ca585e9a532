// Unit tests of `deja pipeline ...`: flag handling, the live view and its
// summary, the plain progress lines and the tables, tested alone; then the
// commands against a fake Scheduler (and content store) on 127.0.0.1:0 that
// plays a scripted pipeline, with a YAML file written to a temp dir. The
// shipped example (examples/pipeline/pipeline.yaml) must parse.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "client/cli.h"
#include "client/cli_format.h"
#include "client/deja_client.h"
#include "client/live_view.h"
#include "client/pipeline_commands.h"
#include "client/pipeline_format.h"
#include "client/pipeline_yaml.h"
#include "tests/client/cli_test_util.h"
#include "tests/fakes/fake_scheduler.h"

namespace deja::cli {
namespace {

namespace fs = std::filesystem;
using deja::v1::NodeStatus;
using deja::v1::Pipeline;

const absl::TimeZone kUtc = absl::UTCTimeZone();
// 2023-11-14 22:13:20 UTC.
constexpr int64_t kT0 = 1'700'000'000'000;

NodeStatus Node(const std::string& name, deja::v1::NodeState state, const std::string& job = "",
                deja::v1::JobState job_state = deja::v1::JOB_STATE_UNSPECIFIED) {
  NodeStatus node;
  node.set_name(name);
  node.set_state(state);
  node.set_job_id(job);
  node.set_job_state(job_state);
  return node;
}

NodeStatus Ran(const std::string& name, const std::string& job, int64_t run_ms) {
  NodeStatus node = Node(name, deja::v1::NODE_SUCCEEDED, job, deja::v1::SUCCEEDED);
  node.set_started_at_ms(kT0);
  node.set_finished_at_ms(kT0 + run_ms);
  node.set_run_time_ms(run_ms);
  return node;
}

NodeStatus Reused(const std::string& name, const std::string& job, const std::string& source,
                  int64_t saved_ms) {
  NodeStatus node = Node(name, deja::v1::NODE_SUCCEEDED, job, deja::v1::SUCCEEDED);
  node.set_reused_from(source);
  node.set_time_saved_ms(saved_ms);
  return node;
}

Pipeline MakePipeline(const std::string& id, deja::v1::PipelineState state,
                      std::vector<NodeStatus> nodes) {
  Pipeline pipeline;
  pipeline.set_pipeline_id(id);
  pipeline.set_state(state);
  pipeline.set_run(1);
  pipeline.set_created_at_ms(kT0);
  pipeline.mutable_spec()->set_name("model-training");
  pipeline.mutable_spec()->set_project("ml");
  pipeline.mutable_spec()->set_reuse(true);
  for (NodeStatus& node : nodes) {
    pipeline.mutable_spec()->add_nodes()->set_name(node.name());
    *pipeline.add_nodes() = std::move(node);
  }
  return pipeline;
}

// preprocess reused, train running on w2 for 3.2 s, evaluate pending, and
// two nodes more: one failed, one upstream-failed.
Pipeline MidRun() {
  NodeStatus train = Node("train", deja::v1::NODE_SUBMITTED, "j5", deja::v1::RUNNING);
  train.set_started_at_ms(kT0);
  NodeStatus report = Node("report", deja::v1::NODE_FAILED, "j6", deja::v1::FAILED);
  report.set_run_time_ms(1500);
  report.set_message("exit 3");
  NodeStatus publish = Node("publish", deja::v1::NODE_UPSTREAM_FAILED);
  publish.set_message("report failed");
  return MakePipeline("p3", deja::v1::PIPELINE_RUNNING,
                      {Reused("preprocess", "j4", "j1", 72'000), train,
                       Node("evaluate", deja::v1::NODE_PENDING), report, publish});
}

// ---------------------------------------------------------------------------
// Flags.

TEST(PipelineFlagsTest, ParamOverrides) {
  auto ok = ParseParamOverrides({"threshold=0.7", "note=a=b"});
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->at("threshold"), "0.7");
  EXPECT_EQ(ok->at("note"), "a=b");
  auto missing = ParseParamOverrides({"threshold"});
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(missing.status().message(), "--param \"threshold\": expected KEY=VALUE");
  auto twice = ParseParamOverrides({"a=1", "a=2"});
  EXPECT_EQ(twice.status().message(), "--param \"a=2\": key \"a\" given twice");
}

TEST(PipelineFlagsTest, ApplyFlagsToTheSpec) {
  deja::v1::PipelineSpec spec = MakePipeline("p1", deja::v1::PIPELINE_RUNNING,
                                             {Node("preprocess", deja::v1::NODE_PENDING),
                                              Node("train", deja::v1::NODE_PENDING)})
                                    .spec();
  PipelineFlags none;
  deja::v1::PipelineSpec unchanged = spec;
  ASSERT_TRUE(ApplyPipelineFlags(none, &unchanged).ok());
  EXPECT_EQ(unchanged.project(), "ml");
  EXPECT_TRUE(unchanged.reuse());
  EXPECT_FALSE(unchanged.force());
  EXPECT_TRUE(unchanged.force_nodes().empty());

  PipelineFlags flags;
  flags.project = "other";
  flags.force = true;
  flags.no_reuse = true;
  flags.force_nodes = {"train", "train"};
  ASSERT_TRUE(ApplyPipelineFlags(flags, &spec).ok());
  EXPECT_EQ(spec.project(), "other");
  EXPECT_TRUE(spec.force());
  EXPECT_FALSE(spec.reuse());
  ASSERT_EQ(spec.force_nodes_size(), 1);
  EXPECT_EQ(spec.force_nodes(0), "train");

  PipelineFlags unknown;
  unknown.force_nodes = {"trian"};
  absl::Status status = ApplyPipelineFlags(unknown, &spec);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message(),
            "--force-node \"trian\": the pipeline has no node of that name (its nodes: "
            "preprocess, train)");
}

// ---------------------------------------------------------------------------
// Rendering.

TEST(PipelineRenderTest, NodeStates) {
  EXPECT_EQ(NodeStateName(Node("a", deja::v1::NODE_PENDING)), "PENDING");
  EXPECT_EQ(NodeStateName(Node("a", deja::v1::NODE_SUBMITTED, "j1", deja::v1::QUEUED)), "QUEUED");
  EXPECT_EQ(NodeStateName(Node("a", deja::v1::NODE_SUBMITTED, "j1", deja::v1::MATERIALIZING)),
            "MATERIALIZING");
  EXPECT_EQ(NodeStateName(Node("a", deja::v1::NODE_UPSTREAM_FAILED)), "UPSTREAM_FAILED");
  EXPECT_EQ(NodeStateName(Node("a", deja::v1::NODE_CANCELLED, "j1", deja::v1::CANCELLED)),
            "CANCELLED");
  EXPECT_TRUE(IsNodeDone(deja::v1::NODE_UPSTREAM_FAILED));
  EXPECT_FALSE(IsNodeDone(deja::v1::NODE_SUBMITTED));
  EXPECT_EQ(PipelineStateName(deja::v1::PIPELINE_SUCCEEDED), "SUCCEEDED");
}

TEST(PipelineRenderTest, Summary) {
  EXPECT_EQ(PipelineSummary(MidRun()), "3/5 done, 1 failed, 1 reused, 1m12s saved");
  Pipeline fresh = MakePipeline("p1", deja::v1::PIPELINE_SUCCEEDED,
                                {Ran("preprocess", "j1", 2100), Ran("train", "j2", 5000)});
  EXPECT_EQ(PipelineSummary(fresh), "2/2 done, 0 reused");
  Pipeline reused =
      MakePipeline("p2", deja::v1::PIPELINE_SUCCEEDED,
                   {Reused("preprocess", "j3", "j1", 3 * 3'600'000),
                    Reused("train", "j4", "j2", 12 * 60'000), Ran("evaluate", "j5", 900)});
  EXPECT_EQ(PipelineSummary(reused), "3/3 done, 2 reused, 3h12m saved");
}

TEST(PipelineRenderTest, LiveViewLines) {
  WorkerOfJob workers = {{"j5", "w2"}};
  std::vector<std::string> lines =
      LiveViewLines(MidRun(), workers, absl::FromUnixMillis(kT0 + 3200));
  std::vector<std::string> expected = {
      "preprocess  SUCCEEDED        j4  reused from j1  saved 1m12s",
      "train       running on w2    j5                  3.2s",
      "evaluate    pending",
      "report      FAILED           j6                  1.5s: exit 3",
      "publish     UPSTREAM_FAILED: report failed",
      "3/5 done, 1 failed, 1 reused, 1m12s saved",
  };
  EXPECT_EQ(lines, expected);

  // Without a known worker; other in-flight states.
  Pipeline other = MakePipeline("p4", deja::v1::PIPELINE_RUNNING,
                                {Node("a", deja::v1::NODE_SUBMITTED, "j1", deja::v1::QUEUED),
                                 Node("b", deja::v1::NODE_SUBMITTED, "j2", deja::v1::RUNNING),
                                 Node("c", deja::v1::NODE_SUBMITTED, "j3", deja::v1::MATERIALIZING),
                                 Node("d", deja::v1::NODE_SUBMITTED, "j4", deja::v1::WAITING),
                                 Node("e", deja::v1::NODE_SUBMITTED, "j7", deja::v1::ASSIGNED)});
  other.mutable_nodes(2)->set_reused_from("j0");
  std::vector<std::string> expected_other = {
      "a  queued          j1", "b  running         j2", "c  MATERIALIZING   j3  reused from j0",
      "d  WAITING         j4", "e  assigned to w9  j7", "0/5 done, 0 reused",
  };
  EXPECT_EQ(LiveViewLines(other, {{"j7", "w9"}}, absl::FromUnixMillis(kT0)), expected_other);
}

TEST(PipelineRenderTest, PlainLines) {
  WorkerOfJob workers = {{"j5", "w2"}, {"j8", "w1"}};
  Pipeline mid = MidRun();
  EXPECT_EQ(NodePlainLine(mid.nodes(0), workers),
            "preprocess SUCCEEDED j4 reused from j1, saved 1m12s");
  EXPECT_EQ(NodePlainLine(mid.nodes(1), workers), "train RUNNING j5 on w2");
  EXPECT_EQ(NodePlainLine(mid.nodes(1), {}), "train RUNNING j5");
  EXPECT_EQ(NodePlainLine(mid.nodes(2), workers), "");  // pending: no line
  EXPECT_EQ(NodePlainLine(mid.nodes(3), workers), "report FAILED j6: exit 3");
  EXPECT_EQ(NodePlainLine(mid.nodes(4), workers), "publish UPSTREAM_FAILED: report failed");
  EXPECT_EQ(NodePlainLine(Ran("preprocess", "j3", 2100), workers),
            "preprocess SUCCEEDED j3 in 2.1s");
  EXPECT_EQ(NodePlainLine(Reused("train", "j4", "j2", 5000), workers),
            "train SUCCEEDED j4 reused from j2, saved 5.0s");

  NodeStatus queued = Node("a", deja::v1::NODE_SUBMITTED, "j7", deja::v1::QUEUED);
  EXPECT_EQ(NodePlainLine(queued, workers), "");
  queued.set_message("the memo entry of j2 could not be served; running");
  EXPECT_EQ(NodePlainLine(queued, workers),
            "a QUEUED j7: the memo entry of j2 could not be served; running");
  EXPECT_EQ(NodePlainLine(Node("a", deja::v1::NODE_SUBMITTED, "j8", deja::v1::ASSIGNED), workers),
            "");
  NodeStatus materializing = Node("a", deja::v1::NODE_SUBMITTED, "j8", deja::v1::MATERIALIZING);
  materializing.set_reused_from("j2");
  EXPECT_EQ(NodePlainLine(materializing, workers), "a MATERIALIZING j8 from j2 on w1");
  EXPECT_EQ(NodePlainLine(Node("a", deja::v1::NODE_SUBMITTED, "j9", deja::v1::WAITING), workers),
            "a WAITING j9 (identical job in flight)");
  // The job ended, the node not yet: the node's line follows.
  EXPECT_EQ(NodePlainLine(Node("a", deja::v1::NODE_SUBMITTED, "j9", deja::v1::SUCCEEDED), workers),
            "");
  EXPECT_EQ(NodePlainLine(Node("a", deja::v1::NODE_CANCELLED, "j9", deja::v1::CANCELLED), workers),
            "a CANCELLED j9");
  EXPECT_EQ(NodePlainLine(Node("a", deja::v1::NODE_CANCELLED), workers), "a CANCELLED");
}

TEST(PipelineRenderTest, StartAndEndLines) {
  Pipeline pipeline = MidRun();
  EXPECT_EQ(PipelineStartLine(pipeline), "pipeline p3: 5 nodes");
  pipeline.set_run(2);
  EXPECT_EQ(PipelineStartLine(pipeline), "pipeline p3: 5 nodes, run 2");
  pipeline.set_state(deja::v1::PIPELINE_FAILED);
  pipeline.set_message("node report failed");
  EXPECT_EQ(PipelineEndLine(pipeline), "pipeline p3 FAILED: node report failed");
  EXPECT_EQ(ExitCodeForPipeline(pipeline), kExitError);
  pipeline.set_state(deja::v1::PIPELINE_SUCCEEDED);
  EXPECT_EQ(PipelineEndLine(pipeline), "pipeline p3 SUCCEEDED");
  EXPECT_EQ(ExitCodeForPipeline(pipeline), kExitOk);
  pipeline.set_state(deja::v1::PIPELINE_CANCELLED);
  EXPECT_EQ(ExitCodeForPipeline(pipeline), kExitError);
}

TEST(PipelineRenderTest, StatusTables) {
  Pipeline pipeline = MidRun();
  pipeline.mutable_spec()->set_source("pipeline.yaml");
  (*pipeline.mutable_spec()->mutable_params())["threshold"] = "0.7";
  (*pipeline.mutable_spec()->mutable_params())["epochs"] = "3";
  pipeline.mutable_spec()->add_force_nodes("train");
  EXPECT_EQ(RenderKeyValues(PipelineRows(pipeline, kUtc)),
            "pipeline  p3\n"
            "name      model-training\n"
            "project   ml\n"
            "state     RUNNING\n"
            "run       1\n"
            "source    pipeline.yaml\n"
            "params    epochs=3 threshold=0.7\n"
            "force     train\n"
            "created   2023-11-14 22:13:20\n");
  EXPECT_EQ(PipelineNodesTable(pipeline, absl::FromUnixMillis(kT0 + 3200)),
            "NODE        STATE            JOB  REUSED-FROM  DURATION/SAVED  MESSAGE\n"
            "preprocess  SUCCEEDED        j4   j1           saved 1m12s     -\n"
            "train       RUNNING          j5   -            3.2s            -\n"
            "evaluate    PENDING          -    -            -               -\n"
            "report      FAILED           j6   -            1.5s            exit 3\n"
            "publish     UPSTREAM_FAILED  -    -            -               report failed\n");
}

TEST(PipelineRenderTest, PipelinesTable) {
  Pipeline done = MakePipeline("p2", deja::v1::PIPELINE_SUCCEEDED,
                               {Ran("preprocess", "j1", 2100), Ran("train", "j2", 5000)});
  EXPECT_EQ(PipelinesTable({MidRun(), done}, kUtc),
            "ID  NAME            PROJECT  STATE      NODES  CREATED\n"
            "p3  model-training  ml       RUNNING    3/5    2023-11-14 22:13:20\n"
            "p2  model-training  ml       SUCCEEDED  2/2    2023-11-14 22:13:20\n");
  EXPECT_EQ(PipelinesTable({}, kUtc), "ID  NAME  PROJECT  STATE  NODES  CREATED\n");
}

deja::v1::PipelinePlan SomePlan() {
  deja::v1::PipelinePlan plan;
  auto* node = plan.add_nodes();
  node->set_name("preprocess");
  node->set_reused(true);
  node->set_source_job_id("j1");
  node->set_expires_at_ms(kT0 + 24 * 3'600'000);
  node->set_time_saved_ms(2100);
  node = plan.add_nodes();
  node->set_name("train");
  node->set_reused(true);
  node->set_source_job_id("j2");
  node->set_expires_at_ms(kT0 + 24 * 3'600'000);
  node->set_time_saved_ms(190'000);
  node = plan.add_nodes();
  node->set_name("evaluate");
  node->set_reason("no memo entry has its hash (params[threshold] changed)");
  plan.set_time_saved_ms(192'100);
  return plan;
}

TEST(PipelineRenderTest, PlanTable) {
  deja::v1::PipelinePlan plan = SomePlan();
  EXPECT_EQ(PlanTable(plan, kUtc),
            "NODE        WOULD  SOURCE  EXPIRES              SAVES  REASON\n"
            "preprocess  reuse  j1      2023-11-15 22:13:20  2.1s   -\n"
            "train       reuse  j2      2023-11-15 22:13:20  3m10s  -\n"
            "evaluate    run    -       -                    -      no memo entry has its hash "
            "(params[threshold] changed)\n");
  EXPECT_EQ(PlanSavedLine(plan), "expected time saved: 3m12s");
  EXPECT_EQ(PlanSavedLine(deja::v1::PipelinePlan()), "expected time saved: none");
}

TEST(LiveViewTest, RedrawsInPlace) {
  std::ostringstream out;
  LiveView view(out, 12);
  view.Draw({"a  queued", "0/1 done"});
  EXPECT_EQ(out.str(), "\r\033[2Ka  queued\n\r\033[2K0/1 done\n");
  out.str("");
  view.Draw({"a  queued", "0/1 done"});  // unchanged: nothing drawn
  EXPECT_EQ(out.str(), "");
  view.Draw({"a  running on w1", "0/1 done"});  // cut to 11 columns
  EXPECT_EQ(out.str(), "\033[2A\r\033[2Ka  running \n\r\033[2K0/1 done\n");
  out.str("");
  view.Draw({"1/1 done"});  // fewer lines: the rest is erased
  EXPECT_EQ(out.str(), "\033[2A\r\033[2K1/1 done\n\033[J");
  out.str("");
  view.Erase();
  EXPECT_EQ(out.str(), "\033[1A\r\033[J");
  out.str("");
  view.Erase();
  EXPECT_EQ(out.str(), "");
}

// ---------------------------------------------------------------------------
// The shipped example.

TEST(PipelineExampleTest, ExampleParses) {
  const std::string file = std::string(DEJA_SOURCE_DIR) + "/examples/pipeline/pipeline.yaml";
  absl::StatusOr<PipelineFile> parsed = LoadPipelineFile(file, {{"threshold", "0.6"}});
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  const deja::v1::PipelineSpec& spec = parsed->spec;
  ASSERT_EQ(spec.nodes_size(), 3);
  EXPECT_EQ(spec.nodes(0).name(), "preprocess");
  EXPECT_EQ(spec.nodes(1).name(), "train");
  EXPECT_EQ(spec.nodes(2).name(), "evaluate");
  EXPECT_EQ(spec.nodes(2).params().at("threshold"), "0.6");
  EXPECT_TRUE(spec.nodes(1).params().empty());
  ASSERT_EQ(spec.edges_size(), 3);
  EXPECT_EQ(spec.edges(0).from_output(), "train.csv");
  EXPECT_EQ(spec.edges(2).to_input(), "model");
  // Scripts and data are local inputs; every one exists.
  EXPECT_EQ(parsed->local_inputs.size(), 4u);
  for (const LocalInput& input : parsed->local_inputs) {
    EXPECT_TRUE(fs::exists(input.path)) << input.path;
  }
}

// ---------------------------------------------------------------------------
// The commands, against a fake scheduler.

using ::deja::cli::testing::CliResult;
using ::deja::cli::testing::RunDeja;

// A run of a-b-c: a runs, b is reused, c runs; with `fail`, c fails.
std::vector<Pipeline> Script(bool fail) {
  NodeStatus a_running = Node("prep", deja::v1::NODE_SUBMITTED, "j3", deja::v1::RUNNING);
  a_running.set_started_at_ms(kT0);
  NodeStatus c_running = Node("eval", deja::v1::NODE_SUBMITTED, "j5", deja::v1::RUNNING);
  c_running.set_started_at_ms(kT0);
  NodeStatus c_end =
      fail ? Node("eval", deja::v1::NODE_FAILED, "j5", deja::v1::FAILED) : Ran("eval", "j5", 300);
  if (fail) c_end.set_message("exit 1: threshold must be a number");
  const auto running = deja::v1::PIPELINE_RUNNING;
  return {
      MakePipeline("p3", running,
                   {Node("prep", deja::v1::NODE_SUBMITTED, "j3", deja::v1::QUEUED),
                    Node("train", deja::v1::NODE_PENDING), Node("eval", deja::v1::NODE_PENDING)}),
      MakePipeline(
          "p3", running,
          {a_running, Node("train", deja::v1::NODE_PENDING), Node("eval", deja::v1::NODE_PENDING)}),
      MakePipeline("p3", running,
                   {Ran("prep", "j3", 2100), Reused("train", "j4", "j2", 5000),
                    Node("eval", deja::v1::NODE_PENDING)}),
      MakePipeline("p3", running,
                   {Ran("prep", "j3", 2100), Reused("train", "j4", "j2", 5000), c_running}),
      [&] {
        Pipeline end =
            MakePipeline("p3", fail ? deja::v1::PIPELINE_FAILED : deja::v1::PIPELINE_SUCCEEDED,
                         {Ran("prep", "j3", 2100), Reused("train", "j4", "j2", 5000), c_end});
        if (fail) end.set_message("node eval failed");
        return end;
      }(),
  };
}

// data.csv, the input of prep and eval.
constexpr char kData[] = "x,y\n1,2\n";

constexpr char kYaml[] = R"(name: model-training
params:
  threshold: 0.5
nodes:
  - name: prep
    inputs:
      data: data.csv
    command: [sh, -c, "cp ${inputs.data} out.csv"]
    outputs: [out.csv]
  - name: train
    command: [sh, -c, "cp ${inputs.data} model.txt"]
    outputs: [model.txt]
  - name: eval
    params:
      threshold: "${pipeline.threshold}"
    inputs:
      data: data.csv
    command: [sh, -c, "echo ${params.threshold} > m.json"]
    outputs: [m.json]
edges:
  - prep.output.out.csv -> train.input.data
)";

class PipelineCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    setenv("TZ", "UTC", 1);
    dir_ = fs::temp_directory_path() /
           ("deja-pipeline-cli-test-" + std::to_string(getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
    setenv("DEJA_HASH_CACHE", (dir_ / "hashes").c_str(), 1);
    std::ofstream(dir_ / "pipeline.yaml") << kYaml;
    std::ofstream(dir_ / "data.csv") << kData;
    fake_.SetPipelineScript(Script(/*fail=*/false));
    fake_.SetPlanReply(SomePlan());
    Pipeline cancelled =
        MakePipeline("", deja::v1::PIPELINE_CANCELLED, {Node("a", deja::v1::NODE_CANCELLED)});
    cancelled.set_message("cancelled by the user");
    fake_.SetCancelReply(cancelled);
    // The running nodes' jobs, which the CLI looks up for their worker.
    for (const char* job_id : {"j3", "j5"}) {
      deja::v1::Job job;
      job.set_job_id(job_id);
      job.set_worker_id("w1");
      fake_.AddJob(job);
    }
    // The store has every blob.
    server_.store().Put(kData);
  }
  void TearDown() override {
    unsetenv("DEJA_HASH_CACHE");
    fs::remove_all(dir_);
  }

  std::string Address() const { return server_.address(); }
  // The fake scheduler serves plaintext.
  static DejaClientOptions InsecureOptions() {
    DejaClientOptions options;
    options.security.insecure = true;
    return options;
  }
  std::string File() const { return (dir_ / "pipeline.yaml").string(); }
  CliResult Deja(std::vector<std::string> args) {
    args.insert(args.begin(), {"--scheduler", Address(), "--insecure"});
    return RunDeja(std::move(args));
  }

  fs::path dir_;
  deja::testing::FakeSchedulerServer server_;
  deja::testing::FakeScheduler& fake_ = server_.scheduler();
};

TEST_F(PipelineCliTest, RunPrintsALinePerNodeChangeThenTheSummary) {
  CliResult result = Deja({"pipeline", "run", File(), "--param", "threshold=0.7", "--force-node",
                           "train", "--project", "ml"});
  ASSERT_EQ(result.code, 0) << result.err;
  EXPECT_EQ(result.out,
            "pipeline p3: 3 nodes\n"
            "prep RUNNING j3 on w1\n"
            "prep SUCCEEDED j3 in 2.1s\n"
            "train SUCCEEDED j4 reused from j2, saved 5.0s\n"
            "eval RUNNING j5 on w1\n"
            "eval SUCCEEDED j5 in 300ms\n"
            "3/3 done, 1 reused, 5.0s saved\n"
            "pipeline p3 SUCCEEDED\n");
  EXPECT_EQ(result.err, "inputs already in the store\n");

  std::vector<deja::v1::SubmitPipelineRequest> submitted = fake_.submitted_pipelines();
  ASSERT_EQ(submitted.size(), 1u);
  const deja::v1::SubmitPipelineRequest& request = submitted[0];
  EXPECT_EQ(request.request_id().size(), 16u);
  const deja::v1::PipelineSpec& spec = request.spec();
  EXPECT_EQ(spec.project(), "ml");
  EXPECT_TRUE(spec.reuse());
  ASSERT_EQ(spec.force_nodes_size(), 1);
  EXPECT_EQ(spec.force_nodes(0), "train");
  EXPECT_EQ(spec.params().at("threshold"), "0.7");
  // Both nodes that name data.csv get it, hashed; train gets it by its edge.
  ASSERT_EQ(spec.nodes(0).inputs_size(), 1);
  EXPECT_EQ(spec.nodes(0).inputs(0).name(), "data");
  EXPECT_EQ(spec.nodes(0).inputs(0).kind(), "file");
  EXPECT_EQ(spec.nodes(0).inputs(0).digest().size(), 32u);
  EXPECT_EQ(spec.nodes(0).inputs(0).size(), 8u);
  EXPECT_EQ(spec.nodes(1).inputs_size(), 0);
  ASSERT_EQ(spec.nodes(2).inputs_size(), 1);
  EXPECT_EQ(spec.nodes(2).inputs(0).digest(), spec.nodes(0).inputs(0).digest());
  EXPECT_EQ(fake_.watched_pipelines(), std::vector<std::string>{"p3"});
}

TEST_F(PipelineCliTest, AFailedPipelineExitsOne) {
  fake_.SetPipelineScript(Script(/*fail=*/true));
  CliResult result = Deja({"pipeline", "run", File()});
  EXPECT_EQ(result.code, kExitError);
  EXPECT_TRUE(absl::StrContains(result.out,
                                "eval FAILED j5: exit 1: threshold must be a number\n"
                                "3/3 done, 1 failed, 1 reused, 5.0s saved\n"
                                "pipeline p3 FAILED: node eval failed\n"))
      << result.out;
}

TEST_F(PipelineCliTest, ABrokenWatchIsWatchedAgainWithoutRepeatingLines) {
  fake_.SetPipelineScript(Script(/*fail=*/false), /*break_after=*/3);
  CliResult result = Deja({"pipeline", "run", File()});
  ASSERT_EQ(result.code, 0) << result.err;
  EXPECT_EQ(result.out,
            "pipeline p3: 3 nodes\n"
            "prep RUNNING j3 on w1\n"
            "prep SUCCEEDED j3 in 2.1s\n"
            "train SUCCEEDED j4 reused from j2, saved 5.0s\n"
            "eval RUNNING j5 on w1\n"
            "eval SUCCEEDED j5 in 300ms\n"
            "3/3 done, 1 reused, 5.0s saved\n"
            "pipeline p3 SUCCEEDED\n");
  EXPECT_EQ(result.err,
            "inputs already in the store\n"
            "deja: lost the watch of p3 (scheduler restarting); watching again\n");
  EXPECT_EQ(fake_.watched_pipelines().size(), 2u);
}

TEST_F(PipelineCliTest, JsonPrintsEachChangeOfThePipeline) {
  CliResult result = Deja({"pipeline", "run", File(), "--json"});
  ASSERT_EQ(result.code, 0) << result.err;
  std::vector<std::string> lines = absl::StrSplit(result.out, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 5u) << result.out;
  EXPECT_TRUE(absl::StartsWith(lines[0], "{\"pipeline_id\":\"p3\"")) << lines[0];
  EXPECT_TRUE(absl::StrContains(lines[4], "\"state\":\"PIPELINE_SUCCEEDED\"")) << lines[4];
}

TEST_F(PipelineCliTest, UsageErrorsSubmitNothing) {
  CliResult unknown_node = Deja({"pipeline", "run", File(), "--force-node", "nope"});
  EXPECT_EQ(unknown_node.code, kExitUsage);
  EXPECT_EQ(unknown_node.err,
            "deja: --force-node \"nope\": the pipeline has no node of that name (its nodes: "
            "prep, train, eval)\n");
  CliResult bad_param = Deja({"pipeline", "plan", File(), "--param", "threshold"});
  EXPECT_EQ(bad_param.code, kExitUsage);
  EXPECT_EQ(bad_param.err, "deja: --param \"threshold\": expected KEY=VALUE\n");
  CliResult unknown_param = Deja({"pipeline", "run", File(), "--param", "epochs=3"});
  EXPECT_EQ(unknown_param.code, kExitUsage);
  EXPECT_TRUE(absl::StrContains(unknown_param.err, "epochs")) << unknown_param.err;
  CliResult missing = Deja({"pipeline", "run", (dir_ / "nope.yaml").string()});
  EXPECT_EQ(missing.code, kExitUsage);
  EXPECT_TRUE(absl::StrContains(missing.err, "nope.yaml")) << missing.err;
  EXPECT_EQ(Deja({"pipeline", "run"}).code, kExitUsage);
  EXPECT_EQ(Deja({"pipeline"}).code, kExitUsage);
  EXPECT_TRUE(fake_.submitted_pipelines().empty());
  EXPECT_TRUE(fake_.planned_pipelines().empty());
}

TEST_F(PipelineCliTest, Plan) {
  CliResult result = Deja({"pipeline", "plan", File(), "--no-reuse", "--force"});
  ASSERT_EQ(result.code, 0) << result.err;
  EXPECT_EQ(result.out,
            "NODE        WOULD  SOURCE  EXPIRES              SAVES  REASON\n"
            "preprocess  reuse  j1      2023-11-15 22:13:20  2.1s   -\n"
            "train       reuse  j2      2023-11-15 22:13:20  3m10s  -\n"
            "evaluate    run    -       -                    -      no memo entry has its hash "
            "(params[threshold] changed)\n"
            "expected time saved: 3m12s\n");
  CliResult json = Deja({"pipeline", "plan", File(), "--json"});
  ASSERT_EQ(json.code, 0) << json.err;
  EXPECT_TRUE(absl::StartsWith(json.out, "{\"nodes\":[{\"name\":\"preprocess\"")) << json.out;
  std::vector<deja::v1::SubmitPipelineRequest> planned = fake_.planned_pipelines();
  ASSERT_EQ(planned.size(), 2u);
  EXPECT_FALSE(planned[0].spec().reuse());
  EXPECT_TRUE(planned[0].spec().force());
  // The plan needs the inputs' digests too.
  EXPECT_EQ(planned[0].spec().nodes(0).inputs(0).digest().size(), 32u);
  EXPECT_TRUE(fake_.submitted_pipelines().empty());
  EXPECT_TRUE(fake_.watched_pipelines().empty());
}

TEST_F(PipelineCliTest, StatusListCancelAndRetry) {
  CliResult status = Deja({"pipeline", "status", "p3"});
  ASSERT_EQ(status.code, 0) << status.err;
  EXPECT_EQ(status.out,
            "pipeline  p3\n"
            "name      model-training\n"
            "project   ml\n"
            "state     SUCCEEDED\n"
            "run       1\n"
            "created   2023-11-14 22:13:20\n"
            "\n"
            "NODE   STATE      JOB  REUSED-FROM  DURATION/SAVED  MESSAGE\n"
            "prep   SUCCEEDED  j3   -            2.1s            -\n"
            "train  SUCCEEDED  j4   j2           saved 5.0s      -\n"
            "eval   SUCCEEDED  j5   -            300ms           -\n"
            "3/3 done, 1 reused, 5.0s saved\n");
  CliResult missing = Deja({"pipeline", "status", "p9"});
  EXPECT_EQ(missing.code, kExitError);
  EXPECT_EQ(missing.err, "deja: pipeline p9 not found\n");

  CliResult ls = Deja({"pipeline", "ls", "--project", "ml", "--limit", "5"});
  ASSERT_EQ(ls.code, 0) << ls.err;
  EXPECT_EQ(ls.out,
            "ID  NAME            PROJECT  STATE      NODES  CREATED\n"
            "p3  model-training  ml       SUCCEEDED  3/3    2023-11-14 22:13:20\n");
  CliResult ls_json = Deja({"pipeline", "ls", "--json"});
  EXPECT_TRUE(absl::StartsWith(ls_json.out, "{\"pipeline_id\":\"p3\"")) << ls_json.out;

  CliResult cancel = Deja({"pipeline", "cancel", "p3"});
  ASSERT_EQ(cancel.code, 0) << cancel.err;
  EXPECT_EQ(cancel.out, "pipeline p3 CANCELLED: cancelled by the user\n");

  CliResult retry = Deja({"pipeline", "retry", "p3", "--node", "eval"});
  ASSERT_EQ(retry.code, 0) << retry.err;
  EXPECT_TRUE(absl::StartsWith(retry.out, "pipeline p3: 3 nodes, run 2\n")) << retry.out;
  EXPECT_TRUE(absl::EndsWith(retry.out, "pipeline p3 SUCCEEDED\n")) << retry.out;
  std::vector<deja::v1::ListPipelinesRequest> lists = fake_.list_pipelines_requests();
  ASSERT_EQ(lists.size(), 2u);
  EXPECT_EQ(lists[0].project(), "ml");
  EXPECT_EQ(lists[0].limit(), 5u);
  std::vector<deja::v1::RetryPipelineRequest> retries = fake_.retry_requests();
  ASSERT_EQ(retries.size(), 1u);
  EXPECT_EQ(retries[0].pipeline_id(), "p3");
  EXPECT_EQ(retries[0].node(), "eval");
}

TEST_F(PipelineCliTest, LiveViewRedrawsAndEndsWithTheResult) {
  DejaClient client(Address(), InsecureOptions());
  std::ostringstream out, err;
  PipelineCommandOptions options;
  options.live = true;
  options.width = 80;
  options.tz = kUtc;
  options.redraw_interval = absl::Milliseconds(5);
  PipelineCommands commands(client, out, err, options);
  PipelineFlags flags;
  flags.file = File();
  EXPECT_EQ(commands.Run(flags), kExitOk) << err.str();
  const std::string text = out.str();
  EXPECT_TRUE(absl::StartsWith(text, "pipeline p3: 3 nodes\n\r\033[2K")) << text;
  // The last drawing: every node and the summary, then the end line.
  EXPECT_TRUE(absl::EndsWith(text,
                             "\r\033[2Kprep   SUCCEEDED  j3                  2.1s\n"
                             "\r\033[2Ktrain  SUCCEEDED  j4  reused from j2  saved 5.0s\n"
                             "\r\033[2Keval   SUCCEEDED  j5                  300ms\n"
                             "\r\033[2K3/3 done, 1 reused, 5.0s saved\n"
                             "pipeline p3 SUCCEEDED\n"))
      << text;
  EXPECT_EQ(err.str(), "inputs already in the store\n");
}

TEST_F(PipelineCliTest, LiveViewMakesRoomForALostWatchAndShowsAFailure) {
  fake_.SetPipelineScript(Script(/*fail=*/true), /*break_after=*/2);
  DejaClient client(Address(), InsecureOptions());
  std::ostringstream out, err;
  PipelineCommandOptions options;
  options.live = true;
  options.tz = kUtc;
  options.redraw_interval = absl::Milliseconds(1);
  options.initial_backoff = absl::Milliseconds(50);
  PipelineCommands commands(client, out, err, options);
  PipelineFlags flags;
  flags.file = File();
  EXPECT_EQ(commands.Run(flags), kExitError);
  EXPECT_EQ(err.str(),
            "inputs already in the store\n"
            "deja: lost the watch of p3 (scheduler restarting); watching again\n");
  const std::string text = out.str();
  EXPECT_TRUE(absl::EndsWith(text,
                             "\r\033[2Keval   FAILED     j5: exit 1: threshold must be a number\n"
                             "\r\033[2K3/3 done, 1 failed, 1 reused, 5.0s saved\n"
                             "pipeline p3 FAILED: node eval failed\n"))
      << text;
}

}  // namespace
}  // namespace deja::cli
