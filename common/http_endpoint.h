// HttpEndpoint: a daemon's HTTP side (--http_listen): /metrics on both
// daemons, the dashboard on the scheduler (docs/operations.md). It is
// cpp-httplib's server (Debian's libcpp-httplib-dev) on threads of its own;
// handlers must be thread-safe.
#ifndef DEJA_COMMON_HTTP_ENDPOINT_H_
#define DEJA_COMMON_HTTP_ENDPOINT_H_

#include <httplib.h>

#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"

namespace deja {

class HttpEndpoint {
 public:
  // Registers the routes on the server before it starts.
  using Routes = std::function<void(httplib::Server&)>;

  // Binds `listen` ("HOST:PORT"; port 0 picks a free port) and serves the
  // routes until destroyed. INVALID_ARGUMENT names a malformed address,
  // UNAVAILABLE one that cannot be bound.
  static absl::StatusOr<std::unique_ptr<HttpEndpoint>> Start(const std::string& listen,
                                                             const Routes& routes);
  // Stops accepting, finishes the requests in flight, joins.
  ~HttpEndpoint();
  HttpEndpoint(const HttpEndpoint&) = delete;
  HttpEndpoint& operator=(const HttpEndpoint&) = delete;

  int port() const { return port_; }

 private:
  HttpEndpoint() = default;

  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
};

// The bearer token of a request ("Authorization: Bearer T"), else the
// `token` cookie the dashboard's sign-in sets; "" when neither.
std::string RequestToken(const httplib::Request& request);

}  // namespace deja

#endif  // DEJA_COMMON_HTTP_ENDPOINT_H_
