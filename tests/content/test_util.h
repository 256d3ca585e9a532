// Helpers shared by the content tests (TempDir, ReadFile, WriteFile and
// PollUntil come from tests/fakes): small file utilities, and an in-process gRPC server running ContentService over a
// BlobStore backed by a real RocksDB.
#ifndef DEJA_TESTS_CONTENT_TEST_UTIL_H_
#define DEJA_TESTS_CONTENT_TEST_UTIL_H_

#include <fcntl.h>
#include <gtest/gtest.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server.h>
#include <grpcpp/server_builder.h>
#include <rocksdb/db.h>
#include <rocksdb/options.h>
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
#include "tests/fakes/poll_until.h"
#include "tests/fakes/temp_dir.h"

namespace deja::testing {

// Sets the file's mtime (and atime) to `t`.
inline void SetMtime(const std::string& path, absl::Time t) {
  struct timespec times[2];
  times[0] = absl::ToTimespec(t);
  times[1] = absl::ToTimespec(t);
  ASSERT_EQ(utimensat(AT_FDCWD, path.c_str(), times, 0), 0) << path;
}

// Deterministic pseudo-random bytes.
inline std::string RandomBytes(size_t n, uint32_t seed) {
  std::string out(n, '\0');
  uint32_t x = seed * 2654435761u + 1;
  for (size_t i = 0; i < n; ++i) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    out[i] = static_cast<char>(x & 0xff);
  }
  return out;
}

// Regular files under `dir`, recursively.
inline std::vector<std::string> FilesUnder(const std::string& dir) {
  std::vector<std::string> files;
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(dir, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    if (it->is_regular_file()) files.push_back(it->path().string());
  }
  return files;
}

inline deja::v1::BlobRef Ref(const std::string& digest, uint64_t size) {
  deja::v1::BlobRef ref;
  ref.set_digest(digest);
  ref.set_size(size);
  return ref;
}

// RocksDB with a "blobs" column family, a BlobStore in <dir>/blobs, and an
// in-process gRPC server on 127.0.0.1:0 serving ContentService (plus any
// extra services the test registers).
class ContentServer {
 public:
  explicit ContentServer(const std::string& dir,
                         std::vector<grpc::Service*> extra_services = {}) {
    rocksdb::DBOptions options;
    options.create_if_missing = true;
    options.create_missing_column_families = true;
    std::vector<rocksdb::ColumnFamilyDescriptor> families = {
        {rocksdb::kDefaultColumnFamilyName, rocksdb::ColumnFamilyOptions()},
        {"blobs", rocksdb::ColumnFamilyOptions()}};
    rocksdb::DB* db = nullptr;
    rocksdb::Status s = rocksdb::DB::Open(options, dir + "/db", families, &handles_, &db);
    EXPECT_TRUE(s.ok()) << s.ToString();
    db_.reset(db);
    auto store = BlobStore::Open(dir + "/blobs", db_.get(), handles_[1]);
    EXPECT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
    service_ = std::make_unique<ContentService>(store_.get());
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
    for (auto* handle : handles_) db_->DestroyColumnFamilyHandle(handle);
    db_->Close();
  }

  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  BlobStore& store() { return *store_; }
  const BlobClient& client() const { return *client_; }
  deja::v1::ContentStore::Stub& stub() { return *stub_; }
  rocksdb::DB* db() { return db_.get(); }
  rocksdb::ColumnFamilyHandle* blobs_family() { return handles_[1]; }

  // True if the blobs column family has a record for `digest`.
  bool HasMeta(const std::string& digest) {
    std::string value;
    return db_->Get(rocksdb::ReadOptions(), handles_[1], digest, &value).ok();
  }
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
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;
  std::unique_ptr<rocksdb::DB> db_;
  std::unique_ptr<BlobStore> store_;
  std::unique_ptr<ContentService> service_;
  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<BlobClient> client_;
  std::unique_ptr<deja::v1::ContentStore::Stub> stub_;
};

}  // namespace deja::testing

#endif  // DEJA_TESTS_CONTENT_TEST_UTIL_H_
