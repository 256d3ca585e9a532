// JobEvents: the scheduler's job log lines and job metrics, from the
// versions of jobs as they are committed.
#include "scheduler/service/job_events.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace deja {
namespace {

using deja::v1::Job;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

const absl::Time kStart = absl::FromUnixSeconds(1'800'000'000);

Job Version(const std::string& id, deja::v1::JobState state, uint32_t attempt = 1,
            const std::string& worker = "") {
  Job job;
  job.set_job_id(id);
  job.mutable_spec()->set_project("ml");
  job.mutable_spec()->mutable_app()->set_name("train");
  job.set_state(state);
  job.set_attempt(attempt);
  job.set_worker_id(worker);
  job.set_created_at_ms(absl::ToUnixMillis(kStart + absl::Seconds(1)));
  return job;
}

std::vector<std::string> Names(const std::vector<JobEvent>& events) {
  std::vector<std::string> names;
  for (const JobEvent& e : events) names.push_back(e.event);
  return names;
}

TEST(JobEventsTest, ALifeIsOneEventPerStep) {
  Metrics metrics;
  JobEvents events(&metrics, kStart);
  const absl::Time t = kStart + absl::Seconds(1);
  EXPECT_THAT(Names(events.Observe(Version("j1", deja::v1::QUEUED), t)), ElementsAre("submitted"));
  // The same version again (a pin, a heartbeat): nothing.
  EXPECT_TRUE(events.Observe(Version("j1", deja::v1::QUEUED), t).empty());
  EXPECT_THAT(
      Names(events.Observe(Version("j1", deja::v1::ASSIGNED, 1, "w1"), t + absl::Seconds(2))),
      ElementsAre("assigned"));
  Job running = Version("j1", deja::v1::RUNNING, 1, "w1");
  running.set_started_at_ms(absl::ToUnixMillis(t + absl::Seconds(3)));
  EXPECT_THAT(Names(events.Observe(running, t)), ElementsAre("started"));
  // The worker was lost: back in the queue, attempt 2, then a failure.
  Job requeued = Version("j1", deja::v1::QUEUED, 2);
  requeued.set_message("worker w1 lost");
  auto back = events.Observe(requeued, t);
  ASSERT_THAT(Names(back), ElementsAre("requeued"));
  EXPECT_THAT(back[0].fields,
              ::testing::Contains(std::pair<std::string, std::string>("why", "worker w1 lost")));
  Job failed = Version("j1", deja::v1::FAILED, 2, "w2");
  failed.set_exit_code(-9);
  failed.set_started_at_ms(running.started_at_ms());
  auto end = events.Observe(failed, t);
  ASSERT_THAT(Names(end), ElementsAre("finished"));
  EXPECT_THAT(end[0].fields, ::testing::Contains(std::pair<std::string, std::string>(
                                 "exit", "killed by signal 9 (SIGKILL)")));
  EXPECT_EQ(events.following(), 0u);

  const std::string text = metrics.Render();
  EXPECT_THAT(text, HasSubstr("deja_jobs_submitted_total{project=\"ml\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("deja_jobs_finished_total{project=\"ml\",outcome=\"failed\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("deja_memo_misses_total{project=\"ml\",app=\"train\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("deja_dispatch_latency_seconds_sum 2\n"));
  EXPECT_THAT(text, HasSubstr("deja_submit_to_start_seconds_sum 3\n"));
}

TEST(JobEventsTest, AReuseIsAHitThatSavedTime) {
  Metrics metrics;
  JobEvents events(&metrics, kStart);
  Job reused = Version("j2", deja::v1::SUCCEEDED, 1, "w1");
  reused.set_reused_from("j1");
  reused.set_time_saved_ms(41 * 60 * 1000 + 12'000);
  // Submitted and served in one round: both lines.
  auto seen = events.Observe(reused, kStart + absl::Seconds(2));
  ASSERT_THAT(Names(seen), ElementsAre("submitted", "reused"));
  EXPECT_THAT(seen[1].fields,
              ::testing::Contains(std::pair<std::string, std::string>("reused_from", "j1")));
  const std::string text = metrics.Render();
  EXPECT_THAT(text, HasSubstr("deja_memo_hits_total{project=\"ml\",app=\"train\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("deja_time_saved_seconds_total{project=\"ml\"} 2472\n"));
  EXPECT_THAT(text, HasSubstr("deja_jobs_finished_total{project=\"ml\",outcome=\"reused\"} 1\n"));
}

TEST(JobEventsTest, AJobFromBeforeARestartIsNotSubmittedAgain) {
  JobEvents events(nullptr, kStart + absl::Hours(1));
  Job old = Version("j7", deja::v1::RUNNING, 1, "w1");
  EXPECT_TRUE(events.Observe(old, kStart + absl::Hours(1)).empty());
  EXPECT_EQ(events.following(), 1u);
  EXPECT_THAT(
      Names(events.Observe(Version("j7", deja::v1::SUCCEEDED, 1, "w1"), kStart + absl::Hours(1))),
      ElementsAre("finished"));
}

}  // namespace
}  // namespace deja
