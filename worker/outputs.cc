#include "worker/outputs.h"

#include <fnmatch.h>
#include <sys/stat.h>

#include <algorithm>
#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/job_spec.h"
#include "worker/paths.h"

namespace deja::worker {

absl::StatusOr<std::vector<deja::v1::OutputFile>> MatchOutputs(
    const deja::v1::Manifest& manifest, const std::vector<std::string>& globs) {
  for (const std::string& glob : globs) {
    if (!paths::ValidateRelativePath(glob).ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("declared output \"", glob,
                       "\": must be relative, without empty, '.' or '..' components"));
    }
  }
  std::map<std::string, deja::v1::OutputFile> matched;
  for (const std::string& glob : globs) {
    bool any = false;
    for (const deja::v1::FileEntry& entry : manifest.files()) {
      if (!S_ISREG(entry.mode()) || !GlobMatches(glob, entry.path())) continue;
      any = true;
      deja::v1::OutputFile& out = matched[entry.path()];
      out.set_path(entry.path());
      out.set_digest(entry.digest());
      out.set_size(entry.size());
      out.set_mode(entry.mode());
    }
    if (!any) {
      return absl::FailedPreconditionError(
          absl::StrCat("declared output \"", glob, "\" matched no file"));
    }
  }
  std::vector<deja::v1::OutputFile> outputs;
  outputs.reserve(matched.size());
  size_t bytes = 0;
  for (auto& [path, out] : matched) {
    bytes += out.ByteSizeLong();
    outputs.push_back(std::move(out));
  }
  if (bytes > kMaxOutputsBytes) {
    return absl::FailedPreconditionError(
        absl::StrCat("declared outputs matched ", outputs.size(), " files, whose list takes ",
                     bytes, " bytes; at most ", kMaxOutputsBytes,
                     ": narrow the globs, or pack the files into an "
                     "archive and declare that"));
  }
  return outputs;
}

absl::Status UploadOutputs(const std::string& workspace,
                           const std::vector<deja::v1::OutputFile>& outputs,
                           const BlobClient& client) {
  if (outputs.empty()) return absl::OkStatus();
  // One file per distinct blob: identical outputs upload once.
  std::map<std::string, const deja::v1::OutputFile*> by_digest;
  std::vector<deja::v1::BlobRef> refs;
  for (const deja::v1::OutputFile& out : outputs) {
    if (!by_digest.emplace(out.digest(), &out).second) continue;
    deja::v1::BlobRef ref;
    ref.set_digest(out.digest());
    ref.set_size(out.size());
    refs.push_back(std::move(ref));
  }
  auto missing = client.FindMissing(refs);
  if (!missing.ok()) {
    return absl::Status(missing.status().code(),
                        absl::StrCat("upload outputs: ask the content store which blobs it "
                                     "lacks: ",
                                     missing.status().message()));
  }
  for (const deja::v1::BlobRef& ref : *missing) {
    auto it = by_digest.find(ref.digest());
    if (it == by_digest.end()) continue;  // not ours: ignore what we did not ask
    const deja::v1::OutputFile& out = *it->second;
    absl::Status st = client.UploadFile(absl::StrCat(workspace, "/", out.path()), ref);
    if (!st.ok()) {
      return absl::Status(st.code(),
                          absl::StrCat("upload output \"", out.path(), "\": ", st.message()));
    }
  }
  return absl::OkStatus();
}

}  // namespace deja::worker
