// ReadJobLog: what `deja logs` gets from a worker.
#include "worker/job_log.h"

#include <unistd.h>

#include <string>

#include "gtest/gtest.h"
#include "tests/worker/test_util.h"
#include "worker/paths.h"

namespace deja::worker {
namespace {

using ::deja::worker::testing::MakeTempDir;
using ::deja::worker::testing::RemoveTempDir;
using ::deja::worker::testing::WriteFile;

class JobLogTest : public ::testing::Test {
 protected:
  void SetUp() override { work_dir_ = MakeTempDir("job_log_test"); }
  void TearDown() override { RemoveTempDir(work_dir_); }

  deja::v1::LogData Read(const std::string& job_id, deja::v1::LogStream stream, uint64_t offset = 0,
                         uint32_t limit = 0) {
    deja::v1::LogRequest request;
    request.set_request_id(42);
    request.set_job_id(job_id);
    request.set_stream(stream);
    request.set_offset(offset);
    request.set_limit(limit);
    return ReadJobLog(work_dir_, "w-a", request);
  }

  std::string work_dir_;
};

TEST_F(JobLogTest, ReadsAChunkOfEitherStream) {
  WriteFile(paths::StdoutPath(work_dir_, "job-1"), "hello world\n");
  WriteFile(paths::StderrPath(work_dir_, "job-1"), "oops\n");
  deja::v1::LogData data = Read("job-1", deja::v1::LOG_STDOUT);
  EXPECT_EQ(data.request_id(), 42u);
  EXPECT_EQ(data.error(), "");
  EXPECT_EQ(data.data(), "hello world\n");
  EXPECT_TRUE(data.eof());

  data = Read("job-1", deja::v1::LOG_STDOUT, 6, 3);
  EXPECT_EQ(data.data(), "wor");
  EXPECT_FALSE(data.eof());
  data = Read("job-1", deja::v1::LOG_STDOUT, 100);
  EXPECT_EQ(data.data(), "");
  EXPECT_TRUE(data.eof());
  EXPECT_EQ(Read("job-1", deja::v1::LOG_STDERR).data(), "oops\n");
}

TEST_F(JobLogTest, AMissingLogABadIdOrASymlinkIsNoLogs) {
  EXPECT_EQ(Read("job-404", deja::v1::LOG_STDOUT).error(), "no logs for job job-404 on worker w-a");
  EXPECT_EQ(Read("../x", deja::v1::LOG_STDOUT).error(), "no logs for job ../x on worker w-a");
  WriteFile(work_dir_ + "/secret", "secret\n");
  WriteFile(paths::StderrPath(work_dir_, "job-1"), "");
  ASSERT_EQ(symlink((work_dir_ + "/secret").c_str(), paths::StdoutPath(work_dir_, "job-1").c_str()),
            0);
  EXPECT_EQ(Read("job-1", deja::v1::LOG_STDOUT).error(), "no logs for job job-1 on worker w-a");
}

}  // namespace
}  // namespace deja::worker
