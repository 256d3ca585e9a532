#include "common/manifest_blob.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/manifest.h"

namespace deja {
namespace {

deja::v1::BlobRef BlobOf(const deja::v1::ManifestRef& ref) {
  deja::v1::BlobRef blob;
  blob.set_digest(ref.digest());
  blob.set_size(ref.size());
  return blob;
}

absl::Status Annotate(const absl::Status& status, const std::string& what) {
  return absl::Status(status.code(), absl::StrCat(what, ": ", status.message()));
}

}  // namespace

absl::StatusOr<deja::v1::ManifestRef> UploadManifest(const deja::v1::Manifest& manifest,
                                                     const BlobClient& client) {
  std::string bytes;
  deja::v1::ManifestRef ref = SerializeManifest(manifest, &bytes);
  auto missing = client.FindMissing({BlobOf(ref)});
  if (!missing.ok()) {
    return Annotate(missing.status(), "upload the manifest: ask the content store for it");
  }
  if (!missing->empty()) {
    if (absl::Status st = client.UploadBytes(bytes); !st.ok()) {
      return Annotate(st, "upload the manifest");
    }
  }
  return ref;
}

absl::StatusOr<deja::v1::Manifest> DownloadManifest(const deja::v1::ManifestRef& ref,
                                                    const BlobClient& client,
                                                    const deja::v1::SignedTicket& ticket) {
  const std::string what = absl::StrCat("download manifest ", ref.digest());
  if (ref.digest().empty()) {
    return absl::FailedPreconditionError(absl::StrCat(what, ": the job has no manifest"));
  }
  auto bytes = client.DownloadBytes(BlobOf(ref), ticket);
  if (!bytes.ok()) return Annotate(bytes.status(), what);
  auto manifest = ParseManifest(ref, *bytes);
  if (!manifest.ok()) return Annotate(manifest.status(), what);
  return manifest;
}

}  // namespace deja
