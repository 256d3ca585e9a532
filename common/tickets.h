// Tickets (issue 13, docs/security.md): the scheduler's signed permissions
// for what a worker may fetch.
//
// Peer tickets: when the scheduler assigns a MATERIALIZE whose source
// workspace is on another worker, it stamps the assignment with a PeerTicket
// naming the source job, its holder, the manifest, the worker it is sent to
// and an expiry (kPeerTicketLifetime from the send). The holder's Peer
// service serves the copy only to a caller whose verified certificate names
// the ticket's destination, for the job, manifest and holder the ticket
// names, before it expires; the holder shows the same ticket to the content
// store to read that manifest.
//
// Blob tickets: every assignment sent carries a BlobTicket naming its worker
// and the blobs it needs (a RUN's inputs, directory trees whole; a
// MATERIALIZE's source manifest). The content store serves a worker only
// the blobs a ticket issued to it names.
//
// Both are signed with the key of the CA that signs workers' certificates,
// over their kind and bytes. A worker can thus fetch only what it was
// assigned; nobody without a worker certificate gets a byte.
//
// Thread-safety: the functions share nothing.
#ifndef DEJA_COMMON_TICKETS_H_
#define DEJA_COMMON_TICKETS_H_

#include <functional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/tls.h"
#include "deja/v1/content.pb.h"
#include "deja/v1/peer.pb.h"
#include "deja/v1/worker.pb.h"

namespace deja {

// Long enough for the assignment to reach its worker and the pull to start
// (the check is at the start of the stream, which then takes what it takes),
// short enough that a ticket leaked from a log is soon worthless. Clocks of
// the hosts may differ by less.
inline constexpr absl::Duration kPeerTicketLifetime = absl::Minutes(10);
// Long: a job may wait on its worker (dispatch-ahead, a full disk) before
// its inputs download, and the worker already holds the bytes of what it
// was assigned. The expiry bounds how long a ticket outlives its job.
inline constexpr absl::Duration kBlobTicketLifetime = absl::Hours(7 * 24);

// Sets `assignment->peer_ticket` for `destination_worker_id`, when the
// assignment is a MATERIALIZE from another worker (else leaves it alone),
// signed with the CA's key `ca`, expiring `kPeerTicketLifetime` after `now`.
// Errors are OpenSSL's.
absl::Status StampPeerTicket(const tls::Signer& ca, const std::string& destination_worker_id,
                             absl::Time now, deja::v1::Assignment* assignment);

// What a Peer service is asked to serve, and by whom.
struct PeerFetch {
  std::string job_id;
  std::string manifest_digest;
  std::string holder_worker_id;  // the serving worker's own id
  std::string caller_worker_id;  // the common name of the caller's certificate
};

// Whether `ticket`, signed by the key of CA certificate `ca`,
// permits `fetch` at `now`. UNAUTHENTICATED: no ticket, no caller certificate, or one the CA did
// not sign; PERMISSION_DENIED: a ticket for another job, manifest, holder or
// caller, or one expired. Each message names what did not match.
absl::Status CheckPeerTicket(const deja::v1::SignedTicket& ticket, const tls::SignatureVerifier& ca,
                             const PeerFetch& fetch, absl::Time now);

// Sets `assignment->blob_ticket` for `worker_id`: the blobs a RUN's inputs
// name (a "dir" input as a tree) or a MATERIALIZE's source manifest,
// signed with the CA's key `ca`, expiring `kBlobTicketLifetime` after `now`.
absl::Status StampBlobTicket(const tls::Signer& ca, const std::string& worker_id, absl::Time now,
                             deja::v1::Assignment* assignment);

// Whether `tree` (a directory blob's digest) has `digest` somewhere below
// it; errors reading the trees.
using TreeHolds =
    std::function<absl::StatusOr<bool>(const std::string& tree, const std::string& digest)>;

// Whether the worker whose certificate names `caller_worker_id` may
// download `digest` with `ticket` at `now`: a blob ticket issued to it that
// names the digest or a tree holding it, or a peer ticket for a copy from
// it that names the digest as the manifest. UNAUTHENTICATED: no ticket, no caller certificate, or
// one the CA did not sign; PERMISSION_DENIED: issued to another worker,
// expired, or for other blobs. Each message names what did not match.
absl::Status CheckDownloadTicket(const deja::v1::SignedTicket& ticket,
                                 const tls::SignatureVerifier& ca,
                                 const std::string& caller_worker_id, const std::string& digest,
                                 absl::Time now, const TreeHolds& tree_holds);

}  // namespace deja

#endif  // DEJA_COMMON_TICKETS_H_
