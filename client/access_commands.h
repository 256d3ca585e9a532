// AccessCommands: `deja token create|ls|revoke` and `deja audit`
// (docs/security.md). Every command method returns the process exit code
// (client/cli.h). Not thread-safe: one command at a time.
#ifndef DEJA_CLIENT_ACCESS_COMMANDS_H_
#define DEJA_CLIENT_ACCESS_COMMANDS_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "client/command_context.h"
#include "client/command_table.h"
#include "deja/v1/access.pb.h"

namespace deja::cli {

// "reader", "submitter", "admin", "worker" (any case); INVALID_ARGUMENT
// naming --role otherwise.
absl::StatusOr<deja::v1::Role> ParseRole(const std::string& role);

class AccessCommands {
 public:
  // Defines token (create, ls, revoke) and audit.
  static void Register(CommandTable& table);

  // `context` is not owned and must outlive this.
  explicit AccessCommands(const CommandContext& context) : context_(context) {}

  int TokenCreate(const std::string& role, const std::string& project,
                  const std::string& description);
  int TokenList(bool all);
  int TokenRevoke(const std::string& id);
  int Audit(uint32_t limit, bool denied_only);

 private:
  const CommandContext& context_;
};

}  // namespace deja::cli

#endif  // DEJA_CLIENT_ACCESS_COMMANDS_H_
