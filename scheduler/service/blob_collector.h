// BlobCollector: the content store's garbage collector. A collection
// deletes every blob that nothing keeps:
//   - a job that has not ended: its inputs (a directory input: its whole
//     tree);
//   - a job within its retention (SUCCEEDED, expiry not passed): its
//     inputs, declared outputs and manifest;
//   - a job that ended otherwise: its manifest (`deja status --files`) for
//     kFailedManifestHours after it finished;
//   - a memo entry not expired: its outputs and manifest;
//   - a running pipeline: the inputs its spec names;
//   - a pushed image (deja image push): its saved tar;
//   - any blob created or used (BlobStore::Use: told present to a client,
//     uploaded again, referenced by a submit or a memo hit) within `grace`:
//     uploads for a submit still to come, and whatever the loop committed
//     after the scan began.
// The mark scans the stored records (RocksDB iterators, on the collector's
// own thread: the event loop is not held up); each delete re-checks the
// blob's creation and use times under the blob's lock
// (BlobStore::CollectUnusedSince), so a blob used after the scan read it
// is kept. A job is committed before its submit is answered, and its blobs
// were used by that submit, so a record the scan missed is one whose blobs
// are within the grace.
//
// Thread-safety: Collect() from one thread at a time (the server's
// collector thread); Last() from any.
#ifndef DEJA_SCHEDULER_SERVICE_BLOB_COLLECTOR_H_
#define DEJA_SCHEDULER_SERVICE_BLOB_COLLECTOR_H_

#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "deja/v1/scheduler.pb.h"
#include "scheduler/content/blob_store.h"
#include "scheduler/core/store_reader.h"

namespace deja {

inline constexpr int64_t kFailedManifestHours = 24;

class BlobCollector {
 public:
  // Nothing owned; all must outlive the collector.
  BlobCollector(BlobStore* blobs, const StoreReader* store, Clock* clock, absl::Duration grace);

  // One collection: what it found and deleted (also kept for Last()).
  absl::StatusOr<deja::v1::ContentStoreStats> Collect() ABSL_LOCKS_EXCLUDED(mu_);

  // The last collection's figures (zeros before the first).
  deja::v1::ContentStoreStats Last() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  BlobStore* const blobs_;
  const StoreReader* const store_;
  Clock* const clock_;
  const absl::Duration grace_;

  mutable absl::Mutex mu_;
  deja::v1::ContentStoreStats last_ ABSL_GUARDED_BY(mu_);
};

}  // namespace deja

#endif  // DEJA_SCHEDULER_SERVICE_BLOB_COLLECTOR_H_
