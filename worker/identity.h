// WorkerIdentity: the worker's certificate, what it connects to the
// scheduler and to other workers with, and serves its peers with
// (docs/security.md). Kept in <work_dir>/meta/tls/worker.pem (0600: its
// key, its certificate, then the certificate of the CA that signed it,
// written at once); enrolled for (WorkerService.Enroll, with the worker
// token) when there is none, when it names another worker id or not the
// advertised host, when the CA is missing or did not sign it, or when less
// than a tenth of its validity is left (then presenting the old one: a
// renewal). The scheduler binds the id to the first token that enrolls it,
// so a worker id cannot be taken over.
//
// Thread-safety: Prepare() from the session's Run() thread only; Peer()
// from any thread.
#ifndef DEJA_WORKER_IDENTITY_H_
#define DEJA_WORKER_IDENTITY_H_

#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/credentials.h"
#include "common/tls.h"
#include "worker/peer_tls.h"

namespace deja::worker {

class WorkerIdentity {
 public:
  // `names`: the host names the certificate must carry (the advertised
  // host). Enroll calls go to `scheduler_address` with `timeout`.
  WorkerIdentity(const std::string& work_dir, std::string worker_id, std::vector<std::string> names,
                 std::string scheduler_address, absl::Duration timeout);

  // Sets security->client to the worker's certificate, enrolling for one
  // first if needed (with security's CA and token). Errors say what failed:
  // the enrollment's refusal (its message), or the file at fault.
  absl::Status Prepare(ClientSecurity* security) ABSL_LOCKS_EXCLUDED(mu_);

  // The certificate and its CA as of the last Prepare(); FAILED_PRECONDITION
  // before the first one succeeded.
  absl::StatusOr<PeerTls> Peer() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  // Whether `pair`, signed by `ca_pem`, is this worker's, for every name,
  // with time left.
  bool Usable(const tls::KeyCert& pair, const std::string& ca_pem) const;
  absl::Status Enroll(const ClientSecurity& security);

  const std::string dir_;
  const std::string path_;
  const std::string worker_id_;
  const std::vector<std::string> names_;
  const std::string scheduler_address_;
  const absl::Duration timeout_;
  // Written by Prepare() (the Run() thread), read by Peer() (any thread).
  mutable absl::Mutex mu_;
  tls::KeyCert current_ ABSL_GUARDED_BY(mu_);  // empty until loaded or enrolled
  std::string ca_pem_ ABSL_GUARDED_BY(mu_);
  bool usable_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace deja::worker

#endif  // DEJA_WORKER_IDENTITY_H_
