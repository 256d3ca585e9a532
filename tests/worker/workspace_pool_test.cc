#include "worker/workspace_pool.h"

#include <sys/stat.h>

#include <filesystem>
#include <string>

#include "gtest/gtest.h"
#include "tests/worker/test_util.h"
#include "worker/paths.h"

namespace deja::worker {
namespace {

using testing::MakeTempDir;
using testing::RemoveTempDir;
using testing::WriteFile;

class WorkspacePoolTest : public ::testing::Test {
 protected:
  void SetUp() override {
    work_dir_ = MakeTempDir("workspace_pool_test");
    ASSERT_TRUE(paths::MakeDirs(paths::JobsDir(work_dir_)).ok());
  }
  void TearDown() override { RemoveTempDir(work_dir_); }

  // An empty workspace with empty logs and nothing else.
  void ExpectEmptyWorkspace(const std::string& ws) {
    size_t entries = 0;
    for (const auto& e : std::filesystem::recursive_directory_iterator(ws)) {
      (void)e;
      ++entries;
    }
    EXPECT_EQ(entries, 3u) << ws;  // logs/, logs/stdout, logs/stderr
    EXPECT_EQ(std::filesystem::file_size(ws + "/logs/stdout"), 0u);
    EXPECT_EQ(std::filesystem::file_size(ws + "/logs/stderr"), 0u);
  }

  std::string work_dir_;
};

TEST_F(WorkspacePoolTest, MakesWorkspacesFromSparesThenDirectly) {
  WorkspacePool pool(work_dir_, 2);
  ASSERT_TRUE(pool.Init().ok());
  pool.Refill();
  EXPECT_EQ(pool.ready(), 2u);
  for (const char* id : {"a", "b", "c"}) {  // the third has no spare left
    const std::string ws = paths::WorkspaceDir(work_dir_, id);
    ASSERT_TRUE(pool.Make(ws).ok()) << id;
    ExpectEmptyWorkspace(ws);
  }
  EXPECT_EQ(pool.ready(), 0u);
  EXPECT_TRUE(std::filesystem::is_empty(paths::SpareDir(work_dir_)));
  pool.Refill();
  EXPECT_EQ(pool.ready(), 2u);
}

TEST_F(WorkspacePoolTest, ReplacesAnEarlierAttemptsWorkspace) {
  const std::string ws = paths::WorkspaceDir(work_dir_, "a");
  WriteFile(ws + "/out/old.txt", "from attempt 1");
  WriteFile(ws + "/logs/stdout", "attempt 1 said this");
  WorkspacePool pool(work_dir_, 1);
  ASSERT_TRUE(pool.Init().ok());
  pool.Refill();
  ASSERT_TRUE(pool.Make(ws).ok());
  ExpectEmptyWorkspace(ws);
}

TEST_F(WorkspacePoolTest, InitRemovesSparesOfAnEarlierRun) {
  {
    WorkspacePool pool(work_dir_, 3);
    ASSERT_TRUE(pool.Init().ok());
    pool.Refill();
  }
  WriteFile(paths::SpareDir(work_dir_) + "/7/junk", "x");
  WorkspacePool pool(work_dir_, 1);
  ASSERT_TRUE(pool.Init().ok());
  EXPECT_TRUE(std::filesystem::is_empty(paths::SpareDir(work_dir_)));
  EXPECT_EQ(pool.ready(), 0u);
  // Without Refill (or before Init) Make still works.
  ASSERT_TRUE(pool.Make(paths::WorkspaceDir(work_dir_, "a")).ok());
  ExpectEmptyWorkspace(paths::WorkspaceDir(work_dir_, "a"));
}

}  // namespace
}  // namespace deja::worker
