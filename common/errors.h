// Conversions between absl::Status, errno and grpc::Status. Every component
// works in absl::Status; gRPC statuses exist only at the RPC edges.
#ifndef DEJA_COMMON_ERRORS_H_
#define DEJA_COMMON_ERRORS_H_

#include <grpcpp/support/status.h>

#include <string>

#include "absl/status/status.h"

namespace deja {

// A status for a failed system call: NOT_FOUND for ENOENT, PERMISSION_DENIED
// for EACCES/EPERM, ALREADY_EXISTS for EEXIST, INTERNAL otherwise. The
// message is "<what>: <strerror>".
absl::Status ErrnoStatus(int err, const std::string& what);

grpc::Status ToGrpcStatus(const absl::Status& status);
absl::Status FromGrpcStatus(const grpc::Status& status);

}  // namespace deja

#endif  // DEJA_COMMON_ERRORS_H_
