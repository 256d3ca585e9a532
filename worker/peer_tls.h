// PeerTls: what a worker's peer transfers are secured with (issue 13,
// docs/security.md): the certificate the worker enrolled for (common name:
// its id) and the CA that signed it, which signs every worker's certificate
// and the scheduler's peer tickets (common/tickets.h). The Peer service
// serves with it and admits only callers it signed; the puller dials with
// it and trusts only holders it signed.
#ifndef DEJA_WORKER_PEER_TLS_H_
#define DEJA_WORKER_PEER_TLS_H_

#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "common/tls.h"

namespace deja::worker {

struct PeerTls {
  tls::KeyCert identity;
  std::string ca_pem;
};

// The worker's PeerTls as of now (it is renewed now and then), or why there
// is none yet. An empty function: peer transfers in plaintext (--insecure).
using PeerTlsSource = std::function<absl::StatusOr<PeerTls>()>;

}  // namespace deja::worker

#endif  // DEJA_WORKER_PEER_TLS_H_
