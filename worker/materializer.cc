#include "worker/materializer.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <set>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/errors.h"
#include "common/manifest.h"
#include "worker/paths.h"

namespace deja::worker {
namespace {

constexpr size_t kBufferSize = 1 << 20;
constexpr mode_t kWriteBits = S_IWUSR | S_IWGRP | S_IWOTH;

class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

// Every proper prefix directory of `rel`, shortest first: "a/b/c" -> a, a/b.
std::vector<std::string> ParentDirs(const std::string& rel) {
  std::vector<std::string> dirs;
  for (size_t pos = rel.find('/'); pos != std::string::npos; pos = rel.find('/', pos + 1)) {
    dirs.push_back(rel.substr(0, pos));
  }
  return dirs;
}

// The source's parents must be real directories: a symlinked parent would
// make verification and copying read files outside the workspace.
absl::Status CheckSourceParents(const std::string& root, const std::string& rel,
                                std::set<std::string>* checked) {
  for (const std::string& dir : ParentDirs(rel)) {
    if (checked->count(dir) != 0) continue;
    struct stat st;
    const std::string path = absl::StrCat(root, "/", dir);
    if (lstat(path.c_str(), &st) != 0) {
      return absl::DataLossError(absl::StrCat(rel, ": missing from ", root));
    }
    if (!S_ISDIR(st.st_mode)) {
      return absl::DataLossError(
          absl::StrCat(rel, ": parent ", dir, " is not a directory in ", root));
    }
    checked->insert(dir);
  }
  return absl::OkStatus();
}

// Creates the destination's parents; refuses to go through anything that is
// not a real directory (e.g. a symlink an earlier manifest entry created).
absl::Status MakeDestParents(const std::string& root, const std::string& rel,
                             std::set<std::string>* made) {
  for (const std::string& dir : ParentDirs(rel)) {
    if (made->count(dir) != 0) continue;
    const std::string path = absl::StrCat(root, "/", dir);
    struct stat st;
    if (lstat(path.c_str(), &st) == 0) {
      if (!S_ISDIR(st.st_mode)) {
        return absl::InvalidArgumentError(
            absl::StrCat("manifest path \"", rel, "\": parent ", dir, " is not a directory"));
      }
    } else if (mkdir(path.c_str(), 0755) != 0) {
      return ErrnoStatus(errno, "mkdir " + path);
    }
    made->insert(dir);
  }
  return absl::OkStatus();
}

bool CopyFallbackErrno(int err) {
  return err == EXDEV || err == ENOSYS || err == EOPNOTSUPP || err == EINVAL;
}

// Copies from `in` to `out` starting at their current offsets (0), with
// copy_file_range and then read/write if the kernel cannot. Returns the bytes
// copied.
absl::StatusOr<uint64_t> CopyBytes(int in, int out, const std::string& src,
                                   const std::string& dst) {
  uint64_t total = 0;
  bool use_range = true;
  while (use_range) {
    ssize_t n = copy_file_range(in, nullptr, out, nullptr, 1 << 30, 0);
    if (n > 0) {
      total += static_cast<uint64_t>(n);
      continue;
    }
    if (n == 0) return total;
    if (errno == EINTR) continue;
    if (!CopyFallbackErrno(errno)) return ErrnoStatus(errno, "copy " + src + " -> " + dst);
    use_range = false;
  }
  // Both offsets advanced together so far; carry on from there.
  std::unique_ptr<char[]> buffer(new char[kBufferSize]);
  while (true) {
    ssize_t n = read(in, buffer.get(), kBufferSize);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus(errno, "read " + src);
    if (n == 0) return total;
    size_t done = 0;
    while (done < static_cast<size_t>(n)) {
      ssize_t w = write(out, buffer.get() + done, static_cast<size_t>(n) - done);
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) return ErrnoStatus(errno, "write " + dst);
      done += static_cast<size_t>(w);
    }
    total += static_cast<uint64_t>(n);
  }
}

struct CopyState {
  bool try_reflink;
  bool try_hardlink;
};

absl::StatusOr<CopyMethod> MaterializeFile(const std::string& src, const std::string& dst,
                                           const deja::v1::FileEntry& entry, CopyState* state) {
  Fd in(open(src.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (in.get() < 0) {
    return absl::DataLossError(absl::StrCat(entry.path(), ": cannot open ", src, ": ",
                                            std::strerror(errno)));
  }
  struct stat st;
  if (fstat(in.get(), &st) != 0) return ErrnoStatus(errno, "fstat " + src);
  if (!S_ISREG(st.st_mode) || static_cast<uint64_t>(st.st_size) != entry.size()) {
    return absl::DataLossError(absl::StrCat(entry.path(), ": changed during the copy"));
  }
  const mode_t mode = static_cast<mode_t>(entry.mode()) & 07777;

  if (state->try_reflink) {
    Fd out(open(dst.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (out.get() < 0) return ErrnoStatus(errno, "create " + dst);
    if (ioctl(out.get(), FICLONE, in.get()) == 0) {
      if (fchmod(out.get(), mode) != 0) return ErrnoStatus(errno, "chmod " + dst);
      return CopyMethod::kReflink;
    }
    // Not this filesystem (or not across these two): stop asking.
    state->try_reflink = false;
    unlink(dst.c_str());
  }

  if (state->try_hardlink && geteuid() != 0) {
    // Read-only first, so neither workspace can write the shared inode.
    if (fchmod(in.get(), mode & ~kWriteBits) == 0) {
      if (link(src.c_str(), dst.c_str()) == 0) return CopyMethod::kHardlink;
      fchmod(in.get(), st.st_mode & 07777);  // leave the source as it was
    }
  }

  Fd out(open(dst.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (out.get() < 0) return ErrnoStatus(errno, "create " + dst);
  auto copied = CopyBytes(in.get(), out.get(), src, dst);
  if (!copied.ok()) return copied.status();
  if (*copied != entry.size()) {
    return absl::DataLossError(absl::StrCat(entry.path(), ": size changed during the copy (",
                                            entry.size(), " -> ", *copied, " bytes)"));
  }
  if (fchmod(out.get(), mode) != 0) return ErrnoStatus(errno, "chmod " + dst);
  return CopyMethod::kCopy;
}

absl::Status MaterializeSymlink(const std::string& src, const std::string& dst) {
  std::string target(4096, '\0');
  ssize_t n = readlink(src.c_str(), target.data(), target.size());
  if (n < 0) return absl::DataLossError(absl::StrCat("readlink ", src, ": ", std::strerror(errno)));
  target.resize(static_cast<size_t>(n));
  if (symlink(target.c_str(), dst.c_str()) != 0) return ErrnoStatus(errno, "symlink " + dst);
  return absl::OkStatus();
}

absl::Status WriteMarker(const std::string& path, const std::string& text) {
  unlink(path.c_str());  // a job's own REUSED file may be a read-only hard link
  Fd fd(open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644));
  if (fd.get() < 0) return ErrnoStatus(errno, "create " + path);
  if (write(fd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size())) {
    return ErrnoStatus(errno, "write " + path);
  }
  return absl::OkStatus();
}

// How much worse `a` is than `b`: copy is the worst.
int Weakness(CopyMethod m) {
  switch (m) {
    case CopyMethod::kReflink:
      return 0;
    case CopyMethod::kHardlink:
      return 1;
    case CopyMethod::kCopy:
      return 2;
  }
  return 2;
}

}  // namespace

const char* CopyMethodName(CopyMethod method) {
  switch (method) {
    case CopyMethod::kReflink:
      return "reflink";
    case CopyMethod::kHardlink:
      return "hardlink";
    case CopyMethod::kCopy:
      return "copy";
  }
  return "copy";
}

Materializer::Materializer(std::string work_dir) : Materializer(std::move(work_dir), Options()) {}

Materializer::Materializer(std::string work_dir, Options options)
    : work_dir_(std::move(work_dir)), options_(options) {}

absl::StatusOr<MaterializeResult> Materializer::Materialize(
    const std::string& source_job_id, const deja::v1::Manifest& manifest,
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

  struct stat root_st;
  if (lstat(src_root.c_str(), &root_st) != 0 || !S_ISDIR(root_st.st_mode)) {
    return absl::DataLossError(absl::StrCat("workspace ", src_root, " of job ", source_job_id,
                                            " is missing"));
  }
  std::set<std::string> checked;
  for (const auto& entry : manifest.files()) {
    if (absl::Status st = paths::ValidateRelativePath(entry.path()); !st.ok()) return st;
    const mode_t type = static_cast<mode_t>(entry.mode()) & S_IFMT;
    if (type != S_IFREG && type != S_IFLNK) {
      return absl::InvalidArgumentError(absl::StrCat("manifest path \"", entry.path(),
                                                     "\": mode ", entry.mode(),
                                                     " is neither a file nor a symlink"));
    }
    if (absl::Status st = CheckSourceParents(src_root, entry.path(), &checked); !st.ok()) {
      return st;
    }
  }
  if (absl::Status st = VerifyManifest(src_root, manifest); !st.ok()) return st;
  if (absl::Status st = paths::MakeDirs(dst_root); !st.ok()) return st;

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
        auto method = MaterializeFile(src, dst, entry, &state);
        if (!method.ok()) return method.status();
        if (Weakness(*method) > weakest) {
          weakest = Weakness(*method);
          result.method = *method;
        }
        result.bytes += entry.size();
      }
      ++result.files;
    }
    absl::Status st = WriteMarker(
        paths::ReusedMarkerPath(work_dir_, new_job_id),
        absl::StrCat("source_job=", source_job_id, "\nsource_workspace=", src_root,
                     "\nmethod=", CopyMethodName(result.method), "\n"));
    if (!st.ok()) return st;
    return result;
  };
  auto result = copy_all();
  if (!result.ok()) paths::RemoveTree(dst_root).IgnoreError();
  return result;
}

}  // namespace deja::worker
