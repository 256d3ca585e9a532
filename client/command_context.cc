#include "client/command_context.h"

#include <cstdlib>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "client/cli.h"
#include "client/cli_format.h"
#include "client/progress.h"
#include "common/files.h"

namespace deja::cli {

std::string ResolveScheduler(const std::string& flag_value) {
  if (!flag_value.empty()) return flag_value;
  const char* env = std::getenv(kSchedulerEnv);
  if (env != nullptr && env[0] != '\0') return env;
  return kDefaultScheduler;
}

namespace {

// The value of environment variable `name`, or "" when unset.
std::string Env(const char* name) {
  const char* value = std::getenv(name);
  return value == nullptr ? std::string() : std::string(value);
}

}  // namespace

absl::StatusOr<ClientSecurity> ResolveSecurity(const GlobalFlags& global) {
  ClientSecurity security;
  const std::string insecure_env = Env(kInsecureEnv);
  security.insecure = global.insecure || insecure_env == "1" || insecure_env == "true";
  if (security.insecure) return security;
  const bool ca_flag = !global.tls_ca.empty();
  const std::string ca_path = ca_flag ? global.tls_ca : Env(kTlsCaEnv);
  if (!ca_path.empty()) {
    auto ca = ReadWholeFile(ca_path);
    if (!ca.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(ca_flag ? "--tls_ca" : "$DEJA_TLS_CA", ": ", ca.status().message()));
    }
    security.ca_pem = *std::move(ca);
  }
  if (!global.token.empty()) {
    security.token = global.token;
    return security;
  }
  std::string token_file_source = "--token_file";
  std::string token_file = global.token_file;
  if (token_file.empty()) {
    security.token = Env(kTokenEnv);
    if (!security.token.empty()) return security;
    token_file_source = "$DEJA_TOKEN_FILE";
    token_file = Env(kTokenFileEnv);
  }
  if (!token_file.empty()) {
    auto token = ReadTokenFile(token_file);
    if (!token.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(token_file_source, ": ", token.status().message()));
    }
    security.token = *std::move(token);
  }
  return security;
}

int ReportCallError(const DejaClient& client, std::ostream& err, const absl::Status& status) {
  if (status.code() == absl::StatusCode::kUnavailable && !client.Connected()) {
    err << "deja: cannot reach scheduler at " << client.target() << ": " << status.message()
        << "\n";
    const ClientSecurity& security = client.security();
    if (!security.insecure && security.ca_pem.empty() &&
        absl::StrContains(status.message(), "CERTIFICATE_VERIFY_FAILED")) {
      err << "deja: the scheduler's certificate is not signed by a CA this machine trusts: "
             "give its CA with --tls_ca or $DEJA_TLS_CA (a scheduler's own is "
             "DATA_DIR/tls/ca.crt)\n";
    }
  } else if (status.code() == absl::StatusCode::kUnauthenticated) {
    err << "deja: unauthenticated: " << status.message() << "\n";
    if (client.security().token.empty()) {
      err << "deja: give a token with --token, --token_file, $DEJA_TOKEN or $DEJA_TOKEN_FILE\n";
    }
  } else if (status.code() == absl::StatusCode::kPermissionDenied) {
    err << "deja: permission denied: " << status.message() << "\n";
  } else if (status.message().empty()) {  // say at least what kind of failure
    err << "deja: " << absl::StatusCodeToString(status.code()) << " (no message)\n";
  } else {
    err << "deja: " << status.message() << "\n";
  }
  return kExitError;
}

CommandContext::CommandContext(const GlobalFlags& global, const ClientSecurity& security,
                               std::ostream& out, std::ostream& err)
    : json_(global.json),
      out_(out),
      err_(err),
      tz_(absl::LocalTimeZone()),
      progress_(StderrIsTerminal(err)),
      client_(ResolveScheduler(global.scheduler),
              DejaClientOptions{.rpc_timeout = global.timeout_seconds > 0
                                                   ? absl::Seconds(global.timeout_seconds)
                                                   : kDefaultRpcTimeout,
                                .security = security}) {}

int CommandContext::Fail(const absl::Status& status) const {
  return ReportCallError(client_, err_, status);
}

int CommandContext::UsageError(const absl::Status& status) const {
  err_ << "deja: " << status.message() << "\n";
  return kExitUsage;
}

void CommandContext::PrintJson(const google::protobuf::Message& message) const {
  out_ << ToJson(message) << "\n";
}

}  // namespace deja::cli
