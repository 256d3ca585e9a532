// Paths that come from the network or a spec and become file names: output
// globs (common/glob.h), workspace paths of inputs and outputs
// (ValidateWorkspacePath, common/job_spec.h), manifest paths, job ids and
// blob digests as the worker takes them (worker/paths.h).
//
// Input: "GLOB\nPATH". Properties:
//   - a path any validator accepts stays strictly inside its root after
//     lexical normalization ("/root/" + path never leaves /root/ nor is it);
//   - a job id accepted is one component: root/id is a child of root;
//   - a digest accepted is 32 lowercase hex digits, and its cache path is
//     inside the cache;
//   - a glob without metacharacters matches exactly itself, and "**"
//     matches every path.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/glob.h"
#include "common/job_spec.h"
#include "tests/fuzz/fuzz_util.h"
#include "worker/paths.h"

namespace {

constexpr char kRoot[] = "/root/ws";

// Whether `rel` joined to kRoot, normalized, is strictly below kRoot.
bool StaysInside(const std::string& rel) {
  std::string joined =
      std::filesystem::path(absl::StrCat(kRoot, "/", rel)).lexically_normal().string();
  while (joined.size() > 1 && joined.back() == '/') joined.pop_back();
  return absl::StartsWith(joined, absl::StrCat(kRoot, "/"));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  deja::fuzz::Input in(data, size);
  const std::string glob(in.Until('\n'));
  const std::string path(in.rest());

  if (deja::worker::paths::ValidateRelativePath(path).ok()) {
    DEJA_CHECK(StaysInside(path), absl::StrCat("manifest path escapes: \"", path, "\""));
  }
  if (deja::ValidateWorkspacePath("path", path).ok()) {
    DEJA_CHECK(StaysInside(path), absl::StrCat("workspace path escapes: \"", path, "\""));
  }
  if (deja::ValidateWorkspacePath("glob", glob).ok()) {
    DEJA_CHECK(StaysInside(glob), absl::StrCat("output glob escapes: \"", glob, "\""));
  }
  if (deja::worker::paths::ValidateJobId(path).ok()) {
    std::filesystem::path dir(deja::worker::paths::WorkspaceDir(kRoot, path));
    DEJA_CHECK(dir.parent_path() == deja::worker::paths::JobsDir(kRoot) && dir.filename() != "." &&
                   dir.filename() != "..",
               absl::StrCat("job id is not one component: \"", path, "\""));
  }
  if (deja::worker::paths::ValidateDigest(path).ok()) {
    DEJA_CHECK(deja::fuzz::IsLowerHex32(path), absl::StrCat("accepted digest \"", path, "\""));
    std::string cached = deja::worker::paths::CachedBlobPath("/cache", path);
    DEJA_CHECK(absl::StartsWith(cached, "/cache/") && StaysInside(cached.substr(7)), cached);
  }

  const bool matches = deja::GlobMatches(glob, path);
  const bool no_nul = (glob + path).find('\0') == std::string::npos;  // validation rejects NUL
  if (no_nul && !deja::HasGlobChars(glob)) {
    DEJA_CHECK(matches == (glob == path),
               absl::StrCat("literal glob \"", glob, "\" vs \"", path, "\": ", matches));
  }
  if (no_nul && !path.empty()) {
    DEJA_CHECK(deja::GlobMatches("**", path), absl::StrCat("\"**\" misses \"", path, "\""));
  }
  return 0;
}
