// Records that stay small (issue 12, finding 3): whatever a job leaves in
// its workspace or a user submits, every job, list and watch response fits
// the 4 MiB a gRPC client receives by default. The clients here keep that
// default, as users' do.
#include <sys/stat.h>

#include <algorithm>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/cluster.h"

namespace deja::testing {
namespace {

using deja::v1::Job;
using deja::v1::JobSpec;
using ::testing::HasSubstr;

JobSpec Shell(const std::string& script) {
  JobSpec spec;
  spec.set_project("records");
  spec.mutable_app()->set_name("sh");
  for (const char* w : {"sh", "-c"}) spec.mutable_app()->add_command(w);
  spec.mutable_app()->add_command(script);
  return spec;
}

// 100,000 empty files under d/: the manifest takes about 5.6 MB, and took
// that much in the job record until schema 3 (GetJob, WatchJob and ListJobs
// then failed with "Received message larger than max").
constexpr int kFiles = 100'000;
constexpr char kManyFiles[] = "mkdir d && cd d && seq -f 'file-%06g' 1 100000 | xargs touch";

TEST(RecordsTest, AJobWithAHundredThousandFilesCanBeWatchedListedPagedAndReused) {
  Cluster c;
  c.StartWorker("w1");
  ASSERT_TRUE(c.WaitForWorkers(1));
  auto submitted = c.client().Submit(Shell(kManyFiles));
  ASSERT_TRUE(submitted.ok()) << submitted.status();
  const std::string id = submitted->job().job_id();
  auto job = c.client().WaitForJob(id, absl::Seconds(90));  // a watch
  ASSERT_TRUE(job.ok()) << job.status();
  ASSERT_EQ(job->state(), deja::v1::SUCCEEDED) << job->message();
  EXPECT_EQ(job->manifest().files(), kFiles + 2u);  // + logs/stdout, logs/stderr
  EXPECT_LT(job->ByteSizeLong(), 4096u);
  ASSERT_TRUE(c.client().GetJob(id).ok());
  auto listed = c.client().ListJobs("", deja::v1::JOB_STATE_UNSPECIFIED, 0);
  ASSERT_TRUE(listed.ok()) << listed.status();
  EXPECT_EQ(listed->size(), 1u);

  // Every file, a page at a time, in path order.
  std::vector<std::string> paths;
  std::string token;
  int pages = 0;
  do {
    auto page = c.client().ListJobFiles(id, token, 5000);
    ASSERT_TRUE(page.ok()) << page.status();
    EXPECT_LE(page->files_size(), 5000);
    for (const auto& file : page->files()) paths.push_back(file.path());
    token = page->next_page_token();
    ++pages;
  } while (!token.empty());
  EXPECT_EQ(pages, 21);
  ASSERT_EQ(paths.size(), kFiles + 2u);
  EXPECT_EQ(paths.front(), "d/file-000001");
  EXPECT_EQ(paths[kFiles - 1], "d/file-100000");
  EXPECT_TRUE(std::is_sorted(paths.begin(), paths.end()));
  EXPECT_EQ(c.client().ListJobFiles(id, "x", 0).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(c.client().ListJobFiles(id, "", 10001).status().code(),
            absl::StatusCode::kInvalidArgument);

  // The CLI pages through them too.
  CommandResult files = RunCommand(DEJA_CLI_BIN, {"status", id, "--files"}, c.CliEnv());
  ASSERT_EQ(files.exit_code, 0) << files.err;
  std::vector<std::string> lines = absl::StrSplit(files.out, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), kFiles + 3u);
  EXPECT_EQ(lines[0], absl::StrCat(id, ": 100002 files, 0 B"));
  EXPECT_EQ(lines[1], "0644             0  d/file-000001");
  CommandResult status = RunCommand(DEJA_CLI_BIN, {"status", id}, c.CliEnv());
  ASSERT_EQ(status.exit_code, 0) << status.err;
  EXPECT_THAT(status.out, HasSubstr("100002 files, 0 B"));

  // A reuse copies the workspace by the manifest it downloads.
  auto again = c.client().Submit(Shell(kManyFiles));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_TRUE(again->reused());
  auto copy = c.client().WaitForJob(again->job().job_id(), absl::Seconds(90));
  ASSERT_TRUE(copy.ok()) << copy.status();
  ASSERT_EQ(copy->state(), deja::v1::SUCCEEDED) << copy->message();
  EXPECT_EQ(copy->manifest().digest(), job->manifest().digest());
  struct stat st;
  EXPECT_EQ(stat((c.Workspace("w1", copy->job_id()) + "/d/file-100000").c_str(), &st), 0);
}

// 64 KiB per param value, 15 of them: each job is nearly 1 MiB, and six are
// more than one message can hold.
JobSpec LargeSpec(int i, int values) {
  JobSpec spec = Shell(absl::StrCat("echo ", i));
  for (int v = 0; v < values; ++v) {
    (*spec.mutable_params())[absl::StrCat("p", v)] = std::string(64 * 1024 - 16, 'a' + v % 26);
  }
  return spec;
}

TEST(RecordsTest, ListsOfLargeJobsComeInPagesAndASpecOverOneMebibyteIsRefused) {
  Cluster c;  // no worker: the jobs stay queued
  std::vector<std::string> ids;
  for (int i = 0; i < 6; ++i) {
    auto r = c.client().Submit(LargeSpec(i, 15));
    ASSERT_TRUE(r.ok()) << r.status();
    ids.push_back(r->job().job_id());
  }
  auto listed = c.client().ListJobs("", deja::v1::JOB_STATE_UNSPECIFIED, 0);
  ASSERT_TRUE(listed.ok()) << listed.status();
  std::vector<std::string> got;
  for (const Job& job : *listed) got.push_back(job.job_id());
  EXPECT_EQ(got, ids) << "all of them, oldest first";
  auto newest = c.client().ListJobs("", deja::v1::JOB_STATE_UNSPECIFIED, 4);
  ASSERT_TRUE(newest.ok()) << newest.status();
  ASSERT_EQ(newest->size(), 4u);
  EXPECT_EQ(newest->front().job_id(), ids[2]);

  auto too_large = c.client().Submit(LargeSpec(9, 17));
  EXPECT_EQ(too_large.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(too_large.status().message()), HasSubstr("spec: too large"));
}

}  // namespace
}  // namespace deja::testing
