// TreeIndex: which blobs lie below a directory blob, for the content store's
// check of a worker's blob ticket (common/tickets.h: a "dir" input is named
// by its root; its worker downloads every blob below).
//
// Each tree asked about is read once from the store, whole (every
// directory blob below it, breadth first), and the set of digests below it
// kept, the most recently used first, while the sets hold at most
// `max_entries` digests together (about 80 bytes each: the default keeps
// ten 100,000-file inputs in some 80 MB); a tree larger than that is read again
// each time it is asked about. Directory blobs are immutable (content
// addressed), so a kept set never goes stale.
//
// Thread-safe: the content service's handlers share one. Reads happen
// outside the lock; two readers of one tree may both read it.
#ifndef DEJA_SCHEDULER_CONTENT_TREE_INDEX_H_
#define DEJA_SCHEDULER_CONTENT_TREE_INDEX_H_

#include <cstddef>
#include <list>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "scheduler/content/blob_store.h"

namespace deja {

class TreeIndex {
 public:
  // The largest directory blob read (a directory of about a million
  // entries); a larger one is refused as RESOURCE_EXHAUSTED.
  static constexpr uint64_t kMaxDirectoryBlob = uint64_t{128} << 20;

  // `store` must outlive this.
  explicit TreeIndex(const BlobStore* store, size_t max_entries = 1'000'000);

  TreeIndex(const TreeIndex&) = delete;
  TreeIndex& operator=(const TreeIndex&) = delete;

  // Whether `digest` is a blob below directory blob `tree` (not `tree`
  // itself). Errors: the store's (NOT_FOUND for a tree or subtree it lacks),
  // DATA_LOSS for a directory blob that does not decode, RESOURCE_EXHAUSTED
  // for one over kMaxDirectoryBlob.
  absl::StatusOr<bool> Holds(const std::string& tree, const std::string& digest);

 private:
  using Below = absl::flat_hash_set<std::string>;

  absl::StatusOr<std::shared_ptr<const Below>> Read(const std::string& tree) const;

  const BlobStore* const store_;  // not owned
  const size_t max_entries_;

  absl::Mutex mu_;
  std::list<std::string> recent_ ABSL_GUARDED_BY(mu_);  // most recently used first
  struct Kept {
    std::shared_ptr<const Below> below;
    std::list<std::string>::iterator position;
  };
  absl::flat_hash_map<std::string, Kept> kept_ ABSL_GUARDED_BY(mu_);
  size_t entries_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace deja

#endif  // DEJA_SCHEDULER_CONTENT_TREE_INDEX_H_
