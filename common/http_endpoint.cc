#include "common/http_endpoint.h"

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"

namespace deja {

absl::StatusOr<std::unique_ptr<HttpEndpoint>> HttpEndpoint::Start(const std::string& listen,
                                                                  const Routes& routes) {
  const size_t colon = listen.rfind(':');
  int port = -1;
  if (colon == std::string::npos || !absl::SimpleAtoi(listen.substr(colon + 1), &port) ||
      port < 0 || port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("--http_listen=", listen, ": not HOST:PORT (e.g. 127.0.0.1:9090)"));
  }
  std::string host = listen.substr(0, colon);
  if (absl::StartsWith(host, "[") && absl::EndsWith(host, "]")) {
    host = host.substr(1, host.size() - 2);  // [::1]:9090
  }
  if (host.empty()) host = "0.0.0.0";
  auto endpoint = std::unique_ptr<HttpEndpoint>(new HttpEndpoint());
  httplib::Server& server = endpoint->server_;
  // Nothing we serve takes a body worth more than a sign-in form.
  server.set_payload_max_length(size_t{64} << 10);
  server.set_read_timeout(10, 0);
  server.set_write_timeout(30, 0);
  routes(server);
  int bound =
      port == 0 ? server.bind_to_any_port(host) : (server.bind_to_port(host, port) ? port : -1);
  if (bound <= 0) {
    return absl::UnavailableError(absl::StrCat("--http_listen=", listen, ": cannot listen there"));
  }
  endpoint->port_ = bound;
  endpoint->thread_ = std::thread([server = &endpoint->server_] { server->listen_after_bind(); });
  // stop() does nothing to a server that has not started listening yet: the
  // destructor would then wait forever. Return once it listens.
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (!server.is_running() && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(1));
  if (!server.is_running()) {
    return absl::UnavailableError(absl::StrCat("--http_listen=", listen, ": did not start"));
  }
  return endpoint;
}

HttpEndpoint::~HttpEndpoint() {
  server_.stop();
  if (thread_.joinable()) thread_.join();
}

std::string RequestToken(const httplib::Request& request) {
  const std::string authorization = request.get_header_value("Authorization");
  absl::string_view bearer = authorization;
  if (absl::ConsumePrefix(&bearer, "Bearer "))
    return std::string(absl::StripAsciiWhitespace(bearer));
  const std::string cookies = request.get_header_value("Cookie");
  for (absl::string_view cookie : absl::StrSplit(cookies, ';')) {
    cookie = absl::StripAsciiWhitespace(cookie);
    if (absl::ConsumePrefix(&cookie, "deja_token=")) return std::string(cookie);
  }
  return "";
}

}  // namespace deja
