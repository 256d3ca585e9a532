// The Worker end to end against an in-process fake scheduler, which also
// serves the content store (the worker's default): inputs placed before the
// command, outputs uploaded before the result, a reuse pulled from another
// worker's peer service.
#include "worker/worker.h"

#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/worker/test_util.h"
#include "worker/paths.h"

namespace deja::worker {
namespace {

using ::deja::worker::testing::FakeContentStore;
using ::deja::worker::testing::MakeTempDir;
using ::deja::worker::testing::PollUntil;
using ::deja::worker::testing::ReadFile;
using ::deja::worker::testing::RemoveTempDir;
using ::testing::HasSubstr;
using ::testing::StartsWith;

// Accepts workers, sends them what the test queues, records their results.
class FakeScheduler final : public deja::v1::WorkerService::Service {
 public:
  grpc::Status Connect(
      grpc::ServerContext*,
      grpc::ServerReaderWriter<deja::v1::SchedulerMessage, deja::v1::WorkerMessage>* stream)
      override {
    deja::v1::WorkerMessage first;
    if (!stream->Read(&first) || !first.has_register_()) {
      return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "register first");
    }
    const std::string id = first.register_().worker_id();
    deja::v1::SchedulerMessage ack;
    ack.mutable_register_ack()->set_heartbeat_interval_ms(200);
    if (!stream->Write(ack)) return grpc::Status::OK;
    {
      absl::MutexLock lock(&mu_);
      registered_[id] = first.register_();
      closed_[id] = false;
    }
    std::thread reader([&] {
      deja::v1::WorkerMessage message;
      while (stream->Read(&message)) {
        if (!message.has_result()) continue;
        absl::MutexLock lock(&mu_);
        results_[message.result().job_id()] = message.result();
      }
      absl::MutexLock lock(&mu_);
      closed_[id] = true;
      cv_.SignalAll();
    });
    while (true) {
      deja::v1::SchedulerMessage out;
      {
        absl::MutexLock lock(&mu_);
        while (!closed_[id] && outgoing_[id].empty()) cv_.Wait(&mu_);
        if (closed_[id]) break;
        out = std::move(outgoing_[id].front());
        outgoing_[id].pop_front();
      }
      stream->Write(out);
    }
    reader.join();
    return grpc::Status::OK;
  }

  void Assign(const std::string& worker_id, const deja::v1::Assignment& assignment) {
    absl::MutexLock lock(&mu_);
    *outgoing_[worker_id].emplace_back().mutable_assignment() = assignment;
    cv_.SignalAll();
  }
  std::optional<deja::v1::Register> Registered(const std::string& worker_id) {
    absl::MutexLock lock(&mu_);
    auto it = registered_.find(worker_id);
    if (it == registered_.end()) return std::nullopt;
    return it->second;
  }
  std::optional<deja::v1::JobResult> Result(const std::string& job_id) {
    absl::MutexLock lock(&mu_);
    auto it = results_.find(job_id);
    if (it == results_.end()) return std::nullopt;
    return it->second;
  }

 private:
  absl::Mutex mu_;
  absl::CondVar cv_;
  std::map<std::string, deja::v1::Register> registered_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, bool> closed_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::deque<deja::v1::SchedulerMessage>> outgoing_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, deja::v1::JobResult> results_ ABSL_GUARDED_BY(mu_);
};

// A Worker running on its own thread in its own work dir.
struct RunningWorker {
  RunningWorker(const std::string& id, const std::string& scheduler) {
    work_dir = MakeTempDir("worker_test_" + id);
    WorkerConfig config;
    config.scheduler_address = scheduler;
    config.content_store_address = scheduler;
    config.work_dir = work_dir;
    config.worker_id = id;
    config.advertise = "127.0.0.1:0";
    config.peer_listen = "127.0.0.1:0";
    config.cache_bytes = 1 << 20;
    config.initial_backoff = absl::Milliseconds(20);
    worker = std::make_unique<Worker>(config);
    thread = std::thread([this] { status = worker->Run(); });
  }
  ~RunningWorker() {
    worker->Stop();
    thread.join();
    worker.reset();
    RemoveTempDir(work_dir);
  }

  std::string work_dir;
  std::unique_ptr<Worker> worker;
  std::thread thread;
  absl::Status status;
};

class WorkerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    builder.RegisterService(&scheduler_);
    builder.RegisterService(&store_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(port_, 0);
    address_ = absl::StrCat("127.0.0.1:", port_);
  }
  void TearDown() override {
    workers_.clear();
    server_->Shutdown(absl::ToChronoTime(absl::Now() + absl::Seconds(1)));
  }

  RunningWorker& StartWorker(const std::string& id) {
    workers_.push_back(std::make_unique<RunningWorker>(id, address_));
    EXPECT_TRUE(PollUntil([&] { return scheduler_.Registered(id).has_value(); }));
    return *workers_.back();
  }

  std::optional<deja::v1::JobResult> AwaitResult(const std::string& job_id) {
    PollUntil([&] { return scheduler_.Result(job_id).has_value(); }, absl::Seconds(20));
    return scheduler_.Result(job_id);
  }

  static deja::v1::Assignment Run(const std::string& job_id, const std::string& script) {
    deja::v1::Assignment a;
    a.set_kind(deja::v1::Assignment::RUN);
    a.set_job_id(job_id);
    a.set_attempt(1);
    a.add_argv("sh");
    a.add_argv("-c");
    a.add_argv(script);
    return a;
  }

  FakeScheduler scheduler_;
  FakeContentStore store_;
  int port_ = 0;
  std::string address_;
  std::unique_ptr<grpc::Server> server_;
  std::vector<std::unique_ptr<RunningWorker>> workers_;
};

TEST_F(WorkerTest, AdvertisesThePeerServicesBoundPort) {
  StartWorker("w-a");
  const std::string advertised = scheduler_.Registered("w-a")->advertise();
  EXPECT_THAT(advertised, StartsWith("127.0.0.1:"));
  EXPECT_NE(advertised, "127.0.0.1:0");
}

TEST_F(WorkerTest, PlacesInputsRunsAndUploadsOutputsBeforeReporting) {
  StartWorker("w-a");
  const deja::v1::BlobRef data = store_.Put("hello from the store\n");
  deja::v1::Assignment run =
      Run("job-1", "mkdir -p out && tr a-z A-Z < inputs/data > out/upper.txt && "
                   "cp inputs/data out/copy.txt");
  deja::v1::InputRef* input = run.add_inputs();
  input->set_name("data");
  input->set_kind("file");
  input->set_digest(data.digest());
  input->set_size(data.size());
  run.add_outputs("out/*.txt");
  scheduler_.Assign("w-a", run);

  auto result = AwaitResult("job-1");
  ASSERT_TRUE(result.has_value());
  EXPECT_EQ(result->exit_code(), 0) << result->error();
  EXPECT_EQ(result->error(), "");
  ASSERT_EQ(result->outputs_size(), 2);
  EXPECT_EQ(result->outputs(0).path(), "out/copy.txt");
  EXPECT_EQ(result->outputs(0).digest(), data.digest());
  EXPECT_EQ(result->outputs(1).path(), "out/upper.txt");
  EXPECT_EQ(store_.Get(result->outputs(1).digest()), "HELLO FROM THE STORE\n");
  bool input_in_manifest = false;
  for (const auto& entry : result->manifest().files()) {
    input_in_manifest |= entry.path() == "inputs/data" && entry.digest() == data.digest();
  }
  EXPECT_TRUE(input_in_manifest);
}

TEST_F(WorkerTest, AMissingInputFailsTheJobUnstartedAndAnUnmatchedGlobIsNamed) {
  StartWorker("w-a");
  deja::v1::Assignment run = Run("job-1", "touch ran");
  deja::v1::InputRef* input = run.add_inputs();
  input->set_name("gone");
  input->set_kind("file");
  input->set_digest(HashBytes("never uploaded"));
  input->set_size(14);
  scheduler_.Assign("w-a", run);
  auto result = AwaitResult("job-1");
  ASSERT_TRUE(result.has_value());
  EXPECT_EQ(result->exit_code(), -1);
  EXPECT_THAT(result->error(), StartsWith("input \"gone\": "));

  deja::v1::Assignment run2 = Run("job-2", "echo hi > present.txt");
  run2.add_outputs("present.txt");
  run2.add_outputs("absent/*.csv");
  scheduler_.Assign("w-a", run2);
  result = AwaitResult("job-2");
  ASSERT_TRUE(result.has_value());
  EXPECT_EQ(result->exit_code(), 0);
  EXPECT_EQ(result->error(), "declared output \"absent/*.csv\" matched no file");
}

TEST_F(WorkerTest, AReuseIsPulledFromTheWorkerHoldingTheSource) {
  StartWorker("w-a");
  RunningWorker& b = StartWorker("w-b");
  deja::v1::Assignment run = Run("job-1", "mkdir out && echo result > out/r.txt");
  run.add_outputs("out/r.txt");
  scheduler_.Assign("w-a", run);
  auto source = AwaitResult("job-1");
  ASSERT_TRUE(source.has_value());
  ASSERT_EQ(source->exit_code(), 0) << source->error();

  deja::v1::Assignment reuse;
  reuse.set_kind(deja::v1::Assignment::MATERIALIZE);
  reuse.set_job_id("job-2");
  reuse.set_attempt(1);
  reuse.set_source_job_id("job-1");
  *reuse.mutable_source_manifest() = source->manifest();
  reuse.set_source_worker_id("w-a");
  reuse.set_source_address(scheduler_.Registered("w-a")->advertise());
  *reuse.mutable_source_outputs() = source->outputs();
  scheduler_.Assign("w-b", reuse);
  auto copied = AwaitResult("job-2");
  ASSERT_TRUE(copied.has_value());
  EXPECT_EQ(copied->exit_code(), 0) << copied->error();
  EXPECT_FALSE(copied->verification_failed());
  EXPECT_EQ(copied->manifest().SerializeAsString(), source->manifest().SerializeAsString());
  ASSERT_EQ(copied->outputs_size(), 1);
  EXPECT_EQ(copied->outputs(0).path(), "out/r.txt");
  EXPECT_EQ(ReadFile(paths::WorkspaceDir(b.work_dir, "job-2") + "/out/r.txt"), "result\n");
  EXPECT_THAT(ReadFile(paths::ReusedMarkerPath(b.work_dir, "job-2")),
              HasSubstr("source_worker=w-a\nmethod=peer\n"));

  // The holder lost the workspace: a verification failure, not a success.
  reuse.set_job_id("job-3");
  reuse.set_source_job_id("job-404");
  scheduler_.Assign("w-b", reuse);
  auto failed = AwaitResult("job-3");
  ASSERT_TRUE(failed.has_value());
  EXPECT_EQ(failed->exit_code(), -1);
  EXPECT_TRUE(failed->verification_failed());
  EXPECT_THAT(failed->error(), HasSubstr("job-404"));
  EXPECT_FALSE(std::filesystem::exists(paths::WorkspaceDir(b.work_dir, "job-3")));
}

}  // namespace
}  // namespace deja::worker
