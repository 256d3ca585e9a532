#include "common/peer_ticket.h"

#include "absl/strings/str_cat.h"
#include "common/tls.h"

namespace deja {

absl::Status StampPeerTicket(const std::string& ca_key_pem,
                             const std::string& destination_worker_id, absl::Time now,
                             deja::v1::Assignment* assignment) {
  if (assignment->kind() != deja::v1::Assignment::MATERIALIZE ||
      assignment->source_address().empty() ||
      assignment->source_worker_id() == destination_worker_id) {
    return absl::OkStatus();
  }
  deja::v1::PeerTicket ticket;
  ticket.set_source_job_id(assignment->source_job_id());
  ticket.set_source_worker_id(assignment->source_worker_id());
  ticket.set_destination_worker_id(destination_worker_id);
  ticket.set_manifest_digest(assignment->source_manifest().digest());
  ticket.set_expires_at_ms(absl::ToUnixMillis(now + kPeerTicketLifetime));
  deja::v1::SignedPeerTicket* signed_ticket = assignment->mutable_peer_ticket();
  signed_ticket->set_ticket(ticket.SerializeAsString());
  auto signature = tls::SignData(ca_key_pem, signed_ticket->ticket());
  if (!signature.ok()) return signature.status();
  signed_ticket->set_signature(*std::move(signature));
  return absl::OkStatus();
}

absl::Status CheckPeerTicket(const deja::v1::SignedPeerTicket& signed_ticket,
                             const std::string& ca_cert_pem, const PeerFetch& fetch,
                             absl::Time now) {
  if (signed_ticket.ticket().empty()) {
    return absl::UnauthenticatedError(
        absl::StrCat("no peer ticket: worker ", fetch.holder_worker_id,
                     " serves a workspace only to the worker the scheduler sent to copy it"));
  }
  if (!tls::VerifySignature(ca_cert_pem, signed_ticket.ticket(), signed_ticket.signature()).ok()) {
    return absl::UnauthenticatedError("peer ticket not signed by the cluster's CA");
  }
  deja::v1::PeerTicket ticket;
  if (!ticket.ParseFromString(signed_ticket.ticket())) {
    return absl::UnauthenticatedError("peer ticket does not parse");
  }
  if (ticket.source_job_id() != fetch.job_id) {
    return absl::PermissionDeniedError(absl::StrCat(
        "peer ticket is for the workspace of ", ticket.source_job_id(), ", not of ", fetch.job_id));
  }
  if (ticket.source_worker_id() != fetch.holder_worker_id) {
    return absl::PermissionDeniedError(absl::StrCat(
        "peer ticket is for worker ", ticket.source_worker_id(), ", not ", fetch.holder_worker_id));
  }
  if (ticket.destination_worker_id() != fetch.caller_worker_id) {
    return absl::PermissionDeniedError(
        absl::StrCat("peer ticket was issued to worker ", ticket.destination_worker_id(),
                     ", not to the caller (",
                     fetch.caller_worker_id.empty() ? "no worker certificate"
                                                    : "worker " + fetch.caller_worker_id,
                     ")"));
  }
  if (ticket.manifest_digest() != fetch.manifest_digest) {
    return absl::PermissionDeniedError(absl::StrCat(
        "peer ticket is for manifest ", ticket.manifest_digest(), ", not ", fetch.manifest_digest));
  }
  const absl::Time expires = absl::FromUnixMillis(ticket.expires_at_ms());
  if (now >= expires) {
    return absl::PermissionDeniedError(
        absl::StrCat("peer ticket expired at ", absl::FormatTime(expires, absl::UTCTimeZone())));
  }
  return absl::OkStatus();
}

}  // namespace deja
