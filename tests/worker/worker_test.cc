// The Worker end to end against the in-process fake scheduler of
// worker_fixture.h, which also serves the content store (the worker's
// default): inputs placed before the command, outputs uploaded before the
// result, a reuse pulled from another worker's peer service, retention.
// Crashes and faults are worker_crash_test.cc's.
#include "worker/worker.h"

#include <signal.h>

#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/clock.h"
#include "common/grpc_status.h"
#include "common/hash.h"
#include "common/transfer_window.h"
#include "deja/v1/peer.grpc.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/fakes/poll_until.h"
#include "tests/worker/test_util.h"
#include "tests/worker/worker_fixture.h"
#include "worker/paths.h"

namespace deja::worker {
namespace {

using ::deja::testing::PollUntil;
using ::deja::worker::testing::HasExpiryRecord;
using ::deja::worker::testing::MakeTempDir;
using ::deja::worker::testing::ReadFile;
using ::deja::worker::testing::RemoveTempDir;
using ::deja::worker::testing::RunningWorker;
using ::deja::worker::testing::WorkerTest;
using ::deja::worker::testing::WriteFile;
using ::testing::HasSubstr;
using ::testing::StartsWith;

TEST_F(WorkerTest, AdvertisesThePeerServicesBoundPort) {
  StartWorker("w-a");
  const std::string advertised = scheduler_.Registered("w-a")->advertise();
  EXPECT_THAT(advertised, StartsWith("127.0.0.1:"));
  EXPECT_NE(advertised, "127.0.0.1:0");
}

TEST_F(WorkerTest, PlacesInputsRunsAndUploadsOutputsBeforeReporting) {
  StartWorker("w-a");
  const deja::v1::BlobRef data = store_.Put("hello from the store\n");
  deja::v1::Assignment run = Run("job-1",
                                 "mkdir -p out && tr a-z A-Z < inputs/data > out/upper.txt && "
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
  const deja::v1::Manifest manifest = ManifestOf(*result);
  for (const auto& entry : manifest.files()) {
    input_in_manifest |= entry.path() == "inputs/data" && entry.digest() == data.digest();
  }
  EXPECT_TRUE(input_in_manifest);
}

// Sent ahead of a free slot (the scheduler's --dispatch_ahead), a RUN waits
// for the running one to end, in arrival order; a cancel drops it unstarted.
TEST_F(WorkerTest, RunsSentBeyondItsSlotsWaitForASlotAndACancelDropsThem) {
  RunningWorker& w = StartWorker("w-a");  // 1 slot
  scheduler_.Assign("w-a", Run("job-a", "touch started; while [ ! -e go ]; do sleep 0.02; done"));
  const std::string ws_a = paths::WorkspaceDir(w.work_dir, "job-a");
  ASSERT_TRUE(PollUntil([&] { return std::filesystem::exists(ws_a + "/started"); }));
  scheduler_.Assign("w-a", Run("job-b", "touch ran"));
  scheduler_.Assign("w-a", Run("job-c", "touch ran"));
  scheduler_.Cancel("w-a", "job-c", 1);

  // Messages are handled in order: once job-c's result is in, job-b is held.
  auto cancelled = AwaitResult("job-c");
  ASSERT_TRUE(cancelled.has_value());
  EXPECT_EQ(cancelled->exit_code(), -SIGTERM);
  EXPECT_THAT(cancelled->error(), HasSubstr("cancelled before it started"));
  EXPECT_FALSE(std::filesystem::exists(paths::WorkspaceDir(w.work_dir, "job-c")));
  EXPECT_FALSE(std::filesystem::exists(paths::WorkspaceDir(w.work_dir, "job-b") + "/ran"));
  EXPECT_FALSE(scheduler_.Result("job-b").has_value());

  WriteFile(ws_a + "/go", "");
  auto a = AwaitResult("job-a");
  auto b = AwaitResult("job-b");
  ASSERT_TRUE(a.has_value() && b.has_value());
  EXPECT_EQ(a->exit_code(), 0) << a->error();
  EXPECT_EQ(b->exit_code(), 0) << b->error();
  EXPECT_TRUE(std::filesystem::exists(paths::WorkspaceDir(w.work_dir, "job-b") + "/ran"));
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

// ---- Retention: expiry records, the sweeper, leases ----

class RetentionWorkerTest : public WorkerTest {
 protected:
  int64_t NowMs() { return ToMillis(clock_.Now()); }
  // Runs `script` as `job_id` on `worker_id` and waits for its result.
  deja::v1::JobResult RunJob(const std::string& worker_id, const std::string& job_id,
                             const std::string& script, const std::string& output = "") {
    deja::v1::Assignment run = Run(job_id, script);
    if (!output.empty()) run.add_outputs(output);
    scheduler_.Assign(worker_id, run);
    auto result = AwaitResult(job_id);
    EXPECT_TRUE(result.has_value());
    if (!result.has_value()) return {};
    EXPECT_EQ(result->exit_code(), 0) << result->error();
    return *result;
  }
  static deja::v1::Assignment Reuse(const std::string& job_id, const std::string& source_job_id,
                                    const deja::v1::JobResult& source) {
    deja::v1::Assignment reuse;
    reuse.set_kind(deja::v1::Assignment::MATERIALIZE);
    reuse.set_job_id(job_id);
    reuse.set_attempt(1);
    reuse.set_source_job_id(source_job_id);
    *reuse.mutable_source_manifest() = source.manifest();
    *reuse.mutable_source_outputs() = source.outputs();
    return reuse;
  }
  static bool Exists(const std::string& path) { return std::filesystem::exists(path); }

  FakeClock clock_;
};

TEST_F(RetentionWorkerTest, AnAckedWorkspaceIsKeptUntilItsExpiryThenDeletedAndReported) {
  RunningWorker& a = StartWorker("w-a", &clock_);
  RunJob("w-a", "job-1", "echo intermediate > scratch.txt");
  RunJob("w-a", "job-unacked", "echo kept > scratch.txt");
  scheduler_.Ack("w-a", "job-1", 1, NowMs() + 3'600'000);
  ASSERT_TRUE(PollUntil([&] { return HasExpiryRecord(a.work_dir, "job-1"); }));

  auto swept = a.worker->SweepNow();
  ASSERT_TRUE(swept.ok()) << swept.status();
  EXPECT_THAT(*swept, ::testing::IsEmpty());
  clock_.Advance(absl::Minutes(59));
  swept = a.worker->SweepNow();
  ASSERT_TRUE(swept.ok());
  EXPECT_THAT(*swept, ::testing::IsEmpty());
  EXPECT_EQ(ReadFile(paths::WorkspaceDir(a.work_dir, "job-1") + "/scratch.txt"), "intermediate\n");

  clock_.Advance(absl::Minutes(2));
  swept = a.worker->SweepNow();
  ASSERT_TRUE(swept.ok());
  EXPECT_THAT(*swept, ::testing::ElementsAre("job-1"));
  EXPECT_FALSE(Exists(paths::WorkspaceDir(a.work_dir, "job-1")));       // files and logs
  EXPECT_TRUE(Exists(paths::WorkspaceDir(a.work_dir, "job-unacked")));  // no record
  ASSERT_TRUE(PollUntil([&] { return scheduler_.ExpiredBy("job-1").has_value(); }));
  EXPECT_EQ(*scheduler_.ExpiredBy("job-1"), "w-a");
  const auto messages = scheduler_.ExpiredMessages();
  ASSERT_EQ(messages.size(), 1u);
  EXPECT_THAT(messages[0].job_ids(), ::testing::ElementsAre("job-1"));
  // Reported: the record goes.
  EXPECT_TRUE(PollUntil([&] { return !HasExpiryRecord(a.work_dir, "job-1"); }));
  swept = a.worker->SweepNow();
  ASSERT_TRUE(swept.ok());
  EXPECT_THAT(*swept, ::testing::IsEmpty());
  EXPECT_EQ(scheduler_.ExpiredMessages().size(), 1u);
}

TEST_F(RetentionWorkerTest, ExpiryRecordsSurviveARestart) {
  const std::string dir = MakeTempDir("worker_test_restart");
  {
    RunningWorker& a = StartWorker("w-a", &clock_, dir);
    RunJob("w-a", "job-1", "echo intermediate > scratch.txt");
    scheduler_.Ack("w-a", "job-1", 1, NowMs() + 3'600'000);
    ASSERT_TRUE(PollUntil([&] { return HasExpiryRecord(a.work_dir, "job-1"); }));
    workers_.clear();  // stopped; the work dir stays
  }
  ASSERT_TRUE(Exists(paths::WorkspaceDir(dir, "job-1")));
  clock_.Advance(absl::Hours(2));

  RunningWorker& again = StartWorker("w-a", &clock_, dir);  // w-a registered before
  // The sweep at start (or this one, once Run() has loaded the records)
  // deletes it; it is reported once the stream is up.
  ASSERT_TRUE(PollUntil([&] { return again.worker->SweepNow().ok(); }));
  EXPECT_FALSE(Exists(paths::WorkspaceDir(dir, "job-1")));
  EXPECT_TRUE(PollUntil([&] { return scheduler_.ExpiredBy("job-1").has_value(); }));
  workers_.clear();
  RemoveTempDir(dir);
}

TEST_F(RetentionWorkerTest, ANotKeptAttemptIsDeletedUnlessAnotherAttemptOfTheJobRunsThere) {
  RunningWorker& a = StartWorker("w-a", &clock_);
  RunJob("w-a", "job-1", "echo superseded > f");
  RunJob("w-a", "marker", "echo m > f");
  scheduler_.Ack("w-a", "job-1", 1, 0);
  EXPECT_TRUE(PollUntil([&] {
    return !Exists(paths::WorkspaceDir(a.work_dir, "job-1")) &&
           !HasExpiryRecord(a.work_dir, "job-1");
  }));

  // job-2: attempt 1 finished (unacked), attempt 2 runs in the same
  // workspace when attempt 1 is told its workspace is not kept.
  RunJob("w-a", "job-2", "echo one > f");
  deja::v1::Assignment second = Run("job-2",
                                    "echo two > f; touch started; "
                                    "while [ ! -e go ]; do sleep 0.02; done");
  second.set_attempt(2);
  scheduler_.Assign("w-a", second);
  const std::string ws = paths::WorkspaceDir(a.work_dir, "job-2");
  ASSERT_TRUE(PollUntil([&] { return Exists(ws + "/started"); }));
  scheduler_.Ack("w-a", "job-2", 1, 0);
  // Acks are applied in order: once the marker's workspace is gone, job-2
  // attempt 1's ack has been handled.
  scheduler_.Ack("w-a", "marker", 1, 0);
  ASSERT_TRUE(PollUntil([&] { return !Exists(paths::WorkspaceDir(a.work_dir, "marker")); }));
  EXPECT_TRUE(Exists(ws + "/started"));
  EXPECT_EQ(ReadFile(ws + "/f"), "two\n");
  auto swept = a.worker->SweepNow();
  ASSERT_TRUE(swept.ok());
  EXPECT_THAT(*swept, ::testing::IsEmpty());
  EXPECT_TRUE(Exists(ws + "/started"));

  WriteFile(ws + "/go", "");
  ASSERT_TRUE(PollUntil(
      [&] {
        auto r = scheduler_.Result("job-2");
        return r.has_value() && r->attempt() == 2;
      },
      absl::Seconds(20)));
  scheduler_.Ack("w-a", "job-2", 2, NowMs() + 60'000);
  ASSERT_TRUE(PollUntil([&] { return HasExpiryRecord(a.work_dir, "job-2"); }));
  swept = a.worker->SweepNow();
  ASSERT_TRUE(swept.ok());
  EXPECT_THAT(*swept, ::testing::IsEmpty());
  EXPECT_EQ(ReadFile(ws + "/f"), "two\n");
  // A late "not kept" for attempt 1 does not touch attempt 2's kept workspace.
  scheduler_.Ack("w-a", "job-2", 1, 0);
  RunJob("w-a", "marker2", "true");
  scheduler_.Ack("w-a", "marker2", 1, 0);
  ASSERT_TRUE(PollUntil([&] { return !Exists(paths::WorkspaceDir(a.work_dir, "marker2")); }));
  EXPECT_EQ(ReadFile(ws + "/f"), "two\n");
  // Not kept is never reported as expired.
  EXPECT_THAT(scheduler_.ExpiredMessages(), ::testing::IsEmpty());
}

// Reads a FetchWorkspace stream to its end; OK when every file arrived with
// the manifest's size and digest.
absl::Status ReadAndVerify(grpc::ClientReaderInterface<deja::v1::WorkspaceChunk>* reader,
                           const deja::v1::Manifest& manifest) {
  deja::v1::WorkspaceChunk chunk;
  std::map<std::string, std::unique_ptr<Hasher>> hashes;
  std::map<std::string, uint64_t> sizes;
  std::string current;
  while (reader->Read(&chunk)) {
    if (chunk.has_file()) {
      current = chunk.file().path();
      hashes[current] = std::make_unique<Hasher>();
    } else if (chunk.chunk_case() == deja::v1::WorkspaceChunk::kData) {
      if (current.empty()) return absl::InternalError("data before file");
      hashes[current]->Update(chunk.data());
      sizes[current] += chunk.data().size();
    }
  }
  if (grpc::Status st = reader->Finish(); !st.ok()) return FromGrpcStatus(st);
  for (const auto& entry : manifest.files()) {
    auto it = hashes.find(entry.path());
    if (it == hashes.end()) return absl::DataLossError(entry.path() + " missing");
    if (sizes[entry.path()] != entry.size() || it->second->HexDigest() != entry.digest()) {
      return absl::DataLossError(entry.path() + " differs");
    }
  }
  return absl::OkStatus();
}

// A failed copy (attempt 1) and the fresh run after it (attempt 2) share the
// workspace; attempt 2 finishes before attempt 1's "not kept" ack is applied,
// and both acks can reach the sweeper together: attempt 2's workspace stays.
TEST_F(RetentionWorkerTest, ALateNotKeptAckOfAnOlderAttemptSparesTheNewerAttemptsWorkspace) {
  RunningWorker& a = StartWorker("w-a", &clock_);
  RunJob("w-a", "job-3", "echo one > f");
  deja::v1::Assignment second = Run("job-3", "echo two > f");
  second.set_attempt(2);
  scheduler_.Assign("w-a", second);
  ASSERT_TRUE(PollUntil([&] {
    auto r = scheduler_.Result("job-3");
    return r.has_value() && r->attempt() == 2;
  }));
  scheduler_.Ack("w-a", "job-3", 1, 0);
  scheduler_.Ack("w-a", "job-3", 2, NowMs() + 60'000);
  const std::string ws = paths::WorkspaceDir(a.work_dir, "job-3");
  ASSERT_TRUE(PollUntil([&] { return HasExpiryRecord(a.work_dir, "job-3"); }));
  auto swept = a.worker->SweepNow();
  ASSERT_TRUE(swept.ok());
  EXPECT_THAT(*swept, ::testing::IsEmpty());
  EXPECT_EQ(ReadFile(ws + "/f"), "two\n");
}

TEST_F(RetentionWorkerTest, ALeaseProtectsASourceDuringASlowPeerCopy) {
  RunningWorker& a = StartWorker("w-a", &clock_);
  // 32 MiB: far more than the 4 MiB stream window, so the server is still
  // in the middle of the stream while the test does not read.
  const deja::v1::JobResult source =
      RunJob("w-a", "job-1",
             "head -c 65536 /dev/urandom > rand.bin && truncate -s 32M big.bin && echo r > r.txt",
             "r.txt");
  scheduler_.Ack("w-a", "job-1", 1, NowMs() + 3'600'000);
  ASSERT_TRUE(PollUntil([&] { return HasExpiryRecord(a.work_dir, "job-1"); }));

  grpc::ChannelArguments args;
  BoundTransferWindow(&args);
  auto stub = deja::v1::Peer::NewStub(
      grpc::CreateCustomChannel(a.worker->advertise(), grpc::InsecureChannelCredentials(), args));
  grpc::ClientContext context;
  deja::v1::FetchWorkspaceRequest request;
  request.set_job_id("job-1");
  *request.mutable_manifest() = source.manifest();
  auto reader = stub->FetchWorkspace(&context, request);
  deja::v1::WorkspaceChunk first;
  ASSERT_TRUE(reader->Read(&first));  // the lease is taken before this is sent
  ASSERT_TRUE(first.has_manifest());

  clock_.Advance(absl::Hours(2));  // expired, mid-copy
  auto swept = a.worker->SweepNow();
  ASSERT_TRUE(swept.ok());
  EXPECT_THAT(*swept, ::testing::IsEmpty());
  EXPECT_TRUE(Exists(paths::WorkspaceDir(a.work_dir, "job-1") + "/big.bin"));

  // No new copy starts from an expired source: not a peer fetch...
  {
    grpc::ClientContext late_context;
    auto late = stub->FetchWorkspace(&late_context, request);
    deja::v1::WorkspaceChunk chunk;
    EXPECT_FALSE(late->Read(&chunk));
    grpc::Status st = late->Finish();
    EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND);
    EXPECT_EQ(st.error_message(), "workspace of job-1 expired");
  }
  // ... nor a local reuse.
  scheduler_.Assign("w-a", Reuse("job-2", "job-1", source));
  auto local = AwaitResult("job-2");
  ASSERT_TRUE(local.has_value());
  EXPECT_EQ(local->exit_code(), -1);
  EXPECT_TRUE(local->verification_failed());
  EXPECT_EQ(local->error(), "workspace of job-1 expired");
  EXPECT_FALSE(Exists(paths::WorkspaceDir(a.work_dir, "job-2")));

  // The copy in progress completes and verifies.
  EXPECT_TRUE(ReadAndVerify(reader.get(), ManifestOf(source)).ok());
  // Released when the stream ended: the next sweep deletes it.
  swept = a.worker->SweepNow();
  ASSERT_TRUE(swept.ok());
  EXPECT_THAT(*swept, ::testing::ElementsAre("job-1"));
  EXPECT_FALSE(Exists(paths::WorkspaceDir(a.work_dir, "job-1")));
  EXPECT_TRUE(PollUntil([&] { return scheduler_.ExpiredBy("job-1").has_value(); }));
}

TEST_F(RetentionWorkerTest, AReuseFromAnotherWorkerOfAnExpiredSourceFailsCleanly) {
  StartWorker("w-a", &clock_);
  RunningWorker& b = StartWorker("w-b", &clock_);
  const deja::v1::JobResult source = RunJob("w-a", "job-1", "echo r > r.txt", "r.txt");
  scheduler_.Ack("w-a", "job-1", 1, NowMs() + 1000);
  ASSERT_TRUE(PollUntil([&] { return HasExpiryRecord(workers_[0]->work_dir, "job-1"); }));
  clock_.Advance(absl::Seconds(1));  // expired, not swept yet

  deja::v1::Assignment reuse = Reuse("job-2", "job-1", source);
  reuse.set_source_worker_id("w-a");
  reuse.set_source_address(scheduler_.Registered("w-a")->advertise());
  scheduler_.Assign("w-b", reuse);
  auto failed = AwaitResult("job-2");
  ASSERT_TRUE(failed.has_value());
  EXPECT_EQ(failed->exit_code(), -1);
  EXPECT_TRUE(failed->verification_failed());
  EXPECT_THAT(failed->error(), HasSubstr("workspace of job-1 expired"));
  EXPECT_FALSE(Exists(paths::WorkspaceDir(b.work_dir, "job-2")));
}

}  // namespace
}  // namespace deja::worker
