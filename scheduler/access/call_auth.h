// The gRPC side of AccessControl: who a server call comes from (its
// `authorization` metadata and peer address), and a stream refused before
// it starts.
#ifndef DEJA_SCHEDULER_ACCESS_CALL_AUTH_H_
#define DEJA_SCHEDULER_ACCESS_CALL_AUTH_H_

#include <grpcpp/server_context.h>
#include <grpcpp/support/server_callback.h>

#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "common/grpc_status.h"
#include "scheduler/access/access_control.h"

namespace deja {

// The caller of `ctx`, authenticated (UNAUTHENTICATED, audited, when not).
absl::StatusOr<Caller> Authenticate(AccessControl* access, const grpc::ServerContextBase& ctx,
                                    const char* method);

// Authenticated, and holding `right` on `project`; with `project` nullopt,
// on some project (the caller checks the project of what the call names
// once it has looked it up).
absl::StatusOr<Caller> Admit(AccessControl* access, const grpc::ServerContextBase& ctx,
                             const char* method, Right right,
                             const std::optional<std::string>& project);

// A streaming call refused before it starts: finishes with `status` at once.
template <typename Reactor>
class Refused final : public Reactor {
 public:
  explicit Refused(const absl::Status& status) { this->Finish(ToGrpcStatus(status)); }
  void OnDone() override { delete this; }
};

}  // namespace deja

#endif  // DEJA_SCHEDULER_ACCESS_CALL_AUTH_H_
