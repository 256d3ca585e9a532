// SchedulerCore over a store: ended jobs and full memo entries leave memory
// once committed and are read back. One suite (store_backed_core_test.cc),
// two backends (STYLE.md: one suite, both backends): the in-memory fake in
// the core's test binary (mem_backend_test.cc), RocksDB in the store's
// (rocks_backend_test.cc), so that the core's tests build without RocksDB.
#ifndef DEJA_TESTS_SCHEDULER_STORE_BACKED_CORE_TEST_H_
#define DEJA_TESTS_SCHEDULER_STORE_BACKED_CORE_TEST_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_join.h"
#include "gtest/gtest.h"
#include "scheduler/core/scheduler_core.h"

namespace deja {

// A store the test can commit to, and reopen as a restarted scheduler would.
class Backend {
 public:
  virtual ~Backend() = default;
  virtual StoreReader* reader() = 0;
  virtual absl::Status Commit(const Effects& fx) = 0;
  virtual void Reopen() = 0;
};

// The backend named `name`; each test binary defines it for its backend.
std::unique_ptr<Backend> MakeBackend(const std::string& name);

using deja::v1::Job;
using deja::v1::JobSpec;

class StoreBackedCoreTest : public ::testing::TestWithParam<std::string> {
 protected:
  StoreBackedCoreTest() {
    backend_ = MakeBackend(GetParam());
    core_ = std::make_unique<SchedulerCore>(CoreOptions{}, nullptr, backend_->reader());
  }

  // Commits what a call did, as the scheduler's loop does after each round.
  void Commit(const Effects& fx) {
    ASSERT_TRUE(backend_->Commit(fx).ok());
    core_->Committed(fx);
  }
  void Restart() {
    core_.reset();
    backend_->Reopen();
    core_ = std::make_unique<SchedulerCore>(CoreOptions{}, nullptr, backend_->reader());
    ASSERT_TRUE(core_->LoadFromStore(now_).ok());
  }
  void Connect(const std::string& worker, int slots, uint64_t session = 1) {
    deja::v1::Register reg;
    reg.set_worker_id(worker);
    reg.set_slots(slots);
    Effects fx;
    ASSERT_TRUE(core_->WorkerConnected(reg, session, now_, &fx).ok());
    Commit(fx);
  }
  std::string Submit(const JobSpec& spec, bool* reused = nullptr) {
    Effects fx;
    auto r = core_->Submit(spec, now_, &fx);
    EXPECT_TRUE(r.ok()) << r.status();
    Commit(fx);
    if (reused != nullptr) *reused = r->reused();
    return r->job().job_id();
  }
  // The worker reports `job` (attempt 1) done, with a one-file manifest.
  static constexpr char kManifestDigest[] = "0123456789abcdef0123456789abcdef";
  Effects Finish(const std::string& worker, const std::string& job, int exit_code = 0) {
    deja::v1::WorkerMessage msg;
    auto* r = msg.mutable_result();
    r->set_job_id(job);
    r->set_attempt(1);
    r->set_exit_code(exit_code);
    r->set_run_time_ms(1500);
    r->mutable_manifest()->set_digest(kManifestDigest);
    r->mutable_manifest()->set_size(20);
    r->mutable_manifest()->set_files(1);
    r->mutable_manifest()->set_bytes(2);
    Effects fx;
    core_->WorkerMessage(worker, 1, msg, now_, &fx);
    Commit(fx);
    return fx;
  }
  std::string Ids(const absl::StatusOr<std::vector<Job>>& jobs) {
    if (!jobs.ok()) return jobs.status().ToString();
    std::vector<std::string> ids;
    for (const auto& job : *jobs) ids.push_back(job.job_id());
    return absl::StrJoin(ids, " ");
  }

  absl::Time now_ = absl::FromUnixSeconds(100'000);
  std::unique_ptr<Backend> backend_;
  std::unique_ptr<SchedulerCore> core_;
};

}  // namespace deja

#endif  // DEJA_TESTS_SCHEDULER_STORE_BACKED_CORE_TEST_H_
