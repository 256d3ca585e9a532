// Helpers shared by the worker tests: temp dirs, file I/O, expiry records.
// Polling and the fake content store are the shared ones in tests/fakes/.
#ifndef DEJA_TESTS_WORKER_TEST_UTIL_H_
#define DEJA_TESTS_WORKER_TEST_UTIL_H_

#include <stdlib.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/manifest.h"
#include "gtest/gtest.h"
#include "tests/fakes/temp_dir.h"
#include "worker/retention.h"

namespace deja::worker::testing {

inline std::string MakeTempDir(const std::string& prefix) {
  std::string tmpl = std::filesystem::temp_directory_path().string() + "/" + prefix + ".XXXXXX";
  EXPECT_NE(mkdtemp(tmpl.data()), nullptr);
  return tmpl;
}

// Manifests by ref, in memory: what a peer service loads them from in tests
// (the content store in a worker). Thread-safe.
class FakeManifests {
 public:
  deja::v1::ManifestRef Put(const deja::v1::Manifest& manifest) {
    std::string bytes;
    deja::v1::ManifestRef ref = SerializeManifest(manifest, &bytes);
    absl::MutexLock lock(&mu_);
    blobs_[ref.digest()] = std::move(bytes);
    return ref;
  }
  ManifestLoader loader() {
    return [this](const deja::v1::ManifestRef& ref,
                  const deja::v1::SignedTicket& /*ticket*/) -> absl::StatusOr<deja::v1::Manifest> {
      absl::MutexLock lock(&mu_);
      auto it = blobs_.find(ref.digest());
      if (it == blobs_.end()) {
        return absl::NotFoundError(absl::StrCat("manifest ", ref.digest(), ": not found"));
      }
      return ParseManifest(ref, it->second);
    };
  }

 private:
  absl::Mutex mu_;
  std::map<std::string, std::string> blobs_;
};

// Removes a test dir, also when it holds read-only directories.
inline void RemoveTempDir(const std::string& dir) { deja::testing::TempDir::RemoveTree(dir); }

using deja::testing::ReadFile;

// Unlike deja::testing::WriteFile, always sets a mode (0644 unless told) and
// leaves a failed write for the test to notice: tests write over sealed
// (read-only) files on purpose.
inline void WriteFile(const std::string& path, const std::string& data, mode_t mode = 0644) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream(path, std::ios::binary | std::ios::trunc) << data;
  chmod(path.c_str(), mode);
}

// Whether the work dir's expiry log (read as it is on disk) holds a record
// for `job_id`.
inline bool HasExpiryRecord(const std::string& work_dir, const std::string& job_id) {
  auto records = WorkspaceRetention::ReadRecords(work_dir);
  return records.ok() && records->count(job_id) != 0;
}

}  // namespace deja::worker::testing

#endif  // DEJA_TESTS_WORKER_TEST_UTIL_H_
