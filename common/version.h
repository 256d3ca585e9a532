// The version of Deja every binary reports (`deja --version`,
// `deja-scheduler --version`, `deja-worker --version`, the metrics'
// deja_build_info): the project's version and the git commit it was built
// from ("unknown" outside a git checkout, "-dirty" with uncommitted changes).
#ifndef DEJA_COMMON_VERSION_H_
#define DEJA_COMMON_VERSION_H_

#include <string>
#include <string_view>

namespace deja {

// "0.1.0"
std::string_view Version();
// "5fd6000c1a2b", "5fd6000c1a2b-dirty" or "unknown".
std::string_view GitCommit();
// "deja-scheduler 0.1.0 (commit 5fd6000c1a2b)": what --version prints.
std::string VersionLine(std::string_view program);

}  // namespace deja

#endif  // DEJA_COMMON_VERSION_H_
