// The content store's collector over a real RocksStore and BlobStore: what
// each kind of record keeps, what goes, and that a blob used after the scan
// is kept.
#include "scheduler/service/blob_collector.h"

#include <filesystem>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/clock.h"
#include "common/hash.h"
#include "common/tree.h"
#include "gtest/gtest.h"
#include "scheduler/core/keys.h"
#include "scheduler/store/rocks_store.h"

namespace deja {
namespace {

class BlobCollectorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           absl::StrCat("blob_collector_test_", getpid(), "_", rand());
    std::filesystem::create_directories(dir_);
    auto store = RocksStore::Open((dir_ / "db").string());
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
    auto blobs = BlobStore::Open((dir_ / "blobs").string(), store_.get());
    ASSERT_TRUE(blobs.ok()) << blobs.status();
    blobs_ = *std::move(blobs);
  }
  void TearDown() override {
    blobs_.reset();
    store_.reset();
    std::filesystem::remove_all(dir_);
  }

  // Stores `bytes` as a blob; its digest.
  std::string Put(const std::string& bytes) {
    EXPECT_TRUE(blobs_->Put(bytes).ok());
    return HashBytes(bytes);
  }
  bool Has(const std::string& bytes) {
    deja::v1::BlobRef ref;
    ref.set_digest(HashBytes(bytes));
    ref.set_size(bytes.size());
    return blobs_->Has(ref);
  }
  static deja::v1::InputRef Input(const std::string& bytes, const std::string& kind = "file") {
    deja::v1::InputRef in;
    in.set_name("in");
    in.set_kind(kind);
    in.set_digest(HashBytes(bytes));
    in.set_size(bytes.size());
    return in;
  }
  static deja::v1::ManifestRef Manifest(const std::string& bytes) {
    deja::v1::ManifestRef ref;
    ref.set_digest(HashBytes(bytes));
    ref.set_size(bytes.size());
    return ref;
  }
  void Commit(const Effects& fx) { ASSERT_TRUE(store_->Commit(fx).ok()); }

  std::filesystem::path dir_;
  std::unique_ptr<RocksStore> store_;
  std::unique_ptr<BlobStore> blobs_;
};

TEST_F(BlobCollectorTest, KeepsWhatRecordsOrRecentUsesReferToAndDeletesTheRest) {
  // Blobs: each named by what refers to it.
  const std::string queued_input = "input of a queued job";
  const std::string tree_file = "a file in a directory input";
  const std::string tree = EncodeDirectory(
      {DirEntry{"f", DirEntry::Kind::kFile, false, HashBytes(tree_file), tree_file.size(), ""}});
  const std::string kept_output = "output of a retained success";
  const std::string kept_manifest = "manifest of a retained success";
  const std::string expired_output = "output of a success past its retention";
  const std::string expired_manifest = "manifest of a success past its retention";
  const std::string recent_failure = "manifest of a failure an hour ago";
  const std::string old_failure = "manifest of a failure two days ago";
  const std::string memo_output = "output of a live memo entry";
  const std::string pipeline_input = "input of a running pipeline";
  const std::string orphan = "referred to by nothing";
  for (const std::string* b :
       {&queued_input, &tree_file, &tree, &kept_output, &kept_manifest, &expired_output,
        &expired_manifest, &recent_failure, &old_failure, &memo_output, &pipeline_input, &orphan}) {
    Put(*b);
  }

  // Two hours on: every blob is past the one-hour grace.
  FakeClock clock(absl::Now() + absl::Hours(2));
  const int64_t now_ms = absl::ToUnixMillis(clock.Now());
  Effects fx;
  deja::v1::Job queued;
  queued.set_job_id("j1");
  queued.set_state(deja::v1::QUEUED);
  *queued.mutable_spec()->add_inputs() = Input(queued_input);
  *queued.mutable_spec()->add_inputs() = Input(tree, "dir");
  fx.jobs["j1"] = queued;
  deja::v1::Job retained;
  retained.set_job_id("j2");
  retained.set_state(deja::v1::SUCCEEDED);
  retained.set_expires_at_ms(now_ms + 3600'000);
  retained.add_outputs()->set_digest(HashBytes(kept_output));
  *retained.mutable_manifest() = Manifest(kept_manifest);
  fx.jobs["j2"] = retained;
  deja::v1::Job expired = retained;
  expired.set_job_id("j3");
  expired.set_expires_at_ms(now_ms - 1);
  expired.mutable_outputs(0)->set_digest(HashBytes(expired_output));
  *expired.mutable_manifest() = Manifest(expired_manifest);
  fx.jobs["j3"] = expired;
  deja::v1::Job failed;
  failed.set_job_id("j4");
  failed.set_state(deja::v1::FAILED);
  failed.set_finished_at_ms(now_ms - 3600'000);
  *failed.mutable_manifest() = Manifest(recent_failure);
  fx.jobs["j4"] = failed;
  failed.set_job_id("j5");
  failed.set_finished_at_ms(now_ms - 48 * 3600'000);
  *failed.mutable_manifest() = Manifest(old_failure);
  fx.jobs["j5"] = failed;
  deja::v1::MemoEntry entry;
  entry.set_project("p");
  entry.set_job_hash("h");
  entry.add_outputs()->set_digest(HashBytes(memo_output));
  fx.memo_puts[MemoId("p", "h")] = entry;
  deja::v1::Pipeline pipeline;
  pipeline.set_pipeline_id("p1");
  pipeline.set_state(deja::v1::PIPELINE_RUNNING);
  *pipeline.mutable_spec()->add_nodes()->add_inputs() = Input(pipeline_input);
  fx.pipelines["p1"] = pipeline;
  Commit(fx);

  // Within the grace (the real clock), nothing goes.
  RealClock real;
  BlobCollector gentle(blobs_.get(), store_.get(), &real, absl::Hours(1));
  auto stats = gentle.Collect();
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->collected_blobs(), 0u);
  EXPECT_EQ(stats->blobs(), 12u);

  BlobCollector collector(blobs_.get(), store_.get(), &clock, absl::Hours(1));
  stats = collector.Collect();
  ASSERT_TRUE(stats.ok()) << stats.status();
  for (const std::string* gone : {&expired_output, &expired_manifest, &old_failure, &orphan}) {
    EXPECT_FALSE(Has(*gone)) << *gone;
  }
  for (const std::string* kept : {&queued_input, &tree_file, &tree, &kept_output, &kept_manifest,
                                  &recent_failure, &memo_output, &pipeline_input}) {
    EXPECT_TRUE(Has(*kept)) << *kept;
  }
  EXPECT_EQ(stats->collected_blobs(), 4u);
  EXPECT_EQ(stats->collected_bytes(),
            expired_output.size() + expired_manifest.size() + old_failure.size() + orphan.size());
  EXPECT_EQ(stats->blobs(), 8u);
  EXPECT_EQ(stats->collected_at_ms(), now_ms);
  EXPECT_EQ(collector.Last().collected_blobs(), 4u);
  EXPECT_TRUE(blobs_->GetMeta(HashBytes(orphan)).status().code() == absl::StatusCode::kNotFound)
      << "its record goes too";
}

// The collector decides on a scan, then deletes blob by blob: a blob used
// in between (a client told it is present, a submit referencing it) is
// kept, because each delete re-checks the blob's times under its lock.
TEST_F(BlobCollectorTest, ABlobUsedAfterTheScanIsKept) {
  const std::string digest = Put("a blob");
  deja::v1::BlobRef ref;
  ref.set_digest(digest);
  ref.set_size(6);
  const int64_t scanned_at = absl::ToUnixMillis(absl::Now()) + 1;  // the cutoff it chose
  absl::SleepFor(absl::Milliseconds(20));
  ASSERT_TRUE(blobs_->Use(ref));  // after the scan
  auto freed = blobs_->CollectUnusedSince(digest, scanned_at);
  ASSERT_TRUE(freed.ok()) << freed.status();
  EXPECT_EQ(*freed, 0u);
  EXPECT_TRUE(blobs_->Has(ref));
  freed = blobs_->CollectUnusedSince(digest, absl::ToUnixMillis(absl::Now()) + 1000);
  ASSERT_TRUE(freed.ok()) << freed.status();
  EXPECT_EQ(*freed, 6u) << "unused since that cutoff: deleted";
  EXPECT_FALSE(blobs_->Has(ref));
  EXPECT_FALSE(blobs_->Use(ref));
}

}  // namespace
}  // namespace deja
