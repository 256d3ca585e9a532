#include "client/hash_cache.h"

#include <fcntl.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/errors.h"
#include "common/hash.h"

namespace deja {
namespace {

constexpr char kMagic[] = "DEJAHC01";  // 8 bytes, no NUL written
constexpr size_t kMagicSize = 8;
constexpr size_t kRecordSize = 5 * 8 + 4 + 16;
constexpr size_t kHeaderSize = kMagicSize + 8;
constexpr size_t kTrailerSize = 8;

void PutU64(uint64_t value, std::string* out) {
  for (int i = 0; i < 8; ++i) out->push_back(static_cast<char>((value >> (8 * i)) & 0xff));
}

void PutU32(uint32_t value, std::string* out) {
  for (int i = 0; i < 4; ++i) out->push_back(static_cast<char>((value >> (8 * i)) & 0xff));
}

uint64_t GetU64(const char* p) {
  uint64_t value = 0;
  for (int i = 0; i < 8; ++i) value |= uint64_t{static_cast<unsigned char>(p[i])} << (8 * i);
  return value;
}

uint32_t GetU32(const char* p) {
  uint32_t value = 0;
  for (int i = 0; i < 4; ++i) value |= uint32_t{static_cast<unsigned char>(p[i])} << (8 * i);
  return value;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

// 32 lowercase hex digits to 16 bytes; false if `hex` is not a digest.
bool HexToBytes(const std::string& hex, std::string* out) {
  if (hex.size() != 32) return false;
  out->clear();
  for (size_t i = 0; i < 32; i += 2) {
    int hi = HexValue(hex[i]);
    int lo = HexValue(hex[i + 1]);
    if (hi < 0 || lo < 0) return false;
    out->push_back(static_cast<char>(hi * 16 + lo));
  }
  return true;
}

std::string BytesToHex(const char* p) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string hex;
  for (int i = 0; i < 16; ++i) {
    unsigned char b = static_cast<unsigned char>(p[i]);
    hex.push_back(kDigits[b >> 4]);
    hex.push_back(kDigits[b & 0xf]);
  }
  return hex;
}

absl::StatusOr<std::string> ReadWholeFile(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus(errno, "open " + path);
  std::string bytes;
  char buffer[1 << 16];
  while (true) {
    ssize_t n = read(fd, buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      close(fd);
      return ErrnoStatus(err, "read " + path);
    }
    if (n == 0) break;
    bytes.append(buffer, static_cast<size_t>(n));
  }
  close(fd);
  return bytes;
}

absl::Status MakeParentDirs(const std::string& path) {
  for (size_t slash = path.find('/', 1); slash != std::string::npos;
       slash = path.find('/', slash + 1)) {
    std::string dir = path.substr(0, slash);
    if (mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) return ErrnoStatus(errno, "mkdir " + dir);
  }
  return absl::OkStatus();
}

}  // namespace

std::string HashCache::DefaultPath() {
  auto env = [](const char* name) -> std::string {
    const char* value = std::getenv(name);
    return value == nullptr ? "" : value;
  };
  if (std::string path = env(kHashCacheEnv); !path.empty()) return path;
  if (std::string xdg = env("XDG_CACHE_HOME"); !xdg.empty()) return xdg + "/deja/hashes";
  if (std::string home = env("HOME"); !home.empty()) return home + "/.cache/deja/hashes";
  return "";
}

HashCache::HashCache(std::string path, HashCacheOptions options)
    : path_(std::move(path)),
      options_(std::move(options)),
      clock_(options_.clock != nullptr ? options_.clock : [] {
        static RealClock real;
        return &real;
      }()) {}

std::unique_ptr<HashCache> HashCache::Load(std::string path, HashCacheOptions options,
                                           std::string* warning) {
  std::unique_ptr<HashCache> cache(new HashCache(std::move(path), std::move(options)));
  if (cache->path_.empty()) return cache;
  absl::StatusOr<std::string> bytes = ReadWholeFile(cache->path_);
  std::string why;
  if (!bytes.ok()) {
    if (absl::IsNotFound(bytes.status())) return cache;
    why = std::string(bytes.status().message());
  } else {
    absl::MutexLock lock(&cache->mu_);
    if (cache->Parse(*bytes, &why)) return cache;
    cache->entries_.clear();
  }
  if (warning != nullptr) {
    *warning = absl::StrCat("ignoring the hash cache ", cache->path_, " (", why,
                            "); it will be rebuilt");
  }
  absl::MutexLock lock(&cache->mu_);
  cache->dirty_ = true;  // replace the bad file on the next Save
  return cache;
}

bool HashCache::Parse(const std::string& bytes, std::string* why) {
  mu_.AssertHeld();
  if (bytes.size() < kHeaderSize + kTrailerSize || bytes.compare(0, kMagicSize, kMagic) != 0) {
    *why = "not a deja hash cache";
    return false;
  }
  uint64_t count = GetU64(bytes.data() + kMagicSize);
  uint64_t body = bytes.size() - kHeaderSize - kTrailerSize;
  if (body % kRecordSize != 0 || body / kRecordSize != count) {
    *why = "truncated";
    return false;
  }
  uint64_t checksum = XXH3_64bits(bytes.data(), bytes.size() - kTrailerSize);
  if (checksum != GetU64(bytes.data() + bytes.size() - kTrailerSize)) {
    *why = "checksum mismatch";
    return false;
  }
  entries_.reserve(count);
  for (uint64_t i = 0; i < count; ++i) {
    const char* p = bytes.data() + kHeaderSize + i * kRecordSize;
    Key key{GetU64(p), GetU64(p + 8), GetU64(p + 16), static_cast<int64_t>(GetU64(p + 24)),
            static_cast<int64_t>(GetU64(p + 32))};
    entries_[key] = Entry{BytesToHex(p + 44), GetU32(p + 40)};
  }
  return true;
}

HashCache::Key HashCache::KeyOf(const struct stat& st) {
  auto ns = [](const struct timespec& ts) {
    return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
  };
  return Key{static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino),
             static_cast<uint64_t>(st.st_size), ns(st.st_mtim), ns(st.st_ctim)};
}

uint32_t HashCache::Today() const {
  return static_cast<uint32_t>(absl::ToUnixSeconds(clock_->Now()) / 86400);
}

absl::StatusOr<std::string> HashCache::Digest(const std::string& path, const struct stat& st) {
  const Key key = KeyOf(st);
  const uint32_t today = Today();
  {
    absl::MutexLock lock(&mu_);
    auto it = entries_.find(key);
    if (it != entries_.end()) {
      ++hits_;
      hit_bytes_ += key.size;
      if (it->second.last_used_day != today) {
        it->second.last_used_day = today;
        dirty_ = true;
      }
      return it->second.digest;
    }
  }
  absl::StatusOr<std::string> digest =
      options_.hash_file ? options_.hash_file(path, st) : HashFile(path);
  if (!digest.ok()) return digest;
  const absl::Time changed = absl::FromUnixNanos(std::max(key.mtime_ns, key.ctime_ns));
  const bool racy = changed > clock_->Now() - options_.racy_window;
  std::string raw;
  absl::MutexLock lock(&mu_);
  ++misses_;
  miss_bytes_ += key.size;
  if (!racy && HexToBytes(*digest, &raw)) {
    entries_[key] = Entry{*digest, today};
    dirty_ = true;
  }
  return digest;
}

FileHasher HashCache::AsFileHasher() {
  return [this](const std::string& path, const struct stat& st) { return Digest(path, st); };
}

absl::Status HashCache::Save() {
  if (path_.empty()) return absl::OkStatus();
  std::string bytes;
  {
    absl::MutexLock lock(&mu_);
    if (!dirty_) return absl::OkStatus();
    const uint32_t today = Today();
    const int64_t max_age_days = absl::ToInt64Hours(options_.max_age) / 24;
    std::vector<std::pair<Key, Entry>> kept;
    kept.reserve(entries_.size());
    for (const auto& [key, entry] : entries_) {
      if (static_cast<int64_t>(today) - static_cast<int64_t>(entry.last_used_day) > max_age_days) {
        continue;
      }
      kept.emplace_back(key, entry);
    }
    if (kept.size() > options_.max_entries) {
      std::nth_element(kept.begin(), kept.begin() + static_cast<ptrdiff_t>(options_.max_entries),
                       kept.end(), [](const auto& a, const auto& b) {
                         return a.second.last_used_day > b.second.last_used_day;
                       });
      kept.resize(options_.max_entries);
    }
    bytes.reserve(kHeaderSize + kept.size() * kRecordSize + kTrailerSize);
    bytes.append(kMagic, kMagicSize);
    PutU64(kept.size(), &bytes);
    std::string raw;
    for (const auto& [key, entry] : kept) {
      PutU64(key.dev, &bytes);
      PutU64(key.ino, &bytes);
      PutU64(key.size, &bytes);
      PutU64(static_cast<uint64_t>(key.mtime_ns), &bytes);
      PutU64(static_cast<uint64_t>(key.ctime_ns), &bytes);
      PutU32(entry.last_used_day, &bytes);
      HexToBytes(entry.digest, &raw);
      bytes.append(raw);
    }
    PutU64(XXH3_64bits(bytes.data(), bytes.size()), &bytes);
    // Keep memory in step with the file.
    entries_.clear();
    for (auto& [key, entry] : kept) entries_.emplace(key, std::move(entry));
    dirty_ = false;
  }
  if (auto s = MakeParentDirs(path_); !s.ok()) return s;
  std::string temp = path_ + ".tmp-XXXXXX";
  int fd = mkostemp(temp.data(), O_CLOEXEC);
  if (fd < 0) return ErrnoStatus(errno, "create " + temp);
  absl::Status status;
  size_t off = 0;
  while (off < bytes.size()) {
    ssize_t n = write(fd, bytes.data() + off, bytes.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      status = ErrnoStatus(errno, "write " + temp);
      break;
    }
    off += static_cast<size_t>(n);
  }
  // No fsync: after a crash a torn file fails its checksum and is rebuilt.
  if (close(fd) != 0 && status.ok()) status = ErrnoStatus(errno, "close " + temp);
  if (status.ok() && rename(temp.c_str(), path_.c_str()) != 0) {
    status = ErrnoStatus(errno, "rename " + temp + " to " + path_);
  }
  if (!status.ok()) {
    unlink(temp.c_str());
    absl::MutexLock lock(&mu_);
    dirty_ = true;
  }
  return status;
}

size_t HashCache::size() const {
  absl::MutexLock lock(&mu_);
  return entries_.size();
}

uint64_t HashCache::hits() const {
  absl::MutexLock lock(&mu_);
  return hits_;
}

uint64_t HashCache::misses() const {
  absl::MutexLock lock(&mu_);
  return misses_;
}

uint64_t HashCache::hit_bytes() const {
  absl::MutexLock lock(&mu_);
  return hit_bytes_;
}

uint64_t HashCache::miss_bytes() const {
  absl::MutexLock lock(&mu_);
  return miss_bytes_;
}

}  // namespace deja
