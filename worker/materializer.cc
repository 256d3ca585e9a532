#include "worker/materializer.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <optional>
#include <set>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/errors.h"
#include "worker/file_copy.h"
#include "worker/fingerprints.h"
#include "worker/paths.h"

namespace deja::worker {
namespace {

constexpr mode_t kWriteBits = S_IWUSR | S_IWGRP | S_IWOTH;

struct CopyState {
  bool try_reflink;
  bool try_hardlink;
};

absl::StatusOr<CopyMethod> MaterializeFile(const std::string& src, const std::string& dst,
                                           const deja::v1::FileEntry& entry, CopyState* state) {
  Fd in(open(src.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (in.get() < 0) {
    return absl::DataLossError(
        absl::StrCat(entry.path(), ": cannot open ", src, ": ", std::strerror(errno)));
  }
  struct stat st;
  if (fstat(in.get(), &st) != 0) return ErrnoStatus(errno, "fstat " + src);
  if (!S_ISREG(st.st_mode) || static_cast<uint64_t>(st.st_size) != entry.size()) {
    return absl::DataLossError(absl::StrCat(entry.path(), ": changed during the copy"));
  }
  const mode_t mode = static_cast<mode_t>(entry.mode()) & 07777;

  if (state->try_reflink) {
    auto cloned = ReflinkFile(in.get(), dst, mode);
    if (!cloned.ok()) return cloned.status();
    if (*cloned) return CopyMethod::kReflink;
    // Not this filesystem (or not across these two): stop asking.
    state->try_reflink = false;
  }

  // The source loses its write bits, unless its inode has another name
  // already (maybe outside the workspace): that mode is not ours to change.
  const bool writable_and_shared = (st.st_mode & kWriteBits) != 0 && st.st_nlink > 1;
  if (state->try_hardlink && geteuid() != 0 && !writable_and_shared) {
    // Read-only first, so neither workspace can write the shared inode.
    if (fchmod(in.get(), mode & ~kWriteBits) == 0) {
      if (link(src.c_str(), dst.c_str()) == 0) return CopyMethod::kHardlink;
      fchmod(in.get(), st.st_mode & 07777);  // leave the source as it was
    }
  }

  auto copied = CopyFile(in.get(), src, dst, mode);
  if (!copied.ok()) return copied.status();
  if (*copied != entry.size()) {
    return absl::DataLossError(absl::StrCat(entry.path(), ": size changed during the copy (",
                                            entry.size(), " -> ", *copied, " bytes)"));
  }
  return CopyMethod::kCopy;
}

// The hard-link fast path for a source already sealed (read-only, as
// FingerprintStore::Seal leaves it): link(2) by name, then check that what
// got linked is the file verified (`verified`: its fingerprint, may be null)
// and carries no write bit. Returns true when linked; false, leaving no
// `dst`, when the caller should take the general path (source not sealed,
// or the kernel refused the link). `*linked` gets the link's fingerprint
// (the source inode's, ctime included).
absl::StatusOr<bool> LinkSealed(const std::string& src, const std::string& dst,
                                const deja::v1::FileEntry& entry, const FileFingerprint* verified,
                                FileFingerprint* linked) {
  if (link(src.c_str(), dst.c_str()) != 0) return false;
  struct stat st;
  if (lstat(dst.c_str(), &st) != 0) return ErrnoStatus(errno, "lstat " + dst);
  const FileFingerprint now = StatFingerprint(st);
  *linked = now;
  if (!S_ISREG(st.st_mode) || now.size != entry.size() ||
      (verified != nullptr && (now.dev != verified->dev || now.ino != verified->ino ||
                               now.mtime_ns != verified->mtime_ns))) {
    return absl::DataLossError(absl::StrCat(entry.path(), ": changed during the copy"));
  }
  if ((st.st_mode & kWriteBits) != 0) {
    unlink(dst.c_str());
    return false;
  }
  return true;
}

absl::Status MaterializeSymlink(const std::string& src, const std::string& dst) {
  std::string target(4096, '\0');
  ssize_t n = readlink(src.c_str(), target.data(), target.size());
  if (n < 0) return absl::DataLossError(absl::StrCat("readlink ", src, ": ", std::strerror(errno)));
  target.resize(static_cast<size_t>(n));
  if (symlink(target.c_str(), dst.c_str()) != 0) return ErrnoStatus(errno, "symlink " + dst);
  return absl::OkStatus();
}

}  // namespace

Materializer::Materializer(std::string work_dir, WorkspaceRetention* retention,
                           FingerprintStore* fingerprints)
    : Materializer(std::move(work_dir), Options(), retention, fingerprints) {}

Materializer::Materializer(std::string work_dir, Options options, WorkspaceRetention* retention,
                           FingerprintStore* fingerprints)
    : work_dir_(std::move(work_dir)),
      options_(options),
      retention_(retention),
      fingerprints_(fingerprints) {}

absl::StatusOr<MaterializeResult> Materializer::Materialize(const std::string& source_job_id,
                                                            const deja::v1::Manifest& manifest,
                                                            const std::string& new_job_id) const {
  if (absl::Status st = paths::ValidateJobId(source_job_id); !st.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("source_", st.message()));
  }
  if (absl::Status st = paths::ValidateJobId(new_job_id); !st.ok()) return st;
  if (source_job_id == new_job_id) {
    return absl::InvalidArgumentError(
        absl::StrCat("source_job_id \"", source_job_id, "\": a job cannot reuse itself"));
  }
  const std::string src_root = paths::WorkspaceDir(work_dir_, source_job_id);
  const std::string dst_root = paths::WorkspaceDir(work_dir_, new_job_id);
  // An earlier attempt's workspace goes first, so that any failure below
  // leaves no workspace at all for the new job.
  if (absl::Status st = paths::RemoveTree(dst_root); !st.ok()) return st;
  // Held until the copy is done or failed: the sweeper skips a leased source.
  std::optional<WorkspaceRetention::Lease> lease;
  if (retention_ != nullptr) {
    auto acquired = retention_->Acquire(source_job_id);
    if (!acquired.ok()) return absl::DataLossError(acquired.status().message());
    lease = *std::move(acquired);
  }

  struct stat root_st;
  if (lstat(src_root.c_str(), &root_st) != 0 || !S_ISDIR(root_st.st_mode)) {
    return absl::DataLossError(
        absl::StrCat("workspace ", src_root, " of job ", source_job_id, " is missing"));
  }
  std::set<std::string> checked;
  for (const auto& entry : manifest.files()) {
    if (absl::Status st = paths::ValidateRelativePath(entry.path()); !st.ok()) return st;
    const mode_t type = static_cast<mode_t>(entry.mode()) & S_IFMT;
    if (type != S_IFREG && type != S_IFLNK) {
      return absl::InvalidArgumentError(absl::StrCat("manifest path \"", entry.path(), "\": mode ",
                                                     entry.mode(),
                                                     " is neither a file nor a symlink"));
    }
    if (absl::Status st = CheckSourceParents(src_root, entry.path(), &checked); !st.ok()) {
      return st;
    }
  }
  // Files whose recorded fingerprint still holds are not hashed again.
  const struct timespec verify_start = FileClockNow();
  const Fingerprints known =
      fingerprints_ != nullptr ? fingerprints_->Get(source_job_id) : Fingerprints();
  Fingerprints verified;
  if (absl::Status st = VerifyWithFingerprints(src_root, manifest, known, verify_start, &verified);
      !st.ok()) {
    return st;
  }
  if (absl::Status st = paths::MakeDirs(dst_root); !st.ok()) return st;
  const bool may_link = options_.allow_hardlink && geteuid() != 0;
  Fingerprints linked_now;  // lstat of each hard link made (its source's inode)

  auto copy_all = [&]() -> absl::StatusOr<MaterializeResult> {
    MaterializeResult result;
    int weakest = -1;
    CopyState state{options_.allow_reflink, options_.allow_hardlink};
    std::set<std::string> made;
    for (const auto& entry : manifest.files()) {
      if (absl::Status st = MakeDestParents(dst_root, entry.path(), &made); !st.ok()) return st;
      const std::string src = absl::StrCat(src_root, "/", entry.path());
      const std::string dst = absl::StrCat(dst_root, "/", entry.path());
      if ((entry.mode() & S_IFMT) == S_IFLNK) {
        if (absl::Status st = MaterializeSymlink(src, dst); !st.ok()) return st;
      } else {
        absl::StatusOr<CopyMethod> method = CopyMethod::kHardlink;
        bool linked = false;
        if (may_link && !state.try_reflink) {
          auto it = verified.find(entry.path());
          FileFingerprint link_fp;
          auto fast =
              LinkSealed(src, dst, entry, it == verified.end() ? nullptr : &it->second, &link_fp);
          if (!fast.ok()) return fast.status();
          linked = *fast;
          if (linked) linked_now[entry.path()] = std::move(link_fp);
        }
        if (!linked) method = MaterializeFile(src, dst, entry, &state);
        if (!method.ok()) return method.status();
        if (CopyMethodWeakness(*method) > weakest) {
          weakest = CopyMethodWeakness(*method);
          result.method = *method;
        }
        result.bytes += entry.size();
      }
      ++result.files;
    }
    absl::Status st =
        WriteMarkerFile(paths::ReusedMarkerPath(work_dir_, new_job_id),
                        absl::StrCat("source_job=", source_job_id, "\nsource_workspace=", src_root,
                                     "\nmethod=", CopyMethodName(result.method), "\n"));
    if (!st.ok()) return st;
    return result;
  };
  auto result = copy_all();
  if (!result.ok()) {
    paths::RemoveTree(dst_root).IgnoreError();
    return result;
  }
  if (fingerprints_ != nullptr) {
    // Linking (and the first chmod of an unsealed file) changed the
    // sources' ctimes: record them, so the next reuse does not hash either.
    // Only a cache: a failure to record costs hashing next time.
    Fingerprints now = RefreshFingerprints(src_root, verified, &linked_now);
    const bool same =
        now.size() == known.size() &&
        std::equal(now.begin(), now.end(), known.begin(), [](const auto& a, const auto& b) {
          return a.first == b.first && a.second.digest == b.second.digest &&
                 a.second.SameStat(b.second);
        });
    if (!same) fingerprints_->Put(source_job_id, now).IgnoreError();
  }
  return result;
}

}  // namespace deja::worker
