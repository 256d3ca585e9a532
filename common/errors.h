// absl::Status from errno. Every component works in absl::Status; the
// conversions to and from grpc::Status, used only at the RPC edges, are in
// common/grpc_status.h (target deja_common_grpc), so code that must not know
// gRPC (the scheduler and worker cores) can use this header.
#ifndef DEJA_COMMON_ERRORS_H_
#define DEJA_COMMON_ERRORS_H_

#include <string>

#include "absl/status/status.h"

namespace deja {

// A status for a failed system call: NOT_FOUND for ENOENT, PERMISSION_DENIED
// for EACCES/EPERM, ALREADY_EXISTS for EEXIST, INTERNAL otherwise. The
// message is "<what>: <strerror>".
absl::Status ErrnoStatus(int err, const std::string& what);

}  // namespace deja

#endif  // DEJA_COMMON_ERRORS_H_
