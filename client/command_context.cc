#include "client/command_context.h"

#include <cstdlib>

#include "absl/status/status.h"
#include "client/cli.h"
#include "client/cli_format.h"
#include "client/progress.h"

namespace deja::cli {

std::string ResolveScheduler(const std::string& flag_value) {
  if (!flag_value.empty()) return flag_value;
  const char* env = std::getenv(kSchedulerEnv);
  if (env != nullptr && env[0] != '\0') return env;
  return kDefaultScheduler;
}

int ReportCallError(const DejaClient& client, std::ostream& err, const absl::Status& status) {
  if (status.code() == absl::StatusCode::kUnavailable && !client.Connected()) {
    err << "deja: cannot reach scheduler at " << client.target() << ": " << status.message()
        << "\n";
  } else if (status.message().empty()) {  // say at least what kind of failure
    err << "deja: " << absl::StatusCodeToString(status.code()) << " (no message)\n";
  } else {
    err << "deja: " << status.message() << "\n";
  }
  return kExitError;
}

CommandContext::CommandContext(const GlobalFlags& global, std::ostream& out, std::ostream& err)
    : json_(global.json),
      out_(out),
      err_(err),
      tz_(absl::LocalTimeZone()),
      progress_(StderrIsTerminal(err)),
      client_(ResolveScheduler(global.scheduler),
              DejaClientOptions{.rpc_timeout = global.timeout_seconds > 0
                                                   ? absl::Seconds(global.timeout_seconds)
                                                   : kDefaultRpcTimeout}) {}

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
