// The fixture of the Worker's end-to-end tests (worker_test.cc,
// worker_crash_test.cc): an in-process fake scheduler, which also serves the
// content store (the worker's default), and Workers run on threads of
// their own, each in its own work dir.
#ifndef DEJA_TESTS_WORKER_WORKER_FIXTURE_H_
#define DEJA_TESTS_WORKER_WORKER_FIXTURE_H_

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "common/manifest.h"
#include "deja/v1/worker.grpc.pb.h"
#include "gtest/gtest.h"
#include "tests/fakes/fake_content_store.h"
#include "tests/fakes/poll_until.h"
#include "tests/worker/test_util.h"
#include "worker/worker.h"

namespace deja::worker::testing {

using ::deja::testing::FakeContentStore;
using ::deja::testing::PollUntil;

// Accepts workers, sends them what the test queues, records their results.
class FakeScheduler final : public deja::v1::WorkerService::Service {
 public:
  grpc::Status Connect(grpc::ServerContext* context,
                       grpc::ServerReaderWriter<deja::v1::SchedulerMessage,
                                                deja::v1::WorkerMessage>* stream) override {
    deja::v1::WorkerMessage first;
    if (!stream->Read(&first) || !first.has_register_()) {
      return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "register first");
    }
    const std::string id = first.register_().worker_id();
    deja::v1::SchedulerMessage ack;
    ack.mutable_register_ack()->set_heartbeat_interval_ms(200);
    bool answer_heartbeats = false;
    {
      absl::MutexLock lock(&mu_);
      ack.mutable_register_ack()->set_worker_timeout_ms(worker_timeout_ms_);
      answer_heartbeats = answer_heartbeats_;
    }
    if (!stream->Write(ack)) return grpc::Status::OK;
    {
      absl::MutexLock lock(&mu_);
      registered_[id] = first.register_();
      closed_[id] = false;
      contexts_[id] = context;
    }
    std::thread reader([&] {
      deja::v1::WorkerMessage message;
      while (stream->Read(&message)) {
        absl::MutexLock lock(&mu_);
        if (message.has_result()) results_[message.result().job_id()] = message.result();
        if (message.has_heartbeat() && answer_heartbeats) {
          outgoing_[id].emplace_back().mutable_heartbeat_ack();
          cv_.SignalAll();
        }
        if (message.has_expired()) {
          expired_messages_.push_back(message.expired());
          for (const auto& job_id : message.expired().job_ids()) expired_[job_id] = id;
        }
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
    absl::MutexLock lock(&mu_);
    if (contexts_[id] == context) contexts_.erase(id);
    return grpc::Status::OK;
  }

  // Ends the worker's stream, as a scheduler restart or a network fault
  // would.
  void Close(const std::string& worker_id) {
    absl::MutexLock lock(&mu_);
    if (auto it = contexts_.find(worker_id); it != contexts_.end()) it->second->TryCancel();
  }

  // What the next RegisterAck says of the scheduler's --worker_timeout
  // (default 0: none), and whether heartbeats are answered on that stream.
  void SetWorkerTimeout(absl::Duration timeout, bool answer_heartbeats) {
    absl::MutexLock lock(&mu_);
    worker_timeout_ms_ = absl::ToInt64Milliseconds(timeout);
    answer_heartbeats_ = answer_heartbeats;
  }
  // Forgets the worker's registration and every result, so a test can wait
  // for the next Register and what it re-sends.
  void Forget(const std::string& worker_id) {
    absl::MutexLock lock(&mu_);
    registered_.erase(worker_id);
    results_.clear();
  }
  void Assign(const std::string& worker_id, const deja::v1::Assignment& assignment) {
    absl::MutexLock lock(&mu_);
    *outgoing_[worker_id].emplace_back().mutable_assignment() = assignment;
    cv_.SignalAll();
  }
  void Cancel(const std::string& worker_id, const std::string& job_id, uint32_t attempt) {
    absl::MutexLock lock(&mu_);
    deja::v1::CancelJob* cancel = outgoing_[worker_id].emplace_back().mutable_cancel();
    cancel->set_job_id(job_id);
    cancel->set_attempt(attempt);
    cv_.SignalAll();
  }
  void Ack(const std::string& worker_id, const std::string& job_id, uint32_t attempt,
           int64_t expires_at_ms) {
    absl::MutexLock lock(&mu_);
    deja::v1::ResultAck* ack = outgoing_[worker_id].emplace_back().mutable_result_ack();
    ack->set_job_id(job_id);
    ack->set_attempt(attempt);
    ack->set_expires_at_ms(expires_at_ms);
    cv_.SignalAll();
  }
  // The worker that reported `job_id`'s workspace expired, if one did.
  std::optional<std::string> ExpiredBy(const std::string& job_id) {
    absl::MutexLock lock(&mu_);
    auto it = expired_.find(job_id);
    if (it == expired_.end()) return std::nullopt;
    return it->second;
  }
  std::vector<deja::v1::WorkspacesExpired> ExpiredMessages() {
    absl::MutexLock lock(&mu_);
    return expired_messages_;
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
  std::map<std::string, std::string> expired_ ABSL_GUARDED_BY(mu_);  // job id -> worker id
  std::vector<deja::v1::WorkspacesExpired> expired_messages_ ABSL_GUARDED_BY(mu_);
  int64_t worker_timeout_ms_ ABSL_GUARDED_BY(mu_) = 0;
  bool answer_heartbeats_ ABSL_GUARDED_BY(mu_) = false;
  std::map<std::string, grpc::ServerContext*> contexts_ ABSL_GUARDED_BY(mu_);  // live streams
};

// A Worker running on its own thread in its own work dir (or in `dir`,
// which it then leaves behind).
struct RunningWorker {
  // `min_free_disk` as in WorkerConfig; 0 (the disk not watched) by
  // default, whatever the test machine's disk holds.
  RunningWorker(const std::string& id, const std::string& scheduler, Clock* clock = nullptr,
                const std::string& dir = "", uint64_t min_free_disk = 0)
      : keep_dir(!dir.empty()) {
    work_dir = keep_dir ? dir : MakeTempDir("worker_test_" + id);
    WorkerConfig config;
    config.scheduler_address = scheduler;
    config.content_store_address = scheduler;
    config.scheduler_security.insecure = true;
    config.work_dir = work_dir;
    config.worker_id = id;
    config.advertise = "127.0.0.1:0";
    config.peer_listen = "127.0.0.1:0";
    config.cache_bytes = 1 << 20;
    config.initial_backoff = absl::Milliseconds(20);
    // Tests sweep with SweepNow() (the thread's sweep at start aside).
    config.sweep_interval = absl::Hours(1);
    config.min_free_disk = min_free_disk;
    config.disk_check_interval = absl::Milliseconds(20);
    worker = std::make_unique<Worker>(config, clock);
    thread = std::thread([this] { status = worker->Run(); });
  }
  ~RunningWorker() {
    worker->Stop();
    thread.join();
    worker.reset();
    if (!keep_dir) RemoveTempDir(work_dir);
  }

  const bool keep_dir;
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

  RunningWorker& StartWorker(const std::string& id, Clock* clock = nullptr,
                             const std::string& dir = "", uint64_t min_free_disk = 0) {
    workers_.push_back(std::make_unique<RunningWorker>(id, address_, clock, dir, min_free_disk));
    EXPECT_TRUE(PollUntil([&] { return scheduler_.Registered(id).has_value(); }));
    return *workers_.back();
  }

  std::optional<deja::v1::JobResult> AwaitResult(const std::string& job_id) {
    PollUntil([&] { return scheduler_.Result(job_id).has_value(); }, absl::Seconds(20));
    return scheduler_.Result(job_id);
  }

  // The manifest a result names, from the fake content store (empty when
  // it is not there: the test fails).
  deja::v1::Manifest ManifestOf(const deja::v1::JobResult& result) {
    auto manifest = ParseManifest(result.manifest(), store_.Get(result.manifest().digest()));
    EXPECT_TRUE(manifest.ok()) << manifest.status();
    return manifest.ok() ? *manifest : deja::v1::Manifest();
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

}  // namespace deja::worker::testing

#endif  // DEJA_TESTS_WORKER_WORKER_FIXTURE_H_
