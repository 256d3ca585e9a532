#include "worker/blob_cache.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <tuple>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/check.h"
#include "common/errors.h"
#include "worker/paths.h"

namespace deja::worker {
namespace {

bool SameTime(const struct timespec& a, const struct timespec& b) {
  return a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec;
}

bool Later(const struct timespec& a, const struct timespec& b) {
  return std::tie(a.tv_sec, a.tv_nsec) > std::tie(b.tv_sec, b.tv_nsec);
}

absl::Status Annotate(const absl::Status& status, const std::string& digest) {
  return absl::Status(status.code(), absl::StrCat("fetch blob ", digest, ": ", status.message()));
}

}  // namespace

BlobCache::Pin& BlobCache::Pin::operator=(Pin&& other) noexcept {
  if (this != &other) {
    Release();
    cache_ = other.cache_;
    digest_ = std::move(other.digest_);
    path_ = std::move(other.path_);
    other.cache_ = nullptr;
  }
  return *this;
}

void BlobCache::Pin::Release() {
  if (cache_ == nullptr) return;
  cache_->Unpin(digest_);
  cache_ = nullptr;
}

BlobCache::BlobCache(std::string dir, uint64_t max_bytes, const BlobClient* client)
    : dir_(std::move(dir)), max_bytes_(max_bytes), client_(client) {}

absl::StatusOr<std::unique_ptr<BlobCache>> BlobCache::Open(std::string dir, uint64_t max_bytes,
                                                           const BlobClient* client) {
  std::unique_ptr<BlobCache> cache(new BlobCache(std::move(dir), max_bytes, client));
  if (absl::Status st = cache->LoadIndex(); !st.ok()) return st;
  return cache;
}

std::string BlobCache::PathOf(const std::string& digest) const {
  return paths::CachedBlobPath(dir_, digest);
}

absl::Status BlobCache::LoadIndex() {
  if (absl::Status st = paths::MakeDirs(dir_); !st.ok()) return st;
  struct Found {
    struct timespec used;
    std::string digest;
    uint64_t size;
    struct timespec mtime;
  };
  std::vector<Found> found;
  DIR* top = opendir(dir_.c_str());
  if (top == nullptr) return ErrnoStatus(errno, "open blob cache " + dir_);
  while (dirent* d = readdir(top)) {
    const std::string prefix = d->d_name;
    if (prefix == "." || prefix == "..") continue;
    const std::string sub = absl::StrCat(dir_, "/", prefix);
    DIR* dir = opendir(sub.c_str());
    if (dir == nullptr) continue;  // not a directory of ours
    while (dirent* f = readdir(dir)) {
      const std::string name = f->d_name;
      if (name == "." || name == "..") continue;
      const std::string path = absl::StrCat(sub, "/", name);
      if (absl::StrContains(name, ".part-")) {
        unlink(path.c_str());  // a download a crash interrupted
        continue;
      }
      struct stat st;
      if (!paths::ValidateDigest(name).ok() || name.compare(0, 2, prefix) != 0 ||
          lstat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) {
        continue;  // not a blob: neither counted nor touched
      }
      found.push_back(Found{Later(st.st_atim, st.st_mtim) ? st.st_atim : st.st_mtim, name,
                            static_cast<uint64_t>(st.st_size), st.st_mtim});
    }
    closedir(dir);
  }
  closedir(top);
  std::sort(found.begin(), found.end(), [](const Found& a, const Found& b) {
    return std::tie(a.used.tv_sec, a.used.tv_nsec, a.digest) <
           std::tie(b.used.tv_sec, b.used.tv_nsec, b.digest);
  });
  absl::MutexLock lock(&mu_);
  for (const Found& f : found) {
    Entry& entry = entries_[f.digest];
    entry.size = f.size;
    entry.ready = true;
    entry.mtime = f.mtime;
    entry.tick = next_tick_++;
    lru_.emplace(entry.tick, f.digest);
    stats_.bytes += f.size;
    ++stats_.blobs;
    if (f.size > max_bytes_) {
      oversized_.insert(f.digest);
      exempt_bytes_ += f.size;
    }
  }
  EvictLocked();
  return absl::OkStatus();
}

absl::StatusOr<BlobCache::Pin> BlobCache::Fetch(const deja::v1::BlobRef& blob,
                                                const deja::v1::SignedTicket& ticket) {
  const std::string& digest = blob.digest();
  if (absl::Status st = paths::ValidateDigest(digest); !st.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("fetch blob: ", st.message()));
  }
  const std::string path = PathOf(digest);
  std::shared_ptr<Flight> flight;
  {
    absl::MutexLock lock(&mu_);
    auto it = entries_.find(digest);
    if (it != entries_.end() && !it->second.ready) {
      // Someone is downloading it: wait for that download and share it.
      std::shared_ptr<Flight> shared = it->second.flight;
      ++shared->waiters;
      ++stats_.waiting;
      mu_.Await(absl::Condition(&shared->done));
      --stats_.waiting;
      if (!shared->status.ok()) return shared->status;
      return Pin(this, digest, path);  // the downloader pinned it for us
    }
    if (it != entries_.end()) {
      Entry& entry = it->second;
      struct stat st;
      const bool intact = entry.size == blob.size() && lstat(path.c_str(), &st) == 0 &&
                          S_ISREG(st.st_mode) && static_cast<uint64_t>(st.st_size) == entry.size &&
                          SameTime(st.st_mtim, entry.mtime);
      if (intact) {
        ++entry.pins;
        ++stats_.hits;
        TouchLocked(digest, entry);
        // Records the use on disk too, so that the LRU order survives a
        // restart. Under mu_: an eviction cannot unlink it meanwhile.
        struct timespec times[2] = {{0, UTIME_NOW}, {0, UTIME_OMIT}};
        utimensat(AT_FDCWD, path.c_str(), times, AT_SYMLINK_NOFOLLOW);
        return Pin(this, digest, path);
      }
      if (entry.pins > 0) {
        return absl::DataLossError(absl::StrCat("fetch blob ", digest, ": the cached copy ", path,
                                                " does not match (modified, or size ", blob.size(),
                                                " is not ", entry.size, ")"));
      }
      RemoveLocked(digest);  // stale: fetch it again
    }
    Entry& entry = entries_[digest];
    entry.size = blob.size();
    entry.flight = flight = std::make_shared<Flight>();
    stats_.bytes += blob.size();
    ++stats_.downloads;
    if (blob.size() > max_bytes_) {
      oversized_.insert(digest);
      exempt_bytes_ += blob.size();
    }
    EvictLocked();  // make room for it
  }

  absl::Status status = paths::MakeDirs(path.substr(0, path.rfind('/')));
  if (status.ok()) status = client_->DownloadToFile(blob, path, {}, ticket);
  struct stat st = {};
  if (status.ok() && (chmod(path.c_str(), 0444) != 0 || lstat(path.c_str(), &st) != 0)) {
    status = ErrnoStatus(errno, "chmod " + path);
    unlink(path.c_str());
  }
  if (!status.ok()) status = Annotate(status, digest);

  absl::MutexLock lock(&mu_);
  Entry& entry = entries_[digest];
  flight->done = true;
  flight->status = status;
  entry.flight.reset();
  if (!status.ok()) {
    stats_.bytes -= entry.size;
    if (oversized_.erase(digest) != 0) exempt_bytes_ -= entry.size;
    entries_.erase(digest);
    return status;
  }
  entry.ready = true;
  entry.mtime = st.st_mtim;
  entry.pins = 1 + flight->waiters;
  ++stats_.blobs;
  TouchLocked(digest, entry);
  EvictLocked();
  return Pin(this, digest, path);
}

void BlobCache::Unpin(const std::string& digest) {
  absl::MutexLock lock(&mu_);
  auto it = entries_.find(digest);
  DEJA_CHECK(it != entries_.end() && it->second.pins > 0, "unpin of an unpinned blob " + digest);
  if (--it->second.pins == 0) EvictLocked();
}

void BlobCache::TouchLocked(const std::string& digest, Entry& entry) {
  lru_.erase({entry.tick, digest});
  entry.tick = next_tick_++;
  lru_.emplace(entry.tick, digest);
}

void BlobCache::EvictLocked() {
  for (auto it = oversized_.begin(); it != oversized_.end();) {
    const std::string digest = *it++;
    const Entry& entry = entries_.at(digest);
    if (entry.ready && entry.pins == 0) RemoveLocked(digest);
  }
  auto victim = lru_.begin();
  while (stats_.bytes - exempt_bytes_ > max_bytes_ && victim != lru_.end()) {
    const std::string digest = victim->second;
    ++victim;
    if (entries_.at(digest).pins == 0) RemoveLocked(digest);
  }
}

void BlobCache::RemoveLocked(const std::string& digest) {
  auto it = entries_.find(digest);
  DEJA_CHECK(it != entries_.end() && it->second.ready && it->second.pins == 0,
             "removing a blob in use: " + digest);
  const std::string path = PathOf(digest);
  // A hard link in a workspace keeps the inode alive; only the name goes.
  unlink(path.c_str());
  lru_.erase({it->second.tick, digest});
  stats_.bytes -= it->second.size;
  --stats_.blobs;
  ++stats_.evictions;
  if (oversized_.erase(digest) != 0) exempt_bytes_ -= it->second.size;
  entries_.erase(it);
}

bool BlobCache::Contains(const std::string& digest) const {
  absl::MutexLock lock(&mu_);
  auto it = entries_.find(digest);
  return it != entries_.end() && it->second.ready;
}

BlobCache::Stats BlobCache::GetStats() const {
  absl::MutexLock lock(&mu_);
  return stats_;
}

}  // namespace deja::worker
