// MemoIndex: the memo index — which job identity has an earlier success to
// reuse, from which source job and worker, until when.
//
// Memory: every entry has a compact MemoRef in memory (32 bytes an entry:
// source job, worker, expiry rounded up to the second), keyed by MemoId.
// The full entries (outputs, manifest ref) stay in memory only until committed
// (all of them without a store); after that Read() reads them back from the
// store. A hit reads its entry twice (the decision at submit, the
// assignment right after), so the last entry read is kept (the hot cache),
// and forgotten on any change.
//
// Every change goes into the caller's Effects (memo_puts, memo_deletes);
// Committed() is told once they are durable. Expiry here is only the
// coarse index value: a lookup checks the exact time on the full entry.
//
// May call: the StoreReader (ReadMemo, ScanMemo). Errors: Read returns
// NOT_FOUND "no such memo entry" when the index has none, else the store's
// error (INTERNAL, DATA_LOSS); List and Evict return the store's error when
// a scan fails; Evict returns INVALID_ARGUMENT unless exactly one selector
// is given.
//
// Thread-safety: not thread-safe; the event loop's (Read updates the hot
// cache, hence `mutable`).
#ifndef DEJA_SCHEDULER_CORE_MEMO_INDEX_H_
#define DEJA_SCHEDULER_CORE_MEMO_INDEX_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "deja/v1/scheduler.pb.h"
#include "scheduler/core/effects.h"
#include "scheduler/core/store_reader.h"

namespace deja {

class MemoIndex {
 public:
  // What a lookup needs before it reads the full entry.
  struct MemoRef {
    uint64_t source_seq = 0;    // the source job "j<seq>"
    uint32_t expires_at_s = 0;  // expires_at_ms rounded up to seconds; 0: never
    uint32_t worker = 0;        // index of the worker id, interned
  };

  // `store` (not owned; null: every entry stays in memory) must outlive the
  // index.
  explicit MemoIndex(StoreReader* store);
  MemoIndex(const MemoIndex&) = delete;
  MemoIndex& operator=(const MemoIndex&) = delete;

  // Startup: an entry that is in the store (Index), or one in hand for an
  // index without a store (Load; kept whole).
  void Index(const deja::v1::MemoEntry& entry);
  void Load(deja::v1::MemoEntry entry);

  // The entry's ref, or null when the index has none.
  const MemoRef* Find(const std::string& memo_id) const;
  // True when the index has an entry for `memo_id` whose source is "j<seq>".
  bool HasSource(const std::string& memo_id, uint64_t source_seq) const;
  // The full entry: uncommitted in memory, else from the store.
  absl::StatusOr<deja::v1::MemoEntry> Read(const std::string& memo_id) const;
  // Every entry of the index (full), in no particular order; the store's
  // error if the scan fails.
  absl::Status ForEach(const std::function<void(const deja::v1::MemoEntry&)>& visit) const;

  // Adds or replaces an entry (and persists it).
  void Put(deja::v1::MemoEntry entry, Effects* fx);
  // Drops an entry (and persists the drop).
  void Drop(const std::string& memo_id, Effects* fx);
  // Drops every entry whose (rounded-up) expiry `now` reached: an entry
  // goes at most a second late.
  void DropExpired(absl::Time now, Effects* fx);

  // The ListMemo and EvictMemo RPCs: scans of the stored entries (an
  // operator's command, not a hot path). List: oldest first, the newest
  // `limit` (0: all).
  absl::StatusOr<std::vector<deja::v1::MemoEntry>> List(
      const deja::v1::ListMemoRequest& request) const;
  absl::StatusOr<deja::v1::EvictMemoResponse> Evict(const deja::v1::EvictMemoRequest& request,
                                                    Effects* fx);

  // The caller committed `fx`: the full entries it put may leave memory.
  void Committed(const Effects& fx);

  size_t size() const { return index_.size(); }

 private:
  struct Key {
    uint64_t hi = 0, lo = 0;
    bool operator==(const Key& o) const { return hi == o.hi && lo == o.lo; }
    template <typename H>
    friend H AbslHashValue(H h, const Key& k) {
      return H::combine(std::move(h), k.hi, k.lo);
    }
  };
  static Key KeyOf(const std::string& memo_id);
  static std::string IdOf(const Key& key);
  uint32_t InternWorker(const std::string& worker_id);

  // Constant after construction.
  StoreReader* const store_;

  absl::flat_hash_map<Key, MemoRef> index_;
  // Full entries not yet committed (all of them without a store), by MemoId.
  absl::flat_hash_map<std::string, deja::v1::MemoEntry> full_;
  std::vector<std::string> worker_names_;
  absl::flat_hash_map<std::string, uint32_t> worker_index_;
  // The last full entry read from the store. Cleared on any change.
  mutable std::string hot_id_;
  mutable deja::v1::MemoEntry hot_;
};

}  // namespace deja

#endif  // DEJA_SCHEDULER_CORE_MEMO_INDEX_H_
