#include "worker/paths.h"

#include <dirent.h>
#include <sys/stat.h>

#include <filesystem>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/files.h"
#include "common/hash.h"

namespace deja::worker::paths {
namespace fs = std::filesystem;

std::string JobsDir(const std::string& work_dir) { return absl::StrCat(work_dir, "/jobs"); }

std::string WorkspaceDir(const std::string& work_dir, const std::string& job_id) {
  return absl::StrCat(JobsDir(work_dir), "/", job_id);
}

std::string LogsDir(const std::string& work_dir, const std::string& job_id) {
  return absl::StrCat(WorkspaceDir(work_dir, job_id), "/", kLogsDir);
}

std::string StdoutPath(const std::string& work_dir, const std::string& job_id) {
  return absl::StrCat(WorkspaceDir(work_dir, job_id), "/", kStdoutFile);
}

std::string StderrPath(const std::string& work_dir, const std::string& job_id) {
  return absl::StrCat(WorkspaceDir(work_dir, job_id), "/", kStderrFile);
}

std::string ReusedMarkerPath(const std::string& work_dir, const std::string& job_id) {
  return absl::StrCat(WorkspaceDir(work_dir, job_id), "/", kReusedMarker);
}

std::string MetaDir(const std::string& work_dir) { return absl::StrCat(work_dir, "/meta"); }

std::string WorkerIdPath(const std::string& work_dir) {
  return absl::StrCat(MetaDir(work_dir), "/worker_id");
}

std::string RunningDir(const std::string& work_dir) {
  return absl::StrCat(MetaDir(work_dir), "/running");
}

std::string TlsDir(const std::string& work_dir) { return absl::StrCat(MetaDir(work_dir), "/tls"); }

std::string IdentityPath(const std::string& work_dir) {
  return absl::StrCat(TlsDir(work_dir), "/worker.pem");
}

std::string ExpiryDir(const std::string& work_dir) {
  return absl::StrCat(MetaDir(work_dir), "/expiry");
}

std::string ExpiryRecordPath(const std::string& work_dir, const std::string& job_id) {
  return absl::StrCat(ExpiryDir(work_dir), "/", job_id);
}

std::string ExpiryLogPath(const std::string& work_dir) {
  return absl::StrCat(MetaDir(work_dir), "/expiry.log");
}

std::string TrashDir(const std::string& work_dir) { return absl::StrCat(work_dir, "/trash"); }

std::string SpareDir(const std::string& work_dir) { return absl::StrCat(work_dir, "/spare"); }

std::string FingerprintsPath(const std::string& work_dir) {
  return absl::StrCat(MetaDir(work_dir), "/fingerprints");
}

std::string CacheBlobsDir(const std::string& work_dir) {
  return absl::StrCat(work_dir, "/cache/blobs");
}

std::string CachedBlobPath(const std::string& blobs_dir, const std::string& digest) {
  return absl::StrCat(blobs_dir, "/", digest.substr(0, 2), "/", digest);
}

absl::Status ValidateDigest(const std::string& digest) {
  if (!IsDigest(digest)) {
    return absl::InvalidArgumentError(
        absl::StrCat("digest \"", digest, "\": expected 32 lowercase hex digits"));
  }
  return absl::OkStatus();
}

absl::Status ValidateJobId(const std::string& job_id) {
  if (job_id.empty()) return absl::InvalidArgumentError("job_id: must not be empty");
  if (job_id.size() > 255 || job_id == "." || job_id == ".." ||
      job_id.find('/') != std::string::npos || job_id.find('\0') != std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("job_id \"", job_id, "\": not usable as a directory name"));
  }
  return absl::OkStatus();
}

absl::Status ValidateRelativePath(const std::string& path) {
  if (path.empty()) return absl::InvalidArgumentError("manifest path: must not be empty");
  if (path.find('\0') != std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat("manifest path \"", path, "\": contains NUL"));
  }
  if (path.front() == '/') {
    return absl::InvalidArgumentError(absl::StrCat("manifest path \"", path, "\": is absolute"));
  }
  for (absl::string_view part : absl::StrSplit(path, '/')) {
    if (part.empty() || part == "." || part == "..") {
      return absl::InvalidArgumentError(
          absl::StrCat("manifest path \"", path, "\": has an empty, '.' or '..' component"));
    }
  }
  return absl::OkStatus();
}

absl::Status RemoveTree(const std::string& dir) {
  std::error_code ec;
  fs::remove_all(dir, ec);
  if (!ec) return absl::OkStatus();
  // A job may leave directories without write or search permission, which
  // stops removal for a non-root worker. Give them back to the owner, retry.
  std::error_code walk_ec;
  struct stat st;
  if (lstat(dir.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
    chmod(dir.c_str(), (st.st_mode & 07777) | S_IRWXU);
    for (fs::recursive_directory_iterator it(dir, walk_ec), end; !walk_ec && it != end;
         it.increment(walk_ec)) {
      const std::string path = it->path().string();
      if (lstat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
        chmod(path.c_str(), (st.st_mode & 07777) | S_IRWXU);
      }
    }
  }
  ec.clear();
  fs::remove_all(dir, ec);
  if (ec) return absl::InternalError(absl::StrCat("remove ", dir, ": ", ec.message()));
  return absl::OkStatus();
}

absl::Status MakeDirs(const std::string& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return absl::InternalError(absl::StrCat("mkdir ", dir, ": ", ec.message()));
  if (!fs::is_directory(dir, ec)) {
    return absl::FailedPreconditionError(absl::StrCat("mkdir ", dir, ": not a directory"));
  }
  return absl::OkStatus();
}

std::vector<std::string> ListNames(const std::string& dir) {
  std::vector<std::string> names;
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return names;
  while (struct dirent* e = readdir(d)) {
    if (e->d_name[0] != '.') names.emplace_back(e->d_name);
  }
  closedir(d);
  return names;
}

std::string ReadSmallFile(const std::string& path) {
  absl::StatusOr<std::string> content = ReadWholeFile(path);
  return content.ok() ? *std::move(content) : std::string();
}

}  // namespace deja::worker::paths
