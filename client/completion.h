// Shell completion scripts and the man page of `deja`, generated from the
// command table itself (CLI11's tree of commands and options), so they never
// drift from `--help`: `deja completion bash|zsh|fish`, `deja man`.
#ifndef DEJA_CLIENT_COMPLETION_H_
#define DEJA_CLIENT_COMPLETION_H_

#include <string>

namespace CLI {
class App;
}  // namespace CLI

namespace deja::cli {

// A bash script defining _deja and `complete -F _deja deja`: commands
// after commands, the flags of the command typed so far after "-".
std::string BashCompletion(const CLI::App& root);
// zsh: the bash script through zsh's bashcompinit.
std::string ZshCompletion(const CLI::App& root);
// fish: `complete -c deja ...` lines.
std::string FishCompletion(const CLI::App& root);
// deja(1) in roff (man(7) macros): the description, every command with its
// arguments and flags, the footer (environment, exit codes, examples).
// `version` goes in the page's header.
std::string ManPage(const CLI::App& root, const std::string& version);

}  // namespace deja::cli

#endif  // DEJA_CLIENT_COMPLETION_H_
