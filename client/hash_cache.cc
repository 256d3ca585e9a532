#include "client/hash_cache.h"

#include <fcntl.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/errors.h"
#include "common/files.h"
#include "common/hash.h"

namespace deja {
namespace {

constexpr char kMagic[] = "DEJAHC02";     // 8 bytes, no NUL written
constexpr char kOldMagic[] = "DEJAHC01";  // the unsorted format before it: rebuilt silently
constexpr size_t kMagicSize = 8;
constexpr size_t kHeaderSize = kMagicSize + 8;
// dev, ino, size, mtime, ctime; digest; last-used day, 4 zero bytes; checksum.
constexpr size_t kKeySize = size_t{5} * 8;
constexpr size_t kDayOffset = kKeySize + 16;
constexpr size_t kCheckOffset = kDayOffset + 8;
constexpr size_t kRecordSize = kCheckOffset + 8;

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
bool HexToBytes(const std::string& hex, std::array<unsigned char, 16>* out) {
  if (hex.size() != 32) return false;
  for (size_t i = 0; i < 32; i += 2) {
    int hi = HexValue(hex[i]);
    int lo = HexValue(hex[i + 1]);
    if (hi < 0 || lo < 0) return false;
    (*out)[i / 2] = static_cast<unsigned char>(hi * 16 + lo);
  }
  return true;
}

std::string BytesToHex(const std::array<unsigned char, 16>& bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(32);
  for (unsigned char b : bytes) {
    hex.push_back(kDigits[b >> 4]);
    hex.push_back(kDigits[b & 0xf]);
  }
  return hex;
}

// Reads exactly `size` bytes at `offset`; false on an error or a short read
// (a file truncated under us).
bool PreadFull(int fd, char* out, size_t size, uint64_t offset) {
  size_t done = 0;
  while (done < size) {
    ssize_t n = pread(fd, out + done, size - done, static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

using KeyWords = std::array<uint64_t, 5>;  // a key as the file stores and orders it

KeyWords WordsAt(const char* record) {
  KeyWords words;
  for (size_t i = 0; i < words.size(); ++i) words[i] = GetU64(record + 8 * i);
  return words;
}

bool RecordChecksumHolds(const char* record) {
  return XXH3_64bits(record, kCheckOffset) == GetU64(record + kCheckOffset);
}

void PutRecord(const KeyWords& key, const std::array<unsigned char, 16>& digest, uint32_t day,
               std::string* out) {
  const size_t start = out->size();
  for (uint64_t word : key) PutU64(word, out);
  out->append(reinterpret_cast<const char*>(digest.data()), digest.size());
  PutU32(day, out);
  PutU32(0, out);
  PutU64(XXH3_64bits(out->data() + start, kCheckOffset), out);
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

HashCache::~HashCache() {
  absl::MutexLock lock(&mu_);
  if (fd_ >= 0) close(fd_);
}

std::unique_ptr<HashCache> HashCache::Load(std::string path, HashCacheOptions options,
                                           std::string* warning) {
  std::unique_ptr<HashCache> cache(new HashCache(std::move(path), std::move(options)));
  if (cache->path_.empty()) return cache;
  absl::MutexLock lock(&cache->mu_);
  std::string why;
  const int fd = open(cache->path_.c_str(), O_RDONLY | O_CLOEXEC);
  struct stat st;
  char header[kHeaderSize];
  if (fd < 0) {
    if (errno == ENOENT) return cache;
    why = std::string(ErrnoStatus(errno, "open " + cache->path_).message());
  } else if (fstat(fd, &st) != 0) {
    why = std::string(ErrnoStatus(errno, "stat " + cache->path_).message());
  } else if (static_cast<uint64_t>(st.st_size) < kHeaderSize ||
             !PreadFull(fd, header, kHeaderSize, 0) ||
             (memcmp(header, kMagic, kMagicSize) != 0 &&
              memcmp(header, kOldMagic, kMagicSize) != 0)) {
    why = "not a deja hash cache";
  } else if (memcmp(header, kOldMagic, kMagicSize) == 0) {
    close(fd);
    cache->dirty_ = true;  // replaced, in the new format, on the next Save
    return cache;
  } else {
    const uint64_t count = GetU64(header + kMagicSize);
    const uint64_t body = static_cast<uint64_t>(st.st_size) - kHeaderSize;
    if (body % kRecordSize != 0 || body / kRecordSize != count) {
      why = "truncated";
    } else {
      cache->fd_ = fd;
      cache->count_ = count;
      return cache;
    }
  }
  if (fd >= 0) close(fd);
  if (warning != nullptr) {
    *warning =
        absl::StrCat("ignoring the hash cache ", cache->path_, " (", why, "); it will be rebuilt");
  }
  cache->dirty_ = true;  // replace the bad file on the next Save
  return cache;
}

std::optional<HashCache::Entry> HashCache::FindInFile(const Key& key) const {
  mu_.AssertHeld();
  const KeyWords want = {key.dev, key.ino, key.size, static_cast<uint64_t>(key.mtime_ns),
                         static_cast<uint64_t>(key.ctime_ns)};
  uint64_t lo = 0, hi = count_;  // the record sought, if any, is in [lo, hi)
  char record[kRecordSize];
  while (lo < hi) {
    const uint64_t mid = lo + (hi - lo) / 2;
    if (!PreadFull(fd_, record, kRecordSize, kHeaderSize + mid * kRecordSize)) {
      return std::nullopt;
    }
    const KeyWords words = WordsAt(record);
    if (words < want) {
      lo = mid + 1;
    } else if (want < words) {
      hi = mid;
    } else {
      if (!RecordChecksumHolds(record)) return std::nullopt;
      Entry entry;
      memcpy(entry.digest.data(), record + kKeySize, entry.digest.size());
      entry.last_used_day = GetU32(record + kDayOffset);
      return entry;
    }
  }
  return std::nullopt;
}

bool HashCache::ReadFileRecords(std::vector<Record>* records) const {
  mu_.AssertHeld();
  if (fd_ < 0 || count_ == 0) return true;
  std::string bytes(count_ * kRecordSize, '\0');
  if (!PreadFull(fd_, bytes.data(), bytes.size(), kHeaderSize)) return false;
  records->reserve(records->size() + count_);
  for (uint64_t i = 0; i < count_; ++i) {
    const char* p = bytes.data() + i * kRecordSize;
    if (!RecordChecksumHolds(p)) continue;
    const KeyWords w = WordsAt(p);
    Record record{Key{w[0], w[1], w[2], static_cast<int64_t>(w[3]), static_cast<int64_t>(w[4])},
                  Entry{}};
    memcpy(record.entry.digest.data(), p + kKeySize, record.entry.digest.size());
    record.entry.last_used_day = GetU32(p + kDayOffset);
    records->push_back(record);
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
    std::optional<Entry> found;
    if (auto it = changed_.find(key); it != changed_.end()) {
      found = it->second;
    } else {
      found = FindInFile(key);
    }
    if (found.has_value()) {
      ++hits_;
      hit_bytes_ += key.size;
      if (found->last_used_day != today) {
        changed_[key] = Entry{found->digest, today};
        dirty_ = true;
      }
      return BytesToHex(found->digest);
    }
  }
  absl::StatusOr<std::string> digest =
      options_.hash_file ? options_.hash_file(path, st) : HashFile(path);
  if (!digest.ok()) return digest;
  const absl::Time changed = absl::FromUnixNanos(std::max(key.mtime_ns, key.ctime_ns));
  const bool racy = changed > clock_->Now() - options_.racy_window;
  Entry entry{{}, today};
  absl::MutexLock lock(&mu_);
  ++misses_;
  miss_bytes_ += key.size;
  if (!racy && HexToBytes(*digest, &entry.digest)) {
    changed_[key] = entry;
    dirty_ = true;
  }
  return digest;
}

FileHasher HashCache::AsFileHasher() {
  return [this](const std::string& path, const struct stat& st) { return Digest(path, st); };
}

absl::Status HashCache::Save() {
  if (path_.empty()) return absl::OkStatus();
  // Under the lock throughout: Save is rare (only when something changed),
  // and the file it writes becomes the one lookups read, with changed_
  // emptied, so nothing may be added in between.
  absl::MutexLock lock(&mu_);
  if (!dirty_) return absl::OkStatus();
  std::vector<Record> records;
  if (!ReadFileRecords(&records)) {
    records.clear();  // unreadable now: rebuild from what this run saw
  }
  std::erase_if(records, [this](const Record& r) { return changed_.contains(r.key); });
  for (const auto& [key, entry] : changed_) records.push_back(Record{key, entry});
  const int64_t today = Today();
  const int64_t max_age_days = absl::ToInt64Hours(options_.max_age) / 24;
  std::erase_if(records, [&](const Record& r) {
    return today - static_cast<int64_t>(r.entry.last_used_day) > max_age_days;
  });
  if (records.size() > options_.max_entries) {
    std::nth_element(records.begin(),
                     records.begin() + static_cast<ptrdiff_t>(options_.max_entries), records.end(),
                     [](const Record& a, const Record& b) {
                       return a.entry.last_used_day > b.entry.last_used_day;
                     });
    records.resize(options_.max_entries);
  }
  auto words = [](const Key& k) {
    return KeyWords{k.dev, k.ino, k.size, static_cast<uint64_t>(k.mtime_ns),
                    static_cast<uint64_t>(k.ctime_ns)};
  };
  std::sort(records.begin(), records.end(),
            [&](const Record& a, const Record& b) { return words(a.key) < words(b.key); });
  std::string bytes;
  bytes.reserve(kHeaderSize + records.size() * kRecordSize);
  bytes.append(kMagic, kMagicSize);
  PutU64(records.size(), &bytes);
  for (const Record& r : records) {
    PutRecord(words(r.key), r.entry.digest, r.entry.last_used_day, &bytes);
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
  // No fsync: after a crash a torn file fails its length or record checks
  // and is rebuilt.
  if (status.ok() && rename(temp.c_str(), path_.c_str()) != 0) {
    status = ErrnoStatus(errno, "rename " + temp + " to " + path_);
  }
  if (!status.ok()) {
    close(fd);
    unlink(temp.c_str());
    return status;  // still dirty; lookups keep reading the old file and changed_
  }
  // The temp file's descriptor now reads the renamed file: lookups go to
  // what was just written.
  if (fd_ >= 0) close(fd_);
  fd_ = fd;
  count_ = records.size();
  changed_.clear();
  dirty_ = false;
  return absl::OkStatus();
}

size_t HashCache::size() const {
  absl::MutexLock lock(&mu_);
  std::vector<Record> records;
  ReadFileRecords(&records);
  size_t size = changed_.size();
  for (const Record& r : records) size += changed_.contains(r.key) ? 0 : 1;
  return size;
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
