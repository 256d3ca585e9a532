#include "worker/fingerprints.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/errors.h"
#include "common/hash.h"
#include "common/manifest.h"
#include "worker/paths.h"

namespace deja::worker {
namespace {

constexpr mode_t kWriteBits = S_IWUSR | S_IWGRP | S_IWOTH;
// A record: [u32 payload size][payload][32 hex digits: HashBytes(payload)].
constexpr size_t kChecksumSize = 32;
constexpr uint32_t kMaxPayload = 1u << 30;

int64_t Nanos(const struct timespec& t) {
  return static_cast<int64_t>(t.tv_sec) * 1'000'000'000 + t.tv_nsec;
}

template <typename T>
void PutRaw(std::string* out, T v) {
  out->append(reinterpret_cast<const char*>(&v), sizeof(v));
}

void PutString(std::string* out, const std::string& s) {
  PutRaw<uint32_t>(out, static_cast<uint32_t>(s.size()));
  out->append(s);
}

// Reads from a payload; every Get fails (returns false) past its end.
class Reader {
 public:
  Reader(const char* data, size_t size) : data_(data), left_(size) {}
  template <typename T>
  bool Get(T* v) {
    if (left_ < sizeof(T)) return false;
    std::memcpy(v, data_, sizeof(T));
    data_ += sizeof(T);
    left_ -= sizeof(T);
    return true;
  }
  bool GetString(std::string* s) {
    uint32_t n = 0;
    if (!Get(&n) || left_ < n) return false;
    s->assign(data_, n);
    data_ += n;
    left_ -= n;
    return true;
  }
  bool done() const { return left_ == 0; }

 private:
  const char* data_;
  size_t left_;
};

std::string EncodePayload(const std::string& job_id, const Fingerprints& fingerprints) {
  std::string out;
  PutString(&out, job_id);
  PutRaw<uint32_t>(&out, static_cast<uint32_t>(fingerprints.size()));
  for (const auto& [path, fp] : fingerprints) {
    PutString(&out, path);
    PutRaw(&out, fp.dev);
    PutRaw(&out, fp.ino);
    PutRaw(&out, fp.size);
    PutRaw(&out, fp.mtime_ns);
    PutRaw(&out, fp.ctime_ns);
    PutString(&out, fp.digest);
  }
  return out;
}

bool DecodePayload(const char* data, size_t size, std::string* job_id,
                   Fingerprints* fingerprints) {
  Reader r(data, size);
  uint32_t n = 0;
  if (!r.GetString(job_id) || !r.Get(&n)) return false;
  for (uint32_t i = 0; i < n; ++i) {
    std::string path;
    FileFingerprint fp;
    if (!r.GetString(&path) || !r.Get(&fp.dev) || !r.Get(&fp.ino) || !r.Get(&fp.size) ||
        !r.Get(&fp.mtime_ns) || !r.Get(&fp.ctime_ns) || !r.GetString(&fp.digest)) {
      return false;
    }
    (*fingerprints)[path] = std::move(fp);
  }
  return r.done();
}

std::string EncodeRecord(const std::string& payload) {
  std::string out;
  PutRaw<uint32_t>(&out, static_cast<uint32_t>(payload.size()));
  out.append(payload);
  out.append(HashBytes(payload));
  return out;
}

absl::Status WriteAll(int fd, const std::string& data, const std::string& path) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus(errno, "write " + path);
    done += static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadWhole(const std::string& path) {
  Fd fd(open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (fd.get() < 0) {
    if (errno == ENOENT) return std::string();
    return ErrnoStatus(errno, "open " + path);
  }
  std::string text;
  char buf[1 << 16];
  while (true) {
    ssize_t n = read(fd.get(), buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus(errno, "read " + path);
    if (n == 0) return text;
    text.append(buf, static_cast<size_t>(n));
  }
}

}  // namespace

FileFingerprint StatFingerprint(const struct stat& st) {
  FileFingerprint fp;
  fp.dev = static_cast<uint64_t>(st.st_dev);
  fp.ino = static_cast<uint64_t>(st.st_ino);
  fp.size = static_cast<uint64_t>(st.st_size);
  fp.mtime_ns = Nanos(st.st_mtim);
  fp.ctime_ns = Nanos(st.st_ctim);
  return fp;
}

struct timespec FileClockNow() {
  struct timespec t;
  clock_gettime(CLOCK_REALTIME_COARSE, &t);
  return t;
}

bool WrittenBefore(const struct timespec& mtime, const struct timespec& t) {
  return Nanos(mtime) < Nanos(t);
}

FingerprintStore::FingerprintStore(std::string work_dir)
    : work_dir_(std::move(work_dir)), path_(paths::FingerprintsPath(work_dir_)) {}

absl::Status FingerprintStore::Load() {
  if (absl::Status st = paths::MakeDirs(paths::MetaDir(work_dir_)); !st.ok()) return st;
  auto text = ReadWhole(path_);
  if (!text.ok()) return text.status();
  std::map<std::string, Slot> found;
  size_t records = 0;
  size_t pos = 0;
  while (pos + sizeof(uint32_t) <= text->size()) {
    uint32_t size = 0;
    std::memcpy(&size, text->data() + pos, sizeof(size));
    const size_t payload = pos + sizeof(size);
    if (size > kMaxPayload || payload + size + kChecksumSize > text->size()) break;
    const std::string_view bytes(text->data() + payload, size);
    if (HashBytes(bytes) != std::string_view(text->data() + payload + size, kChecksumSize)) break;
    std::string job_id;
    Fingerprints ignored;
    if (!DecodePayload(bytes.data(), bytes.size(), &job_id, &ignored)) break;
    found[job_id] = Slot{payload, size};
    ++records;
    pos = payload + size + kChecksumSize;
  }
  const bool torn = pos != text->size();
  for (auto it = found.begin(); it != found.end();) {
    struct stat st;
    const bool present = paths::ValidateJobId(it->first).ok() &&
                         lstat(paths::WorkspaceDir(work_dir_, it->first).c_str(), &st) == 0 &&
                         S_ISDIR(st.st_mode);
    it = present ? std::next(it) : found.erase(it);
  }

  absl::MutexLock lock(&mu_);
  fd_.Reset();
  index_.clear();
  end_ = 0;
  if (!torn && records == found.size()) {
    index_ = std::move(found);
    end_ = text->size();
    return OpenForAppendLocked();
  }
  // Compact: the live records only, through a temp file and a rename (a
  // crash leaves the old file or the new one; either is a valid cache).
  std::string compacted;
  for (auto& [job_id, slot] : found) {
    const std::string_view payload(text->data() + slot.offset, slot.size);
    const uint64_t offset = compacted.size() + sizeof(uint32_t);
    compacted.append(EncodeRecord(std::string(payload)));
    index_[job_id] = Slot{offset, slot.size};
  }
  const std::string tmp = paths::FingerprintsTempPath(work_dir_);
  {
    Fd out(open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644));
    if (out.get() < 0) return ErrnoStatus(errno, "create " + tmp);
    if (absl::Status st = WriteAll(out.get(), compacted, tmp); !st.ok()) return st;
  }
  if (rename(tmp.c_str(), path_.c_str()) != 0) {
    return ErrnoStatus(errno, "rename " + tmp + " to " + path_);
  }
  end_ = compacted.size();
  return OpenForAppendLocked();
}

absl::Status FingerprintStore::OpenForAppendLocked() {
  if (fd_.get() >= 0) return absl::OkStatus();
  fd_.Reset(open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0644));
  if (fd_.get() < 0) return ErrnoStatus(errno, "open " + path_);
  struct stat st;
  if (fstat(fd_.get(), &st) != 0) return ErrnoStatus(errno, "fstat " + path_);
  end_ = static_cast<uint64_t>(st.st_size);
  return absl::OkStatus();
}

absl::Status FingerprintStore::Seal(const std::string& job_id, const deja::v1::Manifest& manifest,
                                    const struct timespec& hashed_after) {
  if (absl::Status st = paths::ValidateJobId(job_id); !st.ok()) return st;
  const std::string root = paths::WorkspaceDir(work_dir_, job_id);
  Fingerprints fingerprints;
  for (const auto& entry : manifest.files()) {
    if ((entry.mode() & S_IFMT) != S_IFREG) continue;
    const std::string path = absl::StrCat(root, "/", entry.path());
    Fd fd(open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
    if (fd.get() < 0) continue;
    struct stat st;
    if (fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    if ((st.st_mode & kWriteBits) != 0) {
      if (fchmod(fd.get(), st.st_mode & 07777 & ~kWriteBits) != 0 || fstat(fd.get(), &st) != 0) {
        continue;
      }
    }
    if (static_cast<uint64_t>(st.st_size) != entry.size() ||
        !WrittenBefore(st.st_mtim, hashed_after)) {
      continue;  // changed, or possibly changed, since it was hashed
    }
    FileFingerprint fp = StatFingerprint(st);
    fp.digest = entry.digest();
    fingerprints[entry.path()] = std::move(fp);
  }
  return Put(job_id, fingerprints);
}

Fingerprints FingerprintStore::Get(const std::string& job_id) const {
  Slot slot;
  int fd = -1;
  {
    absl::MutexLock lock(&mu_);
    auto it = index_.find(job_id);
    if (it == index_.end() || fd_.get() < 0) return {};
    slot = it->second;
  }
  // The appending descriptor is write-only; read through a fresh one.
  Fd in(open(path_.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  fd = in.get();
  if (fd < 0) return {};
  std::string bytes(slot.size + kChecksumSize, '\0');
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = pread(fd, bytes.data() + done, bytes.size() - done,
                      static_cast<off_t>(slot.offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return {};
    done += static_cast<size_t>(n);
  }
  const std::string_view payload(bytes.data(), slot.size);
  if (HashBytes(payload) != std::string_view(bytes.data() + slot.size, kChecksumSize)) return {};
  std::string recorded_id;
  Fingerprints fingerprints;
  if (!DecodePayload(payload.data(), payload.size(), &recorded_id, &fingerprints) ||
      recorded_id != job_id) {
    return {};
  }
  return fingerprints;
}

absl::Status FingerprintStore::Put(const std::string& job_id, const Fingerprints& fingerprints) {
  if (absl::Status st = paths::ValidateJobId(job_id); !st.ok()) return st;
  const std::string payload = EncodePayload(job_id, fingerprints);
  if (payload.size() > kMaxPayload) {
    return absl::ResourceExhaustedError(
        absl::StrCat("fingerprints of ", job_id, ": ", payload.size(), " bytes, too many"));
  }
  const std::string record = EncodeRecord(payload);
  absl::MutexLock lock(&mu_);
  if (absl::Status st = OpenForAppendLocked(); !st.ok()) return st;
  if (absl::Status st = WriteAll(fd_.get(), record, path_); !st.ok()) {
    // The tail may now be torn: Load drops it. Nothing points there.
    index_.erase(job_id);
    struct stat st_now;
    if (fstat(fd_.get(), &st_now) == 0) end_ = static_cast<uint64_t>(st_now.st_size);
    return st;
  }
  index_[job_id] = Slot{end_ + sizeof(uint32_t), static_cast<uint32_t>(payload.size())};
  end_ += record.size();
  return absl::OkStatus();
}

size_t FingerprintStore::JobCount() const {
  absl::MutexLock lock(&mu_);
  return index_.size();
}

absl::Status VerifyWithFingerprints(const std::string& root, const deja::v1::Manifest& manifest,
                                    const Fingerprints& known,
                                    const struct timespec& hashed_after, Fingerprints* seen,
                                    int* hashed_files) {
  // Files whose fingerprint still holds are proven; the rest (and every
  // symlink, cheap to check) go to deja::VerifyManifest, which hashes them.
  deja::v1::Manifest unproven;
  Fingerprints stats;  // of the unproven regular files, before hashing
  for (const auto& entry : manifest.files()) {
    struct stat st;
    const bool regular = (entry.mode() & S_IFMT) == S_IFREG;
    if (!regular || lstat(absl::StrCat(root, "/", entry.path()).c_str(), &st) != 0 ||
        !S_ISREG(st.st_mode) || static_cast<uint64_t>(st.st_size) != entry.size()) {
      *unproven.add_files() = entry;
      continue;
    }
    FileFingerprint now = StatFingerprint(st);
    now.digest = entry.digest();
    auto it = known.find(entry.path());
    if (it != known.end() && it->second.digest == entry.digest() && it->second.SameStat(now)) {
      if (seen != nullptr) (*seen)[entry.path()] = std::move(now);
      continue;
    }
    *unproven.add_files() = entry;
    // Not racy only if written before the hashing starts.
    if (WrittenBefore(st.st_mtim, hashed_after)) stats[entry.path()] = std::move(now);
  }
  if (hashed_files != nullptr) *hashed_files = unproven.files_size();
  if (absl::Status st = VerifyManifest(root, unproven); !st.ok()) return st;
  if (seen != nullptr) {
    for (auto& [path, fp] : stats) (*seen)[path] = std::move(fp);
  }
  return absl::OkStatus();
}

Fingerprints RefreshFingerprints(const std::string& root, const Fingerprints& seen) {
  Fingerprints now;
  for (const auto& [rel, before] : seen) {
    struct stat st;
    if (lstat(absl::StrCat(root, "/", rel).c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    FileFingerprint fp = StatFingerprint(st);
    if (fp.dev != before.dev || fp.ino != before.ino || fp.size != before.size ||
        fp.mtime_ns != before.mtime_ns) {
      continue;
    }
    fp.digest = before.digest;
    now[rel] = std::move(fp);
  }
  return now;
}

}  // namespace deja::worker
