// Access control end to end (issue 13): a real scheduler with TLS and
// tokens, called over raw gRPC the way a rogue client would, and through
// the CLI. Every refusal has the right code and a message naming the
// reason, and nothing stored changes. Workers' credentials:
// worker_auth_test.cc.
#include <google/protobuf/descriptor.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/blob_client.h"
#include "common/credentials.h"
#include "common/tls.h"
#include "deja/v1/content.pb.h"
#include "deja/v1/scheduler.grpc.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/auth_fixture.h"
#include "tests/integration/cluster.h"

namespace deja::testing {
namespace {

using ::testing::HasSubstr;

// Calls `method` ("/deja.v1.Scheduler/Submit"), of any kind, with one
// request (`request`, serialized) on `channel`; returns the status it ends
// with.
grpc::Status RawCall(const std::shared_ptr<grpc::Channel>& channel, const std::string& method,
                     const std::string& request = "") {
  grpc::GenericStub stub(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(20)));
  grpc::CompletionQueue cq;
  void* tag = nullptr;
  bool ok = false;
  auto step = [&] { cq.Next(&tag, &ok); };
  std::unique_ptr<grpc::GenericClientAsyncReaderWriter> call = stub.PrepareCall(&ctx, method, &cq);
  call->StartCall(reinterpret_cast<void*>(1));
  step();
  grpc::Slice slice(request);
  grpc::ByteBuffer out(&slice, 1);
  call->Write(out, reinterpret_cast<void*>(2));
  step();
  call->WritesDone(reinterpret_cast<void*>(3));
  step();
  grpc::ByteBuffer in;
  do {
    call->Read(&in, reinterpret_cast<void*>(4));
    step();
  } while (ok);
  grpc::Status status;
  call->Finish(&status, reinterpret_cast<void*>(5));
  step();
  cq.Shutdown();
  while (cq.Next(&tag, &ok)) {
  }
  return status;
}

// Every RPC of every service the scheduler serves: "/deja.v1.Scheduler/Submit"...
std::vector<std::string> EveryMethod() {
  std::vector<std::string> methods;
  for (const char* service :
       {"deja.v1.Scheduler", "deja.v1.ContentStore", "deja.v1.WorkerService"}) {
    const auto* descriptor =
        google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(service);
    EXPECT_NE(descriptor, nullptr) << service;
    if (descriptor == nullptr) continue;
    for (int i = 0; i < descriptor->method_count(); ++i) {
      methods.push_back(absl::StrCat("/", service, "/", descriptor->method(i)->name()));
    }
  }
  return methods;
}

TEST_F(AuthTest, EveryRpcWithoutATokenOrWithARevokedOneIsUnauthenticated) {
  const std::string revoked = NewToken(deja::v1::ADMIN, "");
  ASSERT_TRUE(cluster_->client().RevokeToken(revoked.substr(0, revoked.find('.'))).ok());
  const std::vector<std::string> methods = EveryMethod();
  ASSERT_GE(methods.size(), 32u);  // 28 + 3 + 1 today
  for (const auto& [token, message] :
       {std::pair<std::string, std::string>{"", "no token given"},
        std::pair<std::string, std::string>{revoked, "was revoked at"},
        std::pair<std::string, std::string>{"t1.not-the-secret", "token t1 is not valid"}}) {
    auto channel = Channel(token);
    for (const std::string& method : methods) {
      grpc::Status status = RawCall(channel, method);
      EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED)
          << method << " with token '" << token << "': " << status.error_message();
      EXPECT_THAT(status.error_message(), HasSubstr(message)) << method;
    }
  }
  EXPECT_EQ(JobCount(), jobs_before_);
  auto audit = cluster_->client().ListAudit(deja::v1::ListAuditRequest());
  ASSERT_TRUE(audit.ok()) << audit.status();
  EXPECT_TRUE(audit->events(0).denied());
  EXPECT_THAT(audit->events(0).peer(), HasSubstr("127.0.0.1"));
}

TEST_F(AuthTest, AnotherProjectsReaderIsRefusedEveryCallOnTheVictimsProject) {
  auto channel = Channel(NewToken(deja::v1::READER, "intruder"));
  deja::v1::GetJobRequest job;
  job.set_job_id(victim_job_);
  deja::v1::GetPipelineRequest pipeline;
  pipeline.set_pipeline_id(victim_pipeline_);
  deja::v1::ListJobsRequest list;
  list.set_project("victim");
  deja::v1::GetArrayRequest array;
  array.set_array_id(victim_array_);
  deja::v1::SubmitArrayRequest submit_array;
  submit_array.mutable_spec()->set_project("victim");
  submit_array.add_elements();
  deja::v1::ListJobFilesRequest files;
  files.set_job_id(victim_job_);
  deja::v1::ReadLogsRequest logs;
  logs.set_job_id(victim_job_);
  deja::v1::GetProjectRequest project;
  project.set_project("victim");
  deja::v1::SetProjectRequest set_project;
  set_project.set_project("victim");
  set_project.set_intermediate_files_hours(1);
  deja::v1::ListMemoRequest memo;
  memo.set_project("victim");
  deja::v1::GetMemoRequest memo_of_job;
  memo_of_job.set_job_id(victim_job_);
  deja::v1::EvictMemoRequest evict;
  evict.set_project("victim");
  evict.set_app_name("sh");
  deja::v1::StatsRequest stats;
  stats.set_project("victim");
  deja::v1::SubmitRequest submit;
  submit.mutable_spec()->set_project("victim");
  for (const char* w : {"sh", "-c", "cp inputs/x stolen"}) {
    submit.mutable_spec()->mutable_app()->add_command(w);
  }
  deja::v1::SubmitPipelineRequest submit_pipeline;
  submit_pipeline.mutable_spec()->set_project("victim");
  deja::v1::RetryPipelineRequest retry;
  retry.set_pipeline_id(victim_pipeline_);
  deja::v1::ListPipelinesRequest pipelines;
  pipelines.set_project("victim");
  deja::v1::CreateTokenRequest token;
  token.set_role(deja::v1::ADMIN);
  token.set_project("victim");
  deja::v1::RevokeTokenRequest revoke;
  revoke.set_id("t1");
  const std::string s = "/deja.v1.Scheduler/";
  const std::vector<std::pair<std::string, std::string>> calls = {
      {s + "Submit", submit.SerializeAsString()},
      {s + "SubmitArray", submit_array.SerializeAsString()},
      {s + "GetArray", array.SerializeAsString()},
      {s + "GetJob", job.SerializeAsString()},
      {s + "WatchJob", job.SerializeAsString()},
      {s + "ListJobs", list.SerializeAsString()},
      {s + "ListJobFiles", files.SerializeAsString()},
      {s + "CancelJob", job.SerializeAsString()},
      {s + "ReadLogs", logs.SerializeAsString()},
      {s + "GetProject", project.SerializeAsString()},
      {s + "SetProject", set_project.SerializeAsString()},
      {s + "ListMemo", memo.SerializeAsString()},
      {s + "GetMemo", memo_of_job.SerializeAsString()},
      {s + "EvictMemo", evict.SerializeAsString()},
      {s + "Explain", job.SerializeAsString()},
      {s + "Stats", stats.SerializeAsString()},
      {s + "SubmitPipeline", submit_pipeline.SerializeAsString()},
      {s + "GetPipeline", pipeline.SerializeAsString()},
      {s + "WatchPipeline", pipeline.SerializeAsString()},
      {s + "ListPipelines", pipelines.SerializeAsString()},
      {s + "CancelPipeline", pipeline.SerializeAsString()},
      {s + "RetryPipeline", retry.SerializeAsString()},
      {s + "PlanPipeline", submit_pipeline.SerializeAsString()},
      {s + "CreateToken", token.SerializeAsString()},
      {s + "ListTokens", ""},
      {s + "RevokeToken", revoke.SerializeAsString()},
      {s + "ListAudit", ""},
      {"/deja.v1.ContentStore/Upload", ""},
      {"/deja.v1.ContentStore/FindMissingBlobs", ""},
      {"/deja.v1.WorkerService/Connect", ""},
  };
  for (const auto& [method, request] : calls) {
    grpc::Status status = RawCall(channel, method, request);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED)
        << method << ": " << status.error_message();
    EXPECT_THAT(status.error_message(), HasSubstr("(project intruder, reader) cannot")) << method;
  }
  // Nothing changed: no job, the settings and the memo entry as they were.
  EXPECT_EQ(JobCount(), jobs_before_);
  auto settings = cluster_->client().GetProject("victim");
  ASSERT_TRUE(settings.ok());
  EXPECT_NE(settings->intermediate_files_hours(), 1);
  auto entries = cluster_->client().ListMemo("victim", "", 0);
  ASSERT_TRUE(entries.ok());
  EXPECT_FALSE(entries->empty());
  // Asked for every project, the intruder sees its own only.
  auto own = Channel(NewToken(deja::v1::READER, "intruder"));
  deja::v1::ListJobsRequest all;
  grpc::ClientContext ctx;
  deja::v1::ListJobsResponse listed;
  ASSERT_TRUE(deja::v1::Scheduler::NewStub(own)->ListJobs(&ctx, all, &listed).ok());
  EXPECT_EQ(listed.jobs_size(), 0);
}

// Blobs are per project: another project learns nothing of the victim's
// output from its digest, and gets to use those bytes only by uploading
// them itself.
TEST_F(AuthTest, AnotherProjectReadsOrUsesTheVictimsBlobsOnlyWithTheirBytes) {
  auto victim = cluster_->client().GetJob(victim_job_);
  ASSERT_TRUE(victim.ok() && victim->outputs_size() == 1) << victim.status();
  deja::v1::BlobRef output;
  output.set_digest(victim->outputs(0).digest());
  output.set_size(victim->outputs(0).size());

  const BlobClient own(Channel(NewToken(deja::v1::READER, "victim")));
  auto mine = own.DownloadBytes(output);
  ASSERT_TRUE(mine.ok()) << mine.status();
  EXPECT_EQ(*mine, "secret\n");

  const BlobClient intruder(Channel(NewToken(deja::v1::SUBMITTER, "intruder")));
  auto stolen = intruder.DownloadBytes(output);
  EXPECT_EQ(stolen.status().code(), absl::StatusCode::kNotFound) << stolen.status();
  EXPECT_THAT(stolen.status().message(), HasSubstr("blob " + output.digest() + " not found"));
  auto missing = intruder.FindMissing({output});
  ASSERT_TRUE(missing.ok()) << missing.status();
  EXPECT_EQ(missing->size(), 1u) << "present, but not the intruder's: reported missing";
  deja::v1::SubmitRequest submit;
  submit.mutable_spec()->set_project("intruder");
  for (const char* w : {"cat", "inputs/x"}) submit.mutable_spec()->mutable_app()->add_command(w);
  deja::v1::InputRef* input = submit.mutable_spec()->add_inputs();
  input->set_name("x");
  input->set_kind("file");
  input->set_digest(output.digest());
  input->set_size(output.size());
  grpc::Status refused = RawCall(Channel(NewToken(deja::v1::SUBMITTER, "intruder")),
                                 "/deja.v1.Scheduler/Submit", submit.SerializeAsString());
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << refused.error_message();
  EXPECT_THAT(refused.error_message(), HasSubstr("is not in the content store; upload it first"));
  EXPECT_EQ(JobCount(), jobs_before_);

  // The content store's figures are the whole store's: a token of every
  // project sees them, one of a single project does not.
  grpc::ClientContext ctx;
  deja::v1::StatsResponse stats;
  ASSERT_TRUE(deja::v1::Scheduler::NewStub(Channel(NewToken(deja::v1::READER, "victim")))
                  ->Stats(&ctx, deja::v1::StatsRequest(), &stats)
                  .ok());
  EXPECT_FALSE(stats.has_content_store());
  auto all = cluster_->client().Stats("", 0);
  ASSERT_TRUE(all.ok()) << all.status();
  EXPECT_TRUE(all->has_content_store());

  // Uploading the same bytes proves them the intruder's too.
  ASSERT_TRUE(intruder.UploadBytes("secret\n").ok());
  auto now_own = intruder.DownloadBytes(output);
  ASSERT_TRUE(now_own.ok()) << now_own.status();
  EXPECT_EQ(*now_own, "secret\n");
}

TEST_F(AuthTest, AReaderCannotWriteItsOwnProjectAndTheCliSaysWhy) {
  const std::string reader = NewToken(deja::v1::READER, "victim");
  const std::string id = reader.substr(0, reader.find('.'));
  std::vector<std::string> env = CliEnvWith(reader);
  // Reading is fine.
  CommandResult status = RunCommand(DEJA_CLI_BIN, {"status", victim_job_}, env);
  EXPECT_EQ(status.exit_code, 0) << status.err;
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"submit", "--project", "victim", "--", "true"},
           {"cancel", victim_job_},
           {"project", "set", "victim", "--retention", "1"},
           {"cache", "evict", "--project", "victim", "--app", "sh"},
       }) {
    CommandResult r = RunCommand(DEJA_CLI_BIN, args, env);
    EXPECT_EQ(r.exit_code, 1) << args[0];
    EXPECT_THAT(r.err, HasSubstr("deja: permission denied: token " + id +
                                 " (project victim, reader) cannot"))
        << args[0];
  }
  CommandResult submit =
      RunCommand(DEJA_CLI_BIN, {"submit", "--project", "victim", "--", "true"}, env);
  EXPECT_EQ(submit.err,
            "deja: permission denied: token " + id + " (project victim, reader) cannot submit\n");
  // A submitter of the project whose spec names none submits to it.
  CommandResult own = RunCommand(DEJA_CLI_BIN, {"submit", "--json", "--", "true"},
                                 CliEnvWith(NewToken(deja::v1::SUBMITTER, "victim")));
  EXPECT_EQ(own.exit_code, 0) << own.err;
  EXPECT_THAT(own.out, HasSubstr("\"project\":\"victim\""));
  // No token at all: the CLI says how to give one.
  CommandResult none = RunCommand(DEJA_CLI_BIN, {"ls"}, CliEnvWith(""));
  EXPECT_EQ(none.exit_code, 1);
  EXPECT_THAT(none.err, HasSubstr("deja: unauthenticated: no token given"));
  EXPECT_THAT(none.err, HasSubstr("--token"));
}

TEST_F(AuthTest, APlaintextClientGetsNothingFromATlsPort) {
  ClientSecurity plain;
  plain.insecure = true;
  auto channel = grpc::CreateChannel(cluster_->address(), MakeChannelCredentials(plain));
  grpc::Status status = RawCall(channel, "/deja.v1.Scheduler/ListJobs");
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();
  // Nor does a TLS client that does not trust the cluster's CA.
  ClientSecurity untrusting;
  untrusting.ca_pem = tls::CreateCa("another CA", absl::Hours(1))->cert_pem;
  untrusting.token =
      std::string(absl::StripAsciiWhitespace(ReadFile(cluster_->access().AdminTokenFile())));
  status = RawCall(grpc::CreateChannel(cluster_->address(), MakeChannelCredentials(untrusting)),
                   "/deja.v1.Scheduler/ListJobs");
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();
}

}  // namespace
}  // namespace deja::testing

namespace deja::testing {
namespace {

// An operator's own CA and scheduler certificate: clients trust that CA, and
// workers still enroll with the cluster's own, which the scheduler trusts
// beside it.
TEST(OperatorTlsTest, AnOperatorsCertificateServesClientsAndWorkersStillEnroll) {
  TempDir dir("deja-operator-tls");
  auto ca = tls::CreateCa("Operator CA", absl::Hours(24));
  ASSERT_TRUE(ca.ok()) << ca.status();
  auto server = tls::Issue(*ca, "scheduler", {"127.0.0.1", "localhost"}, absl::Hours(24));
  ASSERT_TRUE(server.ok()) << server.status();
  WriteFile(dir.Sub("ca.crt"), ca->cert_pem);
  WriteFile(dir.Sub("server.crt"), server->cert_pem);
  WriteFile(dir.Sub("server.key"), server->key_pem);
  Cluster c({"--tls_cert=" + dir.Sub("server.crt"), "--tls_key=" + dir.Sub("server.key"),
             "--tls_ca=" + dir.Sub("ca.crt")});
  c.StartWorker("w1");
  ASSERT_TRUE(c.WaitForWorkers(1));
  deja::v1::JobSpec spec;
  for (const char* w : {"sh", "-c", "echo ok"}) spec.mutable_app()->add_command(w);
  auto submitted = c.client().Submit(spec);
  ASSERT_TRUE(submitted.ok()) << submitted.status();
  auto done = c.client().WaitForJob(submitted->job().job_id(), absl::Seconds(30));
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_EQ(done->state(), deja::v1::SUCCEEDED);

  // Bad operator material is refused at start, naming what is wrong.
  auto other = tls::Issue(*ca, "other", {"127.0.0.1"}, absl::Hours(24));
  ASSERT_TRUE(other.ok());
  WriteFile(dir.Sub("other.key"), other->key_pem);
  struct Case {
    std::vector<std::string> flags;
    std::string message;
  };
  for (const Case& bad : std::vector<Case>{
           {{"--tls_cert=" + dir.Sub("server.crt")}, "give all three, or none"},
           {{"--tls_cert=" + dir.Sub("server.crt"), "--tls_key=" + dir.Sub("other.key"),
             "--tls_ca=" + dir.Sub("ca.crt")},
            "the key is not the certificate's"},
           {{"--tls_cert=" + dir.Sub("server.crt"), "--tls_key=" + dir.Sub("server.key"),
             "--tls_ca=" + c.CaFile(), "--insecure"},
            "--insecure: serves plaintext"},
           {{"--tls_cert=" + dir.Sub("server.crt"), "--tls_key=" + dir.Sub("server.key"),
             "--tls_ca=" + dir.Sub("missing.crt")},
            "--tls_ca: "},
       }) {
    std::vector<std::string> args = {"--data_dir=" + dir.Sub("data")};
    args.insert(args.end(), bad.flags.begin(), bad.flags.end());
    CommandResult r = RunCommand(DEJA_SCHEDULER_BIN, args);
    EXPECT_EQ(r.exit_code, 2) << bad.message;
    EXPECT_THAT(r.err, HasSubstr(bad.message));
  }
}

}  // namespace
}  // namespace deja::testing
