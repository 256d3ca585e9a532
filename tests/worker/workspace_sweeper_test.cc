// WorkspaceSweeper against a fake host: acks become expiry records, "not
// kept" workspaces go at once unless the host says another attempt holds
// them, expired ones go on a sweep and are reported, and a report that
// cannot be sent waits for the next Register.
#include "worker/workspace_sweeper.h"

#include <filesystem>
#include <memory>
#include <set>
#include <string>
#include <vector>

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

 private:
  WorkspaceRetention* const retention_;
  absl::Mutex mu_;
  std::set<std::string> held_ ABSL_GUARDED_BY(mu_);
  bool connected_ ABSL_GUARDED_BY(mu_) = true;
  std::vector<std::vector<std::string>> reports_ ABSL_GUARDED_BY(mu_);
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

}  // namespace
}  // namespace deja::worker
