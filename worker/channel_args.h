// The arguments of every channel the worker opens to the scheduler and the
// content store.
#ifndef DEJA_WORKER_CHANNEL_ARGS_H_
#define DEJA_WORKER_CHANNEL_ARGS_H_

#include <grpcpp/support/channel_arguments.h>

#include "common/transfer_window.h"

namespace deja::worker {

inline grpc::ChannelArguments WorkerChannelArgs() {
  grpc::ChannelArguments args;
  // Not shared with earlier channels, so no inherited reconnect backoff.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  BoundTransferWindow(&args);
  return args;
}

}  // namespace deja::worker

#endif  // DEJA_WORKER_CHANNEL_ARGS_H_
