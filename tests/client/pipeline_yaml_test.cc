// Pipeline YAML files (client/pipeline_yaml.h): the full format resolves to
// the expected PipelineSpec, and every error names the file, the line and the
// field at fault.
#include "client/pipeline_yaml.h"

#include <google/protobuf/text_format.h>
#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <string>

#include "absl/strings/match.h"
#include "common/pipeline.h"

namespace deja {
namespace {

namespace fs = std::filesystem;

class PipelineYamlTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string templ = (fs::path(::testing::TempDir()) / "pipeline_yaml_XXXXXX").string();
    ASSERT_NE(mkdtemp(templ.data()), nullptr);
    dir_ = templ;
    fs::create_directories(dir_ / "data" / "extra");
    std::ofstream(dir_ / "data" / "labels.csv") << "id,label\n1,cat\n";
    std::ofstream(dir_ / "data" / "extra" / "notes.txt") << "notes\n";
  }
  void TearDown() override { fs::remove_all(dir_); }

  absl::StatusOr<PipelineFile> Parse(const std::string& yaml,
                                     const std::map<std::string, std::string>& overrides = {}) {
    return ParsePipelineYaml(yaml, "pipe.yaml", dir_.string(), overrides);
  }

  // The parse fails with INVALID_ARGUMENT and a message starting with
  // `prefix` ("pipe.yaml:LINE: FIELD: ...") and containing `part`.
  void ExpectError(const std::string& yaml, const std::string& prefix, const std::string& part = "",
                   const std::map<std::string, std::string>& overrides = {}) {
    auto file = Parse(yaml, overrides);
    ASSERT_FALSE(file.ok()) << "parsed:\n" << yaml;
    EXPECT_EQ(file.status().code(), absl::StatusCode::kInvalidArgument) << file.status();
    std::string message(file.status().message());
    EXPECT_TRUE(absl::StartsWith(message, prefix)) << message << "\nexpected to start with\n"
                                                   << prefix;
    EXPECT_TRUE(absl::StrContains(message, part)) << message << "\nexpected to contain\n" << part;
  }

  fs::path dir_;
};

// The example of docs/pipelines.md, in brief: every key, all three edge
// forms, a * edge, a glob output, output names with dots.
constexpr char kFullExample[] = R"(name: mnist
project: demo
reuse: true
params:
  epochs: 3
  threshold: "0.9"
  fast: true
apps:
  py:
    command: [python3, train.py, "--epochs", "${params.epochs}", "--mode=${pipeline.fast}"]
    version: "1"
    env: {MODE: fast}
    image: debian:12
    platform: {gpu: "1"}
    reuse: false
    side_effects: true
    cache_key: [epochs]
nodes:
  - name: preprocess
    command: [sh, -c, "echo ${pipeline.threshold} > data.npz && mkdir -p out && touch out/a.csv"]
    version: 2
    env: {LEVEL: "${pipeline.threshold}"}
    outputs: [data.npz, "out/*.csv"]
  - name: train
    app: py
    params: {epochs: "${pipeline.epochs}", seed: 7, dry: false}
    inputs:
      labels: data/labels.csv
      extra: {path: data/extra/, workspace_path: in/extra}
    outputs: [model.bin, "metrics/*.json"]
    memoization: on
    force: true
    reuse_job_id: j12
  - name: evaluate
    app: {command: [python3, eval.py, "${inputs.model}", "${inputs.all}"], version: "1"}
    memoization: inherit
edges:
  - preprocess.output.data.npz -> train.input.dataset
  - [preprocess.output.*, evaluate.input.all]
  - {from: train.output.model.bin, to: evaluate.input.model, path: in/model.bin}
)";

constexpr char kFullExpected[] = R"pb(
  name: "mnist"
  project: "demo"
  reuse: true
  source: "pipe.yaml"
  params { key: "epochs" value: "3" }
  params { key: "threshold" value: "0.9" }
  params { key: "fast" value: "true" }
  nodes {
    name: "preprocess"
    app {
      name: "preprocess"
      version: "2"
      command: [ "sh", "-c", "echo 0.9 > data.npz && mkdir -p out && touch out/a.csv" ]
      env { key: "LEVEL" value: "0.9" }
    }
    outputs: [ "data.npz", "out/*.csv" ]
  }
  nodes {
    name: "train"
    app {
      name: "py"
      version: "1"
      command: [ "python3", "train.py", "--epochs", "${params.epochs}", "--mode=true" ]
      env { key: "MODE" value: "fast" }
      image: "debian:12"
      platform { key: "gpu" value: "1" }
      reuse: false
      side_effects: true
      cache_key: "epochs"
    }
    params { key: "epochs" value: "3" }
    params { key: "seed" value: "7" }
    params { key: "dry" value: "false" }
    outputs: [ "model.bin", "metrics/*.json" ]
    memoization: MEMOIZATION_ON
    force: true
    reuse_job_id: "j12"
  }
  nodes {
    name: "evaluate"
    app {
      name: "evaluate"
      version: "1"
      command: [ "python3", "eval.py", "${inputs.model}", "${inputs.all}" ]
    }
  }
  edges { from_node: "preprocess" from_output: "data.npz" to_node: "train" to_input: "dataset" }
  edges { from_node: "preprocess" from_output: "*" to_node: "evaluate" to_input: "all" }
  edges {
    from_node: "train"
    from_output: "model.bin"
    to_node: "evaluate"
    to_input: "model"
    to_path: "in/model.bin"
  }
)pb";

void ExpectSpec(const deja::v1::PipelineSpec& actual, const std::string& expected_text) {
  deja::v1::PipelineSpec expected;
  ASSERT_TRUE(google::protobuf::TextFormat::ParseFromString(expected_text, &expected));
  std::string diff;
  google::protobuf::util::MessageDifferencer differencer;
  differencer.ReportDifferencesToString(&diff);
  EXPECT_TRUE(differencer.Compare(expected, actual)) << diff << "\nactual:\n"
                                                     << actual.DebugString();
}

TEST_F(PipelineYamlTest, FullExampleResolves) {
  auto file = Parse(kFullExample);
  ASSERT_TRUE(file.ok()) << file.status();
  ExpectSpec(file->spec, kFullExpected);
  EXPECT_EQ(file->path, "pipe.yaml");
  ASSERT_EQ(file->local_inputs.size(), 2u);
  EXPECT_EQ(file->local_inputs[0].node, "train");
  EXPECT_EQ(file->local_inputs[0].name, "labels");
  EXPECT_EQ(file->local_inputs[0].path, (dir_ / "data" / "labels.csv").string());
  EXPECT_EQ(file->local_inputs[0].workspace_path, "");
  EXPECT_EQ(file->local_inputs[1].node, "train");
  EXPECT_EQ(file->local_inputs[1].name, "extra");
  EXPECT_EQ(file->local_inputs[1].path, (dir_ / "data" / "extra").string());
  EXPECT_EQ(file->local_inputs[1].workspace_path, "in/extra");
  EXPECT_TRUE(fs::path(file->local_inputs[0].path).is_absolute());
}

TEST_F(PipelineYamlTest, OverridesReplaceDefaults) {
  auto file = Parse(kFullExample, {{"epochs", "5"}, {"threshold", "a ${x}"}});
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ(file->spec.params().at("epochs"), "5");
  EXPECT_EQ(file->spec.params().at("threshold"), "a ${x}");
  EXPECT_EQ(file->spec.nodes(1).params().at("epochs"), "5");
  // In a command word the value stays literal: "${" is escaped for the
  // scheduler's ${params.X} expansion. Elsewhere it is as is.
  EXPECT_EQ(file->spec.nodes(0).app().command(2),
            "echo a $${x} > data.npz && mkdir -p out && touch out/a.csv");
  EXPECT_EQ(file->spec.nodes(0).app().env().at("LEVEL"), "a ${x}");
}

TEST_F(PipelineYamlTest, DefaultsAndShortestForm) {
  auto file = Parse(R"(name: tiny
nodes:
  - name: hello
    command: [echo, hi]
)");
  ASSERT_TRUE(file.ok()) << file.status();
  ExpectSpec(file->spec, R"pb(
    name: "tiny"
    reuse: true
    source: "pipe.yaml"
    nodes {
      name: "hello"
      app {
        name: "hello"
        command: [ "echo", "hi" ]
      }
    }
  )pb");
  EXPECT_TRUE(file->local_inputs.empty());
}

TEST_F(PipelineYamlTest, ReuseFalseAndEscapes) {
  auto file = Parse(R"(name: p
reuse: false
params: {x: "1"}
nodes:
  - name: a
    command: [echo, "$${pipeline.x}", "${pipeline.x}"]
    env: {LIT: "$${pipeline.x}"}
)");
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_FALSE(file->spec.reuse());
  // A command keeps the escape for the scheduler, which turns it into "${".
  EXPECT_EQ(file->spec.nodes(0).app().command(1), "$${pipeline.x}");
  EXPECT_EQ(file->spec.nodes(0).app().command(2), "1");
  EXPECT_EQ(file->spec.nodes(0).app().env().at("LIT"), "${pipeline.x}");
}

TEST_F(PipelineYamlTest, LoadPipelineFileResolvesAgainstItsDirectory) {
  std::string path = (dir_ / "pipe.yaml").string();
  std::ofstream(path) << R"(name: p
nodes:
  - name: a
    command: [wc, "${inputs.labels}"]
    inputs: {labels: data/labels.csv}
)";
  auto file = LoadPipelineFile(path, {});
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ(file->path, path);
  EXPECT_EQ(file->spec.source(), path);
  ASSERT_EQ(file->local_inputs.size(), 1u);
  EXPECT_EQ(file->local_inputs[0].path, (dir_ / "data" / "labels.csv").string());

  std::ofstream(path) << "name: p\nnodes:\n  - name: a\n    comand: [true]\n";
  auto bad = LoadPipelineFile(path, {});
  ASSERT_FALSE(bad.ok());
  EXPECT_TRUE(absl::StartsWith(bad.status().message(), path + ":4: nodes[a].comand: "))
      << bad.status();

  auto missing = LoadPipelineFile((dir_ / "nope.yaml").string(), {});
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound) << missing.status();
  EXPECT_TRUE(absl::StrContains(missing.status().message(), "nope.yaml")) << missing.status();
}

// ---------------------------------------------------------------------------
// Errors: one per case, each naming file, line and field.

TEST_F(PipelineYamlTest, UnknownNodeInEdge) {
  ExpectError(R"(name: p
nodes:
  - name: a
    command: [echo]
    outputs: [x]
  - name: b
    command: [cat, "${inputs.x}"]
edges:
  - c.output.x -> b.input.x
)",
              "pipe.yaml:9: edges[0].from_node: unknown node \"c\"");
}

TEST_F(PipelineYamlTest, UnknownNodeInEdgeDestination) {
  ExpectError(R"(name: p
nodes:
  - name: a
    command: [echo]
    outputs: [x]
edges:
  - from: a.output.x
    to: nope.input.x
)",
              "pipe.yaml:8: edges[0].to_node: unknown node \"nope\"");
}

TEST_F(PipelineYamlTest, UnknownOutputInEdge) {
  ExpectError(R"(name: p
nodes:
  - name: a
    command: [echo]
    outputs: [x.bin, "logs/*.txt"]
  - name: b
    command: [cat, "${inputs.x}"]
edges:
  - [a.output.x.bin, b.input.y]
  - [a.output.y.bin, b.input.x]
)",
              "pipe.yaml:10: edges[1].from_output: node a declares no output \"y.bin\"",
              "its outputs: x.bin, logs/*.txt");
}

TEST_F(PipelineYamlTest, Cycle) {
  ExpectError(R"(name: p
nodes:
  - name: a
    command: [cat, "${inputs.i}"]
    outputs: [x]
  - name: b
    command: [cat, "${inputs.i}"]
    outputs: [x]
edges:
  - a.output.x -> b.input.i
  - b.output.x -> a.input.i
)",
              "pipe.yaml:11: edges: cycle a -> b -> a", "see also line 10");
}

TEST_F(PipelineYamlTest, MissingInput) {
  ExpectError(R"(name: p
apps:
  tool:
    command:
      - cat
      - ${inputs.data}
nodes:
  - name: a
    app: tool
)",
              "pipe.yaml:6: nodes[a].app.command[1]: refers to unknown input \"data\"");
}

TEST_F(PipelineYamlTest, MissingInputInNodeCommand) {
  ExpectError(R"(name: p
nodes:
  - name: a
    command: [cat, "${inputs.data}"]
    inputs: {other: data/labels.csv}
)",
              "pipe.yaml:4: nodes[a].app.command[1]: refers to unknown input \"data\"");
}

TEST_F(PipelineYamlTest, DuplicateNodeNames) {
  ExpectError(R"(name: p
nodes:
  - name: a
    command: [echo]
  - name: b
    command: [echo]
  - name: a
    command: [echo, again]
)",
              "pipe.yaml:7: nodes[a].name: duplicate node name \"a\"", "see also line 3");
}

TEST_F(PipelineYamlTest, InputProvidedTwice) {
  ExpectError(R"(name: p
nodes:
  - name: a
    command: [echo]
    outputs: [x]
  - name: b
    command: [cat, "${inputs.x}"]
    inputs:
      x: data/labels.csv
edges:
  - a.output.x -> b.input.x
)",
              "pipe.yaml:11: nodes[b].inputs[x]: provided twice (a file input and an edge)",
              "see also line 9");
}

TEST_F(PipelineYamlTest, InputProvidedByTwoEdges) {
  ExpectError(R"(name: p
nodes:
  - name: a
    command: [echo]
    outputs: [x, y]
  - name: b
    command: [cat, "${inputs.x}"]
edges:
  - a.output.x -> b.input.x
  - a.output.y -> b.input.x
)",
              "pipe.yaml:10: nodes[b].inputs[x]: provided by two edges", "see also line 9");
}

TEST_F(PipelineYamlTest, UnknownKey) {
  ExpectError(R"(name: p
nodes:
  - name: a
    comand: [echo]
)",
              "pipe.yaml:4: nodes[a].comand: unknown key \"comand\" (did you mean \"command\"?)");
  ExpectError("name: p\nedgs: []\nnodes: []\n", "pipe.yaml:2: edgs: unknown key",
              "did you mean \"edges\"?");
  ExpectError(R"(name: p
apps:
  py:
    command: [python3]
    versoin: "1"
nodes: []
)",
              "pipe.yaml:5: apps[py].versoin: unknown key");
  ExpectError(R"(name: p
nodes:
  - name: a
    command: [echo]
    inputs:
      x: {path: data/labels.csv, workspace: in/x}
)",
              "pipe.yaml:6: nodes[a].inputs[x].workspace: unknown key");
}

TEST_F(PipelineYamlTest, BadEdgeSyntax) {
  const std::string nodes = R"(name: p
nodes:
  - name: a
    command: [echo]
    outputs: [x]
  - name: b
    command: [echo]
edges:
)";
  ExpectError(nodes + "  - a.x -> b.input.x\n", "pipe.yaml:9: edges[0]: bad edge source \"a.x\"");
  ExpectError(nodes + "  - a.output.x => b.input.x\n", "pipe.yaml:9: edges[0]: bad edge");
  ExpectError(nodes + "  - a.output.x -> b.output.x\n",
              "pipe.yaml:9: edges[0]: bad edge destination \"b.output.x\"");
  ExpectError(nodes + "  - [a.output.x, b.input.x, c]\n", "pipe.yaml:9: edges[0]: ", "[FROM, TO]");
  ExpectError(nodes + "  - {from: a.output.x}\n", "pipe.yaml:9: edges[0].to: required");
  ExpectError(nodes + "  - a.output. -> b.input.x\n", "pipe.yaml:9: edges[0]: bad edge source");
}

TEST_F(PipelineYamlTest, UnknownPipelineParam) {
  ExpectError(R"(name: p
params:
  epochs: 3
nodes:
  - name: a
    command: [echo]
    params:
      epochs: ${pipeline.epoch}
)",
              "pipe.yaml:8: nodes[a].params[epochs]: unknown pipeline parameter \"epoch\"",
              "declared: epochs");
}

TEST_F(PipelineYamlTest, OverrideOfUndeclaredParam) {
  ExpectError(R"(name: p
params:
  epochs: 3
nodes:
  - name: a
    command: [echo]
)",
              "pipe.yaml:2: params: --param lr=0.1: no such pipeline parameter", "declared: epochs",
              {{"lr", "0.1"}});
}

TEST_F(PipelineYamlTest, BadMemoizationValue) {
  ExpectError(R"(name: p
nodes:
  - name: a
    command: [echo]
    memoization: maybe
)",
              "pipe.yaml:5: nodes[a].memoization: \"maybe\" is not on, off or inherit");
}

TEST_F(PipelineYamlTest, NodeResourcesAndTheirErrors) {
  auto file = Parse(R"(name: p
params: {mem: 4GiB}
nodes:
  - name: train
    image: deja-test-job:1
    command: [train]
    cpus: 1.5
    memory: ${pipeline.mem}
    gpus: 1
    time_limit: 1h30m
    unplaceable: fail
    network: true
  - name: plain
    command: [echo]
)");
  ASSERT_TRUE(file.ok()) << file.status();
  ExpectSpec(file->spec, R"pb(
    name: "p"
    reuse: true
    source: "pipe.yaml"
    params { key: "mem" value: "4GiB" }
    nodes {
      name: "train"
      app { name: "train" command: "train" image: "deja-test-job:1" }
      resources { milli_cpus: 1500 memory_bytes: 4294967296 gpus: 1 time_limit_ms: 5400000 }
      fail_unplaceable: true
      network: true
    }
    nodes {
      name: "plain"
      app { name: "plain" command: "echo" }
    }
  )pb");
  // They reach the node's job spec, and are not its identity.
  deja::v1::JobSpec job = NodeJobSpec(file->spec, file->spec.nodes(0));
  EXPECT_EQ(job.resources().memory_bytes(), uint64_t{4} << 30);
  EXPECT_TRUE(job.fail_unplaceable());
  EXPECT_TRUE(job.network());

  const std::string node = "name: p\nnodes:\n  - name: a\n    command: [echo]\n";
  ExpectError(node + "    cpus: lots\n",
              "pipe.yaml:5: nodes[a].cpus: \"lots\": expected a number of CPUs (2, 0.5)");
  ExpectError(node + "    memory: 4XB\n",
              "pipe.yaml:5: nodes[a].memory: \"4XB\": unknown unit; use B, KiB, MiB, GiB or TiB");
  ExpectError(node + "    gpus: 1.5\n",
              "pipe.yaml:5: nodes[a].gpus: \"1.5\" is not a whole number");
  ExpectError(node + "    time_limit: forever\n",
              "pipe.yaml:5: nodes[a].time_limit: \"forever\": expected a duration (2h, 90m");
  ExpectError(node + "    unplaceable: maybe\n",
              "pipe.yaml:5: nodes[a].unplaceable: \"maybe\" is not wait or fail");
  ExpectError(node + "    network: sometimes\n",
              "pipe.yaml:5: nodes[a].network: \"sometimes\" is not true or false");
}

TEST_F(PipelineYamlTest, TypeErrors) {
  ExpectError("name: p\nnodes:\n  - name: a\n    command: python3 x.py\n",
              "pipe.yaml:4: nodes[a].command: must be a list of words");
  ExpectError("name: p\nnodes:\n  - name: a\n    command: [echo]\n    outputs: {a: b}\n",
              "pipe.yaml:5: nodes[a].outputs: must be a list");
  ExpectError("name: p\nnodes:\n  - name: a\n    command: [echo]\n    env: {A: [1, 2]}\n",
              "pipe.yaml:5: nodes[a].env[A]: must be a string, number or boolean, not a list");
  ExpectError("name: [p]\nnodes: []\n", "pipe.yaml:1: name: must be a string");
  ExpectError("name: p\nnodes:\n  - name: a\n    command: [echo]\n    force: maybe\n",
              "pipe.yaml:5: nodes[a].force: \"maybe\" is not true or false");
  ExpectError("name: p\nnodes: {a: 1}\n", "pipe.yaml:2: nodes: must be a list");
}

TEST_F(PipelineYamlTest, NodeNeedsAnApp) {
  ExpectError("name: p\nnodes:\n  - name: a\n    version: \"1\"\n",
              "pipe.yaml:3: nodes[a]: has version but no command");
  ExpectError("name: p\nnodes:\n  - name: a\n    app: nope\n",
              "pipe.yaml:4: nodes[a].app: unknown app \"nope\"");
  ExpectError(R"(name: p
apps:
  py: {command: [python3]}
nodes:
  - name: a
    app: py
    version: "2"
)",
              "pipe.yaml:7: nodes[a].version: a node with app: (line 6)");
}

TEST_F(PipelineYamlTest, ValidationErrorsMapToLines) {
  // A bad node name, a workspace path leaving the workspace, an absolute
  // output, an invalid pipeline name: ValidatePipeline's field paths map
  // back to their lines.
  ExpectError("name: p\nnodes:\n  - name: Bad\n    command: [echo]\n",
              "pipe.yaml:3: nodes[Bad].name: invalid name");
  ExpectError(R"(name: p
nodes:
  - name: a
    command: [echo]
    inputs:
      x: data/labels.csv
      y:
        path: data/extra
        workspace_path: ../up
)",
              "pipe.yaml:9: nodes[a].inputs[1].path: ");
  ExpectError(
      "name: p\nnodes:\n  - name: a\n    command: [echo]\n    outputs:\n      - ok\n      - /abs\n",
      "pipe.yaml:7: nodes[a].outputs[1]: ");
  ExpectError("\nname: Mnist\nnodes:\n  - name: a\n    command: [echo]\n",
              "pipe.yaml:2: name: invalid name");
  ExpectError("name: p\nnodes: []\n", "pipe.yaml:2: nodes: a pipeline needs at least one node");
}

TEST_F(PipelineYamlTest, MissingLocalInput) {
  ExpectError("name: p\nnodes:\n  - name: a\n    command: [echo]\n    inputs: {x: data/nope.csv}\n",
              "pipe.yaml:5: nodes[a].inputs[x]: ", "data/nope.csv: no such file or directory");
}

TEST_F(PipelineYamlTest, YamlSyntaxAndDuplicateKeys) {
  ExpectError("name: p\nnodes: [\n", "pipe.yaml:", "invalid YAML");
  ExpectError("name: p\nname: q\nnodes: []\n", "pipe.yaml:2: name: duplicate key \"name\"",
              "first at line 1");
  ExpectError("", "pipe.yaml:1: name: ", "empty");
  ExpectError("# only a comment\n", "pipe.yaml:1: name: ", "empty");
}

TEST_F(PipelineYamlTest, OnlyOneDocumentPerFile) {
  ExpectError("name: p\nnodes: [{name: a, command: [x]}]\n---\nname: q\n",
              "pipe.yaml:3: ", "only one YAML document is allowed per file");
  ExpectError("name: p\nnodes: [{name: a, command: [x]}]\n---\n",
              "pipe.yaml:3: ", "only one YAML document is allowed per file");
}

// Found by tests/fuzz/pipeline_yaml_fuzzer.cc (corpus entry
// regress-yaml-cpp-loadall-loop): yaml-cpp 0.7's LoadAll never returns on
// this, allocating until the process dies.
TEST_F(PipelineYamlTest, MalformedFlowAfterAScalarIsAnErrorNotAHang) {
  auto file = Parse("\n\"a\\0b\", \"\\xff\"apps:]\n    ms\n  un0y");
  EXPECT_FALSE(file.ok());
  EXPECT_EQ(file.status().code(), absl::StatusCode::kInvalidArgument) << file.status();
}

}  // namespace
}  // namespace deja
