// Workspace manifests: every regular file and symlink under a workspace with
// its size, mode and XXH3-128 digest, and their verification.
#ifndef DEJA_COMMON_MANIFEST_H_
#define DEJA_COMMON_MANIFEST_H_

#include <functional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "deja/v1/content.pb.h"
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

// A manifest as the content store keeps it: `*bytes` is set to the
// serialized manifest, and the ref returned names that blob and counts the
// manifest's entries and bytes.
deja::v1::ManifestRef SerializeManifest(const deja::v1::Manifest& manifest, std::string* bytes);

// The manifest `bytes` holds, checked against `ref`: DATA_LOSS when they do
// not hash to its digest, do not parse, or list another number of entries.
absl::StatusOr<deja::v1::Manifest> ParseManifest(const deja::v1::ManifestRef& ref,
                                                 std::string_view bytes);

// Reads a manifest from wherever its blob is (the content store, through a
// BlobClient or the scheduler's BlobStore), showing the store `ticket`, the
// one that lets a worker read it (common/tickets.h). Errors name the
// manifest.
using ManifestLoader = std::function<absl::StatusOr<deja::v1::Manifest>(
    const deja::v1::ManifestRef&, const deja::v1::SignedTicket& ticket)>;

}  // namespace deja

#endif  // DEJA_COMMON_MANIFEST_H_
