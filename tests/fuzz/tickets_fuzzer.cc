// Tickets as the content store and a worker's Peer service receive them
// (common/tickets.h): any bytes a caller sends as a SignedTicket.
//
// Input: one byte of flags, "CALLER\nDIGEST\n", then the SignedTicket's
// wire bytes. Flag 1: the target signs the ticket with the test CA, as the
// scheduler would, so the checks after the signature are reached. Flag 2:
// the caller is the empty worker id (no certificate). Properties:
//   - an unsigned ticket is never accepted (nobody without the CA key can
//     make one), and a refusal always has a message;
//   - a download is accepted only for the worker the ticket was issued
//     to, before its expiry, for a blob it names or a tree holding it (a
//     blob ticket), or for its manifest by the copy's holder (a peer
//     ticket); a peer fetch only for the job, holder, caller and manifest
//     the ticket names;
//   - a caller without a certificate is never accepted.
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/tickets.h"
#include "common/tls.h"
#include "deja/v1/content.pb.h"
#include "deja/v1/peer.pb.h"
#include "deja/v1/worker.pb.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

struct Ca {
  deja::tls::Signer signer;
  deja::tls::SignatureVerifier verifier;
};

const Ca& TestCa() {
  static const Ca* ca = [] {
    auto pair = deja::tls::CreateCa("deja-fuzz-ca", absl::Hours(24));
    DEJA_CHECK(pair.ok(), pair.status().ToString());
    auto signer = deja::tls::Signer::Create(pair->key_pem);
    auto verifier = deja::tls::SignatureVerifier::Create(pair->cert_pem);
    DEJA_CHECK(signer.ok() && verifier.ok(), "test CA");
    return new Ca{*signer, *verifier};
  }();
  return *ca;
}

// The test's tree index: a tree "holds" the digests that start with it.
absl::StatusOr<bool> TreeHolds(const std::string& tree, const std::string& digest) {
  return !tree.empty() && digest.rfind(tree, 0) == 0;
}

bool Names(const deja::v1::BlobTicket& ticket, const std::string& digest) {
  for (const auto& named : ticket.digests()) {
    if (named == digest) return true;
  }
  for (const auto& tree : ticket.trees()) {
    if (tree == digest || *TreeHolds(tree, digest)) return true;
  }
  return false;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  deja::fuzz::Input in(data, size);
  const uint8_t flags = in.Byte();
  std::string caller(in.Until('\n'));
  const std::string digest(in.Until('\n'));
  if ((flags & 2) != 0) caller.clear();
  deja::v1::SignedTicket ticket;
  if (!ticket.ParseFromArray(in.rest().data(), static_cast<int>(in.rest().size()))) return 0;
  const bool signed_by_ca = (flags & 1) != 0;
  if (signed_by_ca) {
    auto signature =
        TestCa().signer.Sign(absl::StrCat(ticket.kind(), std::string(1, '\0'), ticket.ticket()));
    DEJA_CHECK(signature.ok(), signature.status().ToString());
    ticket.set_signature(*signature);
  }
  const absl::Time now = absl::FromUnixSeconds(1'800'000'000);
  const int64_t now_ms = absl::ToUnixMillis(now);

  absl::Status download =
      deja::CheckDownloadTicket(ticket, TestCa().verifier, caller, digest, now, TreeHolds);
  if (!download.ok()) {
    DEJA_CHECK(!download.message().empty(), "a refusal without a message");
  } else {
    DEJA_CHECK(signed_by_ca, "an unsigned ticket accepted for a download");
    DEJA_CHECK(!caller.empty(), "a download accepted for a caller without a certificate");
    if (ticket.kind() == "peer") {
      deja::v1::PeerTicket peer;
      DEJA_CHECK(peer.ParseFromString(ticket.ticket()), "accepted peer ticket does not parse");
      DEJA_CHECK(peer.source_worker_id() == caller && peer.manifest_digest() == digest &&
                     peer.expires_at_ms() > now_ms,
                 absl::StrCat("download accepted on ", peer.ShortDebugString()));
    } else {
      deja::v1::BlobTicket blob;
      DEJA_CHECK(ticket.kind() == "blob" && blob.ParseFromString(ticket.ticket()),
                 absl::StrCat("accepted a ticket of kind \"", ticket.kind(), "\""));
      DEJA_CHECK(blob.worker_id() == caller && blob.expires_at_ms() > now_ms && Names(blob, digest),
                 absl::StrCat("download of ", digest, " accepted on ", blob.ShortDebugString()));
    }
  }

  deja::PeerFetch fetch{"j1", digest, "holder", caller};
  absl::Status peer_fetch = deja::CheckPeerTicket(ticket, TestCa().verifier, fetch, now);
  if (!peer_fetch.ok()) {
    DEJA_CHECK(!peer_fetch.message().empty(), "a refusal without a message");
  } else {
    DEJA_CHECK(signed_by_ca, "an unsigned ticket accepted for a peer fetch");
    DEJA_CHECK(!caller.empty(), "a peer fetch accepted for a caller without a certificate");
    deja::v1::PeerTicket peer;
    DEJA_CHECK(ticket.kind() == "peer" && peer.ParseFromString(ticket.ticket()),
               "accepted a peer fetch on another kind");
    DEJA_CHECK(peer.source_job_id() == "j1" && peer.source_worker_id() == "holder" &&
                   peer.destination_worker_id() == caller && peer.manifest_digest() == digest &&
                   peer.expires_at_ms() > now_ms,
               absl::StrCat("peer fetch accepted on ", peer.ShortDebugString()));
  }
  return 0;
}
