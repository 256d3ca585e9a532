// Placement by resources and engines, and what a job no worker could ever
// run says: the Dispatcher alone, over a JobTable.
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "scheduler/core/dispatcher.h"
#include "scheduler/core/job_state_machine.h"
#include "scheduler/core/keys.h"
#include "tests/scheduler/assigned.h"

namespace deja {
namespace {

using deja::v1::Job;

constexpr uint64_t kGiB = uint64_t{1} << 30;

deja::v1::Register Reg(const std::string& id, int slots, uint32_t cpus, uint64_t memory,
                       uint32_t gpus = 0, bool engine = false) {
  deja::v1::Register reg;
  reg.set_worker_id(id);
  reg.set_slots(slots);
  deja::v1::Capacity* capacity = reg.mutable_capacity();
  capacity->mutable_total()->set_milli_cpus(cpus * 1000);
  capacity->mutable_total()->set_memory_bytes(memory);
  capacity->mutable_total()->set_gpus(gpus);
  capacity->set_limits("rlimits");
  if (engine) {
    capacity->set_engine("docker 20.10.24 at /var/run/docker.sock");
  } else {
    capacity->set_no_engine("no container engine (--docker_socket is empty)");
  }
  return reg;
}

using testing::Assigned;

class PlacementTest : public ::testing::Test {
 protected:
  PlacementTest()
      : jobs_(nullptr),
        memo_(nullptr),
        dispatcher_(CoreOptions(), &jobs_, &memo_,
                    [this](Job& job, absl::Time, Effects*) { finished_.push_back(job.job_id()); }) {
  }

  // A job asking for `resources`, queued and judged (as Submit does).
  std::string Submit(const deja::v1::Resources& resources, Effects* fx,
                     const std::string& image = "", bool fail_unplaceable = false) {
    Job job;
    job.set_job_id(JobIdFromSeq(jobs_.TakeSeq()));
    job.set_attempt(1);
    job.mutable_spec()->mutable_app()->set_name("train");
    job.mutable_spec()->mutable_app()->add_command("train");
    job.mutable_spec()->mutable_app()->set_image(image);
    if (resources.ByteSizeLong() > 0) *job.mutable_spec()->mutable_resources() = resources;
    job.mutable_spec()->set_fail_unplaceable(fail_unplaceable);
    SetJobState(job, deja::v1::QUEUED, now_);
    Job& added = jobs_.Add(std::move(job));
    jobs_.Enqueue(added);
    dispatcher_.Dispatch(now_, fx);
    return added.job_id();
  }
  static deja::v1::Resources Want(uint32_t cpus, uint64_t memory = 0, uint32_t gpus = 0) {
    deja::v1::Resources r;
    r.set_milli_cpus(cpus * 1000);
    r.set_memory_bytes(memory);
    r.set_gpus(gpus);
    return r;
  }
  const Job& Get(const std::string& id) { return *jobs_.Find(id); }

  absl::Time now_ = absl::FromUnixSeconds(1000);
  JobTable jobs_;
  MemoIndex memo_;
  std::vector<std::string> finished_;
  Dispatcher dispatcher_;
};

TEST_F(PlacementTest, JobsTakeWhatTheyAskForAndWaitForItToBeFree) {
  Effects fx;
  ASSERT_TRUE(dispatcher_.Connect(Reg("w1", 4, 2, 8 * kGiB), 1, now_, &fx).ok());
  const std::string a = Submit(Want(2, 4 * kGiB), &fx);
  const std::string b = Submit(Want(1), &fx);
  const std::string c = Submit(Want(0, 4 * kGiB), &fx);
  // b waits for a CPU although slots are free; c, asking only memory, fits.
  EXPECT_EQ(Assigned(fx, "w1"), (std::vector<std::string>{a, c}));
  EXPECT_EQ(Get(b).state(), deja::v1::QUEUED);
  EXPECT_EQ(Get(b).unplaceable(), "") << "it fits an idle w1: it only waits";
  auto workers = dispatcher_.List();
  ASSERT_EQ(workers.size(), 1u);
  EXPECT_EQ(workers[0].used().milli_cpus(), 2000u);
  EXPECT_EQ(workers[0].used().memory_bytes(), 8 * kGiB);
  EXPECT_EQ(workers[0].capacity().total().milli_cpus(), 2000u);

  Effects done;
  dispatcher_.Release("w1", a);
  dispatcher_.Dispatch(now_, &done);
  EXPECT_EQ(Assigned(done, "w1"), (std::vector<std::string>{b}));
  EXPECT_EQ(dispatcher_.List()[0].used().milli_cpus(), 1000u);
  EXPECT_EQ(dispatcher_.List()[0].used().memory_bytes(), 4 * kGiB);
}

TEST_F(PlacementTest, TheAssignmentCarriesTheLimitsAndTheImage) {
  Effects fx;
  ASSERT_TRUE(dispatcher_.Connect(Reg("w1", 1, 2, 8 * kGiB, 0, true), 1, now_, &fx).ok());
  deja::v1::Resources want = Want(1, kGiB);
  want.set_time_limit_ms(60'000);
  Submit(want, &fx, "alpine:3.19");
  ASSERT_EQ(Assigned(fx, "w1").size(), 1u);
  for (const auto& [w, msg] : fx.to_workers) {
    if (!msg.has_assignment()) continue;
    EXPECT_EQ(msg.assignment().image(), "alpine:3.19");
    EXPECT_EQ(msg.assignment().resources().memory_bytes(), kGiB);
    EXPECT_EQ(msg.assignment().resources().time_limit_ms(), 60'000u);
  }
}

TEST_F(PlacementTest, AJobNoWorkerCouldEverRunSaysWhy) {
  Effects fx;
  const std::string early = Submit(Want(1), &fx);
  EXPECT_EQ(Get(early).unplaceable(), "no worker is connected");
  ASSERT_TRUE(dispatcher_.Connect(Reg("w1", 2, 2, 8 * kGiB), 1, now_, &fx).ok());
  EXPECT_EQ(Get(early).unplaceable(), "") << "judged again when a worker connects";
  EXPECT_EQ(Get(early).state(), deja::v1::ASSIGNED);

  ASSERT_TRUE(dispatcher_.Connect(Reg("w2", 2, 4, 4 * kGiB), 2, now_, &fx).ok());
  const std::string gpu = Submit(Want(0, 0, 1), &fx);
  EXPECT_EQ(Get(gpu).unplaceable(), "no worker has gpus ≥ 1 (largest: 0)");
  const std::string cpus = Submit(Want(8), &fx);
  EXPECT_EQ(Get(cpus).unplaceable(), "no worker has cpus ≥ 8 (largest: 4)");
  const std::string memory = Submit(Want(0, 64 * kGiB), &fx);
  EXPECT_EQ(Get(memory).unplaceable(), "no worker has memory ≥ 64 GiB (largest: 8 GiB)");
  const std::string both = Submit(Want(4, 8 * kGiB), &fx);
  EXPECT_EQ(Get(both).unplaceable(), "no single worker has all it asks for (see deja workers)");
  const std::string image = Submit(Want(0), &fx, "alpine:3.19");
  EXPECT_EQ(Get(image).unplaceable(),
            "no worker has a container engine to run image alpine:3.19 (see deja workers)");
  for (const std::string& id : {gpu, cpus, memory, both, image}) {
    EXPECT_EQ(Get(id).state(), deja::v1::QUEUED) << id;
    EXPECT_TRUE(fx.jobs.contains(id)) << id << ": the reason is kept with the job";
  }

  // A worker that can: the reason goes, and the job runs there.
  Effects more;
  ASSERT_TRUE(dispatcher_.Connect(Reg("gpu", 1, 8, 64 * kGiB, 1, true), 3, now_, &more).ok());
  EXPECT_EQ(Get(gpu).unplaceable(), "");
  EXPECT_EQ(Get(gpu).worker_id(), "gpu");
  EXPECT_EQ(Get(cpus).unplaceable(), "") << "placeable now, waiting for a slot";
  EXPECT_EQ(Get(image).unplaceable(), "");
}

TEST_F(PlacementTest, PlatformMismatchNamesWhatIsOffered) {
  Effects fx;
  deja::v1::Register reg = Reg("w1", 1, 2, kGiB);
  (*reg.mutable_platform())["arch"] = "x86_64";
  ASSERT_TRUE(dispatcher_.Connect(reg, 1, now_, &fx).ok());
  Job job;
  job.set_job_id(JobIdFromSeq(jobs_.TakeSeq()));
  job.set_attempt(1);
  job.mutable_spec()->mutable_app()->add_command("x");
  (*job.mutable_spec()->mutable_app()->mutable_platform())["arch"] = "aarch64";
  (*job.mutable_spec()->mutable_app()->mutable_platform())["gpu"] = "a100";
  SetJobState(job, deja::v1::QUEUED, now_);
  Job& added = jobs_.Add(std::move(job));
  jobs_.Enqueue(added);
  dispatcher_.Dispatch(now_, &fx);
  EXPECT_EQ(added.unplaceable(), "no worker has platform arch=aarch64 (offered: x86_64)");
  (*added.mutable_spec()->mutable_app()->mutable_platform())["arch"] = "x86_64";
  EXPECT_EQ(dispatcher_.WhyUnplaceable(added), "no worker has platform gpu=a100 (none has gpu)");
}

TEST_F(PlacementTest, UnplaceableFailMakesItFailAtOnceButNotWithoutWorkers) {
  Effects fx;
  const std::string alone = Submit(Want(0, 0, 1), &fx, "", /*fail_unplaceable=*/true);
  EXPECT_EQ(Get(alone).state(), deja::v1::QUEUED) << "no worker: nothing can be judged yet";
  EXPECT_TRUE(finished_.empty());

  ASSERT_TRUE(dispatcher_.Connect(Reg("w1", 1, 2, kGiB), 1, now_, &fx).ok());
  EXPECT_EQ(Get(alone).state(), deja::v1::FAILED);
  EXPECT_EQ(Get(alone).message(),
            "unplaceable: no worker has gpus ≥ 1 (largest: 0) (--unplaceable fail)");
  EXPECT_EQ(finished_, (std::vector<std::string>{alone}));

  const std::string now_failed = Submit(Want(16), &fx, "", true);
  EXPECT_EQ(Get(now_failed).state(), deja::v1::FAILED);
  EXPECT_EQ(Get(now_failed).message(),
            "unplaceable: no worker has cpus ≥ 16 (largest: 2) (--unplaceable fail)");
  const std::string fits = Submit(Want(1), &fx, "", true);
  EXPECT_EQ(Get(fits).state(), deja::v1::ASSIGNED);
}

TEST_F(PlacementTest, AWorkerWithoutCapacityTakesOnlyJobsAskingNothing) {
  // A worker that reports no capacity (an older one): plain jobs only.
  Effects fx;
  deja::v1::Register reg;
  reg.set_worker_id("old");
  reg.set_slots(2);
  ASSERT_TRUE(dispatcher_.Connect(reg, 1, now_, &fx).ok());
  const std::string plain = Submit(Want(0), &fx);
  const std::string asks = Submit(Want(1), &fx);
  EXPECT_EQ(Get(plain).state(), deja::v1::ASSIGNED);
  EXPECT_EQ(Get(asks).unplaceable(), "no worker has cpus ≥ 1 (largest: 0)");
}

TEST_F(PlacementTest, ALostWorkerMakesItsJobsUnplaceableAgain) {
  CoreOptions options;
  Effects fx;
  ASSERT_TRUE(dispatcher_.Connect(Reg("gpu", 1, 2, kGiB, 1), 1, now_, &fx).ok());
  const std::string a = Submit(Want(0, 0, 1), &fx);
  EXPECT_EQ(Get(a).worker_id(), "gpu");
  ASSERT_TRUE(dispatcher_.Connect(Reg("cpu", 1, 2, kGiB), 2, now_, &fx).ok());
  dispatcher_.Disconnect("gpu", 1, now_);
  const absl::Time later = now_ + options.worker_timeout + absl::Seconds(1);
  ASSERT_TRUE(dispatcher_.Touch("cpu", 2, later));
  Effects lost;
  dispatcher_.CheckLiveness(later, &lost);
  EXPECT_EQ(Get(a).state(), deja::v1::QUEUED);
  EXPECT_EQ(Get(a).unplaceable(), "no worker has gpus ≥ 1 (largest: 0)");
}

}  // namespace
}  // namespace deja
