// ContentService: the gRPC ContentStore service (protos/deja/v1/content.proto)
// over a BlobStore.
//
// Execution model: this is a gRPC *sync* service, unlike the scheduler's
// callback services. Its handlers do blocking file I/O (writing, fsyncing and
// reading blob files) and synced RocksDB writes, which must never happen in
// a callback reaction or on the scheduler's event loop. gRPC runs sync
// handlers on its own thread pool, one call per thread, so a slow upload
// blocks only its own thread. Registered on the same grpc::Server as the
// scheduler's services (mixing sync and callback services is supported).
//
// Memory: blobs stream through in chunks of at most kBlobChunkBytes (1 MiB)
// on download and whatever the client sends (bounded by gRPC's message size
// limit) on upload; no handler ever holds a whole blob.
//
// Errors, per RPC:
//   FindMissingBlobs  INVALID_ARGUMENT for a malformed digest ("blobs[3].digest: ...")
//                     or more than kMaxFindMissing blobs.
//   Upload            INVALID_ARGUMENT: no first chunk or one without `blob`
//                     ("the first chunk must name the blob"), a malformed
//                     digest, a size above kMaxBlobSize, a later chunk naming
//                     another blob, too many or too few bytes, another digest.
//                     CANCELLED when the client goes away. Nothing is stored
//                     on any error.
//   Download          INVALID_ARGUMENT for a malformed digest, NOT_FOUND
//                     "blob <d> not found" (also for a blob the caller's
//                     project may not read), OUT_OF_RANGE for an offset past
//                     the end.
//
// Projects (issue 13): a token of one project reads only the blobs its
// project uploaded or its jobs used or produced (BlobStore::Readable); to
// it FindMissingBlobs reports any other as missing, so that the client
// uploads it, and the upload grants it.
//
// Workers (issue 13): with TLS, a worker downloads a blob only with a ticket
// issued to it (DownloadRequest.ticket; common/tickets.h): the blob ticket
// of an assignment naming it or a directory blob it lies below (TreeIndex),
// or, for the holder of a workspace being copied, that copy's peer ticket
// naming it as the manifest. Else UNAUTHENTICATED (no ticket, a forged one)
// or PERMISSION_DENIED, audited. Workers still upload and ask
// FindMissingBlobs freely: the store tells them whether a digest is there,
// never its bytes.
//
// Thread-safe. Does not own the BlobStore, which must outlive it.
#ifndef DEJA_SCHEDULER_CONTENT_CONTENT_SERVICE_H_
#define DEJA_SCHEDULER_CONTENT_CONTENT_SERVICE_H_

#include <grpcpp/server_context.h>
#include <grpcpp/support/status.h>
#include <grpcpp/support/sync_stream.h>

#include <cstdint>
#include <optional>
#include <string>

#include "common/tls.h"
#include "deja/v1/content.grpc.pb.h"
#include "scheduler/access/access_control.h"
#include "scheduler/content/blob_store.h"
#include "scheduler/content/tree_index.h"

namespace deja {

// The largest blob the store accepts: 64 GiB.
inline constexpr uint64_t kMaxBlobSize = uint64_t{64} << 30;
// The most blobs one FindMissingBlobs request may name (BlobClient sends
// batches of 10,000).
inline constexpr int kMaxFindMissing = 100'000;

class ContentService final : public deja::v1::ContentStore::Service {
 public:
  // Every call is admitted by `access` (scheduler/access): a worker token,
  // or a token that may submit (FindMissingBlobs, Upload) or read
  // (Download) on its project. Both must outlive this. `ticket_ca_pem`: the
  // certificate of the CA that signs workers' tickets; empty (--insecure):
  // workers download without one.
  ContentService(BlobStore* store, AccessControl* access, const std::string& ticket_ca_pem = "");

  grpc::Status FindMissingBlobs(grpc::ServerContext* context,
                                const deja::v1::FindMissingBlobsRequest* request,
                                deja::v1::FindMissingBlobsResponse* response) override;
  grpc::Status Upload(grpc::ServerContext* context,
                      grpc::ServerReader<deja::v1::UploadChunk>* reader,
                      deja::v1::UploadResponse* response) override;
  grpc::Status Download(grpc::ServerContext* context, const deja::v1::DownloadRequest* request,
                        grpc::ServerWriter<deja::v1::DownloadChunk>* writer) override;

 private:
  struct Admitted {
    // Whose grants limit what the caller reads (BlobStore::Readable):
    // empty for a worker or a token of every project.
    std::string project;
    bool worker = false;
    Caller caller;
  };
  // OK when the caller is a worker, or holds `user_right`.
  absl::StatusOr<Admitted> Admit(const grpc::ServerContext& context, const char* method,
                                 Right user_right) const;

  BlobStore* const store_;       // not owned
  AccessControl* const access_;  // not owned
  // Set with TLS: what checks workers' tickets (its parse error refuses
  // every worker download).
  std::optional<absl::StatusOr<tls::SignatureVerifier>> ticket_ca_;
  TreeIndex trees_;
};

}  // namespace deja

#endif  // DEJA_SCHEDULER_CONTENT_CONTENT_SERVICE_H_
