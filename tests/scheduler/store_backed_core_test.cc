// The store-backed core suite; see store_backed_core_test.h. Instantiated
// once per backend, in the test binary that links it.
#include "tests/scheduler/store_backed_core_test.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace deja {
namespace {

JobSpec Echo(const std::string& word, const std::string& request_id = "") {
  JobSpec spec;
  spec.mutable_app()->set_name("echo");
  spec.mutable_app()->add_command("echo");
  spec.mutable_app()->add_command(word);
  spec.set_request_id(request_id);
  return spec;
}

}  // namespace

TEST_P(StoreBackedCoreTest, AnEndedJobLeavesMemoryAndIsServedFromTheStore) {
  Connect("w1", 1);
  std::string a = Submit(Echo("a"));
  EXPECT_EQ(core_->resident_jobs(), 1u);
  Finish("w1", a);
  EXPECT_EQ(core_->resident_jobs(), 0u) << "committed and ended: only in the store";
  auto job = core_->GetJob(a);
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->state(), deja::v1::SUCCEEDED);
  EXPECT_EQ(job->manifest().files(), 1u);
  EXPECT_EQ(job->manifest().digest(), kManifestDigest);
  EXPECT_EQ(core_->GetJob("j99").status().code(), absl::StatusCode::kNotFound);
  Effects fx;
  EXPECT_EQ(core_->CancelJob(a, now_, &fx).status().code(), absl::StatusCode::kFailedPrecondition);

  Restart();
  EXPECT_EQ(core_->resident_jobs(), 0u);
  EXPECT_EQ(core_->GetJob(a)->state(), deja::v1::SUCCEEDED);
  EXPECT_EQ(core_->Explain(a, now_)->job_id(), a);
  auto stats = core_->Stats({});
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->total().jobs(), 1u);
  EXPECT_EQ(stats->total().succeeded(), 1u);
  EXPECT_EQ(stats->total().run_time_ms(), 1500);
}

TEST_P(StoreBackedCoreTest, AnEndedJobIsNotEvictedBeforeItsCommit) {
  Connect("w1", 1);
  Effects fx;
  auto r = core_->Submit(Echo("a"), now_, &fx);
  ASSERT_TRUE(r.ok());
  auto cancelled = core_->CancelJob(r->job().job_id(), now_, &fx);
  ASSERT_TRUE(cancelled.ok());
  // Same round, nothing committed yet: still readable.
  EXPECT_EQ(core_->GetJob(r->job().job_id())->state(), deja::v1::CANCELLED);
  EXPECT_EQ(Ids(core_->ListJobs("", deja::v1::JOB_STATE_UNSPECIFIED, 0)), "j1");
}

TEST_P(StoreBackedCoreTest, ListJobsMergesMemoryAndStoreInOrderWithLimit) {
  Connect("w1", 1);
  std::string a = Submit(Echo("a"));  // j1: runs
  std::string b = Submit(Echo("b"));  // j2..j4 queue behind it
  std::string c = Submit(Echo("c"));
  std::string d = Submit(Echo("d"));
  Finish("w1", a);  // j1 ends; j2 runs
  Finish("w1", b);  // j2 ends; j3 runs
  EXPECT_EQ(core_->resident_jobs(), 2u);
  // One more, not committed yet.
  Effects pending;
  ASSERT_TRUE(core_->Submit(Echo("e"), now_, &pending).ok());

  const auto all = deja::v1::JOB_STATE_UNSPECIFIED;
  EXPECT_EQ(Ids(core_->ListJobs("", all, 0)), "j1 j2 j3 j4 j5");
  EXPECT_EQ(Ids(core_->ListJobs("", all, 2)), "j4 j5") << "the newest, oldest first";
  EXPECT_EQ(Ids(core_->ListJobs("", all, 4)), "j2 j3 j4 j5");
  EXPECT_EQ(Ids(core_->ListJobs("", deja::v1::SUCCEEDED, 0)), "j1 j2");
  EXPECT_EQ(Ids(core_->ListJobs("", deja::v1::SUCCEEDED, 1)), "j2");
  EXPECT_EQ(Ids(core_->ListJobs("", deja::v1::QUEUED, 0)), "j4 j5");
  EXPECT_EQ(Ids(core_->ListJobs("other", all, 0)), "");
  Commit(pending);

  Restart();
  EXPECT_EQ(Ids(core_->ListJobs("", all, 0)), "j1 j2 j3 j4 j5");
  EXPECT_EQ(Ids(core_->ListJobs("", all, 3)), "j3 j4 j5");
  EXPECT_EQ(core_->Stats({})->total().jobs(), 5u);
  EXPECT_EQ(core_->Stats({})->total().succeeded(), 2u);
  deja::v1::StatsRequest since;
  since.set_since_ms(1);  // the scan path
  EXPECT_EQ(core_->Stats(since)->total().jobs(), 5u);
  EXPECT_EQ(core_->Stats(since)->total().succeeded(), 2u);
}

TEST_P(StoreBackedCoreTest, AMemoHitAfterRestartReadsTheStoredEntry) {
  Connect("w1", 1);
  std::string a = Submit(Echo("a"));
  Effects done = Finish("w1", a);
  ASSERT_EQ(done.memo_puts.size(), 1u);

  Restart();
  Connect("w1", 1);
  Effects fx;
  auto r = core_->Submit(Echo("a"), now_, &fx);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->reused());
  EXPECT_EQ(r->job().reused_from(), a);
  EXPECT_EQ(r->job().time_saved_ms(), 1500);
  bool sent = false;
  for (const auto& [worker, msg] : fx.to_workers) {
    if (!msg.has_assignment()) continue;
    sent = true;
    EXPECT_EQ(msg.assignment().kind(), deja::v1::Assignment::MATERIALIZE);
    EXPECT_EQ(msg.assignment().source_job_id(), a);
    EXPECT_EQ(msg.assignment().source_manifest().digest(), kManifestDigest);
    EXPECT_EQ(msg.assignment().source_manifest().files(), 1u);
  }
  EXPECT_TRUE(sent);
  Commit(fx);
  auto listed = core_->ListMemo({});
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].source_job_id(), a);
  deja::v1::GetMemoRequest by_job;
  by_job.set_job_id(a);
  EXPECT_EQ(core_->GetMemo(by_job)->source_job_id(), a);
}

TEST_P(StoreBackedCoreTest, EvictionAndExpiryDropStoredEntries) {
  Connect("w1", 2);
  std::string a = Submit(Echo("a"));
  std::string b = Submit(Echo("b"));
  Finish("w1", a);
  Finish("w1", b);
  Restart();
  Connect("w1", 2);
  // The worker reports a's workspace gone: its entry goes, the job says so.
  deja::v1::WorkerMessage msg;
  msg.mutable_expired()->add_job_ids(a);
  Effects fx;
  core_->WorkerMessage("w1", 1, msg, now_, &fx);
  EXPECT_EQ(fx.memo_deletes.size(), 1u);
  Commit(fx);
  EXPECT_TRUE(core_->GetJob(a)->workspace_expired());
  EXPECT_EQ(core_->resident_jobs(), 0u);
  ASSERT_EQ(core_->ListMemo({})->size(), 1u);
  // Expiry: the index alone names the entry to drop.
  Effects tick;
  core_->Tick(now_ + absl::Hours(200), &tick);
  EXPECT_EQ(tick.memo_deletes.size(), 1u);
  Commit(tick);
  EXPECT_TRUE(core_->ListMemo({})->empty());
  bool reused = true;
  Submit(Echo("b"), &reused);
  EXPECT_FALSE(reused);
}

TEST_P(StoreBackedCoreTest, ARequestIdStaysIdempotentAcrossCommitsAndRestarts) {
  Connect("w1", 1);
  // Twice in one round, before any commit.
  Effects fx;
  auto first = core_->Submit(Echo("a", "req-1"), now_, &fx);
  auto again = core_->Submit(Echo("a", "req-1"), now_, &fx);
  ASSERT_TRUE(first.ok() && again.ok());
  EXPECT_EQ(again->job().job_id(), first->job().job_id());
  Commit(fx);
  Finish("w1", first->job().job_id());
  EXPECT_EQ(Submit(Echo("a", "req-1")), first->job().job_id()) << "ended, from the store";

  Restart();
  Effects fx2;
  auto after = core_->Submit(Echo("a", "req-1"), now_, &fx2);
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->job().job_id(), first->job().job_id());
  EXPECT_EQ(after->job().state(), deja::v1::SUCCEEDED);
  EXPECT_TRUE(fx2.jobs.empty()) << "no new job";
  EXPECT_EQ(Submit(Echo("a", "req-2")), "j2");
}

TEST_P(StoreBackedCoreTest, ManualReuseOfAnEndedJobReadsItFromTheStore) {
  Connect("w1", 1);
  std::string a = Submit(Echo("a"));
  Finish("w1", a);
  Restart();
  Connect("w1", 1);
  JobSpec spec = Echo("a2");
  spec.set_reuse_job_id(a);
  bool reused = false;
  std::string b = Submit(spec, &reused);
  EXPECT_TRUE(reused);
  EXPECT_EQ(core_->GetJob(b)->reused_from(), a);
}

TEST_P(StoreBackedCoreTest, ACancelledJobStaysInMemoryWhileAWorkerHoldsIt) {
  Connect("w1", 1);
  std::string a = Submit(Echo("a"));
  Effects fx;
  ASSERT_TRUE(core_->CancelJob(a, now_, &fx).ok());
  Commit(fx);
  EXPECT_EQ(core_->resident_jobs(), 1u) << "its result (exit code) is still to come";
  // The worker is lost instead: nothing holds the job any more.
  Effects tick;
  core_->Tick(now_ + absl::Minutes(5), &tick);
  Commit(tick);
  EXPECT_EQ(core_->resident_jobs(), 0u);
  EXPECT_EQ(core_->GetJob(a)->state(), deja::v1::CANCELLED);
}

}  // namespace deja
