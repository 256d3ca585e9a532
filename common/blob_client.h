// BlobClient: uploads to and downloads from the content store
// (protos/deja/v1/content.proto), streaming in bounded chunks so that no
// file is ever held in memory whole. Shared by the CLI and the worker.
//
// Thread-safe (each call uses its own gRPC context; Reconnect may come at
// any time).
#ifndef DEJA_COMMON_BLOB_CLIENT_H_
#define DEJA_COMMON_BLOB_CLIENT_H_

#include <grpcpp/channel.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/retry.h"
#include "deja/v1/content.grpc.pb.h"

namespace deja {

inline constexpr size_t kBlobChunkBytes = 1 << 20;

// Every stream of a blob has a deadline: the RPC timeout plus the blob's size
// at this rate, the slowest a transfer may be and still not count as stalled
// (a 1 GiB blob gets 30 s + 68 min).
inline constexpr double kMinStreamBytesPerSecond = 256 * 1024;

// Called with the bytes moved so far.
using ProgressFn = std::function<void(uint64_t done)>;

class BlobClient {
 public:
  // Every call is retried as `retry` says (common/retry.h) while the store is
  // unreachable; the default is one attempt (the CLI's: its user is there to
  // try again). A retried upload or download starts over.
  explicit BlobClient(const std::shared_ptr<grpc::ChannelInterface>& channel,
                      absl::Duration rpc_timeout = absl::Seconds(30), RetryPolicy retry = {});

  // Calls that start from now on use `channel` (a worker's, once it has its
  // certificate or a renewed one); those under way end on the old one.
  void Reconnect(const std::shared_ptr<grpc::ChannelInterface>& channel);

  // The blobs of `blobs` that the store lacks.
  absl::StatusOr<std::vector<deja::v1::BlobRef>> FindMissing(
      const std::vector<deja::v1::BlobRef>& blobs) const;

  // Streams the file at `path`, which must hash to `digest` and be `size`
  // bytes (else the store rejects it: INVALID_ARGUMENT). A read error
  // cancels the upload; so does the size-scaled deadline above.
  absl::Status UploadFile(const std::string& path, const deja::v1::BlobRef& blob,
                          const ProgressFn& progress = {}) const;
  absl::Status UploadBytes(const std::string& bytes) const;

  // Downloads the blob into `path` (through a temp file in the same
  // directory, renamed once its size and digest check out; DATA_LOSS if
  // they do not). NOT_FOUND if the store lacks it. A local write error (a
  // full disk) cancels the download at once and is returned, naming the temp
  // file; nothing is left behind. A worker shows the `ticket` of the
  // assignment the blob is for (common/tickets.h); the CLI none.
  absl::Status DownloadToFile(
      const deja::v1::BlobRef& blob, const std::string& path, const ProgressFn& progress = {},
      const deja::v1::SignedTicket& ticket = deja::v1::SignedTicket::default_instance()) const;
  // Blobs small enough to hold (directory blobs, manifests) into memory,
  // checked the same way; the deadline scales with the size as above.
  absl::StatusOr<std::string> DownloadBytes(
      const deja::v1::BlobRef& blob,
      const deja::v1::SignedTicket& ticket = deja::v1::SignedTicket::default_instance()) const;

 private:
  // One attempt of each call.
  absl::StatusOr<std::vector<deja::v1::BlobRef>> FindMissingOnce(
      const std::vector<deja::v1::BlobRef>& blobs) const;
  absl::Status UploadFileOnce(const std::string& path, const deja::v1::BlobRef& blob,
                              const ProgressFn& progress) const;
  absl::Status UploadBytesOnce(const std::string& bytes) const;
  absl::Status DownloadToFileOnce(const deja::v1::BlobRef& blob, const std::string& path,
                                  const ProgressFn& progress,
                                  const deja::v1::SignedTicket& ticket) const;
  absl::StatusOr<std::string> DownloadBytesOnce(const deja::v1::BlobRef& blob,
                                                const deja::v1::SignedTicket& ticket) const;
  absl::Status Retry(const std::function<absl::Status()>& attempt) const;

  std::shared_ptr<deja::v1::ContentStore::Stub> Stub() const;

  const absl::Duration rpc_timeout_;
  const RetryPolicy retry_;
  mutable absl::Mutex mu_;
  std::shared_ptr<deja::v1::ContentStore::Stub> stub_ ABSL_GUARDED_BY(mu_);
};

}  // namespace deja

#endif  // DEJA_COMMON_BLOB_CLIENT_H_
