// AccessControl: who may call the scheduler, and the audit log of what was
// refused or administered (docs/security.md).
//
// A token is "t<N>.<secret>": the id names its record, the secret (32
// random bytes, base64url) proves it is held. Only the SHA-256 of the secret
// is stored (AccessStore); it is compared in constant time. A token has one
// role (deja.v1.Role) on one project, or on every project (no project):
//
//   right          reader  submitter  admin  worker
//   read           yes     yes        yes    -
//   submit         -       yes        yes    -
//   administer     -       -          yes    -
//   act as worker  -       -          -      yes
//
// on the token's project only, unless it has none. Administering covers
// project settings, memo evictions, and the tokens of the token's projects;
// worker tokens and the audit log need an admin token of every project (the
// cluster admin). Without access control (`enabled` false: the scheduler
// runs with --insecure), every caller is the cluster admin and nothing is
// audited.
//
// Every refusal (UNAUTHENTICATED or PERMISSION_DENIED) and every admin
// action is an AuditEvent: kept in the store (the newest kMaxAuditEvents)
// and printed to stderr.
//
// Thread-safety: thread-safe; called from gRPC's threads and the event loop.
#ifndef DEJA_SCHEDULER_ACCESS_ACCESS_CONTROL_H_
#define DEJA_SCHEDULER_ACCESS_ACCESS_CONTROL_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "common/clock.h"
#include "deja/v1/access.pb.h"
#include "scheduler/access/access_store.h"

namespace deja {

enum class Right { kRead, kSubmit, kAdmin, kWorker };

// Who a call comes from.
struct Principal {
  std::string token_id;  // empty without access control
  deja::v1::Role role = deja::v1::ADMIN;
  std::string project;  // empty: every project
  // "token t3 (project ml, reader)", "token t1 (every project, admin)",
  // "token t5 (worker)", "anyone (--insecure)".
  std::string Describe() const;
};

// Where a call comes from and what it is, for the audit log.
struct CallInfo {
  std::string method;  // "Submit"
  std::string peer;    // "ipv4:10.0.0.7:51234"
};

struct Caller {
  Principal principal;
  CallInfo call;
};

class AccessControl {
 public:
  static constexpr uint64_t kMaxAuditEvents = 100'000;

  // `store` and `clock` must outlive this. Without access control
  // (`enabled` false) neither is used: both may be null.
  AccessControl(AccessStore* store, Clock* clock, bool enabled);

  // Reads the tokens and the audit log's position. Call once, first.
  absl::Status Load();

  bool enabled() const { return enabled_; }

  // When no admin token of every project is in force (first start, or all
  // revoked), creates one and returns the token, to be handed to the
  // operator once; else nullopt.
  absl::StatusOr<std::optional<std::string>> EnsureAdminToken();
  // `current` if it is a worker token in force, else a new worker token
  // (described by `description`).
  absl::StatusOr<std::string> EnsureWorkerToken(const std::string& current,
                                                const std::string& description);

  // The caller of a call whose `authorization` metadata is `authorization`
  // ("Bearer TOKEN"; empty when absent). UNAUTHENTICATED, audited, when it
  // is missing, malformed, not a token in the store, or revoked.
  absl::StatusOr<Caller> Authenticate(absl::string_view authorization, CallInfo call);
  // OK when the caller holds `right` on `project` (empty: every project);
  // else PERMISSION_DENIED, audited, naming the token, its role and what it
  // cannot do ("token t3 (project ml, reader) cannot submit").
  absl::Status Authorize(const Caller& caller, Right right, absl::string_view project);
  // The project a call that names none (`project` empty: every project)
  // stands for: the caller's own, when it has one.
  static std::string Scope(const Caller& caller, const std::string& project);

  // The token RPCs (protos/deja/v1/scheduler.proto). Each is authorized
  // here and audited when it changes something.
  absl::StatusOr<deja::v1::CreateTokenResponse> CreateToken(
      const Caller& by, const deja::v1::CreateTokenRequest& request);
  absl::StatusOr<deja::v1::ListTokensResponse> ListTokens(
      const Caller& by, const deja::v1::ListTokensRequest& request);
  absl::StatusOr<deja::v1::Token> RevokeToken(const Caller& by, const std::string& id);
  absl::StatusOr<deja::v1::ListAuditResponse> ListAudit(const Caller& by,
                                                        const deja::v1::ListAuditRequest& request);

  // Records an admin action `detail` done by `by` (a project setting, an
  // eviction).
  void AuditAction(const Caller& by, const std::string& detail);

  // Workers (docs/security.md). Enroll: a worker token takes `worker_id`
  // (with the certificate `cert_pem` issued for it), which is free, or which
  // `presented_id` (the common name of the client certificate the caller
  // presented, verified by TLS; empty: none) says it holds already.
  // PERMISSION_DENIED, audited, naming the token that holds the id.
  absl::Status Enroll(const Caller& caller, const std::string& worker_id,
                      const std::string& presented_id, const std::string& cert_pem);
  // Whether a worker stream whose client certificate names `presented_id`
  // may register as `worker_id`: PERMISSION_DENIED, audited, when it
  // presents none or another id's.
  absl::Status CheckWorkerIdentity(const Caller& caller, const std::string& presented_id,
                                   const std::string& worker_id);
  // A call refused by a check made elsewhere (a worker's blob ticket):
  // audited as denied for `why`, returned with `code`.
  absl::Status Deny(const Caller& caller, absl::StatusCode code, const std::string& why);

 private:
  absl::StatusOr<deja::v1::CreateTokenResponse> NewToken(deja::v1::Role role,
                                                         const std::string& project,
                                                         const std::string& description,
                                                         const std::string& created_by);
  // The record of `token` when its secret is right; nullopt otherwise.
  std::optional<deja::v1::TokenRecord> Find(absl::string_view token) const;
  void Audit(const Caller& caller, bool denied, const std::string& detail);

  AccessStore* const store_;
  Clock* const clock_;
  const bool enabled_;

  mutable absl::Mutex mu_;
  std::map<std::string, deja::v1::TokenRecord> tokens_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, deja::v1::WorkerEnrollment> enrollments_ ABSL_GUARDED_BY(mu_);
  uint64_t next_token_ ABSL_GUARDED_BY(mu_) = 1;

  absl::Mutex audit_mu_ ABSL_ACQUIRED_AFTER(mu_);
  uint64_t next_audit_ ABSL_GUARDED_BY(audit_mu_) = 1;
};

}  // namespace deja

#endif  // DEJA_SCHEDULER_ACCESS_ACCESS_CONTROL_H_
