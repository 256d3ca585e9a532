#include "client/completion.h"

#include <CLI/CLI.hpp>
#include <functional>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"

namespace deja::cli {
namespace {

// A command of the tree: its words after `deja` ("cache ls"), and its app.
struct Command {
  std::vector<std::string> path;
  const CLI::App* app;
};

// Every command, depth first, the root first (empty path).
std::vector<Command> Commands(const CLI::App& root) {
  std::vector<Command> out;
  std::function<void(const CLI::App&, const std::vector<std::string>&)> walk =
      [&](const CLI::App& app, const std::vector<std::string>& path) {
        out.push_back({path, &app});
        for (const CLI::App* sub : app.get_subcommands([](const CLI::App*) { return true; })) {
          std::vector<std::string> next = path;
          next.push_back(sub->get_name());
          walk(*sub, next);
        }
      };
  walk(root, {});
  return out;
}

std::vector<const CLI::App*> Subcommands(const CLI::App& app) {
  return app.get_subcommands([](const CLI::App*) { return true; });
}

// "--project", "-y"... of `app` (not its positionals).
std::vector<std::string> FlagNames(const CLI::App& app) {
  std::vector<std::string> names;
  for (const CLI::Option* option : app.get_options()) {
    if (option->get_positional()) continue;
    for (const std::string& name : option->get_lnames()) names.push_back("--" + name);
    for (const std::string& name : option->get_snames()) names.push_back("-" + name);
  }
  return names;
}

std::string FirstLine(const std::string& text) { return text.substr(0, text.find('\n')); }

bool TakesValue(const CLI::Option& option) { return option.get_expected_max() > 0; }

// "--follow, -f" (hidden aliases have no group: never shown).
std::string ShownNames(const CLI::Option& option) {
  std::vector<std::string> names;
  for (const std::string& name : option.get_lnames()) names.push_back("--" + name);
  for (const std::string& name : option.get_snames()) names.push_back("-" + name);
  return absl::StrJoin(names, ", ");
}

// Quoted for a single-quoted shell word.
std::string ShellQuote(const std::string& text) {
  return absl::StrCat("'", absl::StrReplaceAll(text, {{"'", "'\\''"}}), "'");
}

// Escaped for roff: backslashes, and a leading dot or quote.
std::string Roff(const std::string& text) {
  std::string out = absl::StrReplaceAll(text, {{"\\", "\\e"}, {"-", "\\-"}});
  out = absl::StrReplaceAll(out, {{"\n.", "\n\\&."}, {"\n'", "\n\\&'"}});
  if (!out.empty() && (out[0] == '.' || out[0] == '\'')) out.insert(0, "\\&");
  return out;
}

}  // namespace

std::string BashCompletion(const CLI::App& root) {
  std::string paths;  // case patterns of the known command paths
  std::string words;  // per path: what may come next
  for (const Command& command : Commands(root)) {
    const std::string key = absl::StrCat(" ", absl::StrJoin(command.path, " "));
    if (!command.path.empty()) absl::StrAppend(&paths, paths.empty() ? "" : "|", "'", key, "'");
    std::vector<std::string> next;
    for (const CLI::App* sub : Subcommands(*command.app)) next.push_back(sub->get_name());
    absl::StrAppend(&words, "    '", key, "') subs='", absl::StrJoin(next, " "), "'; flags='",
                    absl::StrJoin(FlagNames(*command.app), " "), "' ;;\n");
  }
  return absl::StrCat(
      "# bash completion of deja (from `deja completion bash`). Install:\n"
      "#   deja completion bash > /etc/bash_completion.d/deja    (or source it from ~/.bashrc)\n"
      "_deja() {\n"
      "  local cur=\"${COMP_WORDS[COMP_CWORD]}\" path=' ' i word subs flags\n"
      "  # The commands typed so far: `deja cache ls` is ' cache ls'.\n"
      "  for ((i = 1; i < COMP_CWORD; i++)); do\n"
      "    word=\"${COMP_WORDS[i]}\"\n"
      "    [ \"$word\" = -- ] && return 0  # the job's own command line\n"
      "    case \"${path% } $word\" in\n"
      "      ",
      paths,
      ") path=\"${path% } $word\" ;;\n"
      "    esac\n"
      "  done\n"
      "  case \"$path\" in\n",
      words,
      "  esac\n"
      "  if [[ \"$cur\" == -* ]]; then\n"
      "    COMPREPLY=($(compgen -W \"$flags\" -- \"$cur\"))\n"
      "  else\n"
      "    COMPREPLY=($(compgen -W \"$subs\" -- \"$cur\"))\n"
      "  fi\n"
      "}\n"
      "complete -o default -F _deja deja\n");
}

std::string ZshCompletion(const CLI::App& root) {
  return absl::StrCat(
      "#compdef deja\n"
      "# zsh completion of deja (from `deja completion zsh`): the bash one, through\n"
      "# bashcompinit. Install: deja completion zsh > \"${fpath[1]}/_deja\", or source it.\n"
      "autoload -U +X bashcompinit && bashcompinit\n",
      BashCompletion(root));
}

std::string FishCompletion(const CLI::App& root) {
  std::string out =
      "# fish completion of deja (from `deja completion fish`). Install:\n"
      "#   deja completion fish > ~/.config/fish/completions/deja.fish\n"
      "complete -c deja -f\n";
  for (const Command& command : Commands(root)) {
    std::string condition;
    if (command.path.empty()) {
      condition = "__fish_use_subcommand";
    } else {
      for (const std::string& word : command.path) {
        absl::StrAppend(&condition, condition.empty() ? "" : "; and ",
                        "__fish_seen_subcommand_from ", word);
      }
    }
    std::vector<std::string> subs;
    for (const CLI::App* sub : Subcommands(*command.app)) subs.push_back(sub->get_name());
    for (const CLI::App* sub : Subcommands(*command.app)) {
      std::string when = condition;
      if (!command.path.empty()) {
        absl::StrAppend(&when, "; and not __fish_seen_subcommand_from ", absl::StrJoin(subs, " "));
      }
      absl::StrAppend(&out, "complete -c deja -n ", ShellQuote(when), " -a ", sub->get_name(),
                      " -d ", ShellQuote(FirstLine(sub->get_description())), "\n");
    }
    if (command.path.empty()) continue;  // the global flags come with each command
    for (const CLI::Option* option : command.app->get_options()) {
      if (option->get_positional()) continue;
      for (const std::string& name : option->get_lnames()) {
        absl::StrAppend(&out, "complete -c deja -n ", ShellQuote(condition), " -l ", name,
                        TakesValue(*option) ? " -r" : "", " -d ",
                        ShellQuote(FirstLine(option->get_description())), "\n");
      }
    }
  }
  return out;
}

std::string ManPage(const CLI::App& root, const std::string& version) {
  std::string out = absl::StrCat(
      ".\\\" deja(1), generated by `deja man` from the help of ", Roff(version), "\n",
      ".TH DEJA 1 \"\" \"", Roff(version), "\" \"Deja\"\n", ".SH NAME\n",
      "deja \\- the client of Deja, a distributed job scheduler that never runs the same job "
      "twice\n",
      ".SH SYNOPSIS\n", ".B deja\n", ".I COMMAND\n", "[\\fIFLAGS\\fR] [\\fIARGS\\fR]\n",
      ".SH DESCRIPTION\n", Roff(root.get_description()), "\n", ".SH GLOBAL FLAGS\n");
  // One entry per option (`positional`: the arguments), leaving out the
  // hidden ones and those `skip` names.
  auto options = [&out](const CLI::App& app, bool positional,
                        const std::function<bool(const CLI::Option&)>& skip) {
    for (const CLI::Option* option : app.get_options()) {
      if (option->get_positional() != positional || option->get_group().empty()) continue;
      if (skip && skip(*option)) continue;
      const std::string name = positional ? option->get_name(true) : ShownNames(*option);
      if (name.empty()) continue;
      absl::StrAppend(&out, ".TP\n.B ", Roff(name));
      if (!positional && TakesValue(*option)) {
        absl::StrAppend(&out, " \\fI", Roff(option->get_type_name()), "\\fR");
      }
      absl::StrAppend(&out, "\n", Roff(option->get_description()), "\n");
    }
  };
  options(root, /*positional=*/false, nullptr);
  absl::StrAppend(&out, ".SH COMMANDS\n");
  for (const Command& command : Commands(root)) {
    if (command.path.empty()) continue;
    absl::StrAppend(&out, ".SS deja ", Roff(absl::StrJoin(command.path, " ")), "\n",
                    Roff(command.app->get_description()), "\n");
    options(*command.app, /*positional=*/true, nullptr);
    // The global flags are listed once, above.
    options(*command.app, /*positional=*/false, [&root](const CLI::Option& option) {
      for (const CLI::Option* top : root.get_options()) {
        if (top->get_name() == option.get_name()) return true;
      }
      return false;
    });
  }
  absl::StrAppend(&out, ".SH NOTES\n.nf\n", Roff(root.get_footer()), "\n.fi\n", ".SH SEE ALSO\n",
                  "docs/cli.md, docs/operations.md in the Deja sources\n");
  return out;
}

}  // namespace deja::cli
