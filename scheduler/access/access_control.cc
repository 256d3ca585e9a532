#include "scheduler/access/access_control.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/event_log.h"
#include "common/job_spec.h"

namespace deja {
namespace {

using deja::v1::Role;

constexpr size_t kSecretBytes = 32;
// The "method" of what the scheduler does itself when it starts.
constexpr char kStart[] = "start";

Caller SchedulerItself() { return Caller{Principal{}, CallInfo{kStart, "local"}}; }
constexpr char kBearer[] = "Bearer ";

std::string Sha256(absl::string_view data) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), digest);
  return std::string(reinterpret_cast<const char*>(digest), sizeof(digest));
}

const char* RoleName(Role role) {
  switch (role) {
    case deja::v1::READER:
      return "reader";
    case deja::v1::SUBMITTER:
      return "submitter";
    case deja::v1::ADMIN:
      return "admin";
    case deja::v1::WORKER:
      return "worker";
    default:
      return "no role";
  }
}

const char* Verb(Right right) {
  switch (right) {
    case Right::kRead:
      return "read";
    case Right::kSubmit:
      return "submit";
    case Right::kAdmin:
      return "administer";
    case Right::kWorker:
      return "act as a worker";
  }
  return "?";
}

// Whether `role` carries `right` (on some project).
bool Carries(Role role, Right right) {
  if (right == Right::kWorker) return role == deja::v1::WORKER;
  int rank = role == deja::v1::READER      ? 1
             : role == deja::v1::SUBMITTER ? 2
             : role == deja::v1::ADMIN     ? 3
                                           : 0;
  int need = right == Right::kRead ? 1 : right == Right::kSubmit ? 2 : 3;
  return rank >= need;
}

Principal PrincipalOf(const deja::v1::Token& token) {
  return Principal{token.id(), token.role(), token.project()};
}

// "t<N>" with N > 0.
bool IsTokenId(absl::string_view id, uint64_t* n) {
  return absl::StartsWith(id, "t") && absl::SimpleAtoi(id.substr(1), n) && *n > 0 &&
         id.substr(1).find_first_not_of("0123456789") == absl::string_view::npos;
}

}  // namespace

std::string Principal::Describe() const {
  if (token_id.empty()) return "anyone (--insecure)";
  if (role == deja::v1::WORKER) return absl::StrCat("token ", token_id, " (worker)");
  return absl::StrCat("token ", token_id, " (",
                      project.empty() ? "every project" : absl::StrCat("project ", project), ", ",
                      RoleName(role), ")");
}

AccessControl::AccessControl(AccessStore* store, Clock* clock, bool enabled)
    : store_(store), clock_(clock), enabled_(enabled) {}

absl::Status AccessControl::Load() {
  absl::MutexLock lock(&mu_);
  absl::Status status = store_->ScanTokens([this](const deja::v1::TokenRecord& record) {
    mu_.AssertHeld();
    uint64_t n = 0;
    if (IsTokenId(record.token().id(), &n)) next_token_ = std::max(next_token_, n + 1);
    tokens_[record.token().id()] = record;
  });
  if (!status.ok()) return status;
  status = store_->ScanEnrollments([this](const deja::v1::WorkerEnrollment& enrollment) {
    mu_.AssertHeld();
    enrollments_[enrollment.worker_id()] = enrollment;
  });
  if (!status.ok()) return status;
  absl::MutexLock audit_lock(&audit_mu_);
  return store_->ScanAudit([this](const deja::v1::AuditEvent& event) {
    audit_mu_.AssertHeld();
    next_audit_ = event.seq() + 1;
    return false;  // the newest is enough
  });
}

absl::StatusOr<deja::v1::CreateTokenResponse> AccessControl::NewToken(
    Role role, const std::string& project, const std::string& description,
    const std::string& created_by) {
  unsigned char secret[kSecretBytes];
  if (RAND_bytes(secret, sizeof(secret)) != 1) {
    return absl::InternalError("no random bytes for a token secret");
  }
  const std::string encoded = absl::WebSafeBase64Escape(
      absl::string_view(reinterpret_cast<const char*>(secret), sizeof(secret)));
  deja::v1::TokenRecord record;
  deja::v1::Token* token = record.mutable_token();
  token->set_role(role);
  token->set_project(project);
  token->set_description(description);
  token->set_created_at_ms(absl::ToUnixMillis(clock_->Now()));
  token->set_created_by(created_by);
  record.set_secret_sha256(Sha256(encoded));
  absl::MutexLock lock(&mu_);
  token->set_id(absl::StrCat("t", next_token_));
  if (absl::Status st = store_->PutToken(record); !st.ok()) return st;
  ++next_token_;
  tokens_[token->id()] = record;
  deja::v1::CreateTokenResponse response;
  *response.mutable_token() = *token;
  response.set_secret(absl::StrCat(token->id(), ".", encoded));
  return response;
}

std::optional<deja::v1::TokenRecord> AccessControl::Find(absl::string_view token) const {
  const size_t dot = token.find('.');
  if (dot == absl::string_view::npos) return std::nullopt;
  std::optional<deja::v1::TokenRecord> record;
  {
    absl::MutexLock lock(&mu_);
    auto it = tokens_.find(std::string(token.substr(0, dot)));
    if (it == tokens_.end()) return std::nullopt;
    record = it->second;
  }
  const std::string hash = Sha256(token.substr(dot + 1));
  if (hash.size() != record->secret_sha256().size() ||
      CRYPTO_memcmp(hash.data(), record->secret_sha256().data(), hash.size()) != 0) {
    return std::nullopt;
  }
  return record;
}

absl::StatusOr<std::optional<std::string>> AccessControl::EnsureAdminToken() {
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [id, record] : tokens_) {
      const deja::v1::Token& token = record.token();
      if (token.role() == deja::v1::ADMIN && token.project().empty() &&
          token.revoked_at_ms() == 0) {
        return std::nullopt;
      }
    }
  }
  auto created = NewToken(deja::v1::ADMIN, "", "the cluster's first admin token", "");
  if (!created.ok()) return created.status();
  Audit(SchedulerItself(), false,
        absl::StrCat("created token ", created->token().id(), " (every project, admin)"));
  return std::optional<std::string>(created->secret());
}

absl::StatusOr<std::string> AccessControl::EnsureWorkerToken(const std::string& current,
                                                             const std::string& description) {
  if (std::optional<deja::v1::TokenRecord> record = Find(current);
      record.has_value() && record->token().role() == deja::v1::WORKER &&
      record->token().revoked_at_ms() == 0) {
    return current;
  }
  auto created = NewToken(deja::v1::WORKER, "", description, "");
  if (!created.ok()) return created.status();
  Audit(SchedulerItself(), false,
        absl::StrCat("created token ", created->token().id(), " (worker): ", description));
  return created->secret();
}

absl::StatusOr<Caller> AccessControl::Authenticate(absl::string_view authorization, CallInfo call) {
  Caller caller{Principal{}, std::move(call)};
  if (!enabled_) return caller;
  caller.principal.role = deja::v1::ROLE_UNSPECIFIED;
  if (authorization.empty()) {
    return Deny(caller, absl::StatusCode::kUnauthenticated, "no token given");
  }
  if (!absl::StartsWith(authorization, kBearer)) {
    return Deny(caller, absl::StatusCode::kUnauthenticated,
                "the authorization metadata is not `Bearer TOKEN`");
  }
  const absl::string_view token = absl::StripAsciiWhitespace(authorization.substr(strlen(kBearer)));
  const absl::string_view id = token.substr(0, token.find('.'));
  std::optional<deja::v1::TokenRecord> record = Find(token);
  if (!record.has_value()) {
    uint64_t n = 0;
    return Deny(caller, absl::StatusCode::kUnauthenticated,
                IsTokenId(id, &n) ? absl::StrCat("token ", id, " is not valid")
                                  : std::string("not a Deja token"));
  }
  caller.principal = PrincipalOf(record->token());
  if (record->token().revoked_at_ms() != 0) {
    return Deny(caller, absl::StatusCode::kUnauthenticated,
                absl::StrCat("token ", id, " was revoked at ",
                             absl::FormatTime("%Y-%m-%d %H:%M:%S UTC",
                                              absl::FromUnixMillis(record->token().revoked_at_ms()),
                                              absl::UTCTimeZone())));
  }
  return caller;
}

absl::Status AccessControl::Authorize(const Caller& caller, Right right,
                                      absl::string_view project) {
  if (!enabled_) return absl::OkStatus();
  const Principal& p = caller.principal;
  if (!Carries(p.role, right)) {
    return Deny(caller, absl::StatusCode::kPermissionDenied,
                absl::StrCat(p.Describe(), " cannot ", Verb(right)));
  }
  if (right == Right::kWorker || p.project.empty() || p.project == project) {
    return absl::OkStatus();
  }
  return Deny(caller, absl::StatusCode::kPermissionDenied,
              absl::StrCat(p.Describe(), " cannot ", Verb(right), " ",
                           project.empty() ? std::string("every project")
                                           : absl::StrCat("project ", project)));
}

std::string AccessControl::Scope(const Caller& caller, const std::string& project) {
  return project.empty() ? caller.principal.project : project;
}

absl::StatusOr<deja::v1::CreateTokenResponse> AccessControl::CreateToken(
    const Caller& by, const deja::v1::CreateTokenRequest& request) {
  if (!enabled_) {
    return absl::FailedPreconditionError("the scheduler runs with --insecure: it has no tokens");
  }
  const Role role = request.role();
  if (role != deja::v1::READER && role != deja::v1::SUBMITTER && role != deja::v1::ADMIN &&
      role != deja::v1::WORKER) {
    return absl::InvalidArgumentError("role: must be reader, submitter, admin or worker");
  }
  if (role == deja::v1::WORKER && !request.project().empty()) {
    return absl::InvalidArgumentError(
        "project: a worker token has none (it runs every project's jobs)");
  }
  if (!request.project().empty()) {
    if (absl::Status st = ValidateName("project", request.project()); !st.ok()) return st;
  }
  if (request.description().size() > kMaxNameLength * 4) {
    return absl::InvalidArgumentError(
        absl::StrCat("description: longer than ", kMaxNameLength * 4, " bytes"));
  }
  // A worker token is the cluster admin's; any other, the project's admin's.
  if (absl::Status st = Authorize(by, Right::kAdmin, request.project()); !st.ok()) return st;
  auto created = NewToken(role, request.project(), request.description(), by.principal.token_id);
  if (!created.ok()) return created.status();
  Audit(by, false,
        absl::StrCat("created ", PrincipalOf(created->token()).Describe(),
                     request.description().empty() ? "" : ": ", request.description()));
  return created;
}

absl::StatusOr<deja::v1::ListTokensResponse> AccessControl::ListTokens(
    const Caller& by, const deja::v1::ListTokensRequest& request) {
  if (!enabled_) {
    return absl::FailedPreconditionError("the scheduler runs with --insecure: it has no tokens");
  }
  if (absl::Status st = Authorize(by, Right::kAdmin, by.principal.project); !st.ok()) return st;
  deja::v1::ListTokensResponse response;
  absl::MutexLock lock(&mu_);
  std::vector<const deja::v1::Token*> tokens;
  for (const auto& [id, record] : tokens_) {
    const deja::v1::Token& token = record.token();
    if (!by.principal.project.empty() && token.project() != by.principal.project) continue;
    if (!request.include_revoked() && token.revoked_at_ms() != 0) continue;
    tokens.push_back(&token);
  }
  // In the order they were made: t2 before t10.
  std::sort(tokens.begin(), tokens.end(), [](const auto* a, const auto* b) {
    return std::make_pair(a->id().size(), a->id()) < std::make_pair(b->id().size(), b->id());
  });
  for (const deja::v1::Token* token : tokens) *response.add_tokens() = *token;
  return response;
}

absl::StatusOr<deja::v1::Token> AccessControl::RevokeToken(const Caller& by,
                                                           const std::string& id) {
  if (!enabled_) {
    return absl::FailedPreconditionError("the scheduler runs with --insecure: it has no tokens");
  }
  deja::v1::TokenRecord record;
  {
    absl::MutexLock lock(&mu_);
    auto it = tokens_.find(id);
    if (it == tokens_.end()) return absl::NotFoundError(absl::StrCat("no token ", id));
    record = it->second;
  }
  if (absl::Status st = Authorize(by, Right::kAdmin, record.token().project()); !st.ok()) {
    return st;
  }
  if (record.token().revoked_at_ms() != 0) return record.token();
  record.mutable_token()->set_revoked_at_ms(absl::ToUnixMillis(clock_->Now()));
  {
    absl::MutexLock lock(&mu_);
    if (absl::Status st = store_->PutToken(record); !st.ok()) return st;
    tokens_[id] = record;
  }
  Audit(by, false, absl::StrCat("revoked ", PrincipalOf(record.token()).Describe()));
  return record.token();
}

absl::StatusOr<deja::v1::ListAuditResponse> AccessControl::ListAudit(
    const Caller& by, const deja::v1::ListAuditRequest& request) {
  if (!enabled_) {
    return absl::FailedPreconditionError(
        "the scheduler runs with --insecure: it keeps no audit log");
  }
  if (absl::Status st = Authorize(by, Right::kAdmin, ""); !st.ok()) return st;
  deja::v1::ListAuditResponse response;
  const uint32_t limit = request.limit() == 0 ? 100 : request.limit();
  absl::Status status = store_->ScanAudit([&](const deja::v1::AuditEvent& event) {
    if (request.denied_only() && !event.denied()) return true;
    *response.add_events() = event;
    return static_cast<uint32_t>(response.events_size()) < limit;
  });
  if (!status.ok()) return status;
  return response;
}

void AccessControl::AuditAction(const Caller& by, const std::string& detail) {
  if (enabled_) Audit(by, false, detail);
}

absl::Status AccessControl::Enroll(const Caller& caller, const std::string& worker_id,
                                   const std::string& presented_id, const std::string& cert_pem) {
  if (!enabled_) {
    return absl::FailedPreconditionError(
        "the scheduler runs with --insecure: workers connect without certificates");
  }
  if (absl::Status st = Authorize(caller, Right::kWorker, ""); !st.ok()) return st;
  deja::v1::WorkerEnrollment enrollment;
  enrollment.set_worker_id(worker_id);
  enrollment.set_token_id(caller.principal.token_id);
  enrollment.set_enrolled_at_ms(absl::ToUnixMillis(clock_->Now()));
  enrollment.set_cert_sha256(Sha256(cert_pem));
  // Held by another unless the caller proves it holds the id.
  std::optional<deja::v1::WorkerEnrollment> holder;
  {
    absl::MutexLock lock(&mu_);
    if (auto it = enrollments_.find(worker_id); it != enrollments_.end()) holder = it->second;
    if (!holder.has_value() || presented_id == worker_id) {
      if (absl::Status st = store_->PutEnrollment(enrollment); !st.ok()) return st;
      enrollments_[worker_id] = enrollment;
    }
  }
  const bool renewal = holder.has_value();
  if (renewal && presented_id != worker_id) {
    return Deny(
        caller, absl::StatusCode::kPermissionDenied,
        absl::StrCat(
            "worker id ", worker_id, " is enrolled already (by token ", holder->token_id(), " at ",
            absl::FormatTime("%Y-%m-%d %H:%M:%S UTC",
                             absl::FromUnixMillis(holder->enrolled_at_ms()), absl::UTCTimeZone()),
            "): only a worker holding its certificate may enroll it again"));
  }
  Audit(
      caller, false,
      absl::StrCat(renewal ? "renewed the certificate of worker " : "enrolled worker ", worker_id));
  return absl::OkStatus();
}

absl::Status AccessControl::CheckWorkerIdentity(const Caller& caller,
                                                const std::string& presented_id,
                                                const std::string& worker_id) {
  if (!enabled_) return absl::OkStatus();
  if (presented_id.empty()) {
    return Deny(caller, absl::StatusCode::kPermissionDenied,
                absl::StrCat("worker ", worker_id,
                             " connects without a worker certificate: it enrolls first "
                             "(WorkerService.Enroll)"));
  }
  if (presented_id != worker_id) {
    return Deny(caller, absl::StatusCode::kPermissionDenied,
                absl::StrCat("the certificate presented is worker ", presented_id,
                             "'s: it cannot register as worker ", worker_id));
  }
  return absl::OkStatus();
}

absl::Status AccessControl::Deny(const Caller& caller, absl::StatusCode code,
                                 const std::string& why) {
  Audit(caller, true, why);
  return absl::Status(code, why);
}

void AccessControl::Audit(const Caller& caller, bool denied, const std::string& detail) {
  deja::v1::AuditEvent event;
  event.set_time_ms(absl::ToUnixMillis(clock_->Now()));
  event.set_peer(caller.call.peer);
  event.set_principal(caller.call.method == kStart ? std::string("the scheduler")
                      : caller.principal.role == deja::v1::ROLE_UNSPECIFIED
                          ? std::string("no valid token")
                          : caller.principal.Describe());
  event.set_method(caller.call.method);
  event.set_denied(denied);
  event.set_detail(detail);
  absl::MutexLock lock(&audit_mu_);
  event.set_seq(next_audit_++);
  const uint64_t drop = event.seq() > kMaxAuditEvents ? event.seq() - kMaxAuditEvents : 0;
  // A denial is not worth a disk sync (a flood of them must not slow the
  // scheduler down); an admin action is.
  absl::Status stored = store_->AppendAudit(event, drop, /*durable=*/!denied);
  const std::string note =
      stored.ok() ? std::string() : absl::StrCat(" (not stored: ", stored.message(), ")");
  LogEvent(absl::StrCat("audit: ", denied ? "denied" : "done", " ", event.method(), " from ",
                        event.peer(), " by ", event.principal(), ": ", event.detail(), note),
           {}, {{"event", "audit"}, {"denied", denied ? "true" : "false"}});
}

}  // namespace deja
