#include "worker/fingerprints.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/errors.h"
#include "common/hash.h"
#include "common/manifest.h"
#include "worker/file_copy.h"
#include "worker/paths.h"
#include "worker/record_log.h"

namespace deja::worker {
namespace {

constexpr mode_t kWriteBits = S_IWUSR | S_IWGRP | S_IWOTH;

// Gives the workspace a file of its own in place of `path`, whose open `fd`
// (stat `st`) shares its inode with another name: a copy, read-only, renamed
// over it. The other name, which may be outside the workspace (a job can
// hard-link any file it can see), keeps its content and mode. On success
// `fd` and `st` describe the copy.
absl::Status TakeOwnCopy(const std::string& path, Fd* fd, struct stat* st) {
  static std::atomic<uint64_t> serial{0};
  const std::string tmp = absl::StrCat(path, ".deja-seal-", getpid(), "-", serial++);
  if (lseek(fd->get(), 0, SEEK_SET) != 0) return ErrnoStatus(errno, "seek " + path);
  auto copied = CopyFile(fd->get(), path, tmp, st->st_mode & 07777 & ~kWriteBits);
  if (!copied.ok() || rename(tmp.c_str(), path.c_str()) != 0) {
    absl::Status failed = copied.ok() ? ErrnoStatus(errno, "rename " + tmp) : copied.status();
    unlink(tmp.c_str());
    return failed;
  }
  fd->Reset(open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
  if (fd->get() < 0 || fstat(fd->get(), st) != 0) return ErrnoStatus(errno, "reopen " + path);
  return absl::OkStatus();
}

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

bool DecodePayload(const char* data, size_t size, std::string* job_id, Fingerprints* fingerprints) {
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
  std::vector<RecordLog::Record> records;
  bool truncated = false;
  auto log = RecordLog::Open(path_, &records, &truncated);
  if (!log.ok()) return log.status();
  std::map<std::string, size_t> last;  // job id -> index in records
  for (size_t i = 0; i < records.size(); ++i) {
    std::string job_id;
    Fingerprints ignored;
    if (DecodePayload(records[i].payload.data(), records[i].payload.size(), &job_id, &ignored)) {
      last[job_id] = i;
    }
  }
  std::vector<std::string> live_ids;
  for (const auto& [job_id, i] : last) {
    struct stat st;
    if (paths::ValidateJobId(job_id).ok() &&
        lstat(paths::WorkspaceDir(work_dir_, job_id).c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
      live_ids.push_back(job_id);
    }
  }
  absl::MutexLock lock(&mu_);
  index_.clear();
  log_ = *std::move(log);
  if (live_ids.size() == records.size() && !truncated) {
    for (const std::string& job_id : live_ids) {
      const RecordLog::Record& r = records[last[job_id]];
      index_[job_id] = Slot{r.offset, static_cast<uint32_t>(r.payload.size())};
    }
    return absl::OkStatus();
  }
  // Compact: only the last record of each job whose workspace is still here.
  std::vector<std::string> payloads;
  payloads.reserve(live_ids.size());
  for (const std::string& job_id : live_ids) payloads.push_back(records[last[job_id]].payload);
  std::vector<uint64_t> offsets;
  if (absl::Status st = log_->Rewrite(payloads, &offsets); !st.ok()) return st;
  for (size_t i = 0; i < live_ids.size(); ++i) {
    index_[live_ids[i]] = Slot{offsets[i], static_cast<uint32_t>(payloads[i].size())};
  }
  return absl::OkStatus();
}

absl::Status FingerprintStore::Seal(const std::string& job_id, const deja::v1::Manifest& manifest,
                                    const struct timespec& hashed_after) {
  if (absl::Status st = paths::ValidateJobId(job_id); !st.ok()) return st;
  const std::string root = paths::WorkspaceDir(work_dir_, job_id);
  Fingerprints fingerprints;
  std::set<std::string> real_dirs;
  for (const auto& entry : manifest.files()) {
    if ((entry.mode() & S_IFMT) != S_IFREG) continue;
    // Only files the workspace owns change mode: never one reached through a
    // symlinked directory (something still running may have swapped one in),
    // nor the inode behind a hard link (TakeOwnCopy). A file skipped here
    // keeps its write bits and has no fingerprint: a reuse copies and hashes it.
    if (!CheckSourceParents(root, entry.path(), &real_dirs).ok()) continue;
    const std::string path = absl::StrCat(root, "/", entry.path());
    Fd fd(open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
    if (fd.get() < 0) continue;
    struct stat st;
    if (fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    if ((st.st_mode & kWriteBits) != 0 && st.st_nlink > 1 && !TakeOwnCopy(path, &fd, &st).ok()) {
      continue;
    }
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
  absl::MutexLock lock(&mu_);
  auto it = index_.find(job_id);
  if (it == index_.end() || log_ == nullptr) return {};
  auto payload = log_->ReadAt(it->second.offset, it->second.size);
  std::string recorded_id;
  Fingerprints fingerprints;
  if (!payload.ok() ||
      !DecodePayload(payload->data(), payload->size(), &recorded_id, &fingerprints) ||
      recorded_id != job_id) {
    return {};
  }
  return fingerprints;
}

absl::Status FingerprintStore::Put(const std::string& job_id, const Fingerprints& fingerprints) {
  if (absl::Status st = paths::ValidateJobId(job_id); !st.ok()) return st;
  const std::string payload = EncodePayload(job_id, fingerprints);
  absl::MutexLock lock(&mu_);
  if (log_ == nullptr) return absl::FailedPreconditionError("fingerprints: Load() first");
  auto offset = log_->Append(payload, /*sync=*/false);
  if (!offset.ok()) {
    index_.erase(job_id);
    return offset.status();
  }
  index_[job_id] = Slot{*offset, static_cast<uint32_t>(payload.size())};
  return absl::OkStatus();
}

size_t FingerprintStore::JobCount() const {
  absl::MutexLock lock(&mu_);
  return index_.size();
}

absl::Status VerifyWithFingerprints(const std::string& root, const deja::v1::Manifest& manifest,
                                    const Fingerprints& known, const struct timespec& hashed_after,
                                    Fingerprints* seen, int* hashed_files) {
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

Fingerprints RefreshFingerprints(const std::string& root, const Fingerprints& seen,
                                 const Fingerprints* taken) {
  Fingerprints now;
  for (const auto& [rel, before] : seen) {
    FileFingerprint fp;
    auto it = taken != nullptr ? taken->find(rel) : Fingerprints::const_iterator();
    if (taken != nullptr && it != taken->end()) {
      fp = it->second;
    } else {
      struct stat st;
      if (lstat(absl::StrCat(root, "/", rel).c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
      fp = StatFingerprint(st);
    }
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
