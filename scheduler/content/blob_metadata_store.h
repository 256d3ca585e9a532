// BlobMetadataStore: where the content store keeps one deja.v1.BlobMeta per
// committed blob (its size and arrival time). An interface, so that
// scheduler/content neither includes nor links RocksDB: RocksStore
// (scheduler/store) implements it over the "blobs" column family, whose key
// and value encoding scheduler/store/schema.h owns.
//
// Narrow on purpose: BlobStore only records a blob's arrival and reads it
// back.
//
// Durability: PutBlobMeta returns once the record is durable (a synced
// write).
//
// Thread-safety: implementations are thread-safe; the content service
// calls them from gRPC's sync-handler threads, never from the event loop.
#ifndef DEJA_SCHEDULER_CONTENT_BLOB_METADATA_STORE_H_
#define DEJA_SCHEDULER_CONTENT_BLOB_METADATA_STORE_H_

#include <functional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "deja/v1/content.pb.h"

namespace deja {

class BlobMetadataStore {
 public:
  virtual ~BlobMetadataStore() = default;

  // The record of blob `digest`. NOT_FOUND when there is none; DATA_LOSS
  // "blob record <digest> does not parse"; INTERNAL "read blob record
  // <digest>: ..." on an I/O error.
  virtual absl::StatusOr<deja::v1::BlobMeta> GetBlobMeta(const std::string& digest) const = 0;
  // Writes (or replaces) the record of blob `digest`, durably. INTERNAL
  // "write blob record <digest>: ..." on an I/O error.
  virtual absl::Status PutBlobMeta(const std::string& digest, const deja::v1::BlobMeta& meta) = 0;
  // As PutBlobMeta, durable only with the next durable write (a use time:
  // losing it in a crash only makes the blob look older).
  virtual absl::Status PutBlobMetaLazily(const std::string& digest,
                                         const deja::v1::BlobMeta& meta) = 0;
  // Removes the record (no record: OK) and the blob's grants, durably.
  virtual absl::Status DeleteBlobMeta(const std::string& digest) = 0;
  // Lets `project` read blob `digest` (issue 13: it uploaded the blob, or
  // one of its jobs used or produced it), durably. INTERNAL on an I/O error.
  virtual absl::Status GrantBlob(const std::string& digest, const std::string& project) = 0;
  // Whether `project` may read blob `digest`.
  virtual bool BlobGranted(const std::string& digest, const std::string& project) const = 0;
  // Every record, in digest order; stops early when `visit` returns false.
  virtual absl::Status ScanBlobMetas(
      const std::function<bool(const std::string& digest, const deja::v1::BlobMeta& meta)>& visit)
      const = 0;
};

}  // namespace deja

#endif  // DEJA_SCHEDULER_CONTENT_BLOB_METADATA_STORE_H_
