// Glob matching of workspace-relative paths, as used by declared outputs and
// pipeline edges: fnmatch per path component, `*` never crosses '/', `**`
// spans any number of components. A backslash is an ordinary character
// (FNM_NOESCAPE): a glob without metacharacters matches exactly itself, as
// HasGlobChars promises (found by tests/fuzz/paths_fuzzer.cc).
#ifndef DEJA_COMMON_GLOB_H_
#define DEJA_COMMON_GLOB_H_

#include "absl/strings/string_view.h"

namespace deja {

// True when the workspace-relative `path` matches `glob`.
bool GlobMatches(absl::string_view glob, absl::string_view path);

// True when `text` has a glob metacharacter (*, ?, [).
bool HasGlobChars(absl::string_view text);

}  // namespace deja

#endif  // DEJA_COMMON_GLOB_H_
