#include "worker/file_copy.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <memory>

#include "absl/strings/str_cat.h"
#include "common/errors.h"

namespace deja::worker {
namespace {

constexpr size_t kBufferSize = 1 << 20;

bool CopyFallbackErrno(int err) {
  return err == EXDEV || err == ENOSYS || err == EOPNOTSUPP || err == EINVAL;
}

// Copies from `in` to `out` starting at their current offsets, with
// copy_file_range and then read/write if the kernel cannot.
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
    if (!CopyFallbackErrno(errno))
      return ErrnoStatus(errno, absl::StrCat("copy ", src, " -> ", dst));
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

int CopyMethodWeakness(CopyMethod method) {
  switch (method) {
    case CopyMethod::kReflink:
      return 0;
    case CopyMethod::kHardlink:
      return 1;
    case CopyMethod::kCopy:
      return 2;
  }
  return 2;
}

void Fd::Reset(int fd) {
  if (fd_ >= 0) close(fd_);
  fd_ = fd;
}

std::vector<std::string> ParentDirs(const std::string& rel) {
  std::vector<std::string> dirs;
  for (size_t pos = rel.find('/'); pos != std::string::npos; pos = rel.find('/', pos + 1)) {
    dirs.push_back(rel.substr(0, pos));
  }
  return dirs;
}

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

absl::Status MakeDestParents(const std::string& root, const std::string& rel,
                             std::set<std::string>* made) {
  for (const std::string& dir : ParentDirs(rel)) {
    if (made->count(dir) != 0) continue;
    const std::string path = absl::StrCat(root, "/", dir);
    struct stat st;
    if (lstat(path.c_str(), &st) == 0) {
      if (!S_ISDIR(st.st_mode)) {
        return absl::InvalidArgumentError(
            absl::StrCat("path \"", rel, "\": parent ", dir, " is not a directory"));
      }
    } else if (mkdir(path.c_str(), 0755) != 0) {
      return ErrnoStatus(errno, "mkdir " + path);
    }
    made->insert(dir);
  }
  return absl::OkStatus();
}

absl::StatusOr<bool> ReflinkFile(int in, const std::string& dst, mode_t mode) {
  Fd out(open(dst.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (out.get() < 0) return ErrnoStatus(errno, "create " + dst);
  if (ioctl(out.get(), FICLONE, in) != 0) {
    out.Reset();
    unlink(dst.c_str());
    return false;
  }
  if (fchmod(out.get(), mode) != 0) return ErrnoStatus(errno, "chmod " + dst);
  return true;
}

absl::StatusOr<uint64_t> CopyFile(int in, const std::string& src, const std::string& dst,
                                  mode_t mode) {
  Fd out(open(dst.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (out.get() < 0) return ErrnoStatus(errno, "create " + dst);
  auto copied = CopyBytes(in, out.get(), src, dst);
  if (!copied.ok()) return copied.status();
  if (fchmod(out.get(), mode) != 0) return ErrnoStatus(errno, "chmod " + dst);
  return *copied;
}

absl::Status WriteMarkerFile(const std::string& path, const std::string& text) {
  unlink(path.c_str());
  Fd fd(open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644));
  if (fd.get() < 0) return ErrnoStatus(errno, "create " + path);
  if (write(fd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size())) {
    return ErrnoStatus(errno, "write " + path);
  }
  return absl::OkStatus();
}

}  // namespace deja::worker
