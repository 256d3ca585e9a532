// AccessControl alone: tokens, roles, projects and the audit log, over an
// in-memory AccessStore and a fake clock.
#include "scheduler/access/access_control.h"

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace deja {
namespace {

using ::testing::HasSubstr;

class MemAccessStore final : public AccessStore {
 public:
  absl::Status PutToken(const deja::v1::TokenRecord& record) override {
    tokens[record.token().id()] = record;
    return absl::OkStatus();
  }
  absl::Status ScanTokens(
      const std::function<void(const deja::v1::TokenRecord&)>& visit) const override {
    for (const auto& [id, record] : tokens) visit(record);
    return absl::OkStatus();
  }
  absl::Status PutEnrollment(const deja::v1::WorkerEnrollment& enrollment) override {
    workers[enrollment.worker_id()] = enrollment;
    return absl::OkStatus();
  }
  absl::Status ScanEnrollments(
      const std::function<void(const deja::v1::WorkerEnrollment&)>& visit) const override {
    for (const auto& [id, enrollment] : workers) visit(enrollment);
    return absl::OkStatus();
  }
  absl::Status AppendAudit(const deja::v1::AuditEvent& event, uint64_t drop_seq,
                           bool /*durable*/) override {
    audit[event.seq()] = event;
    audit.erase(drop_seq);
    return absl::OkStatus();
  }
  absl::Status ScanAudit(
      const std::function<bool(const deja::v1::AuditEvent&)>& visit) const override {
    for (auto it = audit.rbegin(); it != audit.rend(); ++it) {
      if (!visit(it->second)) break;
    }
    return absl::OkStatus();
  }

  std::map<std::string, deja::v1::TokenRecord> tokens;
  std::map<std::string, deja::v1::WorkerEnrollment> workers;
  std::map<uint64_t, deja::v1::AuditEvent> audit;
};

class AccessControlTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Restart();
    auto admin = access_->EnsureAdminToken();
    ASSERT_TRUE(admin.ok()) << admin.status();
    ASSERT_TRUE(admin->has_value());
    admin_token_ = **admin;
    admin_ = Caller(admin_token_);
  }

  // A new AccessControl over the same store, as after a scheduler restart.
  void Restart() {
    access_ = std::make_unique<AccessControl>(&store_, &clock_, /*enabled=*/true);
    ASSERT_TRUE(access_->Load().ok());
  }

  deja::Caller Caller(const std::string& token) {
    auto caller = access_->Authenticate("Bearer " + token, CallInfo{"Test", "ipv4:10.0.0.7:5"});
    EXPECT_TRUE(caller.ok()) << caller.status();
    return caller.ok() ? *caller : deja::Caller{};
  }

  std::string Create(deja::v1::Role role, const std::string& project) {
    deja::v1::CreateTokenRequest request;
    request.set_role(role);
    request.set_project(project);
    auto created = access_->CreateToken(admin_, request);
    EXPECT_TRUE(created.ok()) << created.status();
    return created.ok() ? created->secret() : "";
  }

  MemAccessStore store_;
  FakeClock clock_;
  std::unique_ptr<AccessControl> access_;
  std::string admin_token_;
  deja::Caller admin_;
};

TEST_F(AccessControlTest, TheFirstAdminTokenIsMadeOnceAndOnlyItsHashIsStored) {
  EXPECT_THAT(admin_token_, ::testing::StartsWith("t1."));
  EXPECT_EQ(admin_.principal.token_id, "t1");
  EXPECT_EQ(admin_.principal.role, deja::v1::ADMIN);
  EXPECT_EQ(admin_.principal.project, "");
  EXPECT_EQ(admin_.principal.Describe(), "token t1 (every project, admin)");
  auto again = access_->EnsureAdminToken();
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again->has_value());
  const std::string secret = admin_token_.substr(3);
  ASSERT_EQ(store_.tokens.size(), 1u);
  EXPECT_THAT(store_.tokens["t1"].SerializeAsString(), ::testing::Not(HasSubstr(secret)));
  EXPECT_EQ(store_.tokens["t1"].secret_sha256().size(), 32u);
}

TEST_F(AccessControlTest, AMissingMalformedWrongOrRevokedTokenIsUnauthenticatedAndAudited) {
  const std::string reader = Create(deja::v1::READER, "ml");
  const std::string reader_id = reader.substr(0, reader.find('.'));
  ASSERT_TRUE(access_->RevokeToken(admin_, reader_id).ok());
  const size_t audited = store_.audit.size();
  struct Case {
    std::string authorization;
    std::string message;
  };
  for (const Case& c : std::vector<Case>{
           {"", "no token given"},
           {"Basic dXNlcjpwYXNz", "the authorization metadata is not `Bearer TOKEN`"},
           {"Bearer nonsense", "not a Deja token"},
           {"Bearer t1.wrongsecret", "token t1 is not valid"},
           {"Bearer t99." + admin_token_.substr(3), "token t99 is not valid"},
           {"Bearer " + reader, "token " + reader_id + " was revoked at"},
       }) {
    auto caller = access_->Authenticate(c.authorization, CallInfo{"Submit", "ipv4:1.2.3.4:5"});
    ASSERT_FALSE(caller.ok()) << c.authorization;
    EXPECT_EQ(caller.status().code(), absl::StatusCode::kUnauthenticated) << c.authorization;
    EXPECT_THAT(caller.status().message(), HasSubstr(c.message));
  }
  EXPECT_EQ(store_.audit.size(), audited + 6);
  const deja::v1::AuditEvent& last = store_.audit.rbegin()->second;
  EXPECT_TRUE(last.denied());
  EXPECT_EQ(last.method(), "Submit");
  EXPECT_EQ(last.peer(), "ipv4:1.2.3.4:5");
  EXPECT_THAT(last.principal(), HasSubstr("(project ml, reader)"));
}

TEST_F(AccessControlTest, EachRoleHoldsItsRightsOnItsProjectOnly) {
  const deja::Caller reader = Caller(Create(deja::v1::READER, "ml"));
  const deja::Caller submitter = Caller(Create(deja::v1::SUBMITTER, "ml"));
  const deja::Caller admin = Caller(Create(deja::v1::ADMIN, "ml"));
  const deja::Caller everywhere = Caller(Create(deja::v1::SUBMITTER, ""));
  const deja::Caller worker = Caller(Create(deja::v1::WORKER, ""));
  struct Case {
    const deja::Caller* caller;
    Right right;
    std::string project;
    bool allowed;
  };
  for (const Case& c : std::vector<Case>{
           {&reader, Right::kRead, "ml", true},
           {&reader, Right::kSubmit, "ml", false},
           {&reader, Right::kRead, "vision", false},
           {&reader, Right::kRead, "", false},
           {&submitter, Right::kSubmit, "ml", true},
           {&submitter, Right::kAdmin, "ml", false},
           {&admin, Right::kAdmin, "ml", true},
           {&admin, Right::kAdmin, "", false},
           {&admin, Right::kWorker, "", false},
           {&everywhere, Right::kSubmit, "vision", true},
           {&everywhere, Right::kRead, "", true},
           {&everywhere, Right::kAdmin, "vision", false},
           {&worker, Right::kWorker, "", true},
           {&worker, Right::kRead, "ml", false},
           {&admin_, Right::kAdmin, "", true},
           {&admin_, Right::kWorker, "", false},
       }) {
    absl::Status status = access_->Authorize(*c.caller, c.right, c.project);
    EXPECT_EQ(status.ok(), c.allowed)
        << c.caller->principal.Describe() << " right " << static_cast<int>(c.right) << " on '"
        << c.project << "': " << status;
    if (!c.allowed) {
      EXPECT_EQ(status.code(), absl::StatusCode::kPermissionDenied);
    }
  }
  const std::string id = reader.principal.token_id;
  EXPECT_EQ(access_->Authorize(reader, Right::kSubmit, "ml").message(),
            "token " + id + " (project ml, reader) cannot submit");
  EXPECT_EQ(access_->Authorize(reader, Right::kRead, "vision").message(),
            "token " + id + " (project ml, reader) cannot read project vision");
  EXPECT_EQ(access_->Authorize(worker, Right::kRead, "ml").message(),
            "token " + worker.principal.token_id + " (worker) cannot read");
  // A call that names no project is of the caller's own.
  EXPECT_EQ(AccessControl::Scope(reader, ""), "ml");
  EXPECT_EQ(AccessControl::Scope(reader, "vision"), "vision");
  EXPECT_EQ(AccessControl::Scope(everywhere, ""), "");
}

TEST_F(AccessControlTest, AProjectAdminManagesOnlyItsProjectsTokens) {
  const deja::Caller ml_admin = Caller(Create(deja::v1::ADMIN, "ml"));
  deja::v1::CreateTokenRequest request;
  request.set_role(deja::v1::READER);
  request.set_project("ml");
  request.set_description("alice");
  auto created = access_->CreateToken(ml_admin, request);
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_EQ(created->token().created_by(), ml_admin.principal.token_id);
  request.set_project("vision");
  EXPECT_EQ(access_->CreateToken(ml_admin, request).status().code(),
            absl::StatusCode::kPermissionDenied);
  request.set_project("");
  request.set_role(deja::v1::WORKER);
  EXPECT_EQ(access_->CreateToken(ml_admin, request).status().code(),
            absl::StatusCode::kPermissionDenied);
  request.set_project("ml");
  EXPECT_EQ(access_->CreateToken(admin_, request).status().code(),
            absl::StatusCode::kInvalidArgument);  // a worker token has no project
  request.set_role(deja::v1::ROLE_UNSPECIFIED);
  EXPECT_EQ(access_->CreateToken(admin_, request).status().code(),
            absl::StatusCode::kInvalidArgument);
  request.set_role(deja::v1::READER);
  request.set_project("Not A Project!");
  EXPECT_EQ(access_->CreateToken(admin_, request).status().code(),
            absl::StatusCode::kInvalidArgument);

  const std::string vision = Create(deja::v1::READER, "vision");
  const std::string vision_id = vision.substr(0, vision.find('.'));
  auto listed = access_->ListTokens(ml_admin, {});
  ASSERT_TRUE(listed.ok());
  for (const auto& token : listed->tokens()) EXPECT_EQ(token.project(), "ml");
  EXPECT_EQ(listed->tokens_size(), 2);  // the ml admin and alice's reader
  EXPECT_EQ(access_->RevokeToken(ml_admin, vision_id).status().code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(access_->ListAudit(ml_admin, {}).status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(access_->RevokeToken(admin_, "t404").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(AccessControlTest, RevocationAndIdsSurviveARestart) {
  const std::string reader = Create(deja::v1::READER, "ml");
  const std::string id = reader.substr(0, reader.find('.'));
  clock_.Advance(absl::Minutes(5));
  auto revoked = access_->RevokeToken(admin_, id);
  ASSERT_TRUE(revoked.ok());
  EXPECT_EQ(revoked->revoked_at_ms(), absl::ToUnixMillis(clock_.Now()));
  Restart();
  EXPECT_EQ(access_->Authenticate("Bearer " + reader, {}).status().code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_TRUE(access_->Authenticate("Bearer " + admin_token_, {}).ok());
  const std::string next = Create(deja::v1::READER, "ml");
  EXPECT_THAT(next, ::testing::StartsWith("t3."));  // t2 is never given again
  auto audit = access_->ListAudit(admin_, {});
  ASSERT_TRUE(audit.ok());
  ASSERT_GE(audit->events_size(), 3);
  EXPECT_GT(audit->events(0).seq(), audit->events(1).seq());  // newest first
  EXPECT_THAT(audit->events(0).detail(), HasSubstr("created token t3 (project ml, reader)"));
}

TEST_F(AccessControlTest, TheAdminTokenIsRemadeWhenNoneIsInForce) {
  ASSERT_TRUE(access_->RevokeToken(admin_, "t1").ok());
  auto admin = access_->EnsureAdminToken();
  ASSERT_TRUE(admin.ok());
  ASSERT_TRUE(admin->has_value());
  EXPECT_THAT(**admin, ::testing::StartsWith("t2."));
}

TEST_F(AccessControlTest, AnExportedWorkerTokenIsKeptWhileInForce) {
  auto first = access_->EnsureWorkerToken("", "compose");
  ASSERT_TRUE(first.ok());
  auto kept = access_->EnsureWorkerToken(*first, "compose");
  ASSERT_TRUE(kept.ok());
  EXPECT_EQ(*kept, *first);
  EXPECT_EQ(Caller(*first).principal.role, deja::v1::WORKER);
  // Not a worker token, or revoked: a new one.
  auto replaced = access_->EnsureWorkerToken(admin_token_, "compose");
  ASSERT_TRUE(replaced.ok());
  EXPECT_NE(*replaced, admin_token_);
  ASSERT_TRUE(access_->RevokeToken(admin_, replaced->substr(0, replaced->find('.'))).ok());
  auto renewed = access_->EnsureWorkerToken(*replaced, "compose");
  ASSERT_TRUE(renewed.ok());
  EXPECT_NE(*renewed, *replaced);
}

TEST_F(AccessControlTest, AWorkerIdBelongsToTheFirstToEnrollItAndToItsCertificate) {
  const deja::Caller worker = Caller(Create(deja::v1::WORKER, ""));
  const deja::Caller other_worker = Caller(Create(deja::v1::WORKER, ""));
  EXPECT_EQ(access_->Enroll(admin_, "w1", "", "cert").code(), absl::StatusCode::kPermissionDenied);
  ASSERT_TRUE(access_->Enroll(worker, "w1", "", "cert-1").ok());
  // Someone else, even with the same token, cannot take w1 without its certificate.
  absl::Status taken = access_->Enroll(other_worker, "w1", "", "cert-2");
  EXPECT_EQ(taken.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(taken.message(),
              HasSubstr("worker id w1 is enrolled already (by token " + worker.principal.token_id));
  EXPECT_EQ(access_->Enroll(worker, "w1", "w2", "cert-2").code(),
            absl::StatusCode::kPermissionDenied);
  // Its holder renews it.
  EXPECT_TRUE(access_->Enroll(worker, "w1", "w1", "cert-3").ok());
  Restart();
  EXPECT_EQ(access_->Enroll(other_worker, "w1", "", "cert-4").code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(store_.workers["w1"].token_id(), worker.principal.token_id);

  EXPECT_TRUE(access_->CheckWorkerIdentity(worker, "w1", "w1").ok());
  EXPECT_THAT(
      access_->CheckWorkerIdentity(worker, "w1", "w2").message(),
      HasSubstr("the certificate presented is worker w1's: it cannot register as worker w2"));
  EXPECT_THAT(access_->CheckWorkerIdentity(worker, "", "w1").message(),
              HasSubstr("connects without a worker certificate"));
}

TEST(AccessControlOffTest, WithoutAccessControlEveryCallerIsTheClusterAdmin) {
  AccessControl access(nullptr, nullptr, /*enabled=*/false);
  auto caller = access.Authenticate("", CallInfo{"Submit", "ipv4:1.2.3.4:5"});
  ASSERT_TRUE(caller.ok());
  EXPECT_EQ(caller->principal.Describe(), "anyone (--insecure)");
  EXPECT_TRUE(access.Authorize(*caller, Right::kAdmin, "").ok());
  EXPECT_EQ(access.CreateToken(*caller, {}).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(access.ListAudit(*caller, {}).status().code(), absl::StatusCode::kFailedPrecondition);
  access.AuditAction(*caller, "nothing is stored");
}

}  // namespace
}  // namespace deja
