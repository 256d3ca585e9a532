// WorkspacePuller: a remote reuse. Pulls a finished job's workspace from the
// worker holding it (its Peer service, worker/peer_service.h) into a fresh
// jobs/<new_job_id>/ here.
//
// Every file is created at its name (O_EXCL: never over anything there) and
// must check out: its size and XXH3-128 (hashed while writing) must equal
// the manifest entry's, and every manifest entry must arrive exactly once
// (nothing else may). One thread reads the stream, another creates, writes
// and hashes the files (a bounded queue of chunks between them, moved, not
// copied), so the network and the disk overlap. Symlinks are recreated from their
// target text (never followed), parents are created as real directories
// (never through a symlink), modes are the manifest's. Then a REUSED marker
// says "source_job=<id>\nsource_worker=<id>\nmethod=peer\n". On any failure
// the partial workspace is removed.
//
// With a PeerTlsSource, the puller dials with the worker's certificate and
// trusts only a holder whose certificate the same CA signed for the host it
// dials (worker/peer_tls.h), and sends the assignment's ticket.
//
// Deadlines: connecting has `connect_timeout` (5 s by default); the stream
// itself has none (a large workspace takes what it takes), but keepalive
// pings end it when the peer stops answering.
//
// Thread-safety: WorkspacePuller holds only constants; callers must not pull
// into the same job id concurrently.
#ifndef DEJA_WORKER_PEER_CLIENT_H_
#define DEJA_WORKER_PEER_CLIENT_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "deja/v1/job.pb.h"
#include "deja/v1/peer.pb.h"
#include "worker/peer_tls.h"

namespace deja::worker {

// Where the source workspace is.
struct PeerSource {
  std::string worker_id;
  std::string address;  // its Peer service, HOST:PORT
  std::string job_id;
  deja::v1::SignedTicket ticket;  // the scheduler's (with TLS)
};

struct PullResult {
  uint64_t files = 0;  // regular files and symlinks
  uint64_t bytes = 0;  // of regular files
};

class WorkspacePuller {
 public:
  // `work_dir` must be absolute. `tls`: see above; empty: plaintext.
  explicit WorkspacePuller(std::string work_dir, absl::Duration connect_timeout = absl::Seconds(5),
                           PeerTlsSource tls = {});

  // Pulls `manifest` of `source` into jobs/<new_job_id> (an existing one is
  // removed first) and writes REUSED. The request names the manifest by
  // `ref` (the peer downloads it from the content store), so no message
  // grows with the workspace. Returns:
  //   UNAVAILABLE       'source worker <id> at <addr> unreachable: ...' (no
  //                     connection, or TLS refused on either side), or
  //                     the stream broke midway;
  //   PERMISSION_DENIED the holder refused the ticket (its message);
  //   DATA_LOSS         the source failed verification: its workspace or a
  //                     file is gone, or a file arrived with another size or
  //                     content, or not at all; the message names the file;
  //   INVALID_ARGUMENT  a bad job id or manifest;
  //   other codes       local I/O failures, naming the path.
  absl::StatusOr<PullResult> Pull(const PeerSource& source, const deja::v1::ManifestRef& ref,
                                  const deja::v1::Manifest& manifest,
                                  const std::string& new_job_id) const;

 private:
  const std::string work_dir_;
  const absl::Duration connect_timeout_;
  const PeerTlsSource tls_;
};

}  // namespace deja::worker

#endif  // DEJA_WORKER_PEER_CLIENT_H_
