// File helpers shared by everything that fills a workspace: the local reuse
// (materializer), input placement (inputs) and the peer pull (peer_client),
// plus the parent-directory checks of the peer file service.
//
// Every function here refuses to go through a symlink: workspace paths come
// from the network, and a symlink a job (or an earlier entry) left behind
// must never redirect a read or a write outside the workspace.
//
// Thread-safety: the functions touch only the paths and descriptors they are
// given; callers serialise work on one destination.
#ifndef DEJA_WORKER_FILE_COPY_H_
#define DEJA_WORKER_FILE_COPY_H_

#include <sys/types.h>

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace deja::worker {

// How a file got its content, from best to worst.
enum class CopyMethod { kReflink, kHardlink, kCopy };

// "reflink", "hardlink" or "copy" (the REUSED marker's spelling).
const char* CopyMethodName(CopyMethod method);

// How much worse a method is than reflink: 0 (reflink) .. 2 (copy).
int CopyMethodWeakness(CopyMethod method);

// Owns a file descriptor; closes it on destruction.
class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  ~Fd() { Reset(); }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  void Reset(int fd = -1);

 private:
  int fd_;
};

// Every proper prefix directory of `rel`, shortest first: "a/b/c" -> a, a/b.
std::vector<std::string> ParentDirs(const std::string& rel);

// The parents of `rel` under a source `root` must be real directories (a
// symlinked parent would make a read leave the workspace). `checked` caches
// directories already checked. DATA_LOSS naming `rel` otherwise.
absl::Status CheckSourceParents(const std::string& root, const std::string& rel,
                                std::set<std::string>* checked);

// Creates the parents of `rel` under a destination `root` (0755), refusing
// to go through anything that is not a real directory. `made` caches
// directories already made. INVALID_ARGUMENT naming `rel` for a non-directory
// parent; other codes for I/O errors, naming the path.
absl::Status MakeDestParents(const std::string& root, const std::string& rel,
                             std::set<std::string>* made);

// Creates `dst` (which must not exist; never through a symlink) as a
// copy-on-write clone of the open regular file `in` (ioctl FICLONE) and
// applies `mode`. Returns true when cloned; false, leaving no `dst`, when the
// filesystem cannot clone (or not across these two files).
absl::StatusOr<bool> ReflinkFile(int in, const std::string& dst, mode_t mode);

// Creates `dst` (which must not exist) and copies `in` into it from `in`'s
// current offset to EOF, with copy_file_range and then read/write when the
// kernel cannot (one 1 MiB buffer at most), then applies `mode`. Returns the
// bytes copied. On error `dst` may be left behind (callers remove their
// partial destination tree). `src` names `in` in errors.
absl::StatusOr<uint64_t> CopyFile(int in, const std::string& src, const std::string& dst,
                                  mode_t mode);

// Writes `text` into a new file `path` (0644), first removing whatever is
// there (a job's own file of that name may be a read-only hard link).
absl::Status WriteMarkerFile(const std::string& path, const std::string& text);

}  // namespace deja::worker

#endif  // DEJA_WORKER_FILE_COPY_H_
