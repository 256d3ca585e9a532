// Memoization controls, retention and single-flight in SchedulerCore, with
// time passed in explicitly (no sleeping for hours).
#include <string>
#include <tuple>
#include <vector>

#include "common/job_identity.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "scheduler/core/memo_policy.h"
#include "scheduler/core/scheduler_core.h"
#include "tests/scheduler/test_results.h"

namespace deja {

using ::deja::testing::AddTestManifest;
using ::deja::testing::kTestManifestDigest;
namespace {

using deja::v1::Job;
using deja::v1::JobSpec;
using ::testing::HasSubstr;

JobSpec Spec(const std::string& word, const std::string& project = "p") {
  JobSpec spec;
  spec.set_project(project);
  spec.mutable_app()->set_name("tool");
  spec.mutable_app()->add_command("echo");
  spec.mutable_app()->add_command(word);
  return spec;
}

// ---------------------------------------------------------------------------
// Precedence of project, job and app settings: every combination.

TEST(MemoPolicyTest, EveryCombinationOfProjectJobAppAndForce) {
  using deja::v1::Memoization;
  for (bool project_on : {true, false}) {
    for (Memoization job :
         {deja::v1::MEMOIZATION_INHERIT, deja::v1::MEMOIZATION_ON, deja::v1::MEMOIZATION_OFF}) {
      for (int app = 0; app < 3; ++app) {  // 0 plain, 1 reuse: false, 2 side_effects
        for (bool force : {false, true}) {
          JobSpec spec = Spec("x");
          spec.set_memoization(job);
          spec.set_force(force);
          if (app == 1) spec.mutable_app()->set_reuse(false);
          if (app == 2) spec.mutable_app()->set_side_effects(true);
          deja::v1::ProjectSettings project = DefaultProjectSettings("p");
          project.set_use_memoization(project_on);
          MemoPolicy policy = DecideMemoPolicy(spec, project);

          bool on = app == 0 && (job == deja::v1::MEMOIZATION_ON ||
                                 (job == deja::v1::MEMOIZATION_INHERIT && project_on));
          std::string where = ::testing::PrintToString(
              std::make_tuple(project_on, static_cast<int>(job), app, force));
          EXPECT_EQ(policy.record, on) << where;
          EXPECT_EQ(policy.lookup, on && !force) << where;
          EXPECT_EQ(policy.off_reason.empty(), on) << where;
          if (app == 1) {
            EXPECT_THAT(policy.off_reason, HasSubstr("reuse: false")) << where;
          }
          if (app == 2) {
            EXPECT_THAT(policy.off_reason, HasSubstr("side_effects: true")) << where;
          }
          if (app == 0 && job == deja::v1::MEMOIZATION_OFF) {
            EXPECT_EQ(policy.off_reason, "the job set memoization off");
          }
          if (app == 0 && job == deja::v1::MEMOIZATION_INHERIT && !project_on) {
            EXPECT_EQ(policy.off_reason, "project p has memoization off");
          }
        }
      }
    }
  }
}

TEST(MemoPolicyTest, RetentionOutsideOneTo120HoursIsRejectedNamingTheRange) {
  for (int hours : {0, -1, 121, 1000}) {
    deja::v1::SetProjectRequest request;
    request.set_project("p");
    request.set_intermediate_files_hours(hours);
    auto s = ApplyProjectSettings(DefaultProjectSettings("p"), request, absl::Now());
    EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument) << hours;
    EXPECT_THAT(std::string(s.status().message()),
                HasSubstr("intermediate_files_hours: " + std::to_string(hours) +
                          " is out of range (1 to 120 hours)"));
  }
  for (int hours : {1, 120}) {
    deja::v1::SetProjectRequest request;
    request.set_project("p");
    request.set_intermediate_files_hours(hours);
    auto s = ApplyProjectSettings(DefaultProjectSettings("p"), request, absl::Now());
    ASSERT_TRUE(s.ok()) << hours;
    EXPECT_EQ(s->intermediate_files_hours(), hours);
    EXPECT_TRUE(s->use_memoization()) << "untouched fields keep their value";
  }
  deja::v1::SetProjectRequest bad_name;
  bad_name.set_project("Bad Name");
  bad_name.set_use_memoization(false);
  EXPECT_THAT(std::string(ApplyProjectSettings(DefaultProjectSettings("x"), bad_name, absl::Now())
                              .status()
                              .message()),
              HasSubstr("project: invalid name"));
}

// ---------------------------------------------------------------------------
// The core, driven like the scheduler drives it.

class ControlsTest : public ::testing::Test {
 protected:
  ControlsTest() : core_(CoreOptions()) {
    deja::v1::Register reg;
    reg.set_worker_id("w1");
    reg.set_slots(8);
    reg.set_advertise("h:1");
    reg.mutable_capacity()->set_engine("docker 20.10.24 at /var/run/docker.sock");  // image jobs
    Effects fx;
    EXPECT_TRUE(core_.WorkerConnected(reg, 1, now_, &fx).ok());
  }

  absl::StatusOr<deja::v1::SubmitResponse> Submit(const JobSpec& spec) {
    Effects fx;
    return core_.Submit(spec, now_, &fx);
  }
  std::string SubmitId(const JobSpec& spec) {
    auto r = Submit(spec);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? r->job().job_id() : "";
  }
  // The worker reports the job's current attempt.
  Effects Report(const std::string& id, int exit_code, int64_t run_ms = 1000,
                 const std::string& error = "") {
    Job job = *core_.GetJob(id);
    deja::v1::WorkerMessage msg;
    auto* r = msg.mutable_result();
    r->set_job_id(id);
    r->set_attempt(job.attempt());
    r->set_exit_code(exit_code);
    r->set_run_time_ms(run_ms);
    r->set_error(error);
    AddTestManifest(r);
    Effects fx;
    core_.WorkerMessage("w1", 1, msg, now_, &fx);
    return fx;
  }
  std::string RunToSuccess(const JobSpec& spec, int64_t run_ms = 1000) {
    std::string id = SubmitId(spec);
    Report(id, 0, run_ms);
    EXPECT_EQ(State(id), deja::v1::SUCCEEDED);
    return id;
  }
  deja::v1::JobState State(const std::string& id) { return core_.GetJob(id)->state(); }
  Job Get(const std::string& id) { return *core_.GetJob(id); }
  void SetRetention(int hours) {
    deja::v1::SetProjectRequest request;
    request.set_project("p");
    request.set_intermediate_files_hours(hours);
    Effects fx;
    ASSERT_TRUE(core_.SetProject(request, now_, &fx).ok());
    EXPECT_EQ(fx.projects.size(), 1u) << "persisted";
  }

  absl::Time now_ = absl::FromUnixSeconds(1'700'000'000);
  SchedulerCore core_;
};

TEST_F(ControlsTest, PushedImagesPinJobsToTheirContent) {
  const std::string id_a = "sha256:" + std::string(64, 'a');
  const std::string id_b = "sha256:" + std::string(64, 'b');
  JobSpec spec = Spec("x");
  spec.mutable_app()->set_image("tool:1");
  // Not pushed: its name alone says nothing of its content.
  const std::string unpinned = SubmitId(spec);
  EXPECT_EQ(Get(unpinned).spec().app().image_id(), "");
  EXPECT_THAT(Get(unpinned).memoization_off_reason(),
              HasSubstr("image tool:1 is not pinned to its content: push it"));
  Report(unpinned, 0);

  deja::v1::PushImageRequest push;
  push.set_name("tool:1");
  push.set_image_id(id_a);
  push.set_digest(std::string(32, 'c'));
  push.set_size(4096);
  Effects fx;
  auto record = core_.PushImage(push, "token t1", now_, &fx);
  ASSERT_TRUE(record.ok()) << record.status();
  EXPECT_EQ(fx.images.at("tool:1").image_id(), id_a) << "persisted with the round";
  ASSERT_EQ(core_.ListImages().size(), 1u);
  EXPECT_EQ(core_.ImageDigests(), std::vector<std::string>{std::string(32, 'c')});

  Effects submitted;
  auto first = core_.Submit(spec, now_, &submitted);
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first->job().spec().app().image_id(), id_a) << "pinned at submit";
  EXPECT_EQ(first->job().memoization_off_reason(), "");
  bool assigned = false;
  for (const auto& [worker, msg] : submitted.to_workers) {
    if (!msg.has_assignment()) continue;
    assigned = true;
    EXPECT_EQ(msg.assignment().image_id(), id_a);
    EXPECT_EQ(msg.assignment().image_digest(), std::string(32, 'c'));
    EXPECT_EQ(msg.assignment().image_size(), 4096u);
  }
  EXPECT_TRUE(assigned);
  Report(first->job().job_id(), 0);
  auto again = Submit(spec);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->reused()) << "the same content: reused";

  // The tag now names other content: never served from the old run.
  push.set_image_id(id_b);
  ASSERT_TRUE(core_.PushImage(push, "token t1", now_, &fx).ok());
  auto moved = Submit(spec);
  ASSERT_TRUE(moved.ok());
  EXPECT_FALSE(moved->reused());
  EXPECT_EQ(moved->job().spec().app().image_id(), id_b);
  EXPECT_NE(moved->job().job_hash(), first->job().job_hash());

  // An image named by its ID is pinned to it.
  JobSpec by_id = Spec("y");
  by_id.mutable_app()->set_image(id_a);
  EXPECT_EQ(Get(SubmitId(by_id)).spec().app().image_id(), id_a);

  // Bad pushes name the field.
  deja::v1::PushImageRequest bad = push;
  bad.set_name("-bad");
  EXPECT_THAT(core_.PushImage(bad, "", now_, &fx).status().message(), HasSubstr("name:"));
  bad = push;
  bad.set_image_id("sha256:xyz");
  EXPECT_THAT(core_.PushImage(bad, "", now_, &fx).status().message(), HasSubstr("image_id:"));
  bad = push;
  bad.set_digest("nope");
  EXPECT_THAT(core_.PushImage(bad, "", now_, &fx).status().message(), HasSubstr("digest:"));
}

TEST_F(ControlsTest, ProjectOffJobOnAppFlagsEndToEnd) {
  RunToSuccess(Spec("a"));
  deja::v1::SetProjectRequest off;
  off.set_project("p");
  off.set_use_memoization(false);
  Effects fx;
  ASSERT_TRUE(core_.SetProject(off, now_, &fx).ok());
  auto inherit = Submit(Spec("a"));
  EXPECT_FALSE(inherit->reused());
  EXPECT_EQ(inherit->job().memoization_off_reason(), "project p has memoization off");
  JobSpec on = Spec("a");
  on.set_memoization(deja::v1::MEMOIZATION_ON);
  EXPECT_TRUE(Submit(on)->reused()) << "the job's on overrides the project's off";
  JobSpec side = on;
  side.mutable_app()->set_side_effects(true);
  EXPECT_FALSE(Submit(side)->reused()) << "side_effects: nothing overrides it";
}

TEST_F(ControlsTest, ExpiryIsFixedAtFinishAndAChangeAppliesOnlyToLaterExecutions) {
  std::string before = RunToSuccess(Spec("a"));
  EXPECT_EQ(Get(before).expires_at_ms(), absl::ToUnixMillis(now_ + absl::Hours(24)));
  SetRetention(2);
  EXPECT_EQ(Get(before).expires_at_ms(), absl::ToUnixMillis(now_ + absl::Hours(24)))
      << "never retroactive";
  auto entry = core_.GetMemo([&] {
    deja::v1::GetMemoRequest r;
    r.set_job_id(before);
    return r;
  }());
  EXPECT_EQ(entry->expires_at_ms(), Get(before).expires_at_ms());
  now_ += absl::Minutes(10);
  std::string after = RunToSuccess(Spec("b"));
  EXPECT_EQ(Get(after).expires_at_ms(), absl::ToUnixMillis(now_ + absl::Hours(2)));
  // A job that is still running when the setting changes gets the new one.
  std::string running = SubmitId(Spec("c"));
  SetRetention(5);
  Report(running, 0);
  EXPECT_EQ(Get(running).expires_at_ms(), absl::ToUnixMillis(now_ + absl::Hours(5)));
}

TEST_F(ControlsTest, ExpiredEntriesAreNeverReused) {
  SetRetention(1);
  std::string src = RunToSuccess(Spec("a"));
  now_ += absl::Minutes(59);
  EXPECT_TRUE(Submit(Spec("a"))->reused());
  now_ += absl::Minutes(2);
  // Before the sweep drops it, a lookup already refuses it.
  auto r = Submit(Spec("a"));
  EXPECT_FALSE(r->reused());
  EXPECT_THAT(r->job().message(), HasSubstr("expired at"));
  // Another fresh success makes a new entry; the tick drops expired ones.
  Report(r->job().job_id(), 0);
  now_ += absl::Hours(2);
  Effects fx;
  core_.Tick(now_, &fx);
  EXPECT_EQ(fx.memo_deletes.size(), 1u);
  EXPECT_TRUE(core_.ListMemo({})->empty());
  EXPECT_FALSE(Submit(Spec("a"))->reused());
}

TEST_F(ControlsTest, WorkerSweepMarksTheJobAndDropsItsEntry) {
  std::string src = RunToSuccess(Spec("a"));
  deja::v1::WorkerMessage msg;
  msg.mutable_expired()->add_job_ids(src);
  Effects fx;
  core_.WorkerMessage("w1", 1, msg, now_, &fx);
  EXPECT_TRUE(Get(src).workspace_expired());
  EXPECT_EQ(Get(src).state(), deja::v1::SUCCEEDED) << "the record stays";
  EXPECT_EQ(fx.memo_deletes.size(), 1u);
  EXPECT_FALSE(Submit(Spec("a"))->reused());
  JobSpec manual = Spec("other");
  manual.set_reuse_job_id(src);
  EXPECT_EQ(Submit(manual).status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(ControlsTest, ResultAckCarriesTheExpiry) {
  std::string id = SubmitId(Spec("a"));
  Effects fx = Report(id, 0);
  ASSERT_FALSE(fx.to_workers.empty());
  ASSERT_TRUE(fx.to_workers[0].second.has_result_ack());
  EXPECT_EQ(fx.to_workers[0].second.result_ack().expires_at_ms(), Get(id).expires_at_ms());
}

TEST_F(ControlsTest, ThreeIdenticalSubmitsRunOnceAndAllSucceed) {
  std::string leader = SubmitId(Spec("a"));
  auto f1 = Submit(Spec("a"));
  auto f2 = Submit(Spec("a"));
  EXPECT_EQ(f1->job().state(), deja::v1::WAITING);
  EXPECT_EQ(f1->job().waiting_for(), leader);
  EXPECT_EQ(f2->job().waiting_for(), leader);
  EXPECT_EQ(core_.ListWorkers()[0].busy_slots(), 1u) << "one execution";
  Effects fx = Report(leader, 0, 7000);
  for (const auto& f : {f1->job().job_id(), f2->job().job_id()}) {
    EXPECT_EQ(State(f), deja::v1::MATERIALIZING);
    EXPECT_EQ(Get(f).reused_from(), leader);
    EXPECT_EQ(Get(f).time_saved_ms(), 7000);
    Report(f, 0);
    EXPECT_EQ(State(f), deja::v1::SUCCEEDED);
  }
}

TEST_F(ControlsTest, AFailingLeaderPromotesAFollower) {
  std::string leader = SubmitId(Spec("a"));
  std::string f1 = SubmitId(Spec("a"));
  std::string f2 = SubmitId(Spec("a"));
  Report(leader, 1);
  EXPECT_EQ(State(leader), deja::v1::FAILED);
  EXPECT_EQ(State(f1), deja::v1::ASSIGNED) << "the oldest follower runs itself";
  EXPECT_THAT(Get(f1).message(), HasSubstr(leader));
  EXPECT_EQ(State(f2), deja::v1::WAITING);
  EXPECT_EQ(Get(f2).waiting_for(), f1);
  Report(f1, 0);
  EXPECT_EQ(State(f2), deja::v1::MATERIALIZING);
  EXPECT_EQ(Get(f2).reused_from(), f1);
}

TEST_F(ControlsTest, CancellingAFollowerLeavesTheLeaderAlone) {
  std::string leader = SubmitId(Spec("a"));
  std::string f1 = SubmitId(Spec("a"));
  Effects fx;
  ASSERT_TRUE(core_.CancelJob(f1, now_, &fx).ok());
  EXPECT_EQ(State(leader), deja::v1::ASSIGNED);
  EXPECT_TRUE(fx.to_workers.empty()) << "nothing sent to the leader's worker";
  Report(leader, 0);
  EXPECT_EQ(State(f1), deja::v1::CANCELLED);
  // Cancelling the leader promotes the follower instead.
  std::string l2 = SubmitId(Spec("b"));
  std::string f2 = SubmitId(Spec("b"));
  ASSERT_TRUE(core_.CancelJob(l2, now_, &fx).ok());
  EXPECT_EQ(State(f2), deja::v1::ASSIGNED);
}

TEST_F(ControlsTest, SingleFlightSurvivesARestart) {
  std::string leader = SubmitId(Spec("a"));
  std::string f1 = SubmitId(Spec("a"));
  SchedulerCore restarted{CoreOptions()};
  restarted.Load({Get(leader), Get(f1)}, {}, {}, {}, now_);
  deja::v1::Register reg;
  reg.set_worker_id("w1");
  reg.set_slots(8);
  reg.add_held()->set_job_id(leader);
  reg.mutable_held(0)->set_attempt(1);
  Effects fx;
  ASSERT_TRUE(restarted.WorkerConnected(reg, 7, now_, &fx).ok());
  EXPECT_EQ(restarted.GetJob(f1)->state(), deja::v1::WAITING);
  deja::v1::WorkerMessage msg;
  msg.mutable_result()->set_job_id(leader);
  msg.mutable_result()->set_attempt(1);
  AddTestManifest(msg.mutable_result());
  restarted.WorkerMessage("w1", 7, msg, now_, &fx);
  EXPECT_EQ(restarted.GetJob(f1)->state(), deja::v1::MATERIALIZING);
}

TEST_F(ControlsTest, ForceRunsFreshAndReplacesTheEntry) {
  std::string first = RunToSuccess(Spec("a"));
  JobSpec force = Spec("a");
  force.set_force(true);
  auto r = Submit(force);
  EXPECT_FALSE(r->reused());
  EXPECT_EQ(r->job().state(), deja::v1::ASSIGNED) << "force never waits or looks up";
  Report(r->job().job_id(), 0);
  auto entries = *core_.ListMemo({});
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].source_job_id(), r->job().job_id());
  EXPECT_NE(entries[0].source_job_id(), first);
  EXPECT_EQ(Submit(Spec("a"))->job().reused_from(), r->job().job_id());
}

TEST_F(ControlsTest, ReuseOfASpecificJob) {
  std::string src = RunToSuccess(Spec("a"), 4000);
  JobSpec manual = Spec("different command");
  manual.set_reuse_job_id(src);
  auto r = Submit(manual);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->reused());
  EXPECT_EQ(r->job().reused_from(), src);
  EXPECT_EQ(r->job().time_saved_ms(), 4000);

  JobSpec other_app = manual;
  other_app.mutable_app()->set_name("another");
  EXPECT_EQ(Submit(other_app).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Submit(other_app).status().message(),
            "reuse_job_id: " + src + " is app tool, not another");
  JobSpec other_project = manual;
  other_project.set_project("q");
  EXPECT_THAT(std::string(Submit(other_project).status().message()),
              HasSubstr("is in project p, not q"));
  JobSpec missing = manual;
  missing.set_reuse_job_id("j999");
  EXPECT_EQ(Submit(missing).status().message(), "reuse_job_id: job j999 not found");
  JobSpec forced = manual;
  forced.set_force(true);
  EXPECT_EQ(Submit(forced).status().message(),
            "reuse_job_id: cannot be combined with force or memoization off");
  JobSpec side = manual;
  side.mutable_app()->set_side_effects(true);
  EXPECT_THAT(std::string(Submit(side).status().message()), HasSubstr("always executes"));
  JobSpec nondeterministic = manual;
  nondeterministic.mutable_app()->set_reuse(false);
  EXPECT_TRUE(Submit(nondeterministic)->reused()) << "an explicit choice of a past result";
  std::string failed = SubmitId(Spec("f"));
  Report(failed, 2);
  JobSpec of_failed = manual;
  of_failed.set_reuse_job_id(failed);
  EXPECT_EQ(Submit(of_failed).status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(ControlsTest, CacheKeyIgnoresUnlistedParams) {
  JobSpec spec = Spec("${params.lr}");
  spec.mutable_app()->add_cache_key("lr");
  (*spec.mutable_params())["lr"] = "0.1";
  (*spec.mutable_params())["log_level"] = "debug";
  RunToSuccess(spec);
  (*spec.mutable_params())["log_level"] = "info";
  EXPECT_TRUE(Submit(spec)->reused());
  (*spec.mutable_params())["lr"] = "0.2";
  EXPECT_FALSE(Submit(spec)->reused());
}

TEST_F(ControlsTest, VersionBumpMisses) {
  JobSpec spec = Spec("a");
  spec.mutable_app()->set_version("1");
  RunToSuccess(spec);
  spec.mutable_app()->set_version("2");
  EXPECT_FALSE(Submit(spec)->reused());
}

TEST_F(ControlsTest, EvictByHashAppAndTime) {
  std::string a = RunToSuccess(Spec("a"));
  now_ += absl::Hours(1);
  std::string b = RunToSuccess(Spec("b"));
  JobSpec other = Spec("c");
  other.mutable_app()->set_name("other");
  now_ += absl::Hours(1);
  RunToSuccess(other);
  ASSERT_EQ(core_.ListMemo({})->size(), 3u);
  Effects fx;
  deja::v1::EvictMemoRequest two;
  two.set_job_hash(Get(a).job_hash());
  two.set_app_name("tool");
  EXPECT_EQ(core_.EvictMemo(two, &fx).status().code(), absl::StatusCode::kInvalidArgument);

  deja::v1::EvictMemoRequest by_hash;
  by_hash.set_job_hash(Get(a).job_hash());
  EXPECT_EQ(core_.EvictMemo(by_hash, &fx)->evicted_size(), 1);
  EXPECT_FALSE(Submit(Spec("a"))->reused()) << "never served again";

  deja::v1::EvictMemoRequest by_time;
  by_time.set_before_ms(absl::ToUnixMillis(now_ - absl::Minutes(30)));
  auto evicted = core_.EvictMemo(by_time, &fx);
  ASSERT_EQ(evicted->evicted_size(), 1);
  EXPECT_EQ(evicted->evicted(0).source_job_id(), b);

  deja::v1::EvictMemoRequest by_app;
  by_app.set_app_name("other");
  EXPECT_EQ(core_.EvictMemo(by_app, &fx)->evicted_size(), 1);
  EXPECT_TRUE(core_.ListMemo({})->empty());
  EXPECT_EQ(fx.memo_deletes.size(), 3u);
}

TEST_F(ControlsTest, ExplainNamesTheDifferingFieldForEachKind) {
  JobSpec base = Spec("${params.lr}");
  base.mutable_app()->set_version("1");
  base.mutable_app()->set_image("img:1");
  // Pinned (the scheduler pins a pushed image): else never memoized.
  base.mutable_app()->set_image_id("sha256:" + std::string(64, 'a'));
  (*base.mutable_app()->mutable_env())["MODE"] = "fast";
  (*base.mutable_params())["lr"] = "0.1";
  auto* input = base.add_inputs();
  input->set_name("data");
  input->set_kind("file");
  input->set_digest("0123456789abcdef0123456789abcdef");
  std::string src = RunToSuccess(base);

  struct Case {
    std::string field;
    std::function<void(JobSpec*)> change;
  };
  std::vector<Case> cases = {
      {"app.version", [](JobSpec* s) { s->mutable_app()->set_version("2"); }},
      {"params[lr]", [](JobSpec* s) { (*s->mutable_params())["lr"] = "0.2"; }},
      {"inputs[data].digest",
       [](JobSpec* s) { s->mutable_inputs(0)->set_digest("ffffffffffffffffffffffffffffffff"); }},
      {"app.command", [](JobSpec* s) { s->mutable_app()->set_command(0, "printf"); }},
      {"app.env[MODE]", [](JobSpec* s) { (*s->mutable_app()->mutable_env())["MODE"] = "slow"; }},
      {"app.image", [](JobSpec* s) { s->mutable_app()->set_image("img:2"); }},
      // The same tag, other content.
      {"app.image_id",
       [](JobSpec* s) { s->mutable_app()->set_image_id("sha256:" + std::string(64, 'b')); }},
  };
  for (const auto& c : cases) {
    JobSpec spec = base;
    c.change(&spec);
    std::string id = SubmitId(spec);
    auto explained = core_.Explain(id, now_);
    ASSERT_TRUE(explained.ok());
    EXPECT_EQ(explained->verdict(), deja::v1::ExplainResponse::NO_MATCHING_ENTRY) << c.field;
    ASSERT_EQ(explained->differences_size(), 1) << c.field << ": " << explained->DebugString();
    EXPECT_EQ(explained->differences(0).field(), c.field);
    EXPECT_EQ(explained->nearest().source_job_id(), src);
    EXPECT_THAT(explained->summary(), HasSubstr(c.field));
    Report(id, 1);  // fail it, so it leaves no entry of its own
  }
  // The other verdicts.
  auto reused = Submit(base);
  Report(reused->job().job_id(), 0);
  EXPECT_EQ(core_.Explain(reused->job().job_id(), now_)->verdict(),
            deja::v1::ExplainResponse::REUSED);
  JobSpec off = base;
  off.set_memoization(deja::v1::MEMOIZATION_OFF);
  auto off_explained = core_.Explain(SubmitId(off), now_);
  EXPECT_EQ(off_explained->verdict(), deja::v1::ExplainResponse::MEMOIZATION_OFF);
  EXPECT_THAT(off_explained->summary(), HasSubstr("the job set memoization off"));
  JobSpec forced = base;
  forced.set_force(true);
  EXPECT_EQ(core_.Explain(SubmitId(forced), now_)->verdict(), deja::v1::ExplainResponse::FORCED);
}

TEST_F(ControlsTest, StatsAddUpOnAScriptedWorkload) {
  JobSpec other = Spec("z");
  other.mutable_app()->set_name("other");
  std::string a = RunToSuccess(Spec("a"), 3000);  // tool: ran 3 s
  Report(SubmitId(Spec("a")), 0);                 // tool: reused, saved 3 s
  Report(SubmitId(Spec("a")), 0);                 // tool: reused, saved 3 s
  Report(SubmitId(Spec("fail")), 1, 500);         // tool: failed, ran 0.5 s
  RunToSuccess(other, 2000);                      // other: ran 2 s
  auto stats = *core_.Stats({});
  EXPECT_EQ(stats.total().jobs(), 5u);
  EXPECT_EQ(stats.total().succeeded(), 4u);
  EXPECT_EQ(stats.total().failed(), 1u);
  EXPECT_EQ(stats.total().reused(), 2u);
  EXPECT_DOUBLE_EQ(stats.total().reuse_rate(), 0.5);
  EXPECT_EQ(stats.total().time_saved_ms(), 6000);
  EXPECT_EQ(stats.total().run_time_ms(), 3000 + 500 + 2000) << "reuses did not run";
  ASSERT_EQ(stats.apps_size(), 2);
  EXPECT_EQ(stats.apps(0).app_name(), "other");
  EXPECT_EQ(stats.apps(1).app_name(), "tool");
  EXPECT_EQ(stats.apps(1).jobs(), 4u);
  EXPECT_EQ(stats.apps(1).reused(), 2u);
  EXPECT_EQ(stats.apps(0).jobs() + stats.apps(1).jobs(), stats.total().jobs());
  deja::v1::StatsRequest since;
  since.set_since_ms(absl::ToUnixMillis(now_ + absl::Seconds(1)));
  EXPECT_EQ(core_.Stats(since)->total().jobs(), 0u);
  deja::v1::StatsRequest project;
  project.set_project("q");
  EXPECT_EQ(core_.Stats(project)->total().jobs(), 0u);
}

}  // namespace
}  // namespace deja
