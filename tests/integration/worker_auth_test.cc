// Workers and access control end to end (issue 13): only worker
// credentials connect as a worker, an id is bound to its certificate, a
// worker reads only its jobs' blobs and copies only the workspaces it is
// sent to copy, and a root worker's jobs run unprivileged.
#include <grpcpp/create_channel.h>
#include <grpcpp/grpcpp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/blob_client.h"
#include "common/credentials.h"
#include "common/grpc_status.h"
#include "common/tickets.h"
#include "common/tls.h"
#include "deja/v1/content.pb.h"
#include "deja/v1/worker.grpc.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/auth_fixture.h"
#include "tests/integration/cluster.h"

namespace deja::testing {
namespace {

using ::testing::HasSubstr;

TEST_F(AuthTest, OnlyAWorkerTokenConnectsAsAWorker) {
  // The admin token is not a worker's: the worker is refused and says why.
  cluster_->StartWorker("w2", 1, {"--token_file=" + cluster_->access().AdminTokenFile()});
  const std::string log = cluster_->root() + "/worker-w2.log";
  EXPECT_TRUE(PollUntil([&] {
    return absl::StrContains(ReadFile(log), "(every project, admin) cannot act as a worker");
  })) << "worker w2 log does not say why it was refused";
  auto workers = cluster_->client().ListWorkers();
  ASSERT_TRUE(workers.ok());
  for (const auto& w : *workers) EXPECT_NE(w.worker_id(), "w2");
}

// Registers as `worker_id` over a Connect stream sending `token` and
// presenting `client` (none when empty); returns how the stream ended.
absl::Status RegisterAs(Cluster& cluster, const std::string& token, const tls::KeyCert& client,
                        const std::string& worker_id) {
  ClientSecurity security = cluster.access().Security();
  security.token = token;
  security.client = client;
  auto stub = deja::v1::WorkerService::NewStub(
      grpc::CreateChannel(cluster.address(), MakeChannelCredentials(security)));
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(20)));
  auto stream = stub->Connect(&ctx);
  deja::v1::WorkerMessage hello;
  hello.mutable_register_()->set_worker_id(worker_id);
  hello.mutable_register_()->set_slots(1);
  stream->Write(hello);
  deja::v1::SchedulerMessage reply;
  if (stream->Read(&reply)) {
    ctx.TryCancel();  // registered: it would be given work
    return absl::OkStatus();
  }
  return FromGrpcStatus(stream->Finish());
}

// The key and certificate `worker` enrolled for when it started (in its
// work dir's worker.pem: key, certificate, then the CA's).
tls::KeyCert EnrolledCert(const Cluster& cluster, const std::string& worker) {
  const std::string pem = ReadFile(cluster.WorkDir(worker) + "/meta/tls/worker.pem");
  const size_t cert = pem.find("-----BEGIN CERTIFICATE-----");
  EXPECT_NE(cert, std::string::npos) << pem;
  if (cert == std::string::npos) return {};
  return tls::KeyCert{pem.substr(0, cert), pem.substr(cert)};
}

TEST_F(AuthTest, AWorkerIdIsBoundToTheCertificateItEnrolledFor) {
  const tls::KeyCert w1 = EnrolledCert(*cluster_, "w1");
  auto info = tls::Inspect(w1.cert_pem);
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->common_name, "w1");
  EXPECT_TRUE(tls::Verify(w1.cert_pem, ReadFile(cluster_->CaFile()), absl::Now()).ok());

  const std::string worker_token = NewToken(deja::v1::WORKER, "");
  // A worker token without a certificate, or with w1's to register as w2.
  absl::Status bare = RegisterAs(*cluster_, worker_token, {}, "w1");
  EXPECT_EQ(bare.code(), absl::StatusCode::kPermissionDenied) << bare;
  EXPECT_THAT(bare.message(), HasSubstr("connects without a worker certificate"));
  absl::Status other = RegisterAs(*cluster_, worker_token, w1, "w2");
  EXPECT_EQ(other.code(), absl::StatusCode::kPermissionDenied) << other;
  EXPECT_THAT(other.message(), HasSubstr("the certificate presented is worker w1's"));

  // Another daemon claiming w1 (its own work dir, so no certificate): its
  // enrollment is refused and w1 keeps its connection.
  const std::string impostor_dir = cluster_->root() + "/impostor";
  std::filesystem::create_directories(impostor_dir);
  cluster_->StartWorker("impostor", 1, {"--id=w1", "--work_dir=" + impostor_dir});
  EXPECT_TRUE(PollUntil([&] {
    return absl::StrContains(ReadFile(cluster_->root() + "/worker-impostor.log"),
                             "worker id w1 is enrolled already");
  })) << ReadFile(cluster_->root() + "/worker-impostor.log");
  auto workers = cluster_->client().ListWorkers();
  ASSERT_TRUE(workers.ok());
  ASSERT_EQ(workers->size(), 1u);
  EXPECT_TRUE((*workers)[0].connected());
  // w1 itself comes back with its certificate after a crash.
  cluster_->KillWorker("w1");
  cluster_->StartWorker("w1");
  EXPECT_TRUE(PollUntil([&] {
    auto now = cluster_->client().ListWorkers();
    return now.ok() && now->size() == 1 && (*now)[0].connected();
  }));
}

TEST_F(AuthTest, AWorkerDownloadsOnlyTheBlobsOfTheJobsAssignedToIt) {
  // A job with a directory input: w1 downloads the tree and the blobs below
  // it with the assignment's ticket.
  const std::string data = cluster_->root() + "/data";
  std::filesystem::create_directories(data + "/sub");
  WriteFile(data + "/sub/a.txt", "deep input\n");
  CommandResult run =
      RunCommand(DEJA_CLI_BIN,
                 {"run", "--project", "victim", "--input", "data=" + data, "--output", "copy.txt",
                  "--", "sh", "-c", "cat inputs/data/sub/a.txt > copy.txt"},
                 cluster_->CliEnv());
  ASSERT_EQ(run.exit_code, 0) << run.out << run.err;
  auto jobs = cluster_->client().ListJobs("victim", deja::v1::SUCCEEDED, 0);
  ASSERT_TRUE(jobs.ok()) << jobs.status();
  const auto copied = std::find_if(jobs->begin(), jobs->end(), [](const deja::v1::Job& job) {
    return job.spec().inputs_size() == 1 && job.outputs_size() == 1;
  });
  ASSERT_NE(copied, jobs->end());
  EXPECT_EQ(ReadFile(cluster_->Workspace("w1", copied->job_id()) + "/copy.txt"), "deep input\n");

  // w1's own certificate and a worker token, asking for the victim's
  // output (no job of w1 needs it now).
  auto victim = cluster_->client().GetJob(victim_job_);
  ASSERT_TRUE(victim.ok() && victim->outputs_size() == 1) << victim.status();
  deja::v1::BlobRef output;
  output.set_digest(victim->outputs(0).digest());
  output.set_size(victim->outputs(0).size());
  ClientSecurity security = cluster_->access().Security();
  security.token = NewToken(deja::v1::WORKER, "");
  security.client = EnrolledCert(*cluster_, "w1");
  const BlobClient worker(
      grpc::CreateChannel(cluster_->address(), MakeChannelCredentials(security)));
  auto bare = worker.DownloadBytes(output);
  EXPECT_EQ(bare.status().code(), absl::StatusCode::kUnauthenticated) << bare.status();
  EXPECT_THAT(bare.status().message(),
              HasSubstr("no ticket: a worker downloads only the blobs of the jobs assigned to it"));
  // A ticket for it signed by another CA, and one the cluster's CA signed
  // for another blob (made here with the key the scheduler keeps).
  auto own_ca = tls::CreateCa("a worker's own CA", absl::Hours(1));
  ASSERT_TRUE(own_ca.ok()) << own_ca.status();
  deja::v1::Assignment wanting;
  wanting.set_job_id("j999");
  deja::v1::InputRef* input = wanting.add_inputs();
  input->set_kind("file");
  input->set_digest(output.digest());
  ASSERT_TRUE(
      StampBlobTicket(tls::Signer::Create(own_ca->key_pem).value(), "w1", absl::Now(), &wanting)
          .ok());
  auto forged = worker.DownloadBytes(output, wanting.blob_ticket());
  EXPECT_EQ(forged.status().code(), absl::StatusCode::kUnauthenticated) << forged.status();
  EXPECT_THAT(forged.status().message(), HasSubstr("blob ticket not signed by the cluster's CA"));
  const std::string ca_key =
      ReadFile(std::filesystem::path(cluster_->CaFile()).parent_path().string() + "/ca.key");
  input->set_digest(copied->outputs(0).digest());
  ASSERT_TRUE(
      StampBlobTicket(tls::Signer::Create(ca_key).value(), "w1", absl::Now(), &wanting).ok());
  auto other = worker.DownloadBytes(output, wanting.blob_ticket());
  EXPECT_EQ(other.status().code(), absl::StatusCode::kPermissionDenied) << other.status();
  EXPECT_THAT(other.status().message(),
              HasSubstr(absl::StrCat("blob ", output.digest(), " is not one job j999")));
  // That one ticket serves the blob it names.
  deja::v1::BlobRef copy;
  copy.set_digest(copied->outputs(0).digest());
  copy.set_size(copied->outputs(0).size());
  auto named = worker.DownloadBytes(copy, wanting.blob_ticket());
  ASSERT_TRUE(named.ok()) << named.status();
  EXPECT_EQ(*named, "deep input\n");

  auto audit = cluster_->client().ListAudit(deja::v1::ListAuditRequest());
  ASSERT_TRUE(audit.ok()) << audit.status();
  EXPECT_TRUE(std::any_of(audit->events().begin(), audit->events().end(),
                          [](const deja::v1::AuditEvent& e) {
                            return e.denied() && e.method() == "Download" &&
                                   absl::StrContains(e.detail(), "blob ticket not signed");
                          }))
      << audit->ShortDebugString();
}

TEST_F(AuthTest, AReuseOnAnotherWorkerIsPulledOverMutualTlsWithItsTicket) {
  // w1 holds the victim's workspace and is kept busy, so an identical
  // submit is copied by w2 from w1's peer service.
  deja::v1::JobSpec blocker;
  blocker.set_project("victim");
  blocker.set_memoization(deja::v1::MEMOIZATION_OFF);
  for (const char* w : {"sleep", "600"}) blocker.mutable_app()->add_command(w);
  auto blocked = cluster_->client().Submit(blocker);
  ASSERT_TRUE(blocked.ok()) << blocked.status();
  const std::string blocker_id = blocked->job().job_id();
  ASSERT_TRUE(PollUntil([&] {
    auto job = cluster_->client().GetJob(blocker_id);
    return job.ok() && job->state() == deja::v1::RUNNING;
  }));
  cluster_->StartWorker("w2");
  ASSERT_TRUE(cluster_->WaitForWorkers(2));

  deja::v1::JobSpec again;
  again.set_project("victim");
  for (const char* w : {"sh", "-c", "echo secret > out.txt"}) again.mutable_app()->add_command(w);
  again.add_outputs("out.txt");
  auto submitted = cluster_->client().Submit(again);
  ASSERT_TRUE(submitted.ok()) << submitted.status();
  auto done = cluster_->client().WaitForJob(submitted->job().job_id(), absl::Seconds(30));
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_EQ(done->state(), deja::v1::SUCCEEDED) << done->ShortDebugString();
  EXPECT_EQ(done->reused_from(), victim_job_);
  EXPECT_EQ(done->worker_id(), "w2");
  EXPECT_EQ(ReadFile(cluster_->Workspace("w2", done->job_id()) + "/out.txt"), "secret\n");
  EXPECT_THAT(ReadFile(cluster_->Workspace("w2", done->job_id()) + "/REUSED"),
              HasSubstr("source_worker=w1\nmethod=peer"));
  EXPECT_TRUE(cluster_->client().CancelJob(blocker_id).ok());
}

TEST_F(AuthTest, AWorkerStartedAsRootRunsJobsAsAnUnprivilegedUser) {
  if (geteuid() != 0) GTEST_SKIP() << "needs a worker started as root";
  deja::v1::JobSpec spec;
  spec.set_project("victim");
  spec.set_memoization(deja::v1::MEMOIZATION_OFF);
  for (const char* w : {"sh", "-c",
                        "id -u > uid.txt; id -un > user.txt; id -G > groups.txt; "
                        "touch /root-was-here 2>/dev/null; echo \"$HOME\" > home.txt"}) {
    spec.mutable_app()->add_command(w);
  }
  auto submitted = cluster_->client().Submit(spec);
  ASSERT_TRUE(submitted.ok()) << submitted.status();
  auto done = cluster_->client().WaitForJob(submitted->job().job_id(), absl::Seconds(30));
  ASSERT_TRUE(done.ok() && done->state() == deja::v1::SUCCEEDED) << done.status();
  const std::string ws = cluster_->Workspace("w1", done->job_id());
  const std::string uid(absl::StripAsciiWhitespace(ReadFile(ws + "/uid.txt")));
  EXPECT_NE(uid, "0");
  EXPECT_FALSE(uid.empty());
  EXPECT_EQ(absl::StripAsciiWhitespace(ReadFile(ws + "/user.txt")), "deja-job");
  const std::vector<std::string> groups =
      absl::StrSplit(ReadFile(ws + "/groups.txt"), absl::ByAnyChar(" \n"), absl::SkipEmpty());
  EXPECT_THAT(groups, ::testing::Not(::testing::Contains("0")));
  EXPECT_FALSE(std::filesystem::exists("/root-was-here"));
  EXPECT_EQ(absl::StripAsciiWhitespace(ReadFile(ws + "/home.txt")), ws);
  // Taken back by the worker once the job ended: no later job can change
  // what reuses copy.
  struct stat st;
  ASSERT_EQ(stat((ws + "/uid.txt").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 0u);
  ASSERT_EQ(stat(ws.c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 0u);
  EXPECT_EQ(st.st_mode & 07777, 0700u);

  // Root jobs only when asked for twice.
  cluster_->StartWorker("w-root", 1, {"--job_user=root"});
  EXPECT_TRUE(PollUntil([&] {
    return absl::StrContains(ReadFile(cluster_->root() + "/worker-w-root.log"),
                             "--job_user root: jobs would run as root, with the whole machine "
                             "theirs; give --allow_root_jobs too if that is meant");
  })) << ReadFile(cluster_->root() + "/worker-w-root.log");
}

}  // namespace
}  // namespace deja::testing
