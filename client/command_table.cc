#include "client/command_table.h"

#include <CLI/CLI.hpp>

namespace deja::cli {

CommandTable::CommandTable(CLI::App* app) : app_(app) {}

CLI::App* CommandTable::AddCommand(const std::string& name, const std::string& description,
                                   Handler handler) {
  return AddCommand(app_, name, description, std::move(handler));
}

CLI::App* CommandTable::AddCommand(CLI::App* group, const std::string& name,
                                   const std::string& description, Handler handler) {
  CLI::App* command = group->add_subcommand(name, description);
  commands_.push_back(command);
  handlers_.emplace_back(command, std::move(handler));
  return command;
}

CLI::App* CommandTable::AddGroup(const std::string& name, const std::string& description) {
  CLI::App* group = app_->add_subcommand(name, description);
  group->require_subcommand(1);
  commands_.push_back(group);
  return group;
}

const CommandTable::Handler* CommandTable::Parsed() const {
  for (const auto& [command, handler] : handlers_) {
    if (command->parsed()) return &handler;
  }
  return nullptr;
}

}  // namespace deja::cli
