// Workspace manifests in the content store: a worker uploads the manifest of
// every workspace it finishes and downloads the one of a workspace it copies
// (common/manifest.h has the encoding).
//
// Thread-safe (BlobClient is).
#ifndef DEJA_COMMON_MANIFEST_BLOB_H_
#define DEJA_COMMON_MANIFEST_BLOB_H_

#include "absl/status/statusor.h"
#include "common/blob_client.h"
#include "deja/v1/job.pb.h"

namespace deja {

// Puts `manifest` in the store unless it has that blob already, and returns
// its ref. Errors say "upload the manifest: ...".
absl::StatusOr<deja::v1::ManifestRef> UploadManifest(const deja::v1::Manifest& manifest,
                                                     const BlobClient& client);

// The manifest `ref` names, downloaded (a worker's with the `ticket` of its
// assignment; BlobClient::DownloadBytes) and checked (ParseManifest).
// Errors say "download manifest <digest>: ..." (NOT_FOUND: the store lacks
// it).
absl::StatusOr<deja::v1::Manifest> DownloadManifest(
    const deja::v1::ManifestRef& ref, const BlobClient& client,
    const deja::v1::SignedTicket& ticket = deja::v1::SignedTicket::default_instance());

}  // namespace deja

#endif  // DEJA_COMMON_MANIFEST_BLOB_H_
