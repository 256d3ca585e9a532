// HealthCommands: `deja health` (docs/operations.md): gRPC's standard health
// check (grpc.health.v1) of the scheduler, and how each worker it knows
// stands; or of one daemon named by its address (a worker's peer port, as
// Compose's health checks use it). Returns the process exit code
// (client/cli.h): 0 when the daemon checked answers SERVING.
#ifndef DEJA_CLIENT_HEALTH_COMMANDS_H_
#define DEJA_CLIENT_HEALTH_COMMANDS_H_

#include <string>

#include "client/command_context.h"
#include "client/command_table.h"

namespace deja::cli {

class HealthCommands {
 public:
  // Defines health.
  static void Register(CommandTable& table);

  explicit HealthCommands(const CommandContext& context) : context_(context) {}

  // `target` empty: the scheduler and its workers. `identity_file`: a PEM
  // with a client key and certificate (and a CA), e.g. a worker's own
  // WORK_DIR/meta/tls/worker.pem, for a worker's peer port under TLS.
  int Check(const std::string& target, const std::string& identity_file);

 private:
  const CommandContext& context_;
};

}  // namespace deja::cli

#endif  // DEJA_CLIENT_HEALTH_COMMANDS_H_
