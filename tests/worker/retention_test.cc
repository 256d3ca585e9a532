// WorkspaceRetention on its own (expiry records, leases, the two-step
// delete), and the lease/expiry checks of its two users: the Materializer
// and the peer service.
#include "worker/retention.h"

#include <sys/stat.h>

#include <filesystem>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/clock.h"
#include "common/manifest.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/worker/test_util.h"
#include "worker/materializer.h"
#include "worker/paths.h"
#include "worker/peer_client.h"
#include "worker/peer_service.h"
#include "worker/record_log.h"

namespace deja::worker {
namespace {

using ::deja::worker::testing::FakeManifests;
using ::deja::worker::testing::HasExpiryRecord;
using ::deja::worker::testing::MakeTempDir;
using ::deja::worker::testing::ReadFile;
using ::deja::worker::testing::RemoveTempDir;
using ::deja::worker::testing::WriteFile;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

class RetentionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    work_dir_ = MakeTempDir("retention_test");
    retention_ = std::make_unique<WorkspaceRetention>(work_dir_, &clock_);
    ASSERT_TRUE(retention_->Load().ok());
  }
  void TearDown() override {
    retention_.reset();
    RemoveTempDir(work_dir_);
  }

  std::string Workspace(const std::string& job_id) const {
    return paths::WorkspaceDir(work_dir_, job_id);
  }
  // A finished workspace with a few files; returns its manifest.
  deja::v1::Manifest MakeWorkspace(const std::string& job_id) {
    WriteFile(Workspace(job_id) + "/out/r.txt", "result of " + job_id + "\n");
    WriteFile(Workspace(job_id) + "/logs/stdout", "hello\n");
    auto manifest = BuildManifest(Workspace(job_id));
    EXPECT_TRUE(manifest.ok()) << manifest.status();
    return *manifest;
  }
  int64_t NowMs() { return ToMillis(clock_.Now()); }
  // TakeExpired + Dispose, as the worker's sweeper does; the job ids taken.
  std::vector<std::string> Sweep(const std::set<std::string>& busy = {}) {
    auto doomed = retention_->TakeExpired(busy);
    EXPECT_TRUE(retention_->Dispose(doomed).ok());
    std::vector<std::string> ids;
    for (const auto& d : doomed) ids.push_back(d.job_id);
    return ids;
  }
  bool Exists(const std::string& path) const { return std::filesystem::exists(path); }

  FakeClock clock_;
  std::string work_dir_;
  std::unique_ptr<WorkspaceRetention> retention_;
};

TEST_F(RetentionTest, KeepsAWorkspaceUntilItsExpiryThenDeletesAndReportsIt) {
  MakeWorkspace("j1");
  MakeWorkspace("no-record");
  ASSERT_TRUE(retention_->SetExpiry("j1", 1, NowMs() + 60'000).ok());
  auto on_disk = WorkspaceRetention::ReadRecords(work_dir_);
  ASSERT_TRUE(on_disk.ok()) << on_disk.status();
  ASSERT_EQ(on_disk->count("j1"), 1u);
  EXPECT_EQ(on_disk->at("j1").expires_at_ms, NowMs() + 60'000);
  EXPECT_EQ(on_disk->at("j1").attempt, 1u);

  EXPECT_THAT(Sweep(), IsEmpty());
  clock_.Advance(absl::Seconds(59));
  EXPECT_THAT(Sweep(), IsEmpty());
  EXPECT_TRUE(Exists(Workspace("j1")));

  clock_.Advance(absl::Seconds(1));  // expiry reached
  EXPECT_THAT(Sweep(), ElementsAre("j1"));
  EXPECT_FALSE(Exists(Workspace("j1")));
  EXPECT_TRUE(Exists(Workspace("no-record")));  // never acked: left alone
  EXPECT_TRUE(std::filesystem::is_empty(paths::TrashDir(work_dir_)));
  // The record stays until the scheduler was told.
  EXPECT_THAT(retention_->Unreported(), ElementsAre("j1"));
  EXPECT_TRUE(HasExpiryRecord(work_dir_, "j1"));
  EXPECT_THAT(Sweep(), IsEmpty());  // not taken twice
  retention_->Reported({"j1"});
  EXPECT_THAT(retention_->Unreported(), IsEmpty());
  EXPECT_FALSE(HasExpiryRecord(work_dir_, "j1"));
  EXPECT_FALSE(retention_->GetRecord("j1").has_value());

  clock_.Advance(absl::Hours(1000));
  EXPECT_THAT(Sweep(), IsEmpty());
  EXPECT_TRUE(Exists(Workspace("no-record")));
}

TEST_F(RetentionTest, RecordsSurviveAReloadAndAnUnreportedDeletionIsReportedAgain) {
  MakeWorkspace("j1");
  MakeWorkspace("j2");
  ASSERT_TRUE(retention_->SetExpiry("j1", 2, NowMs() + 1000).ok());
  ASSERT_TRUE(retention_->SetExpiry("j2", 1, NowMs() + 5000).ok());
  // Leftovers of a crash: a record half written, a tree half deleted.
  WriteFile(paths::MetaDir(work_dir_) + "/" + paths::kExpiryTempPrefix + "abc123", "12");
  WriteFile(paths::TrashDir(work_dir_) + "/17-1/out/x", "x");
  WriteFile(paths::ExpiryRecordPath(work_dir_, "garbage"), "not a number\n");

  retention_ = std::make_unique<WorkspaceRetention>(work_dir_, &clock_);
  std::vector<std::string> skipped;
  ASSERT_TRUE(retention_->Load(&skipped).ok());
  EXPECT_THAT(skipped, ElementsAre(paths::ExpiryRecordPath(work_dir_, "garbage")));
  EXPECT_FALSE(Exists(paths::MetaDir(work_dir_) + "/" + paths::kExpiryTempPrefix + "abc123"));
  ASSERT_TRUE(retention_->EmptyTrash().ok());
  EXPECT_TRUE(std::filesystem::is_empty(paths::TrashDir(work_dir_)));
  ASSERT_TRUE(retention_->GetRecord("j1").has_value());
  EXPECT_EQ(retention_->GetRecord("j1")->attempt, 2u);

  clock_.Advance(absl::Seconds(2));
  EXPECT_THAT(Sweep(), ElementsAre("j1"));
  EXPECT_TRUE(Exists(Workspace("j2")));

  // Deleted but never reported (the stream was down, then a restart): the
  // next sweep after the reload reports it again.
  retention_ = std::make_unique<WorkspaceRetention>(work_dir_, &clock_);
  ASSERT_TRUE(retention_->Load().ok());
  EXPECT_THAT(Sweep(), ElementsAre("j1"));
  EXPECT_THAT(retention_->Unreported(), ElementsAre("j1"));
}

TEST_F(RetentionTest, ABatchOfUnsyncedRecordsIsDurableAfterOneSync) {
  for (const char* id : {"j1", "j2", "j3"}) {
    ASSERT_TRUE(retention_->SetExpiry(id, 1, NowMs() + 1000, /*sync=*/false).ok());
  }
  ASSERT_TRUE(retention_->Sync().ok());
  retention_ = std::make_unique<WorkspaceRetention>(work_dir_, &clock_);
  ASSERT_TRUE(retention_->Load().ok());
  for (const char* id : {"j1", "j2", "j3"}) {
    ASSERT_TRUE(retention_->GetRecord(id).has_value()) << id;
    EXPECT_EQ(retention_->GetRecord(id)->expires_at_ms, NowMs() + 1000);
  }
  // One log file, no file per job.
  EXPECT_FALSE(Exists(paths::ExpiryDir(work_dir_)));
}

TEST_F(RetentionTest, OldLayoutRecordsAreImportedOnce) {
  retention_.reset();
  WriteFile(paths::ExpiryRecordPath(work_dir_, "old"), "12345\n3\n");
  retention_ = std::make_unique<WorkspaceRetention>(work_dir_, &clock_);
  ASSERT_TRUE(retention_->Load().ok());
  ASSERT_TRUE(retention_->GetRecord("old").has_value());
  EXPECT_EQ(retention_->GetRecord("old")->expires_at_ms, 12345);
  EXPECT_EQ(retention_->GetRecord("old")->attempt, 3u);
  EXPECT_FALSE(Exists(paths::ExpiryRecordPath(work_dir_, "old")));
  retention_ = std::make_unique<WorkspaceRetention>(work_dir_, &clock_);
  ASSERT_TRUE(retention_->Load().ok());
  EXPECT_TRUE(retention_->GetRecord("old").has_value());
}

TEST_F(RetentionTest, ATornTailOfTheLogIsCutAndLaterRecordsStillCount) {
  ASSERT_TRUE(retention_->SetExpiry("j1", 1, NowMs() + 1000).ok());
  retention_.reset();
  // A crash in the middle of an append.
  const std::string log = paths::ExpiryLogPath(work_dir_);
  WriteFile(log, ReadFile(log) + std::string("\x30\x00\x00\x00partial", 11));
  retention_ = std::make_unique<WorkspaceRetention>(work_dir_, &clock_);
  ASSERT_TRUE(retention_->Load().ok());
  EXPECT_TRUE(retention_->GetRecord("j1").has_value());
  ASSERT_TRUE(retention_->SetExpiry("j2", 1, NowMs() + 1000).ok());
  EXPECT_TRUE(HasExpiryRecord(work_dir_, "j1"));
  EXPECT_TRUE(HasExpiryRecord(work_dir_, "j2"));
}

// Found writing the worker_logs fuzzer's properties (tests/fuzz): a record naming "../x"
// was replayed, and the sweeper would have renamed jobs/../x into the trash.
TEST_F(RetentionTest, ALogRecordNamingAnInvalidJobIdIsSkipped) {
  ASSERT_TRUE(retention_->SetExpiry("j1", 1, NowMs() + 1000).ok());
  retention_.reset();
  {
    // One "set" operation, as the log writes it: [u32 count] [u8 'S']
    // [u32 id length] [id] [i64 expires_at_ms] [u32 attempt].
    auto set = [](const std::string& job_id) {
      std::string payload;
      auto put = [&payload](const auto& v) {
        payload.append(reinterpret_cast<const char*>(&v), sizeof(v));
      };
      put(uint32_t{1});
      put(uint8_t{'S'});
      put(static_cast<uint32_t>(job_id.size()));
      payload += job_id;
      put(int64_t{1});
      put(uint32_t{1});
      return payload;
    };
    std::vector<RecordLog::Record> records;
    auto log = RecordLog::Open(paths::ExpiryLogPath(work_dir_), &records);
    ASSERT_TRUE(log.ok()) << log.status();
    for (const char* bad : {"../x", "", "a/b", ".."}) {
      ASSERT_TRUE((*log)->Append(set(bad), /*sync=*/true).ok());
    }
    ASSERT_TRUE((*log)->Append(set("j2"), /*sync=*/true).ok());
  }
  auto read = WorkspaceRetention::ReadRecords(work_dir_);
  ASSERT_TRUE(read.ok()) << read.status();
  std::vector<std::string> ids;
  for (const auto& [job_id, record] : *read) ids.push_back(job_id);
  EXPECT_THAT(ids, ElementsAre("j1", "j2"));
  retention_ = std::make_unique<WorkspaceRetention>(work_dir_, &clock_);
  ASSERT_TRUE(retention_->Load().ok());
  EXPECT_TRUE(retention_->GetRecord("j1").has_value());
  EXPECT_TRUE(retention_->GetRecord("j2").has_value());
  EXPECT_FALSE(retention_->GetRecord("../x").has_value());
}

TEST_F(RetentionTest, TheLogIsCompactedAsItGrows) {
  for (int i = 0; i < 3000; ++i) {
    ASSERT_TRUE(retention_->SetExpiry("j1", static_cast<uint32_t>(i), NowMs() + i, false).ok());
  }
  ASSERT_TRUE(retention_->Sync().ok());
  // Each append is ~60 bytes; 3000 of them would be ~180 KB.
  EXPECT_LT(std::filesystem::file_size(paths::ExpiryLogPath(work_dir_)), 80'000u);
  retention_ = std::make_unique<WorkspaceRetention>(work_dir_, &clock_);
  ASSERT_TRUE(retention_->Load().ok());
  ASSERT_TRUE(retention_->GetRecord("j1").has_value());
  EXPECT_EQ(retention_->GetRecord("j1")->attempt, 2999u);
}

TEST_F(RetentionTest, ANotKeptWorkspaceGoesAtOnceAndIsNotReported) {
  MakeWorkspace("j1");
  ASSERT_TRUE(retention_->SetExpiry("j1", 1, 0).ok());
  EXPECT_THAT(Sweep(), ElementsAre("j1"));
  EXPECT_FALSE(Exists(Workspace("j1")));
  EXPECT_THAT(retention_->Unreported(), IsEmpty());
  EXPECT_FALSE(HasExpiryRecord(work_dir_, "j1"));
}

TEST_F(RetentionTest, ABusyJobIsSkipped) {
  MakeWorkspace("j1");
  ASSERT_TRUE(retention_->SetExpiry("j1", 1, 0).ok());
  EXPECT_THAT(Sweep({"j1"}), IsEmpty());
  EXPECT_TRUE(Exists(Workspace("j1")));
  EXPECT_THAT(Sweep(), ElementsAre("j1"));
}

TEST_F(RetentionTest, ALeaseKeepsAnExpiredWorkspaceUntilReleased) {
  MakeWorkspace("j1");
  ASSERT_TRUE(retention_->SetExpiry("j1", 1, NowMs() + 1000).ok());
  auto lease = retention_->Acquire("j1");
  ASSERT_TRUE(lease.ok()) << lease.status();
  auto second = retention_->Acquire("j1");
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(retention_->LeaseCount("j1"), 2);

  clock_.Advance(absl::Seconds(5));
  std::vector<std::string> leased;
  auto doomed = retention_->TakeExpired({}, nullptr, &leased);
  EXPECT_THAT(doomed, IsEmpty());
  EXPECT_THAT(leased, ElementsAre("j1"));
  EXPECT_TRUE(Exists(Workspace("j1")));
  // Expired: no new copy may start, even while the others hold it.
  auto late = retention_->Acquire("j1");
  EXPECT_EQ(late.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(late.status().message(), "workspace of j1 expired");

  { WorkspaceRetention::Lease moved = *std::move(second); }  // released here
  EXPECT_EQ(retention_->LeaseCount("j1"), 1);
  EXPECT_THAT(Sweep(), IsEmpty());
  *lease = WorkspaceRetention::Lease();  // released by assignment
  EXPECT_EQ(retention_->LeaseCount("j1"), 0);
  EXPECT_THAT(Sweep(), ElementsAre("j1"));
  EXPECT_FALSE(Exists(Workspace("j1")));
}

TEST_F(RetentionTest, ARemovedWriteBitDoesNotStopTheDelete) {
  MakeWorkspace("j1");
  WriteFile(Workspace("j1") + "/ro/f", "x", 0444);
  chmod((Workspace("j1") + "/ro").c_str(), 0555);
  chmod(Workspace("j1").c_str(), 0555);
  ASSERT_TRUE(retention_->SetExpiry("j1", 1, 0).ok());
  EXPECT_THAT(Sweep(), ElementsAre("j1"));
  EXPECT_FALSE(Exists(Workspace("j1")));
  EXPECT_TRUE(std::filesystem::is_empty(paths::TrashDir(work_dir_)));
}

TEST_F(RetentionTest, TheMaterializerLeasesItsSourceAndRefusesAnExpiredOne) {
  const deja::v1::Manifest manifest = MakeWorkspace("src");
  ASSERT_TRUE(retention_->SetExpiry("src", 1, NowMs() + 1000).ok());
  Materializer materializer(work_dir_, retention_.get());
  auto copied = materializer.Materialize("src", manifest, "dst");
  ASSERT_TRUE(copied.ok()) << copied.status();
  EXPECT_EQ(retention_->LeaseCount("src"), 0);  // released when done

  clock_.Advance(absl::Seconds(1));
  auto refused = materializer.Materialize("src", manifest, "dst2");
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kDataLoss);  // verification_failed
  EXPECT_EQ(refused.status().message(), "workspace of src expired");
  EXPECT_FALSE(Exists(Workspace("dst2")));
  EXPECT_TRUE(Exists(Workspace("src")));
  EXPECT_EQ(retention_->LeaseCount("src"), 0);
}

TEST_F(RetentionTest, ThePeerServiceRefusesAnExpiredWorkspace) {
  const deja::v1::Manifest manifest = MakeWorkspace("src");
  ASSERT_TRUE(retention_->SetExpiry("src", 1, NowMs() + 1000).ok());
  FakeManifests manifests;
  const deja::v1::ManifestRef ref = manifests.Put(manifest);
  auto server = PeerServer::Start("127.0.0.1:0", work_dir_, manifests.loader(), retention_.get());
  ASSERT_TRUE(server.ok()) << server.status();
  const PeerSource source{"w-src", absl::StrCat("127.0.0.1:", (*server)->port()), "src", {}};
  const std::string dest_dir = MakeTempDir("retention_test_dest");
  WorkspacePuller puller(dest_dir, absl::Seconds(2));
  auto pulled = puller.Pull(source, ref, manifest, "dst");
  ASSERT_TRUE(pulled.ok()) << pulled.status();
  EXPECT_EQ(retention_->LeaseCount("src"), 0);

  clock_.Advance(absl::Seconds(1));
  pulled = puller.Pull(source, ref, manifest, "dst2");
  EXPECT_EQ(pulled.status().code(), absl::StatusCode::kDataLoss) << pulled.status();
  EXPECT_THAT(std::string(pulled.status().message()), HasSubstr("workspace of src expired"));
  EXPECT_FALSE(Exists(paths::WorkspaceDir(dest_dir, "dst2")));
  (*server)->Shutdown();
  RemoveTempDir(dest_dir);
}

}  // namespace
}  // namespace deja::worker
