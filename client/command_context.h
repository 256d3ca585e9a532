// CommandContext: what every `deja` command needs once its arguments are
// parsed — the output streams, --json, the local time zone, whether stderr
// can show progress bars, and the DejaClient for the scheduler named by
// --scheduler / $DEJA_SCHEDULER — with the two ways a command fails: a call
// error (exit 1) and a usage error (exit 2).
//
// One per RunCli; not thread-safe (a command runs on one thread; the
// pipeline live view hands only the DejaClient to its watcher thread).
#ifndef DEJA_CLIENT_COMMAND_CONTEXT_H_
#define DEJA_CLIENT_COMMAND_CONTEXT_H_

#include <ostream>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "client/deja_client.h"
#include "google/protobuf/message.h"

namespace deja::cli {

inline constexpr char kDefaultScheduler[] = "127.0.0.1:7070";
inline constexpr char kSchedulerEnv[] = "DEJA_SCHEDULER";
inline constexpr char kTlsCaEnv[] = "DEJA_TLS_CA";
inline constexpr char kTokenEnv[] = "DEJA_TOKEN";
inline constexpr char kTokenFileEnv[] = "DEJA_TOKEN_FILE";
inline constexpr char kInsecureEnv[] = "DEJA_INSECURE";

// `--scheduler` if given, else $DEJA_SCHEDULER if set and non-empty, else
// 127.0.0.1:7070.
std::string ResolveScheduler(const std::string& flag_value);

// Prints the one-line error of a failed call to `err` ("deja: <message>",
// or "deja: cannot reach scheduler at HOST:PORT: ..." when the call failed
// for want of a connection) and returns kExitError.
int ReportCallError(const DejaClient& client, std::ostream& err, const absl::Status& status);

// The flags every command takes (RunCli defines them on each command).
struct GlobalFlags {
  std::string scheduler;
  bool json = false;
  double timeout_seconds = 0;  // 0: the default
  std::string tls_ca;
  std::string token;
  std::string token_file;
  bool insecure = false;
};

// How to reach the scheduler: --insecure (or $DEJA_INSECURE=1) is
// plaintext without a token; else TLS trusting --tls_ca (else $DEJA_TLS_CA,
// else the system's roots), with the token of --token, else --token_file,
// else $DEJA_TOKEN, else $DEJA_TOKEN_FILE (else none). Errors name the flag
// or variable whose file cannot be read.
absl::StatusOr<ClientSecurity> ResolveSecurity(const GlobalFlags& global);

class CommandContext {
 public:
  // `out` and `err` are not owned and must outlive this. Connects to no
  // scheduler yet (DejaClient connects on its first call).
  CommandContext(const GlobalFlags& global, const ClientSecurity& security, std::ostream& out,
                 std::ostream& err);

  CommandContext(const CommandContext&) = delete;
  CommandContext& operator=(const CommandContext&) = delete;

  bool json() const { return json_; }
  std::ostream& out() const { return out_; }
  std::ostream& err() const { return err_; }
  absl::TimeZone tz() const { return tz_; }
  // Draw progress bars on err() (it is a terminal).
  bool progress() const { return progress_; }
  const DejaClient& client() const { return client_; }

  // A failed call: ReportCallError on err(); returns kExitError.
  int Fail(const absl::Status& status) const;
  // A bad command line: "deja: <message>" on err(); returns kExitUsage.
  int UsageError(const absl::Status& status) const;
  // `message` as one line of JSON (ToJson) on out().
  void PrintJson(const google::protobuf::Message& message) const;

 private:
  const bool json_;
  std::ostream& out_;
  std::ostream& err_;
  const absl::TimeZone tz_;
  const bool progress_;
  const DejaClient client_;
};

}  // namespace deja::cli

#endif  // DEJA_CLIENT_COMMAND_CONTEXT_H_
