// Peer tickets (issue 13, docs/security.md): the scheduler's permission for
// one workspace copy between two workers.
//
// When the scheduler assigns a MATERIALIZE whose source workspace is on
// another worker, it stamps the assignment with a PeerTicket naming the
// source job, its holder, the manifest, the worker it is sent to and an
// expiry (kPeerTicketLifetime from the send), signed with the key of the CA
// that signs workers' certificates. The holder's Peer service serves the
// copy only to a caller whose verified certificate names the ticket's
// destination, for the job, manifest and holder the ticket names, before
// it expires. A worker can thus fetch only what it was assigned, and only
// for a while; nobody without a worker certificate gets a byte.
//
// Thread-safety: the functions share nothing.
#ifndef DEJA_COMMON_PEER_TICKET_H_
#define DEJA_COMMON_PEER_TICKET_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "deja/v1/peer.pb.h"
#include "deja/v1/worker.pb.h"

namespace deja {

// Long enough for the assignment to reach its worker and the pull to start
// (the check is at the start of the stream, which then takes what it takes),
// short enough that a ticket leaked from a log is soon worthless. Clocks of
// the hosts may differ by less.
inline constexpr absl::Duration kPeerTicketLifetime = absl::Minutes(10);

// Sets `assignment->peer_ticket` for `destination_worker_id`, when the
// assignment is a MATERIALIZE from another worker (else leaves it alone),
// signed with `ca_key_pem`, expiring `kPeerTicketLifetime` after `now`.
// Errors are OpenSSL's (a key that does not parse).
absl::Status StampPeerTicket(const std::string& ca_key_pem,
                             const std::string& destination_worker_id, absl::Time now,
                             deja::v1::Assignment* assignment);

// What a Peer service is asked to serve, and by whom.
struct PeerFetch {
  std::string job_id;
  std::string manifest_digest;
  std::string holder_worker_id;  // the serving worker's own id
  std::string caller_worker_id;  // the common name of the caller's certificate
};

// Whether `ticket`, signed by the CA whose certificate is `ca_cert_pem`,
// permits `fetch` at `now`. UNAUTHENTICATED: no ticket, or one the CA did
// not sign; PERMISSION_DENIED: a ticket for another job, manifest, holder or
// caller, or one expired. Each message names what did not match.
absl::Status CheckPeerTicket(const deja::v1::SignedPeerTicket& ticket,
                             const std::string& ca_cert_pem, const PeerFetch& fetch,
                             absl::Time now);

}  // namespace deja

#endif  // DEJA_COMMON_PEER_TICKET_H_
