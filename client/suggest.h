// "Did you mean...?" for the command line: the closest known command or flag
// to one that was mistyped (`deja sumbit` -> `submit`, `--projet` ->
// `--project`).
#ifndef DEJA_CLIENT_SUGGEST_H_
#define DEJA_CLIENT_SUGGEST_H_

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace CLI {
class App;
}  // namespace CLI

namespace deja::cli {

// Edit distance counting an insertion, a deletion, a substitution or a swap
// of two adjacent characters as one (optimal string alignment).
size_t EditDistance(std::string_view a, std::string_view b);

// The candidate closest to `typed`, if any is close enough to be what was
// meant: at most a third of its length away (at least 1, at most 3), or
// starting with it (a command cut short). Ties go to the first candidate.
std::optional<std::string> ClosestName(std::string_view typed,
                                       const std::vector<std::string>& candidates);

// After CLI11 refused `args` (argv without the program name): the line that
// names the first unknown command or flag among them, with what it may have
// meant ("unknown command 'sumbit'; did you mean 'submit'?"), or "" when no
// argument is unknown (the error was of another kind).
std::string DidYouMean(const CLI::App& app, const std::vector<std::string>& args);

}  // namespace deja::cli

#endif  // DEJA_CLIENT_SUGGEST_H_
