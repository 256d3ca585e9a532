#include "common/tickets.h"

#include "absl/strings/str_cat.h"

namespace deja {
namespace {

constexpr char kPeer[] = "peer";
constexpr char kBlob[] = "blob";

// What is signed: the kind, then the ticket's bytes.
std::string Signed(const std::string& kind, const std::string& bytes) {
  return absl::StrCat(kind, std::string(1, '\0'), bytes);
}

absl::Status Sign(const tls::Signer& ca, const char* kind, const google::protobuf::Message& ticket,
                  deja::v1::SignedTicket* out) {
  out->set_kind(kind);
  out->set_ticket(ticket.SerializeAsString());
  auto signature = ca.Sign(Signed(kind, out->ticket()));
  if (!signature.ok()) return signature.status();
  out->set_signature(*std::move(signature));
  return absl::OkStatus();
}

// `signed_ticket` parsed into `ticket` when the CA signed it as `kind`.
absl::Status Open(const deja::v1::SignedTicket& signed_ticket, const tls::SignatureVerifier& ca,
                  const char* kind, google::protobuf::Message* ticket) {
  if (signed_ticket.kind() != kind ||
      !ca.Verify(Signed(kind, signed_ticket.ticket()), signed_ticket.signature()).ok()) {
    return absl::UnauthenticatedError(absl::StrCat(kind, " ticket not signed by the cluster's CA"));
  }
  if (!ticket->ParseFromString(signed_ticket.ticket())) {
    return absl::UnauthenticatedError(absl::StrCat(kind, " ticket does not parse"));
  }
  return absl::OkStatus();
}

absl::Status CheckExpiry(const char* kind, int64_t expires_at_ms, absl::Time now) {
  const absl::Time expires = absl::FromUnixMillis(expires_at_ms);
  if (now >= expires) {
    return absl::PermissionDeniedError(
        absl::StrCat(kind, " ticket expired at ", absl::FormatTime(expires, absl::UTCTimeZone())));
  }
  return absl::OkStatus();
}

std::string DescribeCaller(const std::string& worker_id) {
  return worker_id.empty() ? "no worker certificate" : "worker " + worker_id;
}

// A peer ticket shown to the content store by the workspace's holder: its
// manifest only.
absl::Status CheckHolderDownload(const deja::v1::SignedTicket& signed_ticket,
                                 const tls::SignatureVerifier& ca,
                                 const std::string& caller_worker_id, const std::string& digest,
                                 absl::Time now) {
  deja::v1::PeerTicket ticket;
  if (absl::Status st = Open(signed_ticket, ca, kPeer, &ticket); !st.ok()) return st;
  if (ticket.source_worker_id() != caller_worker_id) {
    return absl::PermissionDeniedError(
        absl::StrCat("peer ticket is for a copy from worker ", ticket.source_worker_id(),
                     ", not from the caller (", DescribeCaller(caller_worker_id), ")"));
  }
  if (ticket.manifest_digest() != digest) {
    return absl::PermissionDeniedError(absl::StrCat("peer ticket lets its holder read manifest ",
                                                    ticket.manifest_digest(), " only, not blob ",
                                                    digest));
  }
  return CheckExpiry(kPeer, ticket.expires_at_ms(), now);
}

}  // namespace

absl::Status StampPeerTicket(const tls::Signer& ca, const std::string& destination_worker_id,
                             absl::Time now, deja::v1::Assignment* assignment) {
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
  return Sign(ca, kPeer, ticket, assignment->mutable_peer_ticket());
}

absl::Status CheckPeerTicket(const deja::v1::SignedTicket& signed_ticket,
                             const tls::SignatureVerifier& ca, const PeerFetch& fetch,
                             absl::Time now) {
  if (signed_ticket.ticket().empty()) {
    return absl::UnauthenticatedError(
        absl::StrCat("no peer ticket: worker ", fetch.holder_worker_id,
                     " serves a workspace only to the worker the scheduler sent to copy it"));
  }
  if (fetch.caller_worker_id.empty()) {
    return absl::UnauthenticatedError(
        absl::StrCat("no worker certificate: worker ", fetch.holder_worker_id,
                     " serves a workspace only to the worker the scheduler sent to copy it"));
  }
  deja::v1::PeerTicket ticket;
  if (absl::Status st = Open(signed_ticket, ca, kPeer, &ticket); !st.ok()) return st;
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
                     ", not to the caller (", DescribeCaller(fetch.caller_worker_id), ")"));
  }
  if (ticket.manifest_digest() != fetch.manifest_digest) {
    return absl::PermissionDeniedError(absl::StrCat(
        "peer ticket is for manifest ", ticket.manifest_digest(), ", not ", fetch.manifest_digest));
  }
  return CheckExpiry(kPeer, ticket.expires_at_ms(), now);
}

absl::Status StampBlobTicket(const tls::Signer& ca, const std::string& worker_id, absl::Time now,
                             deja::v1::Assignment* assignment) {
  deja::v1::BlobTicket ticket;
  ticket.set_worker_id(worker_id);
  ticket.set_job_id(assignment->job_id());
  ticket.set_attempt(assignment->attempt());
  for (const deja::v1::InputRef& input : assignment->inputs()) {
    if (input.kind() == "dir") {
      ticket.add_trees(input.digest());
    } else {
      ticket.add_digests(input.digest());
    }
  }
  if (!assignment->source_manifest().digest().empty()) {
    ticket.add_digests(assignment->source_manifest().digest());
  }
  // The pushed image the worker loads when its engine lacks it.
  if (!assignment->image_digest().empty()) ticket.add_digests(assignment->image_digest());
  ticket.set_expires_at_ms(absl::ToUnixMillis(now + kBlobTicketLifetime));
  return Sign(ca, kBlob, ticket, assignment->mutable_blob_ticket());
}

absl::Status CheckDownloadTicket(const deja::v1::SignedTicket& signed_ticket,
                                 const tls::SignatureVerifier& ca,
                                 const std::string& caller_worker_id, const std::string& digest,
                                 absl::Time now, const TreeHolds& tree_holds) {
  if (signed_ticket.ticket().empty()) {
    return absl::UnauthenticatedError(
        absl::StrCat("no ticket: a worker downloads only the blobs of the jobs assigned to it, "
                     "with the assignment's ticket (blob ",
                     digest, ")"));
  }
  // Found by tests/fuzz/tickets_fuzzer.cc: a ticket issued to the empty
  // worker id matched a caller without a certificate.
  if (caller_worker_id.empty()) {
    return absl::UnauthenticatedError(absl::StrCat(
        "no worker certificate: a ticket is honoured only for the worker it names (blob ", digest,
        ")"));
  }
  if (signed_ticket.kind() == kPeer) {
    return CheckHolderDownload(signed_ticket, ca, caller_worker_id, digest, now);
  }
  deja::v1::BlobTicket ticket;
  if (absl::Status st = Open(signed_ticket, ca, kBlob, &ticket); !st.ok()) return st;
  if (ticket.worker_id() != caller_worker_id) {
    return absl::PermissionDeniedError(absl::StrCat("blob ticket was issued to worker ",
                                                    ticket.worker_id(), ", not to the caller (",
                                                    DescribeCaller(caller_worker_id), ")"));
  }
  if (absl::Status st = CheckExpiry(kBlob, ticket.expires_at_ms(), now); !st.ok()) return st;
  for (const std::string& named : ticket.digests()) {
    if (named == digest) return absl::OkStatus();
  }
  for (const std::string& tree : ticket.trees()) {
    if (tree == digest) return absl::OkStatus();
    auto holds = tree_holds(tree, digest);
    if (!holds.ok()) return holds.status();
    if (*holds) return absl::OkStatus();
  }
  return absl::PermissionDeniedError(absl::StrCat("blob ", digest, " is not one job ",
                                                  ticket.job_id(), " (attempt ", ticket.attempt(),
                                                  ") needs: its ticket does not name it"));
}

}  // namespace deja
