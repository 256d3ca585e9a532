// The worker id: made once, stored in meta/worker_id, kept across restarts.
#include "worker/worker_id.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/worker/test_util.h"
#include "worker/paths.h"

namespace deja::worker {
namespace {

using ::deja::worker::testing::MakeTempDir;
using ::deja::worker::testing::ReadFile;
using ::deja::worker::testing::RemoveTempDir;
using ::deja::worker::testing::WriteFile;
using ::testing::MatchesRegex;

class WorkerIdTest : public ::testing::Test {
 protected:
  void SetUp() override { work_dir_ = MakeTempDir("worker_id_test"); }
  void TearDown() override { RemoveTempDir(work_dir_); }
  std::string work_dir_;
};

TEST_F(WorkerIdTest, ANewIdIsStoredAndKept) {
  auto id = LoadOrCreateWorkerId(work_dir_);
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_THAT(*id, MatchesRegex("w-.+-[0-9a-f]{6}"));
  EXPECT_EQ(*id, "w-" + Hostname() + id->substr(id->size() - 7));
  EXPECT_EQ(ReadFile(paths::WorkerIdPath(work_dir_)), *id + "\n");
  auto again = LoadOrCreateWorkerId(work_dir_);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, *id);
}

TEST_F(WorkerIdTest, AStoredIdIsReadWithoutSurroundingWhitespace) {
  WriteFile(paths::WorkerIdPath(work_dir_), "  w-kept \nignored\n");
  auto id = LoadOrCreateWorkerId(work_dir_);
  ASSERT_TRUE(id.ok());
  EXPECT_EQ(*id, "w-kept");
}

TEST_F(WorkerIdTest, AnEmptyStoredIdIsReplaced) {
  WriteFile(paths::WorkerIdPath(work_dir_), "\n");
  auto id = LoadOrCreateWorkerId(work_dir_);
  ASSERT_TRUE(id.ok());
  EXPECT_THAT(*id, MatchesRegex("w-.+-[0-9a-f]{6}"));
}

TEST(ValidateWorkerIdTest, RefusesSlashesAndWhitespace) {
  EXPECT_TRUE(ValidateWorkerId("w-host-1").ok());
  EXPECT_EQ(ValidateWorkerId("a/b").message(), "\"a/b\": must not contain '/' or whitespace");
  EXPECT_FALSE(ValidateWorkerId("a b").ok());
  EXPECT_FALSE(ValidateWorkerId("a\t").ok());
}

}  // namespace
}  // namespace deja::worker
