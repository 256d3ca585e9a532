#include "scheduler/access/call_auth.h"

#include <memory>
#include <vector>

#include "absl/strings/string_view.h"

namespace deja {

absl::StatusOr<Caller> Authenticate(AccessControl* access, const grpc::ServerContextBase& ctx,
                                    const char* method) {
  if (!access->enabled()) return access->Authenticate("", CallInfo{method, ""});
  absl::string_view authorization;
  const auto& metadata = ctx.client_metadata();
  if (auto it = metadata.find("authorization"); it != metadata.end()) {
    authorization = absl::string_view(it->second.data(), it->second.size());
  }
  return access->Authenticate(authorization, CallInfo{method, ctx.peer()});
}

absl::StatusOr<Caller> Admit(AccessControl* access, const grpc::ServerContextBase& ctx,
                             const char* method, Right right,
                             const std::optional<std::string>& project) {
  auto caller = Authenticate(access, ctx, method);
  if (!caller.ok()) return caller.status();
  absl::Status allowed =
      access->Authorize(*caller, right, project.has_value() ? *project : caller->principal.project);
  if (!allowed.ok()) return allowed;
  return caller;
}

}  // namespace deja
