#include "scheduler/store/rocks_store.h"

#include <unistd.h>

#include <filesystem>

#include <rocksdb/db.h>

#include "gtest/gtest.h"
#include "scheduler/store/schema.h"

namespace deja {
namespace {

namespace fs = std::filesystem;

class RocksStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("deja-store-" + std::to_string(getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST_F(RocksStoreTest, CommittedRecordsSurviveReopen) {
  {
    auto store = RocksStore::Open(dir_.string());
    ASSERT_TRUE(store.ok()) << store.status();
    Effects fx;
    for (int i : {2, 10, 1}) {
      deja::v1::Job job;
      job.set_job_id("j" + std::to_string(i));
      job.set_state(deja::v1::QUEUED);
      fx.jobs[job.job_id()] = job;
    }
    deja::v1::MemoEntry entry;
    entry.set_project("p");
    entry.set_job_hash("h");
    fx.memo_puts[MemoKey("p", "h")] = entry;
    deja::v1::ProjectSettings settings;
    settings.set_project("p");
    settings.set_intermediate_files_hours(72);
    fx.projects["p"] = settings;
    ASSERT_TRUE((*store)->Commit(fx).ok());
    Effects del;
    del.memo_deletes.insert(MemoKey("p", "h"));
    entry.set_job_hash("h2");
    del.memo_puts[MemoKey("p", "h2")] = entry;
    // Not synced: still there after the store closes (a process crash
    // loses nothing; only a machine crash before the next synced commit does).
    ASSERT_TRUE((*store)->Commit(del, /*durable=*/false).ok());
  }
  auto store = RocksStore::Open(dir_.string());
  ASSERT_TRUE(store.ok());
  std::vector<deja::v1::Job> jobs;
  std::vector<deja::v1::MemoEntry> memo;
  std::vector<deja::v1::ProjectSettings> projects;
  std::vector<deja::v1::Pipeline> pipelines;
  ASSERT_TRUE((*store)->Load(&jobs, &memo, &projects, &pipelines).ok());
  ASSERT_EQ(projects.size(), 1u);
  EXPECT_EQ(projects[0].intermediate_files_hours(), 72);
  ASSERT_EQ(jobs.size(), 3u);
  EXPECT_EQ(jobs[0].job_id(), "j1");  // submission order, not string order
  EXPECT_EQ(jobs[1].job_id(), "j2");
  EXPECT_EQ(jobs[2].job_id(), "j10");
  ASSERT_EQ(memo.size(), 1u);
  EXPECT_EQ(memo[0].job_hash(), "h2");
}

TEST_F(RocksStoreTest, RefusesAnotherSchemaVersion) {
  ASSERT_TRUE(RocksStore::Open(dir_.string()).ok());
  {
    // Rewrite the marker as a future version of Deja would.
    rocksdb::DBOptions options;
    std::vector<rocksdb::ColumnFamilyDescriptor> families;
    for (const auto& name : schema::ColumnFamilyNames()) families.emplace_back(name, rocksdb::ColumnFamilyOptions());
    std::vector<rocksdb::ColumnFamilyHandle*> handles;
    rocksdb::DB* db = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(options, dir_.string(), families, &handles, &db).ok());
    ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), handles[schema::kSettings],
                        schema::kSchemaVersionKey, "99").ok());
    for (auto* h : handles) db->DestroyColumnFamilyHandle(h);
    delete db;
  }
  auto store = RocksStore::Open(dir_.string());
  EXPECT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(store.status().message().find("schema version 99"), absl::string_view::npos)
      << store.status();
}

}  // namespace
}  // namespace deja
