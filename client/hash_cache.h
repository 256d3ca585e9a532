// HashCache: the CLI's persistent cache of file digests, so re-submitting
// unchanged inputs costs one stat per file instead of reading every byte.
//
// Key: (device, inode, size, mtime ns, ctime ns) of the file. A write, a
// truncate, a `touch` or a rename over the file changes at least one of them
// (ctime also catches tools that restore an old mtime, such as `tar`, `rsync
// -t` or `touch -d`). A file modified within `racy_window` of now is hashed
// but not cached: timestamps are coarser than writes, so a second write in
// the same tick could otherwise keep a stale digest (git's "racy clean" case).
//
// File (docs/content-store.md): "DEJAHC02", u64 count, then `count` records
// of 72 bytes sorted by key (dev, ino, size, mtime_ns, ctime_ns as u64; the
// 16 digest bytes; last-used day as u32; 4 zero bytes; the XXH3-64 of the
// record's first 64 bytes); integers little-endian. Nothing is parsed on
// Load: a lookup binary-searches the file with pread (about 20 reads of 72
// bytes for 1M entries) and serves a record only if its own checksum holds,
// so a re-submit costs one stat and one lookup per file however big the
// cache. Written back (temp file + rename, so readers see the old or the new
// file, never a mix) only when something changed: a file hashed, or an entry
// first used today. A missing file is an empty cache; one with a bad magic
// or length is ignored with a one-line warning, never an error; a corrupt
// record is a miss and is dropped on the next save. Two CLIs saving at once:
// the last rename wins, which only costs the other's new entries.
//
// Bounded: entries not used for `max_age` (30 days) are dropped on save, and
// only the `max_entries` (1M, about 72 MB) most recently used are kept.
//
// Thread-safe.
#ifndef DEJA_CLIENT_HASH_CACHE_H_
#define DEJA_CLIENT_HASH_CACHE_H_

#include <sys/stat.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "common/tree.h"

namespace deja {

inline constexpr char kHashCacheEnv[] = "DEJA_HASH_CACHE";

struct HashCacheOptions {
  absl::Duration max_age = absl::Hours(24 * 30);
  size_t max_entries = 1'000'000;
  absl::Duration racy_window = absl::Seconds(2);
  // Not owned; nullptr: the real clock.
  Clock* clock = nullptr;
  // How a file is hashed on a miss; empty: HashFile (common/hash.h).
  FileHasher hash_file;
};

class HashCache {
 public:
  // $DEJA_HASH_CACHE if set and non-empty, else $XDG_CACHE_HOME/deja/hashes,
  // else $HOME/.cache/deja/hashes; "" when none of them is set (then the
  // cache lives in memory only).
  static std::string DefaultPath();

  // Opens the cache file at `path` ("" for a cache that is never saved) and
  // checks its header and length; reads no record. Never fails: a missing
  // file (or one of the old DEJAHC01 format) gives an empty cache; an
  // unreadable or corrupt one gives an empty cache and sets `*warning` (when
  // not null) to one line saying so. Leaves `*warning` untouched otherwise.
  static std::unique_ptr<HashCache> Load(std::string path, HashCacheOptions options = {},
                                         std::string* warning = nullptr);

  // The digest of the regular file at `path`, stat'ed as `st`: from the
  // cache when the key matches, else hashed (and remembered unless racy).
  // Errors are the hasher's (NOT_FOUND, PERMISSION_DENIED... naming the path).
  absl::StatusOr<std::string> Digest(const std::string& path, const struct stat& st);

  // A FileHasher (common/tree.h) backed by this cache, for DigestTree. The
  // cache must outlive it.
  FileHasher AsFileHasher();

  // Writes the cache back if it changed since Load (or the last Save):
  // creates the parent directory, drops old entries, writes a temp file
  // beside `path` and renames it over `path`. INTERNAL/PERMISSION_DENIED
  // naming the path on failure (callers warn and go on).
  absl::Status Save();

  ~HashCache();
  HashCache(const HashCache&) = delete;
  HashCache& operator=(const HashCache&) = delete;

  const std::string& path() const { return path_; }
  // The number of entries; reads the whole file (for tests and diagnostics).
  size_t size() const;
  // Lookups answered from the cache, and files hashed, since Load; and
  // their bytes (the files' sizes as stat'ed).
  uint64_t hits() const;
  uint64_t misses() const;
  uint64_t hit_bytes() const;
  uint64_t miss_bytes() const;

 private:
  struct Key {
    uint64_t dev, ino, size;
    int64_t mtime_ns, ctime_ns;
    bool operator==(const Key& o) const {
      return dev == o.dev && ino == o.ino && size == o.size && mtime_ns == o.mtime_ns &&
             ctime_ns == o.ctime_ns;
    }
    template <typename H>
    friend H AbslHashValue(H h, const Key& k) {
      return H::combine(std::move(h), k.dev, k.ino, k.size, k.mtime_ns, k.ctime_ns);
    }
  };
  struct Entry {
    std::array<unsigned char, 16> digest;
    uint32_t last_used_day = 0;  // days since the Unix epoch
  };
  struct Record {
    Key key;
    Entry entry;
  };

  HashCache(std::string path, HashCacheOptions options);
  static Key KeyOf(const struct stat& st);
  uint32_t Today() const;
  // The entry of `key` in the file, if there is one whose checksum holds.
  std::optional<Entry> FindInFile(const Key& key) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Every record of the file whose checksum holds, in file order; false if
  // the file could not be read whole.
  bool ReadFileRecords(std::vector<Record>* records) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Constant after construction.
  const std::string path_;
  const HashCacheOptions options_;
  Clock* const clock_;

  mutable absl::Mutex mu_;
  // The cache file as loaded or last saved (-1: none) and its record count.
  int fd_ ABSL_GUARDED_BY(mu_) = -1;
  uint64_t count_ ABSL_GUARDED_BY(mu_) = 0;
  // Entries hashed or first used today since then; they win over the file's.
  absl::flat_hash_map<Key, Entry> changed_ ABSL_GUARDED_BY(mu_);
  bool dirty_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t hits_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t misses_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t hit_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t miss_bytes_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace deja

#endif  // DEJA_CLIENT_HASH_CACHE_H_
