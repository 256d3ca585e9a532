// Helpers shared by the worker tests: temp dirs, file I/O, polling, and an
// in-process fake content store on 127.0.0.1:0.
#ifndef DEJA_TESTS_WORKER_TEST_UTIL_H_
#define DEJA_TESTS_WORKER_TEST_UTIL_H_

#include <grpcpp/grpcpp.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/blob_client.h"
#include "common/hash.h"
#include "deja/v1/content.grpc.pb.h"
#include "gtest/gtest.h"
#include "worker/retention.h"

namespace deja::worker::testing {

inline std::string MakeTempDir(const std::string& prefix) {
  std::string tmpl = std::filesystem::temp_directory_path().string() + "/" + prefix + ".XXXXXX";
  EXPECT_NE(mkdtemp(tmpl.data()), nullptr);
  return tmpl;
}

// Removes a test dir, also when it holds read-only directories.
inline void RemoveTempDir(const std::string& dir) {
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(dir, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    if (it->is_directory(ec) && !it->is_symlink(ec)) chmod(it->path().c_str(), 0755);
  }
  std::filesystem::remove_all(dir, ec);
}

inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

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

// Polls `done` until it holds or `timeout` passes.
template <typename F>
bool PollUntil(F done, absl::Duration timeout = absl::Seconds(10)) {
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    if (done()) return true;
    absl::SleepFor(absl::Milliseconds(5));
  }
  return done();
}

inline deja::v1::BlobRef RefOf(const std::string& bytes) {
  deja::v1::BlobRef ref;
  ref.set_digest(HashBytes(bytes));
  ref.set_size(bytes.size());
  return ref;
}

// A ContentStore serving blobs from a map. Downloads can be held at a gate
// (to make fetches overlap) and are counted per digest.
class FakeContentStore final : public deja::v1::ContentStore::Service {
 public:
  deja::v1::BlobRef Put(const std::string& bytes) {
    absl::MutexLock lock(&mu_);
    blobs_[HashBytes(bytes)] = bytes;
    return RefOf(bytes);
  }
  // Serves `bytes` under `digest`, whatever they hash to (a corrupt store).
  void PutCorrupt(const std::string& digest, const std::string& bytes) {
    absl::MutexLock lock(&mu_);
    blobs_[digest] = bytes;
  }
  bool Has(const std::string& digest) {
    absl::MutexLock lock(&mu_);
    return blobs_.count(digest) != 0;
  }
  std::string Get(const std::string& digest) {
    absl::MutexLock lock(&mu_);
    return blobs_[digest];
  }
  int downloads(const std::string& digest) {
    absl::MutexLock lock(&mu_);
    return downloads_[digest];
  }
  int uploads() {
    absl::MutexLock lock(&mu_);
    return uploads_;
  }
  void HoldDownloads(bool hold) {
    absl::MutexLock lock(&mu_);
    hold_ = hold;
  }
  void RejectUploads(bool reject) {
    absl::MutexLock lock(&mu_);
    reject_uploads_ = reject;
  }

  grpc::Status FindMissingBlobs(grpc::ServerContext*,
                                const deja::v1::FindMissingBlobsRequest* request,
                                deja::v1::FindMissingBlobsResponse* response) override {
    absl::MutexLock lock(&mu_);
    for (const auto& blob : request->blobs()) {
      auto it = blobs_.find(blob.digest());
      if (it == blobs_.end() || it->second.size() != blob.size()) *response->add_missing() = blob;
    }
    return grpc::Status::OK;
  }

  grpc::Status Upload(grpc::ServerContext*, grpc::ServerReader<deja::v1::UploadChunk>* reader,
                      deja::v1::UploadResponse* response) override {
    deja::v1::UploadChunk chunk;
    deja::v1::BlobRef blob;
    std::string data;
    bool first = true;
    while (reader->Read(&chunk)) {
      if (first) blob = chunk.blob();
      first = false;
      data += chunk.data();
    }
    absl::MutexLock lock(&mu_);
    ++uploads_;
    if (reject_uploads_) return grpc::Status(grpc::StatusCode::UNAVAILABLE, "store is full");
    if (HashBytes(data) != blob.digest() || data.size() != blob.size()) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "digest mismatch");
    }
    blobs_[blob.digest()] = data;
    *response->mutable_blob() = blob;
    return grpc::Status::OK;
  }

  grpc::Status Download(grpc::ServerContext*, const deja::v1::DownloadRequest* request,
                        grpc::ServerWriter<deja::v1::DownloadChunk>* writer) override {
    std::string data;
    {
      absl::MutexLock lock(&mu_);
      ++downloads_[request->digest()];
      mu_.Await(absl::Condition(
          +[](bool* hold) { return !*hold; }, &hold_));
      auto it = blobs_.find(request->digest());
      if (it == blobs_.end()) {
        return grpc::Status(grpc::StatusCode::NOT_FOUND,
                            "blob " + request->digest() + " not found");
      }
      data = it->second;
    }
    deja::v1::DownloadChunk chunk;
    for (size_t pos = request->offset(); pos < data.size(); pos += 64 * 1024) {
      chunk.set_data(data.substr(pos, 64 * 1024));
      if (!writer->Write(chunk)) break;
    }
    return grpc::Status::OK;
  }

 private:
  absl::Mutex mu_;
  std::map<std::string, std::string> blobs_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, int> downloads_ ABSL_GUARDED_BY(mu_);
  int uploads_ ABSL_GUARDED_BY(mu_) = 0;
  bool hold_ ABSL_GUARDED_BY(mu_) = false;
  bool reject_uploads_ ABSL_GUARDED_BY(mu_) = false;
};

// The fake store served on 127.0.0.1:<free port>, with a client for it.
class FakeStoreServer {
 public:
  FakeStoreServer() {
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    builder.RegisterService(&store_);
    server_ = builder.BuildAndStart();
    EXPECT_NE(port_, 0);
    client_ = std::make_unique<BlobClient>(grpc::CreateChannel(
        "127.0.0.1:" + std::to_string(port_), grpc::InsecureChannelCredentials()));
  }
  ~FakeStoreServer() {
    store_.HoldDownloads(false);
    server_->Shutdown(absl::ToChronoTime(absl::Now() + absl::Seconds(1)));
  }

  FakeContentStore& store() { return store_; }
  const BlobClient& client() const { return *client_; }
  BlobClient* mutable_client() { return client_.get(); }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

 private:
  FakeContentStore store_;
  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<BlobClient> client_;
};

}  // namespace deja::worker::testing

#endif  // DEJA_TESTS_WORKER_TEST_UTIL_H_
