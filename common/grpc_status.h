// Conversions between absl::Status and grpc::Status, for the RPC edges only:
// every component works in absl::Status. The codes are the same numbers in
// both (both follow google.rpc.Code), so the conversion keeps code and message.
#ifndef DEJA_COMMON_GRPC_STATUS_H_
#define DEJA_COMMON_GRPC_STATUS_H_

#include <grpcpp/support/status.h>

#include "absl/status/status.h"

namespace deja {

grpc::Status ToGrpcStatus(const absl::Status& status);
absl::Status FromGrpcStatus(const grpc::Status& status);

}  // namespace deja

#endif  // DEJA_COMMON_GRPC_STATUS_H_
