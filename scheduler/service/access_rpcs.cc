// SchedulerService's token and audit RPCs (see scheduler_service.h). They
// do not touch the core: AccessControl keeps its own records, so they run
// on the gRPC thread and finish at once (each write is synced first).
#include <utility>

#include "common/grpc_status.h"
#include "scheduler/service/scheduler_service.h"

namespace deja {
namespace {

// Authenticates `ctx`'s call `method`, then finishes it with what
// `fn(caller)` (which authorizes it) returns, its value in `response`.
template <typename Response, typename Fn>
grpc::ServerUnaryReactor* AccessCall(AccessControl* access, grpc::CallbackServerContext* ctx,
                                     const char* method, Response* response, Fn fn) {
  auto* reactor = ctx->DefaultReactor();
  auto caller = Authenticate(access, *ctx, method);
  absl::StatusOr<Response> result =
      caller.ok() ? fn(*caller) : absl::StatusOr<Response>(caller.status());
  const absl::Status status = result.status();
  if (result.ok()) *response = *std::move(result);
  reactor->Finish(ToGrpcStatus(status));
  return reactor;
}

}  // namespace

grpc::ServerUnaryReactor* SchedulerService::CreateToken(grpc::CallbackServerContext* ctx,
                                                        const deja::v1::CreateTokenRequest* request,
                                                        deja::v1::CreateTokenResponse* response) {
  return AccessCall(access_, ctx, "CreateToken", response,
                    [&](const Caller& caller) { return access_->CreateToken(caller, *request); });
}

grpc::ServerUnaryReactor* SchedulerService::ListTokens(grpc::CallbackServerContext* ctx,
                                                       const deja::v1::ListTokensRequest* request,
                                                       deja::v1::ListTokensResponse* response) {
  return AccessCall(access_, ctx, "ListTokens", response,
                    [&](const Caller& caller) { return access_->ListTokens(caller, *request); });
}

grpc::ServerUnaryReactor* SchedulerService::RevokeToken(grpc::CallbackServerContext* ctx,
                                                        const deja::v1::RevokeTokenRequest* request,
                                                        deja::v1::Token* response) {
  return AccessCall(access_, ctx, "RevokeToken", response, [&](const Caller& caller) {
    return access_->RevokeToken(caller, request->id());
  });
}

grpc::ServerUnaryReactor* SchedulerService::ListAudit(grpc::CallbackServerContext* ctx,
                                                      const deja::v1::ListAuditRequest* request,
                                                      deja::v1::ListAuditResponse* response) {
  return AccessCall(access_, ctx, "ListAudit", response,
                    [&](const Caller& caller) { return access_->ListAudit(caller, *request); });
}

}  // namespace deja
