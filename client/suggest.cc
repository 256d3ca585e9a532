#include "client/suggest.h"

#include <CLI/CLI.hpp>
#include <algorithm>

#include "absl/strings/str_cat.h"

namespace deja::cli {
namespace {

// The long flags of `app` and of the commands above it ("--project").
std::vector<std::string> FlagNames(const CLI::App& app) {
  std::vector<std::string> names;
  for (const CLI::App* level = &app; level != nullptr; level = level->get_parent()) {
    for (const CLI::Option* option : level->get_options()) {
      for (const std::string& name : option->get_lnames()) names.push_back("--" + name);
    }
  }
  return names;
}

const CLI::Option* FindFlag(const CLI::App& app, std::string_view name) {
  for (const CLI::App* level = &app; level != nullptr; level = level->get_parent()) {
    for (const CLI::Option* option : level->get_options()) {
      if (name.starts_with("--")) {
        for (const std::string& l : option->get_lnames()) {
          if (name.substr(2) == l) return option;
        }
      } else if (name.size() == 2) {
        for (const std::string& s : option->get_snames()) {
          if (name.substr(1) == s) return option;
        }
      }
    }
  }
  return nullptr;
}

std::string Meant(const std::string& what, const std::string& typed,
                  const std::optional<std::string>& closest, const std::string& help) {
  std::string line = absl::StrCat("unknown ", what, " '", typed, "'");
  if (closest.has_value()) absl::StrAppend(&line, "; did you mean '", *closest, "'?");
  absl::StrAppend(&line, " (see ", help, " --help)");
  return line;
}

std::string HelpOf(const CLI::App& app) {
  std::vector<std::string> names;
  for (const CLI::App* level = &app; level != nullptr; level = level->get_parent()) {
    names.push_back(level->get_name());
  }
  std::reverse(names.begin(), names.end());
  std::string help;
  for (const std::string& name : names) absl::StrAppend(&help, help.empty() ? "" : " ", name);
  return help;
}

}  // namespace

size_t EditDistance(std::string_view a, std::string_view b) {
  // d[i][j]: the distance between a[0, i) and b[0, j), three rows at a time.
  std::vector<size_t> before(b.size() + 1), previous(b.size() + 1), row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) previous[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      row[j] = std::min({previous[j] + 1, row[j - 1] + 1, previous[j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
        row[j] = std::min(row[j], before[j - 2] + 1);
      }
    }
    std::swap(before, previous);
    std::swap(previous, row);
  }
  return previous[b.size()];
}

std::optional<std::string> ClosestName(std::string_view typed,
                                       const std::vector<std::string>& candidates) {
  const size_t allowed = std::clamp<size_t>(typed.size() / 3, 1, 3);
  std::optional<std::string> best;
  size_t best_distance = allowed + 1;
  for (const std::string& candidate : candidates) {
    size_t distance = EditDistance(typed, candidate);
    // A prefix ("--lim" for "--limit", "pipe" for "pipeline") is close too.
    if (typed.size() >= 3 && std::string_view(candidate).starts_with(typed)) {
      distance = std::min<size_t>(distance, 1);
    }
    if (distance < best_distance) {
      best = candidate;
      best_distance = distance;
    }
  }
  return best;
}

std::string DidYouMean(const CLI::App& app, const std::vector<std::string>& args) {
  const CLI::App* command = &app;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--") break;  // the job's own command line follows
    if (arg.size() > 1 && arg[0] == '-') {
      const std::string name = arg.substr(0, arg.find('='));
      const CLI::Option* flag = FindFlag(*command, name);
      if (flag == nullptr) {
        return Meant("flag", name, ClosestName(name, FlagNames(*command)), HelpOf(*command));
      }
      // A flag taking a value as the next argument: skip the value.
      if (flag->get_expected_max() > 0 && name.size() == arg.size()) ++i;
      continue;
    }
    const std::vector<const CLI::App*> subcommands =
        command->get_subcommands([](const CLI::App*) { return true; });
    if (subcommands.empty()) continue;  // an argument of the command
    const CLI::App* next = nullptr;
    std::vector<std::string> names;
    for (const CLI::App* sub : subcommands) {
      if (sub->check_name(arg)) next = sub;
      names.push_back(sub->get_name());
    }
    if (next == nullptr) {
      return Meant("command", arg, ClosestName(arg, names), HelpOf(*command));
    }
    command = next;
  }
  return "";
}

}  // namespace deja::cli
