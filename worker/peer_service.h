// The worker's peer file service (protos/deja/v1/peer.proto): other workers
// pull a retained workspace from it to serve a reuse on another machine
// (the pulling side is worker/peer_client.h).
//
// FetchWorkspace(job_id, manifest ref) loads the manifest the ref names (from
// the content store: the request stays small whatever the workspace) and
// streams, for the workspace jobs/<job_id>/: first a chunk with the ref as
// requested, then for
// each manifest entry, in manifest order, a `file` chunk (the manifest's
// FileEntry) followed by `data` chunks of at most 1 MiB read from disk at
// that moment (a symlink's data is its target). Nothing is verified here:
// the receiver checks every file against the manifest. Only manifest paths
// are served, and only after validation: relative, no empty/'.'/'..'
// component, regular file or symlink, no symlinked parent directory. A file
// is never held in memory whole; the sync API's blocking Write lets gRPC
// flow control pace the stream.
//
// With a PeerGuard (TLS, docs/security.md), the service listens with the
// worker's certificate, a caller must present a certificate the same CA
// signed (else the handshake fails), and a fetch must carry a peer ticket
// naming this worker, the job, the manifest and the caller's id, unexpired
// (common/tickets.h): UNAUTHENTICATED or PERMISSION_DENIED otherwise,
// before anything about the workspace is looked at.
//
// With a WorkspaceRetention, the workspace holds a lease while it is served
// (the sweeper skips it), and one whose expiry has passed is not served.
//
// Status codes: INVALID_ARGUMENT (bad job id or manifest path, naming it),
// the loader's (the manifest cannot be read: NOT_FOUND, UNAVAILABLE...),
// NOT_FOUND (the workspace is gone, or a file of it: named; or its expiry
// has passed: "workspace of <id> expired"), DATA_LOSS (a
// file that is no longer a regular file or symlink, has a parent that is
// not a directory, or fails to read: named), CANCELLED (the receiver went
// away).
//
// Thread-safety: PeerService holds only constants; gRPC calls it from many
// threads at once. PeerServer: port() from any thread; Shutdown() and the
// destructor from one.
#ifndef DEJA_WORKER_PEER_SERVICE_H_
#define DEJA_WORKER_PEER_SERVICE_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "common/manifest.h"
#include "common/tls.h"
#include "deja/v1/peer.grpc.pb.h"
#include "worker/peer_tls.h"
#include "worker/retention.h"

namespace deja::worker {

inline constexpr size_t kPeerChunkBytes = 1 << 20;

// Who may fetch (see above).
struct PeerGuard {
  std::string worker_id;  // this worker: the holder its tickets must name
  PeerTls tls;
};

class PeerService final : public deja::v1::Peer::Service {
 public:
  // `work_dir` as in WorkerConfig. `load_manifest` reads the manifests that
  // requests name, with the request's ticket (which lets the holder read
  // that manifest from the content store). `retention` (not owned; may be null: no leases, no
  // expiry check) must outlive the service. `guard`: see above; none:
  // anyone who reaches the port is served (--insecure).
  PeerService(std::string work_dir, ManifestLoader load_manifest,
              WorkspaceRetention* retention = nullptr,
              std::optional<PeerGuard> guard = std::nullopt);

  grpc::Status FetchWorkspace(grpc::ServerContext* context,
                              const deja::v1::FetchWorkspaceRequest* request,
                              grpc::ServerWriter<deja::v1::WorkspaceChunk>* writer) override;

 private:
  const std::string work_dir_;
  const ManifestLoader load_manifest_;
  WorkspaceRetention* const retention_;
  const std::optional<PeerGuard> guard_;
  // With a guard: what checks tickets (its parse error refuses every fetch).
  std::optional<absl::StatusOr<tls::SignatureVerifier>> ticket_ca_;
};

// A gRPC server serving PeerService.
class PeerServer {
 public:
  // Listens on `listen_address` (HOST:PORT; port 0 picks a free port), with
  // TLS when there is a `guard`. UNAVAILABLE naming the address when it
  // cannot bind. The rest as in PeerService.
  static absl::StatusOr<std::unique_ptr<PeerServer>> Start(
      const std::string& listen_address, std::string work_dir, ManifestLoader load_manifest,
      WorkspaceRetention* retention = nullptr, std::optional<PeerGuard> guard = std::nullopt);
  // Shuts down (if needed).
  ~PeerServer();

  PeerServer(const PeerServer&) = delete;
  PeerServer& operator=(const PeerServer&) = delete;

  // The port actually bound.
  int port() const { return port_; }

  // Stops accepting calls, cancels the streams in flight after a short grace
  // and waits for them. Idempotent.
  void Shutdown();

 private:
  PeerServer(std::string work_dir, ManifestLoader load_manifest, WorkspaceRetention* retention,
             std::optional<PeerGuard> guard);

  PeerService service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
};

}  // namespace deja::worker

#endif  // DEJA_WORKER_PEER_SERVICE_H_
