// BlobIndex: the core's read-only view of the content store.
//
// The core only asks whether a blob is there (a single stat, cheap enough
// for the event loop); it never writes one. Blobs the core builds travel in
// Effects::blob_puts and are written by the caller at commit time.
//
// Thread-safety: implementations are thread-safe.
#ifndef DEJA_SCHEDULER_CORE_BLOB_INDEX_H_
#define DEJA_SCHEDULER_CORE_BLOB_INDEX_H_

#include <cstdint>
#include <string>

namespace deja {

class BlobIndex {
 public:
  virtual ~BlobIndex() = default;
  // True when the store has the blob with this size.
  virtual bool Has(const std::string& digest, uint64_t size) = 0;
};

}  // namespace deja

#endif  // DEJA_SCHEDULER_CORE_BLOB_INDEX_H_
