#include "common/version.h"

#include "deja_version.h"  // generated: DEJA_GIT_COMMIT (cmake/DejaVersion.cmake)

namespace deja {

std::string_view Version() { return DEJA_VERSION; }

std::string_view GitCommit() { return DEJA_GIT_COMMIT; }

std::string VersionLine(std::string_view program) {
  // std::string_view, which absl::StrCat does not take in this Abseil build.
  std::string line(program);
  line.append(" ").append(Version()).append(" (commit ").append(GitCommit()).append(")");
  return line;
}

}  // namespace deja
