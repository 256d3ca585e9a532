#include "worker/retention.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/check.h"
#include "common/errors.h"
#include "worker/file_copy.h"
#include "worker/paths.h"

namespace deja::worker {
namespace {

// The names in `dir` (not . and ..). An error when it cannot be read.
absl::StatusOr<std::vector<std::string>> ListDir(const std::string& dir) {
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return ErrnoStatus(errno, "opendir " + dir);
  std::vector<std::string> names;
  while (struct dirent* e = readdir(d)) {
    const std::string name = e->d_name;
    if (name != "." && name != "..") names.push_back(name);
  }
  closedir(d);
  return names;
}

absl::StatusOr<std::string> ReadSmallFile(const std::string& path) {
  Fd fd(open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (fd.get() < 0) return ErrnoStatus(errno, "open " + path);
  std::string text;
  char buf[256];
  while (text.size() < 4096) {
    ssize_t n = read(fd.get(), buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus(errno, "read " + path);
    if (n == 0) break;
    text.append(buf, static_cast<size_t>(n));
  }
  return text;
}

// "<expires_at_ms>\n<attempt>\n" (the attempt line is optional).
std::optional<WorkspaceRetention::Record> ParseRecord(const std::string& text) {
  std::vector<absl::string_view> lines = absl::StrSplit(text, '\n', absl::SkipEmpty());
  WorkspaceRetention::Record record;
  if (lines.empty() ||
      !absl::SimpleAtoi(absl::StripAsciiWhitespace(lines[0]), &record.expires_at_ms) ||
      record.expires_at_ms < 0) {
    return std::nullopt;
  }
  if (lines.size() > 1 && !absl::SimpleAtoi(absl::StripAsciiWhitespace(lines[1]), &record.attempt)) {
    return std::nullopt;
  }
  return record;
}

absl::Status FsyncDir(const std::string& dir) {
  Fd fd(open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd.get() < 0) return ErrnoStatus(errno, "open " + dir);
  if (fsync(fd.get()) != 0) return ErrnoStatus(errno, "fsync " + dir);
  return absl::OkStatus();
}

}  // namespace

// ---- Lease ----

WorkspaceRetention::Lease::Lease(Lease&& other) noexcept
    : owner_(std::exchange(other.owner_, nullptr)), job_id_(std::move(other.job_id_)) {}

WorkspaceRetention::Lease& WorkspaceRetention::Lease::operator=(Lease&& other) noexcept {
  if (this != &other) {
    Release();
    owner_ = std::exchange(other.owner_, nullptr);
    job_id_ = std::move(other.job_id_);
  }
  return *this;
}

WorkspaceRetention::Lease::~Lease() { Release(); }

void WorkspaceRetention::Lease::Release() {
  if (owner_ == nullptr) return;
  owner_->Release(job_id_);
  owner_ = nullptr;
}

// ---- WorkspaceRetention ----

WorkspaceRetention::WorkspaceRetention(std::string work_dir, Clock* clock)
    : work_dir_(std::move(work_dir)), clock_(clock) {}

absl::Status WorkspaceRetention::Load(std::vector<std::string>* skipped) {
  const std::string dir = paths::ExpiryDir(work_dir_);
  if (absl::Status st = paths::MakeDirs(dir); !st.ok()) return st;
  if (absl::Status st = paths::MakeDirs(paths::TrashDir(work_dir_)); !st.ok()) return st;
  // Records being written when the worker died: their rename never happened.
  auto meta = ListDir(paths::MetaDir(work_dir_));
  if (!meta.ok()) return meta.status();
  for (const std::string& name : *meta) {
    if (absl::StartsWith(name, paths::kExpiryTempPrefix)) {
      unlink(absl::StrCat(paths::MetaDir(work_dir_), "/", name).c_str());
    }
  }
  auto names = ListDir(dir);
  if (!names.ok()) return names.status();
  std::map<std::string, Entry> loaded;
  for (const std::string& name : *names) {
    const std::string path = paths::ExpiryRecordPath(work_dir_, name);
    std::optional<Record> record;
    if (paths::ValidateJobId(name).ok()) {
      auto text = ReadSmallFile(path);
      if (text.ok()) record = ParseRecord(*text);
    }
    if (!record.has_value()) {
      if (skipped != nullptr) skipped->push_back(path);
      continue;
    }
    loaded[name].record = *record;
  }
  absl::MutexLock lock(&mu_);
  entries_ = std::move(loaded);
  return absl::OkStatus();
}

absl::Status WorkspaceRetention::SetExpiry(const std::string& job_id, uint32_t attempt,
                                           int64_t expires_at_ms) {
  if (absl::Status st = paths::ValidateJobId(job_id); !st.ok()) return st;
  if (expires_at_ms < 0) expires_at_ms = 0;
  {
    // In memory first: the expiry holds from now on (the scheduler decided
    // it), and nobody can see the record on disk before the lease checks do.
    absl::MutexLock lock(&mu_);
    entries_[job_id] = Entry{Record{expires_at_ms, attempt}, /*deleted=*/false};
  }
  std::string tmp = paths::ExpiryTempTemplate(work_dir_);
  Fd fd(mkstemp(tmp.data()));
  if (fd.get() < 0) return ErrnoStatus(errno, "mkstemp " + tmp);
  const std::string text = absl::StrCat(expires_at_ms, "\n", attempt, "\n");
  auto fail = [&](const std::string& what) {
    const absl::Status st = ErrnoStatus(errno, what);
    unlink(tmp.c_str());
    return st;
  };
  if (write(fd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size())) {
    return fail("write " + tmp);
  }
  if (fchmod(fd.get(), 0644) != 0) return fail("chmod " + tmp);
  if (fsync(fd.get()) != 0) return fail("fsync " + tmp);
  fd.Reset();
  const std::string path = paths::ExpiryRecordPath(work_dir_, job_id);
  if (rename(tmp.c_str(), path.c_str()) != 0) return fail("rename " + tmp + " to " + path);
  return FsyncDir(paths::ExpiryDir(work_dir_));
}

std::optional<WorkspaceRetention::Record> WorkspaceRetention::GetRecord(
    const std::string& job_id) const {
  absl::MutexLock lock(&mu_);
  auto it = entries_.find(job_id);
  if (it == entries_.end()) return std::nullopt;
  return it->second.record;
}

bool WorkspaceRetention::ExpiredLocked(const Entry& entry, int64_t now_ms) const {
  return entry.deleted || entry.record.expires_at_ms <= now_ms;
}

absl::StatusOr<WorkspaceRetention::Lease> WorkspaceRetention::Acquire(const std::string& job_id) {
  const int64_t now_ms = ToMillis(clock_->Now());
  absl::MutexLock lock(&mu_);
  auto it = entries_.find(job_id);
  if (it != entries_.end() && ExpiredLocked(it->second, now_ms)) {
    return absl::NotFoundError(absl::StrCat("workspace of ", job_id, " expired"));
  }
  ++leases_[job_id];
  return Lease(this, job_id);
}

void WorkspaceRetention::Release(const std::string& job_id) {
  absl::MutexLock lock(&mu_);
  auto it = leases_.find(job_id);
  DEJA_CHECK(it != leases_.end() && it->second > 0, "lease released twice: " + job_id);
  if (--it->second == 0) leases_.erase(it);
}

int WorkspaceRetention::LeaseCount(const std::string& job_id) const {
  absl::MutexLock lock(&mu_);
  auto it = leases_.find(job_id);
  return it == leases_.end() ? 0 : it->second;
}

absl::StatusOr<std::string> WorkspaceRetention::MoveToTrash(const std::string& job_id) {
  const std::string from = paths::WorkspaceDir(work_dir_, job_id);
  const std::string to = absl::StrCat(paths::TrashDir(work_dir_), "/",
                                      absl::ToUnixNanos(absl::Now()), "-", ++trash_seq_);
  if (rename(from.c_str(), to.c_str()) == 0) return to;
  int err = errno;
  if (err == ENOENT) return std::string();
  if (err == EACCES || err == EPERM) {
    // Moving a directory to another parent rewrites its "..": a job that
    // took the write bit off its workspace root stops that. Give it back.
    struct stat st;
    if (lstat(from.c_str(), &st) == 0 && S_ISDIR(st.st_mode) &&
        chmod(from.c_str(), (st.st_mode & 07777) | S_IRWXU) == 0 &&
        rename(from.c_str(), to.c_str()) == 0) {
      return to;
    }
    err = errno;
  }
  return ErrnoStatus(err, absl::StrCat("rename ", from, " to ", to));
}

std::vector<WorkspaceRetention::Doomed> WorkspaceRetention::TakeExpired(
    const std::set<std::string>& busy, const std::string* only,
    std::vector<std::string>* skipped_leased, std::vector<std::string>* errors) {
  const int64_t now_ms = ToMillis(clock_->Now());
  std::vector<Doomed> doomed;
  absl::MutexLock lock(&mu_);
  auto take = [&](const std::string& job_id, Entry& entry) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (entry.deleted || !ExpiredLocked(entry, now_ms) || busy.count(job_id) != 0) return;
    if (leases_.count(job_id) != 0) {
      if (skipped_leased != nullptr) skipped_leased->push_back(job_id);
      return;
    }
    auto moved = MoveToTrash(job_id);
    if (!moved.ok()) {
      if (errors != nullptr) errors->push_back(std::string(moved.status().message()));
      return;
    }
    entry.deleted = true;
    doomed.push_back(Doomed{job_id, *std::move(moved), entry.record.expires_at_ms > 0});
  };
  if (only != nullptr) {
    auto it = entries_.find(*only);
    if (it != entries_.end()) take(it->first, it->second);
  } else {
    for (auto& [job_id, entry] : entries_) take(job_id, entry);
  }
  return doomed;
}

absl::Status WorkspaceRetention::Dispose(const std::vector<Doomed>& doomed) {
  absl::Status first;
  for (const Doomed& d : doomed) {
    if (!d.trash_path.empty()) {
      if (absl::Status st = paths::RemoveTree(d.trash_path); !st.ok() && first.ok()) first = st;
    }
    if (d.report) continue;
    {
      absl::MutexLock lock(&mu_);
      auto it = entries_.find(d.job_id);
      if (it == entries_.end() || !it->second.deleted) continue;
      entries_.erase(it);
    }
    RemoveRecordFile(d.job_id);
  }
  return first;
}

std::vector<std::string> WorkspaceRetention::Unreported() const {
  absl::MutexLock lock(&mu_);
  std::vector<std::string> ids;
  for (const auto& [job_id, entry] : entries_) {
    if (entry.deleted && entry.record.expires_at_ms > 0) ids.push_back(job_id);
  }
  return ids;
}

void WorkspaceRetention::Reported(const std::vector<std::string>& job_ids) {
  for (const std::string& job_id : job_ids) {
    {
      absl::MutexLock lock(&mu_);
      auto it = entries_.find(job_id);
      if (it == entries_.end() || !it->second.deleted) continue;
      entries_.erase(it);
    }
    RemoveRecordFile(job_id);
  }
}

void WorkspaceRetention::RemoveRecordFile(const std::string& job_id) const {
  // Not fsynced: a record that comes back after a crash is swept and
  // reported again, which is harmless.
  unlink(paths::ExpiryRecordPath(work_dir_, job_id).c_str());
}

absl::Status WorkspaceRetention::EmptyTrash() {
  const std::string dir = paths::TrashDir(work_dir_);
  auto names = ListDir(dir);
  if (!names.ok()) return names.status();
  absl::Status first;
  for (const std::string& name : *names) {
    if (absl::Status st = paths::RemoveTree(absl::StrCat(dir, "/", name)); !st.ok() && first.ok()) {
      first = st;
    }
  }
  return first;
}

}  // namespace deja::worker
