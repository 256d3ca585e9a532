#include "worker/workspace_pool.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/errors.h"
#include "worker/file_copy.h"
#include "worker/paths.h"

namespace deja::worker {
namespace {

// An empty workspace at `dir` (which must not exist): dir/, logs/ and the
// two empty log files (0644, as the job runner would create them).
absl::Status CreateEmptyWorkspace(const std::string& dir) {
  if (mkdir(dir.c_str(), 0755) != 0) return ErrnoStatus(errno, "mkdir " + dir);
  const std::string logs = absl::StrCat(dir, "/", paths::kLogsDir);
  if (mkdir(logs.c_str(), 0755) != 0) return ErrnoStatus(errno, "mkdir " + logs);
  for (const char* name : {paths::kStdoutFile, paths::kStderrFile}) {
    const std::string path = absl::StrCat(dir, "/", name);
    Fd fd(open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644));
    if (fd.get() < 0) return ErrnoStatus(errno, "create " + path);
  }
  return absl::OkStatus();
}

}  // namespace

WorkspacePool::WorkspacePool(std::string work_dir, size_t spares)
    : work_dir_(std::move(work_dir)), dir_(paths::SpareDir(work_dir_)), spares_(spares) {}

absl::Status WorkspacePool::Init() {
  if (absl::Status st = paths::RemoveTree(dir_); !st.ok()) return st;
  if (absl::Status st = paths::MakeDirs(dir_); !st.ok()) return st;
  absl::MutexLock lock(&mu_);
  ready_.clear();
  initialized_ = true;
  return absl::OkStatus();
}

absl::Status WorkspacePool::Make(const std::string& workspace) {
  if (absl::Status st = paths::RemoveTree(workspace); !st.ok()) return st;
  std::string spare;
  {
    absl::MutexLock lock(&mu_);
    if (!ready_.empty()) {
      spare = std::move(ready_.back());
      ready_.pop_back();
    }
  }
  if (!spare.empty()) {
    if (rename(spare.c_str(), workspace.c_str()) == 0) return absl::OkStatus();
    paths::RemoveTree(spare).IgnoreError();  // and make one the slow way
  }
  if (absl::Status st = paths::MakeDirs(paths::JobsDir(work_dir_)); !st.ok()) return st;
  absl::Status st = CreateEmptyWorkspace(workspace);
  if (!st.ok()) paths::RemoveTree(workspace).IgnoreError();
  return st;
}

void WorkspacePool::Refill() {
  while (true) {
    std::string path;
    {
      absl::MutexLock lock(&mu_);
      if (!initialized_ || ready_.size() + in_making_ >= spares_) return;
      ++in_making_;
      path = absl::StrCat(dir_, "/", next_++);
    }
    const bool made = CreateEmptyWorkspace(path).ok();
    if (!made) paths::RemoveTree(path).IgnoreError();
    absl::MutexLock lock(&mu_);
    --in_making_;
    if (!made) return;  // try again after the next job
    ready_.push_back(std::move(path));
  }
}

size_t WorkspacePool::ready() const {
  absl::MutexLock lock(&mu_);
  return ready_.size();
}

}  // namespace deja::worker
