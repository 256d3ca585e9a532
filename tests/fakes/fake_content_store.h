// FakeContentStore: a deja.v1.ContentStore served from memory, for tests of
// the components that fetch inputs and upload outputs (worker, CLI), and
// FakeStoreServer, which serves it on 127.0.0.1:0 with a BlobClient for it.
// Thread-safe: gRPC calls it from its own threads while the test inspects it.
#ifndef DEJA_TESTS_FAKES_FAKE_CONTENT_STORE_H_
#define DEJA_TESTS_FAKES_FAKE_CONTENT_STORE_H_

#include <grpcpp/grpcpp.h>

#include <map>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/blob_client.h"
#include "common/hash.h"
#include "deja/v1/content.grpc.pb.h"
#include "gtest/gtest.h"

namespace deja::testing {

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
    client_ = std::make_unique<BlobClient>(grpc::CreateChannel("127.0.0.1:" + std::to_string(port_),
                                                               grpc::InsecureChannelCredentials()));
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

}  // namespace deja::testing

#endif  // DEJA_TESTS_FAKES_FAKE_CONTENT_STORE_H_
