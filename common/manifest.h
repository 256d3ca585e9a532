// Workspace manifests: every regular file and symlink under a workspace with
// its size, mode and XXH3-128 digest, and their verification.
#ifndef DEJA_COMMON_MANIFEST_H_
#define DEJA_COMMON_MANIFEST_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "deja/v1/job.pb.h"

namespace deja {

// Walks `root` without following symlinks and returns the manifest sorted by
// path. Symlinks are recorded with mode S_IFLNK and the digest of their
// target text. Directories appear only through their files.
absl::StatusOr<deja::v1::Manifest> BuildManifest(const std::string& root);

// OK when every entry of `manifest` exists under `root` with its recorded
// kind, size and digest. Otherwise DATA_LOSS naming the first bad path and
// what differs (missing, size, content). Extra files are ignored: only the
// manifest is ever copied.
absl::Status VerifyManifest(const std::string& root, const deja::v1::Manifest& manifest);

// Sum of the sizes of the manifest's files.
uint64_t ManifestBytes(const deja::v1::Manifest& manifest);

}  // namespace deja

#endif  // DEJA_COMMON_MANIFEST_H_
