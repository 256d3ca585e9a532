// WorkspaceSweeper against a fake host: acks become expiry records, "not
// kept" workspaces go at once unless the host says another attempt holds
// them, expired ones go on a sweep and are reported, and a report that
// cannot be sent waits for the next Register.
#include "worker/workspace_sweeper.h"

#include <atomic>
#include <filesystem>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/fakes/poll_until.h"
#include "tests/worker/test_util.h"
#include "worker/paths.h"
#include "worker/retention.h"

namespace deja::worker {
namespace {

using ::deja::testing::PollUntil;
using ::deja::worker::testing::HasExpiryRecord;
using ::deja::worker::testing::MakeTempDir;
using ::deja::worker::testing::RemoveTempDir;
using ::deja::worker::testing::WriteFile;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

class FakeHost : public SweeperHost {
 public:
  explicit FakeHost(WorkspaceRetention* retention) : retention_(retention) {}

  bool ApplyAck(const deja::v1::ResultAck& ack, std::string* left_alone) override {
    absl::MutexLock lock(&mu_);
    if (held_.count(ack.job_id()) == 0 || ack.expires_at_ms() > 0) return true;
    *left_alone = "held: " + ack.job_id();
    return false;
  }
  std::vector<WorkspaceRetention::Doomed> TakeExpired(const std::string* only,
                                                      std::vector<std::string>* skipped_leased,
                                                      std::vector<std::string>* errors) override {
    absl::MutexLock lock(&mu_);
    return retention_->TakeExpired(held_, only, skipped_leased, errors);
  }
  std::vector<WorkspaceRetention::Doomed> TakeOldest(std::vector<std::string>* errors) override {
    absl::MutexLock lock(&mu_);
    return retention_->TakeOldest(held_, errors);
  }
  void SetDisk(const deja::v1::DiskStatus& disk) override {
    absl::MutexLock lock(&mu_);
    disks_.push_back(disk);
  }
  void Acknowledged(const deja::v1::ResultAck& /*ack*/) override {}
  bool Send(const deja::v1::WorkerMessage& message) override {
    absl::MutexLock lock(&mu_);
    if (!connected_) return false;
    std::vector<std::string> ids(message.expired().job_ids().begin(),
                                 message.expired().job_ids().end());
    reports_.push_back(ids);
    return true;
  }

  void Hold(const std::string& job_id) {
    absl::MutexLock lock(&mu_);
    held_.insert(job_id);
  }
  void SetConnected(bool connected) {
    absl::MutexLock lock(&mu_);
    connected_ = connected;
  }
  std::vector<std::vector<std::string>> reports() {
    absl::MutexLock lock(&mu_);
    return reports_;
  }
  std::vector<deja::v1::DiskStatus> disks() {
    absl::MutexLock lock(&mu_);
    return disks_;
  }

 private:
  WorkspaceRetention* const retention_;
  absl::Mutex mu_;
  std::set<std::string> held_ ABSL_GUARDED_BY(mu_);
  bool connected_ ABSL_GUARDED_BY(mu_) = true;
  std::vector<std::vector<std::string>> reports_ ABSL_GUARDED_BY(mu_);
  std::vector<deja::v1::DiskStatus> disks_ ABSL_GUARDED_BY(mu_);
};

class WorkspaceSweeperTest : public ::testing::Test {
 protected:
  WorkspaceSweeperTest()
      : work_dir_(MakeTempDir("sweeper_test")),
        retention_(work_dir_, &clock_),
        host_(&retention_),
        sweeper_(std::make_unique<WorkspaceSweeper>(&retention_, &host_, absl::Hours(1),
                                                    paths::TrashDir(work_dir_))) {}
  ~WorkspaceSweeperTest() override {
    sweeper_.reset();
    RemoveTempDir(work_dir_);
  }

  void SetUp() override {
    ASSERT_TRUE(sweeper_->Load().ok());
    sweeper_->Start();
    // The thread sweeps once at start (a restarted worker's catch-up):
    // done before a test queues anything, or on a loaded machine it could
    // take a test's expired workspace before the test's own SweepNow().
    ASSERT_TRUE(sweeper_->SweepNow().ok());
  }

  void MakeWorkspace(const std::string& job_id) {
    WriteFile(paths::WorkspaceDir(work_dir_, job_id) + "/f", job_id);
  }
  bool Exists(const std::string& job_id) const {
    return std::filesystem::exists(paths::WorkspaceDir(work_dir_, job_id));
  }
  static deja::v1::ResultAck Ack(const std::string& job_id, uint32_t attempt,
                                 int64_t expires_at_ms) {
    deja::v1::ResultAck ack;
    ack.set_job_id(job_id);
    ack.set_attempt(attempt);
    ack.set_expires_at_ms(expires_at_ms);
    return ack;
  }
  int64_t NowMs() { return ToMillis(clock_.Now()); }
  std::vector<std::string> Sweep() {
    auto swept = sweeper_->SweepNow();
    EXPECT_TRUE(swept.ok()) << swept.status();
    return swept.ok() ? *swept : std::vector<std::string>{};
  }

  FakeClock clock_;
  const std::string work_dir_;
  WorkspaceRetention retention_;
  FakeHost host_;
  std::unique_ptr<WorkspaceSweeper> sweeper_;
};

TEST_F(WorkspaceSweeperTest, AnAckedWorkspaceIsKeptUntilItsExpiryThenDeletedAndReported) {
  MakeWorkspace("job-1");
  sweeper_->QueueAck(Ack("job-1", 1, NowMs() + 60'000));
  EXPECT_THAT(Sweep(), IsEmpty());  // the ack is applied first
  EXPECT_TRUE(HasExpiryRecord(work_dir_, "job-1"));
  EXPECT_TRUE(Exists("job-1"));

  clock_.Advance(absl::Minutes(2));
  EXPECT_THAT(Sweep(), ElementsAre("job-1"));
  EXPECT_FALSE(Exists("job-1"));
  EXPECT_THAT(host_.reports(), ElementsAre(ElementsAre("job-1")));
  EXPECT_FALSE(HasExpiryRecord(work_dir_, "job-1"));  // reported: forgotten
}

TEST_F(WorkspaceSweeperTest, ANotKeptWorkspaceGoesAtOnceUnlessTheHostHoldsIt) {
  MakeWorkspace("job-1");
  MakeWorkspace("job-2");
  host_.Hold("job-2");
  sweeper_->QueueAck(Ack("job-1", 1, 0));
  sweeper_->QueueAck(Ack("job-2", 1, 0));
  EXPECT_THAT(Sweep(), IsEmpty());  // job-1 went with its ack
  EXPECT_FALSE(Exists("job-1"));
  EXPECT_TRUE(Exists("job-2"));
  EXPECT_FALSE(HasExpiryRecord(work_dir_, "job-2"));
  EXPECT_THAT(host_.reports(), IsEmpty());  // not kept is never reported
}

TEST_F(WorkspaceSweeperTest, ANotKeptAckLeavesAWorkspaceAnotherAttemptsRecordKeeps) {
  MakeWorkspace("job-1");
  sweeper_->QueueAck(Ack("job-1", 2, NowMs() + 60'000));
  sweeper_->QueueAck(Ack("job-1", 1, 0));
  EXPECT_THAT(Sweep(), IsEmpty());
  EXPECT_TRUE(Exists("job-1"));
  auto record = retention_.GetRecord("job-1");
  ASSERT_TRUE(record.has_value());
  EXPECT_EQ(record->attempt, 2u);
}

TEST_F(WorkspaceSweeperTest, AReportThatCannotBeSentWaitsForTheNextRegister) {
  MakeWorkspace("job-1");
  host_.SetConnected(false);
  sweeper_->QueueAck(Ack("job-1", 1, NowMs() + 1000));
  clock_.Advance(absl::Seconds(2));
  EXPECT_THAT(Sweep(), ElementsAre("job-1"));
  EXPECT_THAT(host_.reports(), IsEmpty());
  EXPECT_TRUE(HasExpiryRecord(work_dir_, "job-1"));  // kept until reported

  host_.SetConnected(true);
  sweeper_->RequestReport();
  EXPECT_TRUE(PollUntil([&] { return !host_.reports().empty(); }));
  EXPECT_THAT(host_.reports(), ElementsAre(ElementsAre("job-1")));
}

TEST_F(WorkspaceSweeperTest, SweepNowNeedsTheThread) {
  WorkspaceSweeper idle(&retention_, &host_, absl::Hours(1), paths::TrashDir(work_dir_));
  EXPECT_EQ(idle.SweepNow().status().code(), absl::StatusCode::kFailedPrecondition);
  sweeper_->Stop();
  EXPECT_EQ(sweeper_->SweepNow().status().message(), "the sweeper has stopped");
}

TEST_F(WorkspaceSweeperTest, AcksQueuedBeforeTheStopAreStillRecorded) {
  MakeWorkspace("job-1");
  sweeper_->QueueAck(Ack("job-1", 1, NowMs() + 60'000));
  sweeper_->Stop();
  EXPECT_TRUE(HasExpiryRecord(work_dir_, "job-1"));
}

// A disk of 1000 bytes where each workspace takes 100 (and `extra` more are
// taken by something else), watched with a bound of 500.
class DiskPressureTest : public ::testing::Test {
 protected:
  DiskPressureTest()
      : work_dir_(MakeTempDir("disk_pressure_test")),
        retention_(work_dir_, &clock_),
        host_(&retention_),
        sweeper_(&retention_, &host_, absl::Hours(1), paths::TrashDir(work_dir_),
                 DiskPolicy{500, absl::Milliseconds(5), "/work", [this] { return Space(); }}) {}
  ~DiskPressureTest() override {
    sweeper_.Stop();
    RemoveTempDir(work_dir_);
  }

  absl::StatusOr<DiskSpace> Space() {
    uint64_t used = extra_.load();
    for (const auto& entry : std::filesystem::directory_iterator(paths::JobsDir(work_dir_))) {
      (void)entry;
      used += 100;
    }
    return DiskSpace{used >= 1000 ? 0 : 1000 - used, 1000};
  }
  // Nine kept workspaces, job-1 expiring first.
  void MakeKeptWorkspaces() {
    ASSERT_TRUE(retention_.Load().ok());
    for (int i = 1; i <= 9; ++i) {
      const std::string id = absl::StrCat("job-", i);
      WriteFile(paths::WorkspaceDir(work_dir_, id) + "/f", id);
      ASSERT_TRUE(retention_.SetExpiry(id, 1, ToMillis(clock_.Now()) + i * 60'000).ok());
    }
  }
  std::vector<std::string> Reported() {
    std::vector<std::string> all;
    for (const auto& report : host_.reports()) all.insert(all.end(), report.begin(), report.end());
    return all;
  }

  FakeClock clock_;
  const std::string work_dir_;
  WorkspaceRetention retention_;
  FakeHost host_;
  std::atomic<uint64_t> extra_{0};
  WorkspaceSweeper sweeper_;
};

TEST_F(DiskPressureTest, ALowDiskEvictsTheKeptWorkspacesThatExpireFirstButNotHeldOrLeasedOnes) {
  MakeKeptWorkspaces();                      // 900 of 1000 bytes used: 100 free
  host_.Hold("job-1");                       // its result is not acknowledged: never evicted
  auto lease = retention_.Acquire("job-2");  // being copied: never evicted
  ASSERT_TRUE(lease.ok());
  sweeper_.Start();
  // Evicted until 5/4 of the bound (625 bytes) is free: six workspaces go,
  // earliest expiry first, skipping job-1 and job-2.
  ASSERT_TRUE(PollUntil([&] { return Reported().size() == 6u; }));
  EXPECT_THAT(Reported(), ElementsAre("job-3", "job-4", "job-5", "job-6", "job-7", "job-8"));
  for (const char* kept : {"job-1", "job-2", "job-9"}) {
    EXPECT_TRUE(std::filesystem::exists(paths::WorkspaceDir(work_dir_, kept))) << kept;
  }
  ASSERT_TRUE(PollUntil([&] { return !host_.disks().empty(); }));
  const deja::v1::DiskStatus disk = host_.disks().back();
  EXPECT_EQ(disk.free_bytes(), 700u);
  EXPECT_EQ(disk.total_bytes(), 1000u);
  EXPECT_EQ(disk.refusing(), "") << "enough is free again";
}

TEST_F(DiskPressureTest, WhenEvictingIsNotEnoughTheWorkerRefusesJobsUntilSpaceComesBack) {
  MakeKeptWorkspaces();
  extra_ = 700;  // something else fills the disk: even with no workspace, 300 free
  sweeper_.Start();
  ASSERT_TRUE(PollUntil([&] { return Reported().size() == 9u; })) << "every kept one goes";
  ASSERT_TRUE(PollUntil([&] {
    auto disks = host_.disks();
    return !disks.empty() && disks.back().free_bytes() == 300u;
  }));
  EXPECT_EQ(host_.disks().back().refusing(),
            "disk full: 300 B free under /work, below --min_free_disk 500 B");

  extra_ = 0;  // freed by whatever filled it
  ASSERT_TRUE(PollUntil([&] { return host_.disks().back().refusing().empty(); }));
  EXPECT_EQ(host_.disks().back().free_bytes(), 1000u);
}

}  // namespace
}  // namespace deja::worker
