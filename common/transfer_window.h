// gRPC flow-control settings for channels and servers that move blobs and
// workspaces. By default gRPC probes the bandwidth-delay product and lets a
// stream's receive window grow to tens of MiB, and the transport buffers
// that much per stream; a fixed 4 MiB window keeps a transfer's memory
// bounded whatever the file size, at up to 4 MiB per round trip (plenty on
// a LAN, and ~40 MB/s at 100 ms RTT).
#ifndef DEJA_COMMON_TRANSFER_WINDOW_H_
#define DEJA_COMMON_TRANSFER_WINDOW_H_

#include <grpcpp/server_builder.h>
#include <grpcpp/support/channel_arguments.h>

namespace deja {

inline constexpr int kTransferWindowBytes = 4 << 20;

inline void BoundTransferWindow(grpc::ChannelArguments* args) {
  args->SetInt(GRPC_ARG_HTTP2_BDP_PROBE, 0);
  args->SetInt(GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES, kTransferWindowBytes);
}

inline void BoundTransferWindow(grpc::ServerBuilder* builder) {
  builder->AddChannelArgument(GRPC_ARG_HTTP2_BDP_PROBE, 0);
  builder->AddChannelArgument(GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES, kTransferWindowBytes);
}

}  // namespace deja

#endif  // DEJA_COMMON_TRANSFER_WINDOW_H_
