// The cluster's TLS material (issue 13): a certificate authority of its own,
// and the certificates it issues to the scheduler, workers and clients, made
// with OpenSSL (libcrypto) and used through gRPC's own TLS credentials.
//
// Keys are ECDSA P-256; certificates are X.509 v3 signed with SHA-256, with
// the extensions a verifier checks: a CA is `CA:TRUE` and may only sign
// certificates; a leaf is `CA:FALSE`, for digital signatures, for both
// server and client authentication (a worker is both: it dials the
// scheduler and serves its peers), and names every address it is reached
// at as a subject alternative name (`DNS:` names, `IP:` addresses).
//
// The cluster's directory (LoadOrCreateCluster) holds, each written
// atomically:
//   ca.crt     the CA's certificate: what every party trusts
//   ca.key     the CA's key (0600): what signs new certificates
//   server.crt the scheduler's certificate, issued for `names`
//   server.key its key (0600)
// The directory is 0700. A second start reads them back; a server
// certificate that no longer names every requested name, or expires within
// a tenth of its validity, is issued anew (the CA stays).
//
// Thread-safety: the functions share nothing; call them from any thread.
#ifndef DEJA_COMMON_TLS_H_
#define DEJA_COMMON_TLS_H_

#include <openssl/types.h>

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace deja::tls {

// A key and its certificate, both PEM.
struct KeyCert {
  std::string key_pem;
  std::string cert_pem;
};

// One PEM holding a key, its certificate and then (optionally) the CA's,
// as a worker keeps its identity (WORK_DIR/meta/tls/worker.pem): the key
// and certificate, and the CA certificate ("" when none follows). Empty
// fields when `pem` holds no certificate.
struct Identity {
  KeyCert pair;
  std::string ca_pem;
};
Identity SplitIdentityPem(const std::string& pem);

// A new self-signed CA named `common_name`, valid from now for `validity`.
absl::StatusOr<KeyCert> CreateCa(const std::string& common_name, absl::Duration validity);

// A new key and a certificate for it signed by `ca`, named `common_name`,
// with `names` (host names, IPv4 or IPv6 addresses; at least one) as its
// subject alternative names, valid from now for `validity`. An empty name,
// or one with a character a host name cannot hold, is refused, naming it.
absl::StatusOr<KeyCert> Issue(const KeyCert& ca, const std::string& common_name,
                              const std::vector<std::string>& names, absl::Duration validity);

// What a certificate says of itself.
struct CertInfo {
  std::string common_name;
  std::vector<std::string> names;  // its subject alternative names, as given
  bool is_ca = false;
  absl::Time not_before;
  absl::Time not_after;
};
absl::StatusOr<CertInfo> Inspect(const std::string& cert_pem);

// Whether `cert_pem` was signed by the CA `ca_cert_pem` and is valid at
// `now`: OK, or an error saying why not (OpenSSL's reason).
absl::Status Verify(const std::string& cert_pem, const std::string& ca_cert_pem, absl::Time now);

// Whether `info` names every one of `names` and has more than a tenth of
// its validity left at `now`: a certificate still worth serving with.
bool NamesAllWithTimeLeft(const CertInfo& info, const std::vector<std::string>& names,
                          absl::Time now);

// Whether `pair.key_pem` is the key of `pair.cert_pem`: OK, or an error
// saying which does not parse or that they do not match.
absl::Status CheckPair(const KeyCert& pair);

// A private key parsed once, for many signatures: the scheduler's CA key,
// which signs tickets (common/tickets.h) as assignments are sent.
// Thread-safe; copies share the key.
class Signer {
 public:
  // The OpenSSL error when `key_pem` does not parse.
  static absl::StatusOr<Signer> Create(const std::string& key_pem);
  // An ECDSA (SHA-256) signature of `data`.
  absl::StatusOr<std::string> Sign(std::string_view data) const;

 private:
  explicit Signer(std::shared_ptr<EVP_PKEY> key) : key_(std::move(key)) {}
  std::shared_ptr<EVP_PKEY> key_;
};

// A certificate's public key parsed once, for many checks of signatures by
// its key (tickets, on every worker download). Thread-safe; copies share it.
class SignatureVerifier {
 public:
  // The OpenSSL error when `cert_pem` does not parse.
  static absl::StatusOr<SignatureVerifier> Create(const std::string& cert_pem);
  // OK when `signature` is one of `data` by the certificate's key, else
  // UNAUTHENTICATED ("bad signature").
  absl::Status Verify(std::string_view data, std::string_view signature) const;

 private:
  explicit SignatureVerifier(std::shared_ptr<X509> cert) : cert_(std::move(cert)) {}
  std::shared_ptr<X509> cert_;
};

// The scheduler's TLS material in `dir` (see above): read, or created on
// first use. `names` are the names and addresses the scheduler's
// certificate must carry.
struct Cluster {
  KeyCert ca;      // ca.key may be absent (an operator's CA): key_pem empty
  KeyCert server;  // the scheduler's
};
absl::StatusOr<Cluster> LoadOrCreateCluster(const std::string& dir,
                                            const std::vector<std::string>& names);

// How long what LoadOrCreateCluster creates is valid.
inline constexpr absl::Duration kCaValidity = absl::Hours(24 * 365 * 10);
inline constexpr absl::Duration kCertValidity = absl::Hours(24 * 365);

}  // namespace deja::tls

#endif  // DEJA_COMMON_TLS_H_
