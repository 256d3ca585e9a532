#include "scheduler/store/rocks_store.h"

#include <rocksdb/db.h>
#include <unistd.h>

#include <filesystem>
#include <map>

#include "common/hash.h"
#include "common/manifest.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "scheduler/core/keys.h"
#include "scheduler/store/schema.h"

namespace deja {
namespace {

namespace fs = std::filesystem;

class RocksStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("deja-store-" + std::to_string(getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

// Job ids of a scan, joined.
std::string ScanIds(const RocksStore& store, uint64_t seq, bool backward, int limit = 100) {
  std::string out;
  int n = 0;
  absl::Status s = store.ScanJobs(seq, backward, [&](deja::v1::Job& job) {
    out += (out.empty() ? "" : " ") + job.job_id();
    return ++n < limit;
  });
  return s.ok() ? out : s.ToString();
}

TEST_F(RocksStoreTest, CommittedRecordsSurviveReopen) {
  {
    auto store = RocksStore::Open(dir_.string());
    ASSERT_TRUE(store.ok()) << store.status();
    Effects fx;
    for (int i : {2, 10, 1}) {
      deja::v1::Job job;
      job.set_job_id("j" + std::to_string(i));
      job.set_state(deja::v1::QUEUED);
      fx.jobs[job.job_id()] = job;
    }
    fx.requests[RequestKey("p", "req-1")] = "j10";
    deja::v1::MemoEntry entry;
    entry.set_project("p");
    entry.set_job_hash("h");
    fx.memo_puts[MemoId("p", "h")] = entry;
    deja::v1::ProjectSettings settings;
    settings.set_project("p");
    settings.set_intermediate_files_hours(72);
    fx.projects["p"] = settings;
    deja::v1::ImageRecord image;
    image.set_name("tool:1");
    image.set_image_id("sha256:" + std::string(64, 'a'));
    fx.images["tool:1"] = image;
    ASSERT_TRUE((*store)->Commit(fx).ok());
    Effects del;
    del.memo_deletes.insert(MemoId("p", "h"));
    entry.set_job_hash("h2");
    del.memo_puts[MemoId("p", "h2")] = entry;
    // Not synced: still there after the store closes (a process crash
    // loses nothing; only a machine crash before the next synced commit does).
    ASSERT_TRUE((*store)->Commit(del, /*durable=*/false).ok());
  }
  auto store = RocksStore::Open(dir_.string());
  ASSERT_TRUE(store.ok());
  std::vector<deja::v1::ProjectSettings> projects;
  ASSERT_TRUE((*store)->ScanProjects([&](auto& p) { projects.push_back(p); }).ok());
  ASSERT_EQ(projects.size(), 1u);
  EXPECT_EQ(projects[0].intermediate_files_hours(), 72);
  std::vector<deja::v1::ImageRecord> images;
  ASSERT_TRUE((*store)->ScanImages([&](auto& i) { images.push_back(i); }).ok());
  ASSERT_EQ(images.size(), 1u) << "images beside the projects, each scan its own";
  EXPECT_EQ(images[0].name(), "tool:1");
  // Submission order, not string order, both ways; from a given seq.
  EXPECT_EQ(ScanIds(**store, 0, false), "j1 j2 j10");
  EXPECT_EQ(ScanIds(**store, 0, true), "j10 j2 j1");
  EXPECT_EQ(ScanIds(**store, 2, false), "j2 j10");
  EXPECT_EQ(ScanIds(**store, 9, true), "j2 j1");
  EXPECT_EQ(ScanIds(**store, 0, true, 1), "j10");
  EXPECT_EQ((*store)->ReadJob(10)->job_id(), "j10");
  EXPECT_EQ((*store)->ReadJob(3).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(*(*store)->ReadRequest(RequestKey("p", "req-1")), 10u);
  EXPECT_EQ((*store)->ReadRequest(RequestKey("p", "req-2")).status().code(),
            absl::StatusCode::kNotFound);
  std::vector<deja::v1::MemoEntry> memo;
  ASSERT_TRUE((*store)
                  ->ScanMemo([&](auto& e) {
                    memo.push_back(e);
                    return true;
                  })
                  .ok());
  ASSERT_EQ(memo.size(), 1u);
  EXPECT_EQ(memo[0].job_hash(), "h2");
  EXPECT_EQ((*store)->ReadMemo(MemoId("p", "h2"))->job_hash(), "h2");
  EXPECT_EQ((*store)->ReadMemo(MemoId("p", "h")).status().code(), absl::StatusCode::kNotFound);
}

// Opens the database the way a schema-1 build did, for the upgrade test.
struct RawDb {
  explicit RawDb(const std::string& dir) {
    rocksdb::DBOptions options;
    options.create_if_missing = true;
    options.create_missing_column_families = true;
    std::vector<rocksdb::ColumnFamilyDescriptor> families;
    for (const char* name : {"default", "jobs", "memo", "settings", "blobs", "pipelines"}) {
      families.emplace_back(name, rocksdb::ColumnFamilyOptions());
    }
    EXPECT_TRUE(rocksdb::DB::Open(options, dir, families, &handles, &db).ok());
  }
  ~RawDb() {
    for (auto* h : handles) db->DestroyColumnFamilyHandle(h);
    delete db;
  }
  rocksdb::DB* db = nullptr;
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
};

TEST_F(RocksStoreTest, UpgradesASchemaOneStore) {
  {
    RawDb raw(dir_.string());
    ASSERT_NE(raw.db, nullptr);
    deja::v1::Job job;
    job.set_job_id("j7");
    job.set_state(deja::v1::SUCCEEDED);
    job.mutable_spec()->set_project("p");
    job.mutable_spec()->set_request_id("req-7");
    ASSERT_TRUE(raw.db
                    ->Put(rocksdb::WriteOptions(), raw.handles[schema::kJobs], schema::JobKey(7),
                          job.SerializeAsString())
                    .ok());
    deja::v1::MemoEntry entry;
    entry.set_project("p");
    entry.set_job_hash("abc");
    entry.set_source_job_id("j7");
    ASSERT_TRUE(raw.db
                    ->Put(rocksdb::WriteOptions(), raw.handles[schema::kMemo], MemoKey("p", "abc"),
                          entry.SerializeAsString())
                    .ok());
    ASSERT_TRUE(raw.db
                    ->Put(rocksdb::WriteOptions(), raw.handles[schema::kSettings],
                          schema::kSchemaVersionKey, "1")
                    .ok());
  }
  {
    auto store = RocksStore::Open(dir_.string());
    ASSERT_TRUE(store.ok()) << store.status();
    EXPECT_EQ((*store)->ReadMemo(MemoId("p", "abc"))->source_job_id(), "j7");
    EXPECT_EQ(*(*store)->ReadRequest(RequestKey("p", "req-7")), 7u);
    int entries = 0;
    ASSERT_TRUE((*store)->ScanMemo([&](auto&) { return ++entries > 0; }).ok());
    EXPECT_EQ(entries, 1) << "the old key is gone";
  }
  // The marker now says 2: opening again does not upgrade twice.
  auto store = RocksStore::Open(dir_.string());
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_EQ(*(*store)->ReadRequest(RequestKey("p", "req-7")), 7u);
}

// Schema 2 kept every file of a workspace inside the job and memo records;
// schema 3 moves each manifest into the content store, blob first.
TEST_F(RocksStoreTest, UpgradesASchemaTwoStoreByMovingManifestsIntoTheContentStore) {
  deja::v1::Manifest manifest;
  for (const char* path : {"logs/stdout", "out/model.bin"}) {
    deja::v1::FileEntry* file = manifest.add_files();
    file->set_path(path);
    file->set_size(100);
    file->set_mode(0100644);
    file->set_digest(HashBytes(path));
  }
  {
    RawDb raw(dir_.string());
    ASSERT_NE(raw.db, nullptr);
    deja::v1::Job done;
    done.set_job_id("j7");
    done.set_state(deja::v1::SUCCEEDED);
    *done.mutable_legacy_manifest() = manifest;
    deja::v1::Job queued;
    queued.set_job_id("j8");
    queued.set_state(deja::v1::QUEUED);
    deja::v1::MemoEntry entry;
    entry.set_project("p");
    entry.set_job_hash("abc");
    entry.set_source_job_id("j7");
    *entry.mutable_legacy_manifest() = manifest;
    rocksdb::WriteOptions w;
    ASSERT_TRUE(
        raw.db->Put(w, raw.handles[schema::kJobs], schema::JobKey(7), done.SerializeAsString())
            .ok());
    ASSERT_TRUE(
        raw.db->Put(w, raw.handles[schema::kJobs], schema::JobKey(8), queued.SerializeAsString())
            .ok());
    ASSERT_TRUE(
        raw.db->Put(w, raw.handles[schema::kMemo], MemoId("p", "abc"), entry.SerializeAsString())
            .ok());
    ASSERT_TRUE(
        raw.db->Put(w, raw.handles[schema::kSettings], schema::kSchemaVersionKey, "2").ok());
  }
  std::map<std::string, std::string> blobs;
  {
    // The content store fails: nothing is rewritten, the next open redoes it.
    auto store = RocksStore::Open(dir_.string());
    ASSERT_TRUE(store.ok()) << store.status();
    ASSERT_TRUE((*store)->manifests_inline());
    absl::Status failed = (*store)->MoveManifestsOut(
        [](absl::string_view) { return absl::InternalError("disk full"); });
    EXPECT_EQ(failed.code(), absl::StatusCode::kInternal);
    EXPECT_TRUE((*store)->ReadJob(7)->has_legacy_manifest());
  }
  {
    auto store = RocksStore::Open(dir_.string());
    ASSERT_TRUE(store.ok()) << store.status();
    ASSERT_TRUE((*store)->manifests_inline());
    ASSERT_TRUE((*store)
                    ->MoveManifestsOut([&](absl::string_view bytes) {
                      blobs[HashBytes(std::string_view(bytes.data(), bytes.size()))] =
                          std::string(bytes);
                      return absl::OkStatus();
                    })
                    .ok());
    EXPECT_FALSE((*store)->manifests_inline());
    auto job = (*store)->ReadJob(7);
    ASSERT_TRUE(job.ok()) << job.status();
    EXPECT_FALSE(job->has_legacy_manifest());
    EXPECT_EQ(job->manifest().files(), 2u);
    EXPECT_EQ(job->manifest().bytes(), 200u);
    ASSERT_EQ(blobs.size(), 1u) << "one manifest, stored once for the job and the entry";
    auto moved = ParseManifest(job->manifest(), blobs.at(job->manifest().digest()));
    ASSERT_TRUE(moved.ok()) << moved.status();
    EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(*moved, manifest));
    EXPECT_FALSE((*store)->ReadJob(8)->has_manifest()) << "a job that never ran has none";
    auto entry = (*store)->ReadMemo(MemoId("p", "abc"));
    ASSERT_TRUE(entry.ok()) << entry.status();
    EXPECT_FALSE(entry->has_legacy_manifest());
    EXPECT_EQ(entry->manifest().digest(), job->manifest().digest());
  }
  // The marker now says 3.
  auto store = RocksStore::Open(dir_.string());
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_FALSE((*store)->manifests_inline());
}

TEST_F(RocksStoreTest, RefusesAnotherSchemaVersion) {
  ASSERT_TRUE(RocksStore::Open(dir_.string()).ok());
  {
    // Rewrite the marker as a future version of Deja would.
    rocksdb::DBOptions options;
    std::vector<rocksdb::ColumnFamilyDescriptor> families;
    for (const auto& name : schema::ColumnFamilyNames())
      families.emplace_back(name, rocksdb::ColumnFamilyOptions());
    std::vector<rocksdb::ColumnFamilyHandle*> handles;
    rocksdb::DB* db = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(options, dir_.string(), families, &handles, &db).ok());
    ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), handles[schema::kSettings],
                        schema::kSchemaVersionKey, "99")
                    .ok());
    for (auto* h : handles) db->DestroyColumnFamilyHandle(h);
    delete db;
  }
  auto store = RocksStore::Open(dir_.string());
  EXPECT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(store.status().message().find("schema version 99"), absl::string_view::npos)
      << store.status();
}

TEST_F(RocksStoreTest, BlobRecordsAreKeyedByDigestInTheBlobsFamily) {
  const std::string digest = "0123456789abcdef0123456789abcdef";
  {
    auto store = RocksStore::Open(dir_.string());
    ASSERT_TRUE(store.ok()) << store.status();
    EXPECT_EQ((*store)->GetBlobMeta(digest).status().code(), absl::StatusCode::kNotFound);
    deja::v1::BlobMeta meta;
    meta.set_size(42);
    meta.set_created_at_ms(7);
    ASSERT_TRUE((*store)->PutBlobMeta(digest, meta).ok());
    EXPECT_EQ((*store)->GetBlobMeta(digest)->size(), 42u);
  }
  // The bytes schema.h draws: key the digest, value the BlobMeta.
  std::string value;
  {
    rocksdb::DBOptions options;
    std::vector<rocksdb::ColumnFamilyDescriptor> families;
    for (const auto& name : schema::ColumnFamilyNames()) {
      families.emplace_back(name, rocksdb::ColumnFamilyOptions());
    }
    std::vector<rocksdb::ColumnFamilyHandle*> handles;
    rocksdb::DB* db = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(options, dir_.string(), families, &handles, &db).ok());
    EXPECT_TRUE(db->Get(rocksdb::ReadOptions(), handles[schema::kBlobs], digest, &value).ok());
    ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), handles[schema::kBlobs], digest, "garbage").ok());
    for (auto* h : handles) db->DestroyColumnFamilyHandle(h);
    delete db;
  }
  deja::v1::BlobMeta meta;
  ASSERT_TRUE(meta.ParseFromString(value));
  EXPECT_EQ(meta.size(), 42u);
  EXPECT_EQ(meta.created_at_ms(), 7);
  auto store = RocksStore::Open(dir_.string());
  ASSERT_TRUE(store.ok());
  EXPECT_EQ((*store)->GetBlobMeta(digest).status().message(),
            "blob record " + digest + " does not parse");
}

}  // namespace
}  // namespace deja

namespace deja {
namespace {

// Blob grants (issue 13): a store from before them gets its projects'
// grants from its jobs at open; a committed ended job grants its project
// its inputs, outputs and manifest; a deleted blob's grants go with it.
TEST_F(RocksStoreTest, ProjectsAreGrantedTheBlobsOfTheirJobs) {
  const std::string d_in(32, 'a'), d_out(32, 'b'), d_manifest(32, 'c'), d_new(32, 'e');
  {
    rocksdb::DBOptions options;
    options.create_if_missing = true;
    options.create_missing_column_families = true;
    std::vector<rocksdb::ColumnFamilyDescriptor> families;
    const auto& names = schema::ColumnFamilyNames();
    for (int i = 0; i < schema::kBlobProjects; ++i) {
      families.emplace_back(names[i], rocksdb::ColumnFamilyOptions());
    }
    std::vector<rocksdb::ColumnFamilyHandle*> handles;
    rocksdb::DB* db = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(options, dir_.string(), families, &handles, &db).ok());
    deja::v1::Job job;
    job.set_job_id("j1");
    job.set_state(deja::v1::SUCCEEDED);
    job.mutable_spec()->set_project("p");
    job.mutable_spec()->add_inputs()->set_digest(d_in);
    job.add_outputs()->set_digest(d_out);
    job.mutable_manifest()->set_digest(d_manifest);
    EXPECT_TRUE(db->Put(rocksdb::WriteOptions(), handles[schema::kJobs], schema::JobKey(1),
                        job.SerializeAsString())
                    .ok());
    EXPECT_TRUE(db->Put(rocksdb::WriteOptions(), handles[schema::kSettings],
                        schema::kSchemaVersionKey, std::to_string(schema::kSchemaVersion))
                    .ok());
    for (auto* h : handles) db->DestroyColumnFamilyHandle(h);
    delete db;
  }
  auto store = RocksStore::Open(dir_.string());
  ASSERT_TRUE(store.ok()) << store.status();
  for (const std::string& d : {d_in, d_out, d_manifest}) {
    EXPECT_TRUE((*store)->BlobGranted(d, "p")) << d;
    EXPECT_FALSE((*store)->BlobGranted(d, "q")) << d;
  }
  Effects fx;
  deja::v1::Job running;
  running.set_job_id("j2");
  running.set_state(deja::v1::RUNNING);
  running.mutable_spec()->set_project("q");
  running.add_outputs()->set_digest(d_new);
  fx.jobs["j2"] = running;
  ASSERT_TRUE((*store)->Commit(fx, true).ok());
  EXPECT_FALSE((*store)->BlobGranted(d_new, "q")) << "granted once the job has ended";
  fx.jobs["j2"].set_state(deja::v1::SUCCEEDED);
  ASSERT_TRUE((*store)->Commit(fx, true).ok());
  EXPECT_TRUE((*store)->BlobGranted(d_new, "q"));
  ASSERT_TRUE((*store)->GrantBlob(d_new, "r").ok());
  ASSERT_TRUE((*store)->DeleteBlobMeta(d_new).ok());
  EXPECT_FALSE((*store)->BlobGranted(d_new, "q"));
  EXPECT_FALSE((*store)->BlobGranted(d_new, "r"));
  EXPECT_TRUE((*store)->BlobGranted(d_out, "p")) << "another blob's grants stay";
}

TEST(RocksStoreAccessTest, TokensAndABoundedAuditLogSurviveReopen) {
  const std::string dir =
      std::filesystem::temp_directory_path() / ("deja-store-access-" + std::to_string(getpid()));
  std::filesystem::remove_all(dir);
  {
    auto store = RocksStore::Open(dir);
    ASSERT_TRUE(store.ok()) << store.status();
    deja::v1::TokenRecord record;
    record.mutable_token()->set_id("t7");
    record.mutable_token()->set_role(deja::v1::READER);
    record.set_secret_sha256(std::string(32, 'h'));
    ASSERT_TRUE((*store)->PutToken(record).ok());
    for (uint64_t seq = 1; seq <= 4; ++seq) {
      deja::v1::AuditEvent event;
      event.set_seq(seq);
      event.set_detail("event " + std::to_string(seq));
      // A log bounded at two events: each append drops the one two back.
      ASSERT_TRUE((*store)->AppendAudit(event, seq > 2 ? seq - 2 : 0, seq % 2 == 0).ok());
    }
  }
  auto store = RocksStore::Open(dir);
  ASSERT_TRUE(store.ok()) << store.status();
  std::vector<std::string> tokens;
  ASSERT_TRUE((*store)
                  ->ScanTokens([&](const deja::v1::TokenRecord& r) {
                    tokens.push_back(r.token().id() + "/" + r.secret_sha256());
                  })
                  .ok());
  EXPECT_EQ(tokens, std::vector<std::string>{"t7/" + std::string(32, 'h')});
  std::vector<uint64_t> seqs;
  ASSERT_TRUE((*store)
                  ->ScanAudit([&](const deja::v1::AuditEvent& e) {
                    seqs.push_back(e.seq());
                    return true;
                  })
                  .ok());
  EXPECT_EQ(seqs, (std::vector<uint64_t>{4, 3}));  // newest first, the oldest dropped
  store->reset();
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace deja
