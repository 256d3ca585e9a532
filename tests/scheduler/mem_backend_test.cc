// The store-backed core suite over MemStore, the in-memory fake.
#include <memory>
#include <string>

#include "gtest/gtest.h"
#include "tests/scheduler/mem_store.h"
#include "tests/scheduler/store_backed_core_test.h"

namespace deja {
namespace {

class MemBackend : public Backend {
 public:
  StoreReader* reader() override { return &store_; }
  absl::Status Commit(const Effects& fx) override { return store_.Commit(fx); }
  void Reopen() override {}

 private:
  MemStore store_;
};

}  // namespace

std::unique_ptr<Backend> MakeBackend(const std::string& /*name*/) {
  return std::make_unique<MemBackend>();
}

INSTANTIATE_TEST_SUITE_P(Backends, StoreBackedCoreTest, ::testing::Values("memory"),
                         [](const auto& info) { return info.param; });

}  // namespace deja
