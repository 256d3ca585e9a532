// BlobCache: the worker's local cache of content-store blobs (input files),
// under <work_dir>/cache/blobs/<first two digits>/<digest> (worker/paths.h).
//
// Each cached file is read-only (0444) and holds exactly the bytes of its
// digest: it is downloaded through BlobClient::DownloadToFile, which checks
// size and digest before renaming it into place. The cache is bounded by
// `max_bytes` (the sum of the cached blobs' sizes) with LRU eviction by last
// use. Open() rebuilds the index from the directory, ordering what it finds
// by each file's last access (the later of atime and mtime; every use sets
// atime, so the order survives restarts).
//
// Pinning: Fetch() returns a Pin; while any Pin of a blob is alive the blob
// is not evicted (callers hold it while they link or copy it into a
// workspace). Eviction only ever removes unpinned blobs, so the cache may go
// over its bound while pins hold it there; it shrinks back as they are
// released. A blob larger than the whole bound is still fetched; it is the
// first to go once unpinned.
//
// Single flight: concurrent Fetch() calls for a blob the cache lacks download
// it once; the others wait and share the outcome.
//
// A cached file whose size or mtime differs from what the cache recorded (a
// job that chmod-ed and wrote through a hard link) is dropped and fetched
// again rather than served.
//
// Thread-safety: BlobCache is thread-safe. Downloads run on the calling
// thread, outside the lock.
#ifndef DEJA_WORKER_BLOB_CACHE_H_
#define DEJA_WORKER_BLOB_CACHE_H_

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/blob_client.h"
#include "deja/v1/content.pb.h"

namespace deja::worker {

class BlobCache {
 public:
  // Keeps one blob from eviction while alive. Movable, not copyable; the
  // cache must outlive it.
  class Pin {
   public:
    Pin() = default;
    Pin(Pin&& other) noexcept { *this = std::move(other); }
    Pin& operator=(Pin&& other) noexcept;
    Pin(const Pin&) = delete;
    Pin& operator=(const Pin&) = delete;
    ~Pin() { Release(); }

    // The cached file (read-only; link or copy it, never write it).
    const std::string& path() const { return path_; }
    void Release();

   private:
    friend class BlobCache;
    Pin(BlobCache* cache, std::string digest, std::string path)
        : cache_(cache), digest_(std::move(digest)), path_(std::move(path)) {}

    BlobCache* cache_ = nullptr;
    std::string digest_;
    std::string path_;
  };

  struct Stats {
    uint64_t bytes = 0;  // of the cached blobs (and of downloads in progress)
    uint64_t blobs = 0;  // cached blobs
    uint64_t hits = 0;
    uint64_t downloads = 0;  // started by this process, successful or not
    uint64_t evictions = 0;
    uint64_t waiting = 0;  // Fetch() calls now waiting for another's download
  };

  // Opens the cache in `dir` (created if needed), rebuilding the index from
  // the files there; downloads left over by a crash (*.part-*) are removed,
  // and the cache is trimmed to `max_bytes`. `client` (not owned) must
  // outlive the cache. Errors name the path.
  static absl::StatusOr<std::unique_ptr<BlobCache>> Open(std::string dir, uint64_t max_bytes,
                                                         const BlobClient* client);

  BlobCache(const BlobCache&) = delete;
  BlobCache& operator=(const BlobCache&) = delete;

  // Returns `blob` pinned, downloading it first when missing. Errors:
  //   INVALID_ARGUMENT  not a valid digest;
  //   NOT_FOUND         the store does not have it;
  //   DATA_LOSS         the download did not match size and digest;
  //   PERMISSION_DENIED the store refused `ticket` for it (common/tickets.h);
  //   others            network or disk errors.
  // Every message names the digest. A download shows the store `ticket`, that
  // of the assignment the blob is for; a fetch that waits for another's
  // download shares its outcome.
  absl::StatusOr<Pin> Fetch(
      const deja::v1::BlobRef& blob,
      const deja::v1::SignedTicket& ticket = deja::v1::SignedTicket::default_instance());

  bool Contains(const std::string& digest) const;
  Stats GetStats() const;
  const std::string& dir() const { return dir_; }

 private:
  // A download in progress, shared by those who wait for it.
  struct Flight {
    bool done = false;
    absl::Status status;
    int waiters = 0;  // each gets a pin taken for it by the downloader
  };
  struct Entry {
    uint64_t size = 0;
    bool ready = false;  // false while downloading
    int pins = 0;
    uint64_t tick = 0;               // last use, for LRU; meaningful when ready
    struct timespec mtime = {0, 0};  // as stored
    std::shared_ptr<Flight> flight;  // while downloading
  };

  BlobCache(std::string dir, uint64_t max_bytes, const BlobClient* client);
  absl::Status LoadIndex();

  void Unpin(const std::string& digest);
  // Marks `entry` used now.
  void TouchLocked(const std::string& digest, Entry& entry) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Evicts unpinned blobs (oversized ones first, then least recently used)
  // until the cache fits its bound or only pinned blobs are left.
  void EvictLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RemoveLocked(const std::string& digest) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::string PathOf(const std::string& digest) const;

  // Constant after construction.
  const std::string dir_;
  const uint64_t max_bytes_;
  const BlobClient* const client_;

  mutable absl::Mutex mu_;
  std::map<std::string, Entry> entries_ ABSL_GUARDED_BY(mu_);
  // (tick, digest) of every ready blob, oldest use first.
  std::set<std::pair<uint64_t, std::string>> lru_ ABSL_GUARDED_BY(mu_);
  uint64_t next_tick_ ABSL_GUARDED_BY(mu_) = 1;
  // Blobs larger than max_bytes_ (downloading, pinned, or about to go) and
  // their total size, which does not count against the bound: evicting
  // other blobs cannot make room for them anyway.
  std::set<std::string> oversized_ ABSL_GUARDED_BY(mu_);
  uint64_t exempt_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  Stats stats_ ABSL_GUARDED_BY(mu_);
};

}  // namespace deja::worker

#endif  // DEJA_WORKER_BLOB_CACHE_H_
