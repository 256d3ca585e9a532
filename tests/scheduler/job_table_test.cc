// JobTable alone: lookups, the FIFO queue, request ids, and residency over
// a store (ended jobs leave memory once committed and come back on demand).
#include "scheduler/core/job_table.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "scheduler/core/job_state_machine.h"
#include "scheduler/core/keys.h"
#include "tests/scheduler/mem_store.h"

namespace deja {
namespace {

using deja::v1::Job;

const absl::Time kNow = absl::FromUnixSeconds(1000);

Job NewJob(JobTable& table, const std::string& app = "echo") {
  Job job;
  job.set_job_id(JobIdFromSeq(table.TakeSeq()));
  job.mutable_spec()->set_project("p");
  job.mutable_spec()->mutable_app()->set_name(app);
  SetJobState(job, deja::v1::QUEUED, kNow);
  return job;
}

bool NotHeld(const Job&) { return false; }

TEST(JobTableTest, GetNamesAnUnknownJob) {
  JobTable table(nullptr);
  Job& added = table.Add(NewJob(table));
  EXPECT_EQ(added.job_id(), "j1");
  EXPECT_EQ(table.Get("j1")->job_id(), "j1");
  EXPECT_EQ(table.Get("j9").status().message(), "job j9 not found");
  EXPECT_EQ(table.Get("bogus").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(table.Find("j9"), nullptr);
}

TEST(JobTableTest, TheQueueIsOldestFirst) {
  JobTable table(nullptr);
  std::vector<Job*> jobs;
  for (int i = 0; i < 3; ++i) jobs.push_back(&table.Add(NewJob(table)));
  table.Enqueue(*jobs[2]);
  table.Enqueue(*jobs[0]);
  table.Enqueue(*jobs[1]);
  std::vector<uint64_t> order;
  for (uint64_t seq = table.NextQueued(0); seq != 0; seq = table.NextQueued(seq)) {
    order.push_back(seq);
    if (seq == 2) table.Dequeue("j2");  // dequeuing while walking is safe
  }
  EXPECT_EQ(order, (std::vector<uint64_t>{1, 2, 3}));
  EXPECT_EQ(table.NextQueued(1), 3u);
  EXPECT_EQ(table.Queued(3).job_id(), "j3");
}

TEST(JobTableTest, AnEndedCommittedJobLeavesMemoryAndComesBack) {
  MemStore store;
  JobTable table(&store);
  Job& job = table.Add(NewJob(table));
  SetJobState(job, deja::v1::CANCELLED, kNow);
  Effects fx;
  fx.jobs["j1"] = job;
  ASSERT_TRUE(store.Commit(fx).ok());
  table.Committed(fx, NotHeld);
  EXPECT_EQ(table.resident(), 0u);
  EXPECT_EQ(table.Find("j1"), nullptr);
  EXPECT_EQ(table.Get("j1")->state(), deja::v1::CANCELLED) << "read from the store";

  Job* back = table.Resident("j1");
  ASSERT_NE(back, nullptr);
  EXPECT_EQ(table.resident(), 1u);
  EXPECT_EQ(table.Find("j1"), back);
}

// ListJobs' pages: newest first, bounded by bytes but never empty, stored
// and resident jobs merged.
TEST(JobTableTest, ListPagesByBytesFromTheNewestBack) {
  MemStore store;
  JobTable table(&store);
  for (int i = 0; i < 5; ++i) {
    Job& job = table.Add(NewJob(table));
    job.set_message(std::string(1000, 'x'));
    if (i < 3) {  // j1..j3 ended and committed: read from the store
      SetJobState(job, deja::v1::CANCELLED, kNow);
      Effects fx;
      fx.jobs[job.job_id()] = job;
      ASSERT_TRUE(store.Commit(fx).ok());
      table.Committed(fx, NotHeld);
    }
  }
  auto ids = [](const std::vector<Job>& jobs) {
    std::string out;
    for (const auto& job : jobs) out += job.job_id() + " ";
    return out;
  };
  uint64_t next = 0;
  auto page = table.List("", deja::v1::JOB_STATE_UNSPECIFIED, 0, 0, 2500, &next);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_EQ(ids(*page), "j4 j5 ");
  EXPECT_EQ(next, 4u);
  page = table.List("", deja::v1::JOB_STATE_UNSPECIFIED, 0, next, 2500, &next);
  EXPECT_EQ(ids(*page), "j2 j3 ");
  EXPECT_EQ(next, 2u);
  page = table.List("", deja::v1::JOB_STATE_UNSPECIFIED, 0, next, 2500, &next);
  EXPECT_EQ(ids(*page), "j1 ");
  EXPECT_EQ(next, 0u) << "the last page";
  page = table.List("", deja::v1::JOB_STATE_UNSPECIFIED, 0, 0, 10, &next);
  EXPECT_EQ(ids(*page), "j5 ") << "a job larger than the bound still comes, alone";
  EXPECT_EQ(next, 5u);
  page = table.List("", deja::v1::JOB_STATE_UNSPECIFIED, 2, 0, 0, &next);
  EXPECT_EQ(ids(*page), "j4 j5 ");
  EXPECT_EQ(next, 4u) << "more match than the limit: the next page starts below j4";
  page = table.List("", deja::v1::JOB_STATE_UNSPECIFIED, 2, next, 0, &next);
  EXPECT_EQ(ids(*page), "j2 j3 ");
  page = table.List("", deja::v1::JOB_STATE_UNSPECIFIED, 1, next, 0, &next);
  EXPECT_EQ(ids(*page), "j1 ");
  EXPECT_EQ(next, 0u) << "nothing older matches";
}

TEST(JobTableTest, CommittedKeepsHeldChangedAndUnendedJobs) {
  MemStore store;
  JobTable table(&store);
  Job& queued = table.Add(NewJob(table));
  Job& held = table.Add(NewJob(table));
  Job& changed = table.Add(NewJob(table));
  SetJobState(held, deja::v1::CANCELLED, kNow);
  SetJobState(changed, deja::v1::CANCELLED, kNow);
  Effects fx;
  fx.jobs["j1"] = queued;
  fx.jobs["j2"] = held;
  fx.jobs["j3"] = changed;
  changed.set_message("changed after the copy was taken");
  ASSERT_TRUE(store.Commit(fx).ok());
  table.Committed(fx, [](const Job& job) { return job.job_id() == "j2"; });
  EXPECT_EQ(table.resident(), 3u);
}

TEST(JobTableTest, RequestIdsAreFoundInMemoryThenInTheStore) {
  MemStore store;
  JobTable table(&store);
  const std::string key = RequestKey("p", "req-1");
  EXPECT_EQ(table.FindRequest(key).status().code(), absl::StatusCode::kNotFound);
  Effects fx;
  table.AddRequest(key, "j4", &fx);
  EXPECT_EQ(*table.FindRequest(key), "j4");
  EXPECT_EQ(fx.requests.at(key), "j4");
  ASSERT_TRUE(store.Commit(fx).ok());
  table.Committed(fx, NotHeld);
  EXPECT_EQ(*table.FindRequest(key), "j4") << "from the store";
}

TEST(JobTableTest, StatsCountStoredAndResidentJobs) {
  MemStore store;
  JobTable table(&store);
  Job& done = table.Add(NewJob(table, "a"));
  table.Add(NewJob(table, "a"));
  SetJobState(done, deja::v1::FAILED, kNow);
  Effects fx;
  fx.jobs["j1"] = done;
  ASSERT_TRUE(store.Commit(fx).ok());
  table.Committed(fx, NotHeld);
  auto stats = table.stored_stats().Report(deja::v1::StatsRequest(), table);
  ASSERT_TRUE(stats.ok());
  ASSERT_EQ(stats->apps_size(), 1);
  EXPECT_EQ(stats->apps(0).jobs(), 2);
  EXPECT_EQ(stats->apps(0).failed(), 1);
}

}  // namespace
}  // namespace deja
