// The content tests' server: an in-process gRPC server running
// ContentService over a BlobStore whose metadata is in a real RocksStore.
// File helpers and PollUntil come from tests/fakes.
#ifndef DEJA_TESTS_CONTENT_TEST_UTIL_H_
#define DEJA_TESTS_CONTENT_TEST_UTIL_H_

#include <fcntl.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server.h>
#include <grpcpp/server_builder.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/blob_client.h"
#include "scheduler/content/blob_store.h"
#include "scheduler/content/content_service.h"
#include "scheduler/store/rocks_store.h"
#include "tests/fakes/file_util.h"
#include "tests/fakes/poll_until.h"
#include "tests/fakes/temp_dir.h"

namespace deja::testing {

inline deja::v1::BlobRef Ref(const std::string& digest, uint64_t size) {
  deja::v1::BlobRef ref;
  ref.set_digest(digest);
  ref.set_size(size);
  return ref;
}

// A RocksStore in <dir>/db (the blob metadata), a BlobStore in <dir>/blobs,
// and an in-process gRPC server on 127.0.0.1:0 serving ContentService (plus
// any extra services the test registers).
class ContentServer {
 public:
  explicit ContentServer(const std::string& dir, std::vector<grpc::Service*> extra_services = {}) {
    auto meta = RocksStore::Open(dir + "/db");
    EXPECT_TRUE(meta.ok()) << meta.status();
    meta_ = *std::move(meta);
    auto store = BlobStore::Open(dir + "/blobs", meta_.get());
    EXPECT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
    service_ = std::make_unique<ContentService>(store_.get(), &open_access_);
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    builder.RegisterService(service_.get());
    for (grpc::Service* extra : extra_services) builder.RegisterService(extra);
    server_ = builder.BuildAndStart();
    EXPECT_NE(server_, nullptr);
    channel_ = grpc::CreateChannel(address(), grpc::InsecureChannelCredentials());
    client_ = std::make_unique<BlobClient>(channel_);
    stub_ = deja::v1::ContentStore::NewStub(channel_);
  }
  ~ContentServer() {
    server_->Shutdown();
    server_->Wait();
    store_.reset();
    meta_.reset();
  }

  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  BlobStore& store() { return *store_; }
  const BlobClient& client() const { return *client_; }
  deja::v1::ContentStore::Stub& stub() { return *stub_; }
  BlobMetadataStore* meta() { return meta_.get(); }

  // True if the blob metadata has a record for `digest`.
  bool HasMeta(const std::string& digest) { return meta_->GetBlobMeta(digest).ok(); }
  // Files in the store's temp directory.
  std::vector<std::string> TempFiles() { return FilesUnder(store_->dir() + "/tmp"); }
  // Blob files (everything but the temp directory).
  std::vector<std::string> BlobFiles() {
    std::vector<std::string> out;
    for (const std::string& f : FilesUnder(store_->dir())) {
      if (f.rfind(store_->dir() + "/tmp/", 0) != 0) out.push_back(f);
    }
    return out;
  }

 private:
  std::unique_ptr<RocksStore> meta_;
  std::unique_ptr<BlobStore> store_;
  AccessControl open_access_{nullptr, nullptr, /*enabled=*/false};  // no tokens
  std::unique_ptr<ContentService> service_;
  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<BlobClient> client_;
  std::unique_ptr<deja::v1::ContentStore::Stub> stub_;
};

}  // namespace deja::testing

#endif  // DEJA_TESTS_CONTENT_TEST_UTIL_H_
