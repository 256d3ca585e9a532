// How Deja's gRPC connections are secured (issue 13, docs/security.md): the
// credentials a client, worker or daemon dials and listens with, built from
// the cluster's TLS material (common/tls.h) and a token.
//
// Every hop is TLS unless the scheduler runs with --insecure (plaintext and
// no tokens: a single trusted host, or a test). A client trusts the CA it is
// given (else the system's roots), and sends its token with every call as
// `authorization: Bearer TOKEN`; gRPC sends such a token only over TLS.
//
// Thread-safety: the functions share nothing.
#ifndef DEJA_COMMON_CREDENTIALS_H_
#define DEJA_COMMON_CREDENTIALS_H_

#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server_context.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/tls.h"

namespace deja {

// How a client dials.
struct ClientSecurity {
  // Plaintext and no token: only a scheduler started with --insecure
  // answers such a client.
  bool insecure = false;
  // The CAs (PEM) trusted to have signed the server's certificate; empty:
  // the system's roots.
  std::string ca_pem;
  // The client's own certificate (mutual TLS), when it has one.
  tls::KeyCert client;
  // Sent with every call; empty: none.
  std::string token;
};
std::shared_ptr<grpc::ChannelCredentials> MakeChannelCredentials(const ClientSecurity& security);

// How a server listens.
struct ServerSecurity {
  bool insecure = false;
  tls::KeyCert server;
  // A client certificate, when one is presented, must be signed by this CA
  // (PEM); one that is not fails the handshake. Empty: none is asked for.
  std::string client_ca_pem;
  // Whether a client without a certificate fails the handshake (a worker's
  // Peer service: only workers call it).
  bool require_client_cert = false;
};
std::shared_ptr<grpc::ServerCredentials> MakeServerCredentials(const ServerSecurity& security);

// The common name of the certificate the caller presented and TLS verified
// (a worker's id); empty when none was.
std::string PresentedCommonName(const grpc::ServerContextBase& ctx);

// Whether HOST:PORT names only the loopback interface (127.0.0.0/8, ::1,
// "localhost"): a wildcard (0.0.0.0, [::], an empty host) or any other
// address reaches beyond this machine.
bool IsLoopback(absl::string_view host_port);

// The host of HOST:PORT, without the brackets of an IPv6 address.
std::string HostOf(absl::string_view host_port);

// A token as its holder keeps it: the contents of a file, without the
// surrounding white space. Errors name the file; an empty file is refused.
absl::StatusOr<std::string> ReadTokenFile(const std::string& path);

}  // namespace deja

#endif  // DEJA_COMMON_CREDENTIALS_H_
