// Pipelines in SchedulerCore, with a simulated worker that runs whatever it
// is assigned: outputs are a pure function of the job's identity, so a
// deterministic node recomputed gives identical outputs.
#include <deque>
#include <map>
#include <set>
#include <string>

#include "common/hash.h"
#include "common/job_identity.h"
#include "common/pipeline.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "scheduler/core/scheduler_core.h"
#include "tests/fakes/pipeline_specs.h"
#include "tests/scheduler/test_results.h"

namespace deja {

using ::deja::testing::AddTestManifest;
using ::deja::testing::kTestManifestDigest;
namespace {

using ::deja::testing::Edge;

using deja::v1::Job;
using deja::v1::Pipeline;
using deja::v1::PipelineSpec;
using ::testing::HasSubstr;

class MemoryBlobs : public BlobIndex {
 public:
  bool Has(const std::string& digest, uint64_t) override { return stored.contains(digest); }
  // What the scheduler's loop does at commit: the blobs the core built go
  // to the content store before anything else.
  void Write(Effects& fx) {
    for (const auto& [digest, bytes] : fx.blob_puts) {
      EXPECT_EQ(digest, HashBytes(bytes));
      stored.insert(digest);
    }
    fx.blob_puts.clear();
  }
  // The workers' manifests are uploaded with each result.
  std::set<std::string> stored = {kTestManifestDigest};
};

deja::v1::PipelineNode Node(const std::string& name, const std::string& command,
                            std::vector<std::string> outputs) {
  deja::v1::PipelineNode node;
  node.set_name(name);
  node.mutable_app()->set_name(name);
  for (const char* w : {"sh", "-c"}) node.mutable_app()->add_command(w);
  node.mutable_app()->add_command(command);
  for (auto& o : outputs) node.add_outputs(o);
  return node;
}

// preprocess -> train -> evaluate, plus preprocess -> report (a side branch).
PipelineSpec Valohai() {
  PipelineSpec spec;
  spec.set_name("mnist");
  spec.set_project("ml");
  spec.set_reuse(true);
  *spec.add_nodes() = Node("preprocess", "prep", {"train.csv", "test.csv"});
  *spec.add_nodes() = Node("train", "fit ${inputs.train}", {"model.bin"});
  *spec.add_nodes() = Node("evaluate", "score", {"metrics.json"});
  *spec.add_nodes() = Node("report", "summarize", {"report.txt"});
  Edge(&spec, "preprocess", "train.csv", "train", "train");
  Edge(&spec, "preprocess", "test.csv", "evaluate", "test");
  Edge(&spec, "train", "model.bin", "evaluate", "model");
  Edge(&spec, "preprocess", "*", "report", "all");
  return spec;
}

class PipelinesTest : public ::testing::Test {
 protected:
  PipelinesTest() : core_(CoreOptions(), &blobs_) {
    for (const char* id : {"w1", "w2"}) {
      deja::v1::Register reg;
      reg.set_worker_id(id);
      reg.set_slots(2);
      reg.set_advertise(std::string(id) + ":1");
      Effects fx;
      EXPECT_TRUE(core_.WorkerConnected(reg, ++session_, now_, &fx).ok());
      sessions_[id] = session_;
      Absorb(fx);
    }
  }

  // Takes the assignments out of `fx` and lets pipelines advance.
  void Absorb(Effects& fx) {
    core_.SyncPipelines(now_, &fx);
    blobs_.Write(fx);
    for (auto& [worker, msg] : fx.to_workers) {
      if (msg.has_assignment()) assigned_.push_back({worker, msg.assignment()});
    }
    fx.to_workers.clear();
  }

  std::string Submit(const PipelineSpec& spec) {
    deja::v1::SubmitPipelineRequest request;
    *request.mutable_spec() = spec;
    Effects fx;
    auto p = core_.SubmitPipeline(request, now_, &fx);
    EXPECT_TRUE(p.ok()) << p.status();
    Absorb(fx);
    return p.ok() ? p->pipeline_id() : "";
  }

  // The simulated workers finish one assignment. Nodes named in `fail_`
  // exit 1.
  void FinishOne() {
    auto [worker, a] = assigned_.front();
    assigned_.pop_front();
    Job job = *core_.GetJob(a.job_id());
    deja::v1::WorkerMessage msg;
    auto* r = msg.mutable_result();
    r->set_job_id(a.job_id());
    r->set_attempt(a.attempt());
    AddTestManifest(r);
    const std::string node = job.spec().labels().at("node");
    if (a.kind() == deja::v1::Assignment::MATERIALIZE) {
      *r->mutable_outputs() = a.source_outputs();
    } else if (fail_.contains(node)) {
      r->set_exit_code(1);
      runs_.push_back(node);
    } else {
      runs_.push_back(node);
      r->set_run_time_ms(run_ms_[node] ? run_ms_[node] : 1000);
      for (const auto& path : job.spec().outputs()) {
        std::string content = CanonicalJobEncoding(job.spec()) + path;
        blobs_.stored.insert(HashBytes(content));
        auto* o = r->add_outputs();
        o->set_path(path);
        o->set_digest(HashBytes(content));
        o->set_size(content.size());
        o->set_mode(0100644);
      }
    }
    Effects fx;
    core_.WorkerMessage(worker, sessions_[worker], msg, now_, &fx);
    Absorb(fx);
  }
  Pipeline RunToEnd(const std::string& id) {
    for (int i = 0; i < 100 && !assigned_.empty(); ++i) FinishOne();
    return *core_.GetPipeline(id);
  }
  const deja::v1::NodeStatus& NodeOf(const Pipeline& p, const std::string& name) {
    for (const auto& n : p.nodes()) {
      if (n.name() == name) return n;
    }
    static deja::v1::NodeStatus none;
    return none;
  }
  // Node name -> reused (true) or ran (false), for a finished pipeline.
  std::map<std::string, bool> Reused(const Pipeline& p) {
    std::map<std::string, bool> out;
    for (const auto& n : p.nodes()) out[n.name()] = !n.reused_from().empty();
    return out;
  }

  absl::Time now_ = absl::FromUnixSeconds(1'700'000'000);
  MemoryBlobs blobs_;
  SchedulerCore core_;
  uint64_t session_ = 0;
  std::map<std::string, uint64_t> sessions_;
  std::deque<std::pair<std::string, deja::v1::Assignment>> assigned_;
  std::set<std::string> fail_;
  std::map<std::string, int64_t> run_ms_;
  std::vector<std::string> runs_;
};

TEST_F(PipelinesTest, NodesRunInDagOrderAndIndependentOnesInParallel) {
  std::string id = Submit(Valohai());
  Pipeline p = *core_.GetPipeline(id);
  EXPECT_EQ(NodeOf(p, "preprocess").state(), deja::v1::NODE_SUBMITTED);
  EXPECT_EQ(NodeOf(p, "train").state(), deja::v1::NODE_PENDING);
  FinishOne();  // preprocess
  p = *core_.GetPipeline(id);
  // train and report both became jobs at once, on the two workers.
  EXPECT_EQ(NodeOf(p, "train").state(), deja::v1::NODE_SUBMITTED);
  EXPECT_EQ(NodeOf(p, "report").state(), deja::v1::NODE_SUBMITTED);
  EXPECT_EQ(NodeOf(p, "evaluate").state(), deja::v1::NODE_PENDING);
  ASSERT_EQ(assigned_.size(), 2u);
  EXPECT_NE(assigned_[0].first, assigned_[1].first) << "spread over both workers";
  // train's input is preprocess's train.csv; report's is a directory of all.
  Job train = *core_.GetJob(NodeOf(p, "train").job_id());
  ASSERT_EQ(train.spec().inputs_size(), 1);
  EXPECT_EQ(train.spec().inputs(0).kind(), "file");
  Job pre = *core_.GetJob(NodeOf(p, "preprocess").job_id());
  for (const auto& o : pre.outputs()) {
    if (o.path() == "train.csv") {
      EXPECT_EQ(train.spec().inputs(0).digest(), o.digest());
    }
  }
  Job report = *core_.GetJob(NodeOf(p, "report").job_id());
  EXPECT_EQ(report.spec().inputs(0).kind(), "dir");
  EXPECT_TRUE(blobs_.stored.contains(report.spec().inputs(0).digest())) << "dir blob stored";
  p = RunToEnd(id);
  EXPECT_EQ(p.state(), deja::v1::PIPELINE_SUCCEEDED);
  EXPECT_EQ(runs_.size(), 4u);
}

TEST_F(PipelinesTest, ASecondIdenticalRunReusesEveryNode) {
  ASSERT_EQ(RunToEnd(Submit(Valohai())).state(), deja::v1::PIPELINE_SUCCEEDED);
  runs_.clear();
  Pipeline second = RunToEnd(Submit(Valohai()));
  EXPECT_EQ(second.state(), deja::v1::PIPELINE_SUCCEEDED);
  for (const auto& [node, reused] : Reused(second)) EXPECT_TRUE(reused) << node;
  EXPECT_TRUE(runs_.empty());
}

TEST_F(PipelinesTest, ChangingTheLastNodeRunsOnlyIt) {
  RunToEnd(Submit(Valohai()));
  runs_.clear();
  PipelineSpec spec = Valohai();
  spec.mutable_nodes(2)->mutable_app()->set_command(2, "score --strict");
  Pipeline p = RunToEnd(Submit(spec));
  EXPECT_EQ(p.state(), deja::v1::PIPELINE_SUCCEEDED);
  EXPECT_THAT(runs_, ::testing::ElementsAre("evaluate"));
}

TEST_F(PipelinesTest, ChangingAnUpstreamParamRunsItAndEverythingDownstream) {
  RunToEnd(Submit(Valohai()));
  runs_.clear();
  PipelineSpec spec = Valohai();
  (*spec.mutable_nodes(1)->mutable_params())["epochs"] = "5";
  Pipeline p = RunToEnd(Submit(spec));
  EXPECT_THAT(runs_, ::testing::UnorderedElementsAre("train", "evaluate"));
  EXPECT_TRUE(Reused(p)["preprocess"]);
  EXPECT_TRUE(Reused(p)["report"]);
}

TEST_F(PipelinesTest, AForcedDeterministicUpstreamStillLetsDownstreamHit) {
  RunToEnd(Submit(Valohai()));
  runs_.clear();
  PipelineSpec spec = Valohai();
  spec.add_force_nodes("preprocess");
  Pipeline p = RunToEnd(Submit(spec));
  EXPECT_THAT(runs_, ::testing::ElementsAre("preprocess"));
  EXPECT_TRUE(Reused(p)["train"]);
  EXPECT_TRUE(Reused(p)["evaluate"]);
  EXPECT_TRUE(Reused(p)["report"]);
}

TEST_F(PipelinesTest, AFailedNodeSkipsItsDownstreamAndRetryRerunsOnlyWhatFailed) {
  fail_.insert("train");
  std::string id = Submit(Valohai());
  Pipeline p = RunToEnd(id);
  EXPECT_EQ(p.state(), deja::v1::PIPELINE_FAILED);
  EXPECT_EQ(NodeOf(p, "train").state(), deja::v1::NODE_FAILED);
  EXPECT_EQ(NodeOf(p, "evaluate").state(), deja::v1::NODE_UPSTREAM_FAILED);
  EXPECT_THAT(NodeOf(p, "evaluate").message(), HasSubstr("upstream train"));
  EXPECT_EQ(NodeOf(p, "report").state(), deja::v1::NODE_SUCCEEDED) << "unrelated branch";
  EXPECT_THAT(p.message(), HasSubstr("train"));

  fail_.clear();  // the input is fixed
  runs_.clear();
  deja::v1::RetryPipelineRequest retry;
  retry.set_pipeline_id(id);
  Effects fx;
  auto retried = core_.RetryPipeline(retry, now_, &fx);
  ASSERT_TRUE(retried.ok()) << retried.status();
  Absorb(fx);
  p = RunToEnd(id);
  EXPECT_EQ(p.state(), deja::v1::PIPELINE_SUCCEEDED);
  EXPECT_EQ(p.run(), 2u);
  EXPECT_THAT(runs_, ::testing::UnorderedElementsAre("train", "evaluate"));
  EXPECT_TRUE(Reused(p)["preprocess"]) << "hits verified again through a reuse";
  EXPECT_TRUE(Reused(p)["report"]);
}

TEST_F(PipelinesTest, RunningAgainAfterAFailureSubmitsManyJobsSafely) {
  // Regression: SyncPipelines held a reference into a map that submitting
  // new node jobs rehashed.
  fail_.insert("train");
  RunToEnd(Submit(Valohai()));
  fail_.clear();
  for (int i = 0; i < 20; ++i) {
    PipelineSpec spec = Valohai();
    spec.set_name("again" + std::to_string(i));
    (*spec.mutable_nodes(0)->mutable_params())["i"] = std::to_string(i);
    EXPECT_EQ(RunToEnd(Submit(spec)).state(), deja::v1::PIPELINE_SUCCEEDED);
  }
}

TEST_F(PipelinesTest, PipelineWideReuseOffRunsEverything) {
  RunToEnd(Submit(Valohai()));
  runs_.clear();
  PipelineSpec spec = Valohai();
  spec.set_reuse(false);
  Pipeline p = RunToEnd(Submit(spec));
  EXPECT_EQ(runs_.size(), 4u);
  for (const auto& [node, reused] : Reused(p)) EXPECT_FALSE(reused) << node;
}

TEST_F(PipelinesTest, ThePlanAgreesWithTheRun) {
  run_ms_ = {{"preprocess", 2000}, {"train", 60000}};
  RunToEnd(Submit(Valohai()));
  PipelineSpec spec = Valohai();
  spec.mutable_nodes(2)->mutable_app()->set_command(2, "score --strict");
  deja::v1::SubmitPipelineRequest request;
  *request.mutable_spec() = spec;
  auto plan = core_.PlanPipeline(request, now_);
  ASSERT_TRUE(plan.ok()) << plan.status();
  std::map<std::string, bool> predicted;
  for (const auto& n : plan->nodes()) predicted[n.name()] = n.reused();
  EXPECT_EQ(plan->time_saved_ms(), 2000 + 60000 + 1000);
  EXPECT_THAT(plan->nodes(2).reason(), HasSubstr("no memo entry"));
  EXPECT_GT(plan->nodes(0).expires_at_ms(), 0);
  Pipeline p = RunToEnd(Submit(spec));
  EXPECT_EQ(predicted, Reused(p));
}

TEST_F(PipelinesTest, ARestartMidPipelineResumesIt) {
  std::string id = Submit(Valohai());
  FinishOne();  // preprocess done; train and report assigned
  std::vector<Job> jobs = *core_.ListJobs("", deja::v1::JOB_STATE_UNSPECIFIED, 0);
  std::vector<deja::v1::MemoEntry> memo = *core_.ListMemo({});
  Pipeline stored = *core_.GetPipeline(id);

  SchedulerCore restarted(CoreOptions(), &blobs_);
  restarted.Load(jobs, memo, {}, {stored}, now_);
  Effects fx;
  restarted.ResumePipelines(now_, &fx);
  // The worker comes back holding train and report, and finishes them.
  deja::v1::Register reg;
  reg.set_worker_id("w1");
  reg.set_slots(4);
  for (const auto& [worker, a] : assigned_) {
    auto* h = reg.add_held();
    h->set_job_id(a.job_id());
    h->set_attempt(a.attempt());
  }
  ASSERT_TRUE(restarted.WorkerConnected(reg, 99, now_, &fx).ok());
  deja::v1::Register other;
  other.set_worker_id("w2");
  other.set_slots(4);
  ASSERT_TRUE(restarted.WorkerConnected(other, 100, now_, &fx).ok());
  for (int round = 0; round < 10; ++round) {
    restarted.SyncPipelines(now_, &fx);
    blobs_.Write(fx);
    std::vector<deja::v1::Assignment> todo;
    for (auto& [w, msg] : fx.to_workers) {
      if (msg.has_assignment()) todo.push_back(msg.assignment());
    }
    fx = Effects();
    // Held jobs (reclaimed) finish too.
    if (round == 0) {
      for (const auto& [worker, a] : assigned_) todo.push_back(a);
    }
    for (const auto& a : todo) {
      Job job = *restarted.GetJob(a.job_id());
      deja::v1::WorkerMessage msg;
      msg.mutable_result()->set_job_id(a.job_id());
      msg.mutable_result()->set_attempt(a.attempt());
      AddTestManifest(msg.mutable_result());
      for (const auto& path : job.spec().outputs()) {
        auto* o = msg.mutable_result()->add_outputs();
        o->set_path(path);
        o->set_digest(HashBytes(path));
        blobs_.stored.insert(o->digest());
      }
      restarted.WorkerMessage(job.worker_id(), job.worker_id() == "w1" ? 99 : 100, msg, now_, &fx);
    }
  }
  Pipeline p = *restarted.GetPipeline(id);
  EXPECT_EQ(p.state(), deja::v1::PIPELINE_SUCCEEDED) << p.DebugString();
}

TEST_F(PipelinesTest, CancelStopsItsJobsAndPendingNodes) {
  std::string id = Submit(Valohai());
  Effects fx;
  auto cancelled = core_.CancelPipeline(id, now_, &fx);
  ASSERT_TRUE(cancelled.ok());
  EXPECT_EQ(cancelled->state(), deja::v1::PIPELINE_CANCELLED);
  EXPECT_EQ(core_.GetJob(NodeOf(*cancelled, "preprocess").job_id())->state(), deja::v1::CANCELLED);
  EXPECT_EQ(NodeOf(*cancelled, "train").state(), deja::v1::NODE_CANCELLED);
}

TEST(PipelineValidationTest, RejectsBadGraphsNamingTheField) {
  PipelineSpec cycle = Valohai();
  Edge(&cycle, "evaluate", "metrics.json", "preprocess", "back");
  EXPECT_THAT(std::string(ValidatePipeline(cycle).message()),
              HasSubstr("edges: cycle preprocess -> evaluate -> preprocess"));
  PipelineSpec unknown = Valohai();
  unknown.mutable_edges(0)->set_from_node("prep");
  EXPECT_THAT(std::string(ValidatePipeline(unknown).message()),
              HasSubstr("edges[0].from_node: unknown node \"prep\""));
  PipelineSpec output = Valohai();
  output.mutable_edges(0)->set_from_output("nope.csv");
  EXPECT_THAT(std::string(ValidatePipeline(output).message()),
              HasSubstr("edges[0].from_output: node preprocess declares no output \"nope.csv\""));
  PipelineSpec missing = Valohai();
  missing.mutable_edges()->erase(missing.mutable_edges()->begin());  // train's input
  EXPECT_THAT(std::string(ValidatePipeline(missing).message()),
              HasSubstr("nodes[train].app.command[2]: refers to unknown input \"train\""));
  PipelineSpec dup = Valohai();
  *dup.add_nodes() = Node("train", "again", {});
  EXPECT_THAT(std::string(ValidatePipeline(dup).message()),
              HasSubstr("nodes[train].name: duplicate node name"));
}

}  // namespace
}  // namespace deja
