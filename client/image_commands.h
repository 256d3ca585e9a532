// ImageCommands: `deja image push|ls` (docs/containers.md): images for
// clusters without a registry. Every command method returns the process exit
// code (client/cli.h). Not thread-safe: one command at a time.
#ifndef DEJA_CLIENT_IMAGE_COMMANDS_H_
#define DEJA_CLIENT_IMAGE_COMMANDS_H_

#include <string>

#include "client/command_context.h"
#include "client/command_table.h"

namespace deja::cli {

class ImageCommands {
 public:
  // Defines image (push, ls).
  static void Register(CommandTable& table);

  // `context` is not owned and must outlive this.
  explicit ImageCommands(const CommandContext& context) : context_(context) {}

  // Saves image `name` with the engine's CLI `docker` (docker save of its
  // ID, into a temp file), uploads it to the content store unless the store
  // has it, and names it on the scheduler. The CLI, not the Engine API:
  // `deja` stays free of libcurl and its start-up cost.
  int Push(const std::string& name, const std::string& docker);
  int List();

 private:
  const CommandContext& context_;
};

}  // namespace deja::cli

#endif  // DEJA_CLIENT_IMAGE_COMMANDS_H_
