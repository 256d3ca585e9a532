#include "worker/result_store.h"

#include <unistd.h>

#include <algorithm>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/files.h"
#include "worker/paths.h"

namespace deja::worker {

ResultStore::ResultStore(const std::string& work_dir)
    : dir_(absl::StrCat(paths::MetaDir(work_dir), "/results")) {}

std::string ResultStore::Path(const std::string& job_id, uint32_t attempt) const {
  return absl::StrCat(dir_, "/", job_id, ".", attempt);
}

absl::Status ResultStore::Put(const deja::v1::JobResult& result) const {
  if (!paths::ValidateJobId(result.job_id()).ok()) return absl::OkStatus();
  if (absl::Status st = paths::MakeDirs(dir_); !st.ok()) return st;
  return WriteFileAtomically(Path(result.job_id(), result.attempt()), result.SerializeAsString(),
                             /*sync=*/true);
}

void ResultStore::Remove(const std::string& job_id, uint32_t attempt) const {
  if (!paths::ValidateJobId(job_id).ok()) return;
  unlink(Path(job_id, attempt).c_str());
}

std::vector<deja::v1::JobResult> ResultStore::LoadAll(std::vector<std::string>* errors) const {
  std::vector<deja::v1::JobResult> results;
  for (const std::string& name : paths::ListNames(dir_)) {
    const std::string path = absl::StrCat(dir_, "/", name);
    const std::string bytes = paths::ReadSmallFile(path);
    deja::v1::JobResult result;
    if (absl::EndsWith(name, ".tmp") || !result.ParseFromString(bytes) ||
        name != absl::StrCat(result.job_id(), ".", result.attempt())) {
      if (!absl::EndsWith(name, ".tmp")) errors->push_back(absl::StrCat(path, ": not a result"));
      unlink(path.c_str());
      continue;
    }
    results.push_back(std::move(result));
  }
  std::sort(results.begin(), results.end(), [](const auto& a, const auto& b) {
    return std::make_pair(a.job_id(), a.attempt()) < std::make_pair(b.job_id(), b.attempt());
  });
  return results;
}

}  // namespace deja::worker
