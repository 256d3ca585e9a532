// CommandTable: the `deja` commands as a table. Each command family
// (JobCommands, FileCommands, CacheCommands, PipelineCommands) registers its
// commands on the table: the CLI11 subcommand with its help text and flags,
// and the handler that runs it. RunCli parses the command line with CLI11,
// then runs the handler of the command given.
//
// `deja --help` lists the commands in registration order, so the families
// register in a fixed order (see RunCli).
//
// Not thread-safe; used on one thread for one RunCli.
#ifndef DEJA_CLIENT_COMMAND_TABLE_H_
#define DEJA_CLIENT_COMMAND_TABLE_H_

#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace CLI {
class App;
}  // namespace CLI

namespace deja::cli {

class CommandContext;  // client/command_context.h

class CommandTable {
 public:
  // Runs a parsed command; returns the process exit code (client/cli.h).
  using Handler = std::function<int(CommandContext&)>;

  // `app` is the top-level `deja` app; not owned, must outlive this.
  explicit CommandTable(CLI::App* app);

  CommandTable(const CommandTable&) = delete;
  CommandTable& operator=(const CommandTable&) = delete;

  // A top-level command (`deja submit`) run by `handler`. Returns the
  // subcommand, owned by the app, for the family to define its flags on.
  CLI::App* AddCommand(const std::string& name, const std::string& description, Handler handler);
  // A command under `group` (`deja cache ls`), which AddGroup returned.
  CLI::App* AddCommand(CLI::App* group, const std::string& name, const std::string& description,
                       Handler handler);
  // A group of commands (`deja cache`), which has no handler: exactly one
  // of its commands must be given.
  CLI::App* AddGroup(const std::string& name, const std::string& description);

  // Every command and group, in registration order (RunCli adds the global
  // flags to each).
  const std::vector<CLI::App*>& commands() const { return commands_; }

  // After the parse: the handler of the command given, or nullptr when
  // none was (a group alone is a parse error already).
  const Handler* Parsed() const;

 private:
  CLI::App* const app_;
  std::vector<CLI::App*> commands_;
  std::vector<std::pair<CLI::App*, Handler>> handlers_;
};

}  // namespace deja::cli

#endif  // DEJA_CLIENT_COMMAND_TABLE_H_
