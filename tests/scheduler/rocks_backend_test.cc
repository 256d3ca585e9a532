// The store-backed core suite over RocksStore.
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <string>

#include "gtest/gtest.h"
#include "scheduler/store/rocks_store.h"
#include "tests/scheduler/store_backed_core_test.h"

namespace deja {
namespace {

namespace fs = std::filesystem;

class RocksBackend : public Backend {
 public:
  RocksBackend()
      : dir_(fs::temp_directory_path() /
             ("deja-core-store-" + std::to_string(getpid()) + "-" + std::to_string(++count_))) {
    fs::remove_all(dir_);
    Reopen();
  }
  ~RocksBackend() override {
    store_.reset();
    fs::remove_all(dir_);
  }
  StoreReader* reader() override { return store_.get(); }
  absl::Status Commit(const Effects& fx) override { return store_->Commit(fx); }
  void Reopen() override {
    store_.reset();
    auto opened = RocksStore::Open(dir_.string());
    EXPECT_TRUE(opened.ok()) << opened.status();
    store_ = *std::move(opened);
  }

 private:
  static inline int count_ = 0;
  fs::path dir_;
  std::unique_ptr<RocksStore> store_;
};

}  // namespace

std::unique_ptr<Backend> MakeBackend(const std::string& /*name*/) {
  return std::make_unique<RocksBackend>();
}

INSTANTIATE_TEST_SUITE_P(Backends, StoreBackedCoreTest, ::testing::Values("rocksdb"),
                         [](const auto& info) { return info.param; });

}  // namespace deja
