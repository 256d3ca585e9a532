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
  if (lines.size() > 1 &&
      !absl::SimpleAtoi(absl::StripAsciiWhitespace(lines[1]), &record.attempt)) {
    return std::nullopt;
  }
  return record;
}

// A log record: [u32 count] then per operation [u8 kind][u32 id length][id]
// and, for a set, [i64 expires_at_ms][u32 attempt].
constexpr uint8_t kSet = 'S';
constexpr uint8_t kForget = 'F';

template <typename T>
void PutRaw(std::string* out, T v) {
  out->append(reinterpret_cast<const char*>(&v), sizeof(v));
}

class OpsWriter {
 public:
  void Set(const std::string& job_id, const WorkspaceRetention::Record& record) {
    Op(kSet, job_id);
    PutRaw(&body_, record.expires_at_ms);
    PutRaw(&body_, record.attempt);
  }
  void Forget(const std::string& job_id) { Op(kForget, job_id); }
  size_t ops() const { return ops_; }
  std::string Payload() const {
    std::string out;
    PutRaw<uint32_t>(&out, static_cast<uint32_t>(ops_));
    return out + body_;
  }

 private:
  void Op(uint8_t kind, const std::string& job_id) {
    PutRaw(&body_, kind);
    PutRaw<uint32_t>(&body_, static_cast<uint32_t>(job_id.size()));
    body_.append(job_id);
    ++ops_;
  }
  std::string body_;
  size_t ops_ = 0;
};

// Applies a log record's operations to `records`; false (applying none)
// when it does not parse or names an invalid job id. `*ops` gets its operation count.
bool ApplyOps(const std::string& payload,
              std::map<std::string, WorkspaceRetention::Record>* records, size_t* ops) {
  size_t pos = 0;
  auto get = [&](auto* v) {
    if (payload.size() - pos < sizeof(*v)) return false;
    std::memcpy(v, payload.data() + pos, sizeof(*v));
    pos += sizeof(*v);
    return true;
  };
  uint32_t count = 0;
  if (!get(&count)) return false;
  std::vector<std::pair<std::string, std::optional<WorkspaceRetention::Record>>> parsed;
  for (uint32_t i = 0; i < count; ++i) {
    uint8_t kind = 0;
    uint32_t len = 0;
    if (!get(&kind) || !get(&len) || payload.size() - pos < len) return false;
    std::string job_id = payload.substr(pos, len);
    pos += len;
    // The id becomes a path under jobs/ that the sweeper renames and
    // deletes: a record naming anything else is corrupt.
    if (!paths::ValidateJobId(job_id).ok()) return false;
    if (kind == kSet) {
      WorkspaceRetention::Record record;
      if (!get(&record.expires_at_ms) || !get(&record.attempt)) return false;
      parsed.emplace_back(std::move(job_id), record);
    } else if (kind == kForget) {
      parsed.emplace_back(std::move(job_id), std::nullopt);
    } else {
      return false;
    }
  }
  if (pos != payload.size()) return false;
  for (auto& [job_id, record] : parsed) {
    if (record.has_value()) {
      (*records)[job_id] = *record;
    } else {
      records->erase(job_id);
    }
  }
  *ops = count;
  return true;
}

// The old layout: one file per job in meta/expiry/. Unparseable ones are
// named in `*skipped`; `*files` gets the paths of the parsed ones.
absl::Status ReadOldRecords(const std::string& work_dir,
                            std::map<std::string, WorkspaceRetention::Record>* records,
                            std::vector<std::string>* files, std::vector<std::string>* skipped) {
  const std::string dir = paths::ExpiryDir(work_dir);
  struct stat st;
  if (lstat(dir.c_str(), &st) != 0) return absl::OkStatus();
  auto names = ListDir(dir);
  if (!names.ok()) return names.status();
  for (const std::string& name : *names) {
    const std::string path = paths::ExpiryRecordPath(work_dir, name);
    std::optional<WorkspaceRetention::Record> record;
    if (paths::ValidateJobId(name).ok()) {
      auto text = ReadSmallFile(path);
      if (text.ok()) record = ParseRecord(*text);
    }
    if (!record.has_value()) {
      if (skipped != nullptr) skipped->push_back(path);
      continue;
    }
    (*records)[name] = *record;
    if (files != nullptr) files->push_back(path);
  }
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
  if (absl::Status st = paths::MakeDirs(paths::MetaDir(work_dir_)); !st.ok()) return st;
  if (absl::Status st = paths::MakeDirs(paths::TrashDir(work_dir_)); !st.ok()) return st;
  // Records the old layout was writing when the worker died.
  auto meta = ListDir(paths::MetaDir(work_dir_));
  if (!meta.ok()) return meta.status();
  for (const std::string& name : *meta) {
    if (absl::StartsWith(name, paths::kExpiryTempPrefix)) {
      unlink(absl::StrCat(paths::MetaDir(work_dir_), "/", name).c_str());
    }
  }
  // Old-layout files first: anything in the log is newer.
  std::map<std::string, Record> records;
  std::vector<std::string> old_files;
  if (absl::Status st = ReadOldRecords(work_dir_, &records, &old_files, skipped); !st.ok()) {
    return st;
  }
  std::vector<RecordLog::Record> logged;
  auto log = RecordLog::Open(paths::ExpiryLogPath(work_dir_), &logged);
  if (!log.ok()) return log.status();
  size_t ops = old_files.size();
  for (const RecordLog::Record& r : logged) {
    size_t n = 0;
    // A record that parses but does not apply cannot come from a crash (the
    // checksum held): skip it rather than lose every later one.
    if (ApplyOps(r.payload, &records, &n)) ops += n;
  }

  absl::MutexLock log_lock(&log_mu_);
  log_ = *std::move(log);
  log_ops_ = ops;
  if (ops > records.size() || !old_files.empty()) {
    if (absl::Status st = RewriteLogLocked(records); !st.ok()) return st;
    // Imported (durably): the old files can go.
    for (const std::string& path : old_files) unlink(path.c_str());
    rmdir(paths::ExpiryDir(work_dir_).c_str());  // fails, harmlessly, if skipped files remain
  }
  std::map<std::string, Entry> loaded;
  for (const auto& [job_id, record] : records) loaded[job_id].record = record;
  absl::MutexLock lock(&mu_);
  entries_ = std::move(loaded);
  return absl::OkStatus();
}

absl::StatusOr<std::map<std::string, WorkspaceRetention::Record>> WorkspaceRetention::ReadRecords(
    const std::string& work_dir) {
  std::map<std::string, Record> records;
  if (absl::Status st = ReadOldRecords(work_dir, &records, nullptr, nullptr); !st.ok()) return st;
  std::vector<RecordLog::Record> logged;
  if (absl::Status st = RecordLog::Read(paths::ExpiryLogPath(work_dir), &logged); !st.ok()) {
    return st;
  }
  size_t ops = 0;
  for (const RecordLog::Record& r : logged) ApplyOps(r.payload, &records, &ops);
  return records;
}

absl::Status WorkspaceRetention::SetExpiry(const std::string& job_id, uint32_t attempt,
                                           int64_t expires_at_ms, bool sync) {
  if (absl::Status st = paths::ValidateJobId(job_id); !st.ok()) return st;
  if (expires_at_ms < 0) expires_at_ms = 0;
  absl::MutexLock log_lock(&log_mu_);
  if (log_ == nullptr) return absl::FailedPreconditionError("expiry records: Load() first");
  const Record record{expires_at_ms, attempt};
  {
    // In memory first: the expiry holds from now on (the scheduler decided
    // it), and nobody can see the record on disk before the lease checks do.
    absl::MutexLock lock(&mu_);
    entries_[job_id] = Entry{record, /*deleted=*/false};
  }
  OpsWriter op;
  op.Set(job_id, record);
  return AppendLocked(op.Payload(), sync, op.ops());
}

absl::Status WorkspaceRetention::Sync() {
  absl::MutexLock log_lock(&log_mu_);
  if (log_ == nullptr) return absl::FailedPreconditionError("expiry records: Load() first");
  return log_->Sync();
}

absl::Status WorkspaceRetention::AppendLocked(const std::string& payload, bool sync, size_t ops) {
  auto appended = log_->Append(payload, sync);
  if (!appended.ok()) return appended.status();
  log_ops_ += ops;
  std::map<std::string, Record> held;
  {
    absl::MutexLock lock(&mu_);
    if (log_ops_ <= 2 * entries_.size() + 1024) return absl::OkStatus();
    for (const auto& [job_id, entry] : entries_) held[job_id] = entry.record;
  }
  // Rewrite is durable: what was appended unsynced is now synced too.
  return RewriteLogLocked(held);
}

absl::Status WorkspaceRetention::RewriteLogLocked(const std::map<std::string, Record>& records) {
  OpsWriter all;
  for (const auto& [job_id, record] : records) all.Set(job_id, record);
  std::vector<std::string> payloads;
  if (all.ops() > 0) payloads.push_back(all.Payload());
  if (absl::Status st = log_->Rewrite(payloads, nullptr); !st.ok()) return st;
  log_ops_ = all.ops();
  return absl::OkStatus();
}

void WorkspaceRetention::ForgetRecords(const std::vector<std::string>& job_ids) {
  if (job_ids.empty()) return;
  OpsWriter ops;
  for (const std::string& job_id : job_ids) ops.Forget(job_id);
  absl::MutexLock log_lock(&log_mu_);
  if (log_ == nullptr) return;
  // Not synced: a record that comes back after a crash is swept and
  // reported again, which is harmless.
  AppendLocked(ops.Payload(), /*sync=*/false, ops.ops()).IgnoreError();
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

std::vector<WorkspaceRetention::Doomed> WorkspaceRetention::TakeOldest(
    const std::set<std::string>& busy, std::vector<std::string>* errors) {
  absl::MutexLock lock(&mu_);
  const std::string* oldest = nullptr;
  Entry* oldest_entry = nullptr;
  for (auto& [job_id, entry] : entries_) {
    if (entry.deleted || entry.record.expires_at_ms <= 0 || busy.count(job_id) != 0 ||
        leases_.count(job_id) != 0) {
      continue;
    }
    if (oldest_entry == nullptr ||
        entry.record.expires_at_ms < oldest_entry->record.expires_at_ms) {
      oldest = &job_id;
      oldest_entry = &entry;
    }
  }
  if (oldest == nullptr) return {};
  auto moved = MoveToTrash(*oldest);
  if (!moved.ok()) {
    if (errors != nullptr) errors->push_back(std::string(moved.status().message()));
    return {};
  }
  oldest_entry->deleted = true;
  return {Doomed{*oldest, *std::move(moved), /*report=*/true}};
}

absl::Status WorkspaceRetention::Dispose(const std::vector<Doomed>& doomed) {
  absl::Status first;
  std::vector<std::string> forget;
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
    forget.push_back(d.job_id);
  }
  ForgetRecords(forget);
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
  std::vector<std::string> forget;
  {
    absl::MutexLock lock(&mu_);
    for (const std::string& job_id : job_ids) {
      auto it = entries_.find(job_id);
      if (it == entries_.end() || !it->second.deleted) continue;
      entries_.erase(it);
      forget.push_back(job_id);
    }
  }
  ForgetRecords(forget);
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
