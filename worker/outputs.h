// Declared outputs: the files of a finished workspace matched by the job's
// output globs, uploaded to the content store before the result is sent.
//
// Globs are matched against workspace-relative paths, one '/'-separated
// component at a time with fnmatch(3) (flags 0): `*`, `?` and `[...]` never
// cross a '/', and match a leading '.' too; a component that is exactly `**`
// matches any number (zero included) of components. Only regular files are
// outputs: the candidates are the regular-file entries of the workspace
// manifest (common/manifest.h), which walks the workspace without following
// symlinks, so a symlink, or anything below a symlinked directory, is never
// matched, and each file is hashed once for both.
//
// Thread-safety: the functions are thread-safe (BlobClient is).
#ifndef DEJA_WORKER_OUTPUTS_H_
#define DEJA_WORKER_OUTPUTS_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/blob_client.h"
#include "common/glob.h"
#include "deja/v1/job.pb.h"

namespace deja::worker {

using ::deja::GlobMatches;  // common/glob.h

// The regular files of `manifest` matched by any of `globs`, each once,
// sorted by path (OutputFile.mode is the manifest's st_mode). Errors:
//   INVALID_ARGUMENT     a glob that is empty, absolute, or has an empty,
//                        '.' or '..' component: 'declared output "<glob>": ...';
//   FAILED_PRECONDITION  'declared output "<glob>" matched no file' for the
//                        first glob that matched nothing; or 'declared
//                        outputs matched N files ...' when their list is
//                        more than kMaxOutputsBytes (common/job_spec.h).
absl::StatusOr<std::vector<deja::v1::OutputFile>> MatchOutputs(
    const deja::v1::Manifest& manifest, const std::vector<std::string>& globs);

// Uploads to the store the outputs (files under `workspace`) it lacks: one
// FindMissing for all of them, then UploadFile (streamed) for each missing
// digest. The store verifies every upload. Errors name the file:
// 'upload output "<path>": ...' (or the FindMissing failure).
absl::Status UploadOutputs(const std::string& workspace,
                           const std::vector<deja::v1::OutputFile>& outputs,
                           const BlobClient& client);

}  // namespace deja::worker

#endif  // DEJA_WORKER_OUTPUTS_H_
