// Pipelines end to end: real daemons, the gRPC API and the deja CLI.
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/fakes/pipeline_specs.h"
#include "tests/integration/cluster.h"

namespace deja::testing {
namespace {

using deja::v1::Pipeline;
using deja::v1::PipelineSpec;
using ::testing::HasSubstr;

deja::v1::PipelineNode Node(const std::string& name, const std::string& script,
                            std::vector<std::string> outputs) {
  deja::v1::PipelineNode node;
  node.set_name(name);
  for (const char* w : {"sh", "-c"}) node.mutable_app()->add_command(w);
  node.mutable_app()->add_command(script);
  for (auto& o : outputs) node.add_outputs(o);
  return node;
}

const deja::v1::NodeStatus& NodeOf(const Pipeline& p, const std::string& name) {
  for (const auto& n : p.nodes()) {
    if (n.name() == name) return n;
  }
  static deja::v1::NodeStatus none;
  return none;
}

TEST(PipelineClusterTest, IndependentNodesRunAtTheSameTimeOnTwoWorkers) {
  Cluster c;
  c.StartWorker("w1");
  c.StartWorker("w2");
  ASSERT_TRUE(c.WaitForWorkers(2));
  const std::string gate = c.root() + "/gate";
  const std::string wait = "while [ ! -e " + gate + " ]; do sleep 0.02; done; ";
  PipelineSpec spec;
  spec.set_name("fan-in");
  spec.set_reuse(true);
  *spec.add_nodes() = Node("left", wait + "echo L > l.txt", {"l.txt"});
  *spec.add_nodes() = Node("right", wait + "echo R > r.txt", {"r.txt"});
  *spec.add_nodes() = Node("join", "cat inputs/l inputs/r > both.txt", {"both.txt"});
  Edge(&spec, "left", "l.txt", "join", "l");
  Edge(&spec, "right", "r.txt", "join", "r");
  deja::v1::SubmitPipelineRequest request;
  *request.mutable_spec() = spec;
  auto p = c.client().SubmitPipeline(request);
  ASSERT_TRUE(p.ok()) << p.status();
  ASSERT_TRUE(PollUntil([&] {
    auto now = c.client().GetPipeline(p->pipeline_id());
    return now.ok() && NodeOf(*now, "left").job_state() == deja::v1::RUNNING &&
           NodeOf(*now, "right").job_state() == deja::v1::RUNNING;
  })) << "both independent nodes run at once";
  Pipeline running = *c.client().GetPipeline(p->pipeline_id());
  std::string lw = c.client().GetJob(NodeOf(running, "left").job_id())->worker_id();
  std::string rw = c.client().GetJob(NodeOf(running, "right").job_id())->worker_id();
  EXPECT_NE(lw, rw);
  WriteFile(gate, "");
  auto done = c.client().WaitForPipeline(p->pipeline_id(), absl::Seconds(60));
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_EQ(done->state(), deja::v1::PIPELINE_SUCCEEDED) << done->DebugString();
  std::string join_id = NodeOf(*done, "join").job_id();
  auto join = c.client().GetJob(join_id);
  EXPECT_EQ(ReadFile(c.Workspace(join->worker_id(), join_id) + "/both.txt"), "L\nR\n");
}

TEST(PipelineClusterTest, ASchedulerRestartMidPipelineFinishesIt) {
  Cluster c({"--worker_timeout=5s", "--heartbeat_interval=200ms"});
  c.StartWorker("w1", 2);
  ASSERT_TRUE(c.WaitForWorkers(1));
  const std::string gate = c.root() + "/gate";
  PipelineSpec spec;
  spec.set_name("restart");
  spec.set_reuse(true);
  *spec.add_nodes() = Node("first", "echo one > one.txt", {"one.txt"});
  *spec.add_nodes() = Node("second",
                           "while [ ! -e " + gate +
                               " ]; do sleep 0.02; done; "
                               "cp inputs/one two.txt",
                           {"two.txt"});
  *spec.add_nodes() = Node("third", "cp inputs/two three.txt", {"three.txt"});
  Edge(&spec, "first", "one.txt", "second", "one");
  Edge(&spec, "second", "two.txt", "third", "two");
  deja::v1::SubmitPipelineRequest request;
  *request.mutable_spec() = spec;
  request.set_request_id("once");
  auto p = c.client().SubmitPipeline(request);
  ASSERT_TRUE(p.ok()) << p.status();
  ASSERT_TRUE(PollUntil([&] {
    auto now = c.client().GetPipeline(p->pipeline_id());
    return now.ok() && NodeOf(*now, "second").job_state() == deja::v1::RUNNING;
  }));
  c.StopScheduler(SIGKILL);
  c.StartScheduler();
  ASSERT_TRUE(PollUntil([&] { return c.client().GetPipeline(p->pipeline_id()).ok(); }));
  // A client retrying across the crash gets the same pipeline, not a second.
  auto retried = c.client().SubmitPipeline(request);
  ASSERT_TRUE(retried.ok()) << retried.status();
  EXPECT_EQ(retried->pipeline_id(), p->pipeline_id());
  EXPECT_EQ(c.client().ListPipelines("", 0)->size(), 1u);
  ASSERT_TRUE(c.WaitForWorkers(1));
  WriteFile(gate, "");
  auto done = c.client().WaitForPipeline(p->pipeline_id(), absl::Seconds(60));
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_EQ(done->state(), deja::v1::PIPELINE_SUCCEEDED) << done->DebugString();
  std::string third = NodeOf(*done, "third").job_id();
  EXPECT_EQ(ReadFile(c.Workspace("w1", third) + "/three.txt"), "one\n");
}

TEST(PipelineClusterTest, TheExamplePipelineRunsThenIsReusedNodeByNode) {
  Cluster c;
  c.StartWorker("w1");
  c.StartWorker("w2");
  ASSERT_TRUE(c.WaitForWorkers(2));
  std::vector<std::string> env = c.CliEnv();
  env.push_back("DEJA_HASH_CACHE=" + c.root() + "/hashes");
  const std::string file = std::string(DEJA_SOURCE_DIR) + "/examples/pipeline/pipeline.yaml";
  CommandResult first = RunCommand(DEJA_CLI_BIN, {"pipeline", "run", file}, env);
  ASSERT_EQ(first.exit_code, 0) << first.out << first.err;
  EXPECT_THAT(first.out, HasSubstr("SUCCEEDED"));
  CommandResult second = RunCommand(DEJA_CLI_BIN, {"pipeline", "run", file}, env);
  ASSERT_EQ(second.exit_code, 0) << second.out << second.err;
  auto pipelines = c.client().ListPipelines("", 0);
  ASSERT_TRUE(pipelines.ok());
  ASSERT_EQ(pipelines->size(), 2u);
  const Pipeline& rerun = pipelines->back();
  EXPECT_EQ(rerun.state(), deja::v1::PIPELINE_SUCCEEDED);
  for (const auto& node : rerun.nodes()) {
    EXPECT_FALSE(node.reused_from().empty()) << node.name() << " should be reused";
  }
  // A bad file: the error names file, line and field; nothing is submitted.
  WriteFile(
      c.root() + "/bad.yaml",
      "name: bad\nnodes:\n  - name: a\n    command: [true]\nedges:\n  - a.output.x -> b.input.y\n");
  CommandResult bad = RunCommand(DEJA_CLI_BIN, {"pipeline", "run", c.root() + "/bad.yaml"}, env);
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_THAT(bad.err, HasSubstr("bad.yaml:6"));
  EXPECT_EQ(c.client().ListPipelines("", 0)->size(), 2u);
}

}  // namespace
}  // namespace deja::testing
