#include "worker/worker_id.h"

#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <random>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/files.h"
#include "worker/paths.h"

namespace deja::worker {

std::string Hostname() {
  char name[256] = {};
  if (gethostname(name, sizeof(name) - 1) != 0 || name[0] == '\0') return "localhost";
  return name;
}

absl::StatusOr<std::string> LoadOrCreateWorkerId(const std::string& work_dir) {
  const std::string path = paths::WorkerIdPath(work_dir);
  {
    std::ifstream in(path);
    std::string id;
    if (in && std::getline(in, id)) {
      id = std::string(absl::StripAsciiWhitespace(id));
      if (!id.empty()) return id;
    }
  }
  std::random_device random;
  const std::string id = absl::StrFormat("w-%s-%06x", Hostname(), random() & 0xffffffu);
  if (absl::Status st = paths::MakeDirs(paths::MetaDir(work_dir)); !st.ok()) return st;
  if (absl::Status st = WriteFileAtomically(path, id + "\n", /*sync=*/false); !st.ok()) return st;
  return id;
}

absl::Status ValidateWorkerId(const std::string& id) {
  if (absl::StrContains(id, "/") ||
      std::any_of(id.begin(), id.end(), [](char c) { return absl::ascii_isspace(c); })) {
    return absl::InvalidArgumentError(
        absl::StrCat("\"", id, "\": must not contain '/' or whitespace"));
  }
  return absl::OkStatus();
}

}  // namespace deja::worker
