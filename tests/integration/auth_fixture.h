// The access-control tests' fixture (auth_test.cc, worker_auth_test.cc):
// a real scheduler with TLS and tokens, worker w1, and the victim's
// project: a job that ran (so it has logs, outputs and a memo entry) and a
// pipeline.
#ifndef DEJA_TESTS_INTEGRATION_AUTH_FIXTURE_H_
#define DEJA_TESTS_INTEGRATION_AUTH_FIXTURE_H_

#include <grpcpp/create_channel.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "common/credentials.h"
#include "deja/v1/scheduler.pb.h"
#include "gtest/gtest.h"
#include "tests/integration/cluster.h"

namespace deja::testing {

class AuthTest : public ::testing::Test {
 protected:
  void SetUp() override {
    cluster_ = std::make_unique<Cluster>();
    cluster_->StartWorker("w1");
    ASSERT_TRUE(cluster_->WaitForWorkers(1));
    // The victim's project: a job that ran (so it has logs, outputs and a
    // memo entry) and a pipeline.
    deja::v1::JobSpec spec;
    spec.set_project("victim");
    for (const char* w : {"sh", "-c", "echo secret > out.txt"}) spec.mutable_app()->add_command(w);
    spec.add_outputs("out.txt");
    auto submitted = cluster_->client().Submit(spec);
    ASSERT_TRUE(submitted.ok()) << submitted.status();
    victim_job_ = submitted->job().job_id();
    auto done = cluster_->client().WaitForJob(victim_job_, absl::Seconds(30));
    ASSERT_TRUE(done.ok() && done->state() == deja::v1::SUCCEEDED) << done.status();
    deja::v1::SubmitPipelineRequest pipeline;
    pipeline.mutable_spec()->set_project("victim");
    pipeline.mutable_spec()->set_name("p");
    deja::v1::PipelineNode* node = pipeline.mutable_spec()->add_nodes();
    node->set_name("only");
    for (const char* w : {"sh", "-c", "echo x > x.txt"}) node->mutable_app()->add_command(w);
    node->add_outputs("x.txt");
    auto p = cluster_->client().SubmitPipeline(pipeline);
    ASSERT_TRUE(p.ok()) << p.status();
    victim_pipeline_ = p->pipeline_id();
    deja::v1::SubmitArrayRequest array;
    *array.mutable_spec() = spec;
    (*array.add_elements()->mutable_params())["i"] = "1";
    auto a = cluster_->client().SubmitArray(array);
    ASSERT_TRUE(a.ok()) << a.status();
    victim_array_ = a->array_id();
    jobs_before_ = JobCount();
  }

  // A new token of `role` on `project`, made with the admin token.
  std::string NewToken(deja::v1::Role role, const std::string& project) {
    deja::v1::CreateTokenRequest request;
    request.set_role(role);
    request.set_project(project);
    auto created = cluster_->client().CreateToken(request);
    EXPECT_TRUE(created.ok()) << created.status();
    return created.ok() ? created->secret() : "";
  }

  // The environment of a `deja` command with `token` (none when empty).
  std::vector<std::string> CliEnvWith(const std::string& token) {
    std::vector<std::string> env;
    for (std::string& var : cluster_->CliEnv()) {
      if (!absl::StartsWith(var, "DEJA_TOKEN_FILE=")) env.push_back(std::move(var));
    }
    env.push_back("DEJA_TOKEN=" + token);
    return env;
  }

  // A TLS channel to the scheduler sending `token` (none when empty).
  std::shared_ptr<grpc::Channel> Channel(const std::string& token) {
    ClientSecurity security = cluster_->access().Security();
    security.token = token;
    return grpc::CreateChannel(cluster_->address(), MakeChannelCredentials(security));
  }

  size_t JobCount() {
    auto jobs = cluster_->client().ListJobs("", deja::v1::JOB_STATE_UNSPECIFIED, 0);
    EXPECT_TRUE(jobs.ok()) << jobs.status();
    return jobs.ok() ? jobs->size() : 0;
  }

  std::unique_ptr<Cluster> cluster_;
  std::string victim_job_;
  std::string victim_pipeline_;
  std::string victim_array_;
  size_t jobs_before_ = 0;
};

}  // namespace deja::testing

#endif  // DEJA_TESTS_INTEGRATION_AUTH_FIXTURE_H_
