#include "scheduler/store/rocks_store.h"

#include <rocksdb/cache.h>
#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/options.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/job_state.h"
#include "common/manifest.h"
#include "scheduler/core/keys.h"
#include "scheduler/store/schema.h"

namespace deja {
namespace {

absl::Status FromRocks(const rocksdb::Status& s, const std::string& what) {
  if (s.ok()) return absl::OkStatus();
  if (s.IsNotFound()) return absl::NotFoundError(what);
  return absl::InternalError(absl::StrCat(what, ": ", s.ToString()));
}

template <typename Proto>
absl::Status Parse(const rocksdb::Slice& bytes, Proto* out, const char* what) {
  if (!out->ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return absl::DataLossError(absl::StrCat("a ", what, " record in the store does not parse"));
  }
  return absl::OkStatus();
}

// Scans read every record once: they must not evict the point lookups'
// working set from the block cache.
rocksdb::ReadOptions ScanOptions() {
  rocksdb::ReadOptions options;
  options.fill_cache = false;
  options.readahead_size = 2 << 20;
  return options;
}

rocksdb::ColumnFamilyOptions FamilyOptions(const std::shared_ptr<rocksdb::Cache>& cache,
                                           int family) {
  rocksdb::BlockBasedTableOptions table;
  table.block_cache = cache;
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  rocksdb::ColumnFamilyOptions options;
  if (family == schema::kMemo || family == schema::kRequests) {
    // Point-read on every submit, mostly missing the block cache at scale:
    // small uncompressed blocks with a hash index make a miss one short
    // read from the page cache, with nothing to decompress.
    table.block_size = 2 << 10;
    table.data_block_index_type = rocksdb::BlockBasedTableOptions::kDataBlockBinaryAndHash;
    options.compression = rocksdb::kNoCompression;
  }
  options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  // Memtables: the default (64 MB each, per family) would let a replayed
  // WAL take hundreds of MB; the database-wide cap below bounds them all.
  options.write_buffer_size = 8 << 20;
  options.max_write_buffer_number = 2;
  return options;
}

// An upgrade's batches: written durably once `batch` holds `size` updates
// (or any, with `force`), then emptied.
absl::Status WriteUpgradeBatch(rocksdb::DB* db, rocksdb::WriteBatch* batch, size_t size, bool force,
                               const std::string& what) {
  if (batch->Count() == 0 || (!force && batch->Count() < size)) return absl::OkStatus();
  rocksdb::WriteOptions sync;
  sync.sync = true;
  absl::Status s = FromRocks(db->Write(sync, batch), what);
  batch->Clear();
  return s;
}

}  // namespace

absl::StatusOr<std::unique_ptr<RocksStore>> RocksStore::Open(const std::string& dir) {
  rocksdb::DBOptions options;
  options.create_if_missing = true;
  options.create_missing_column_families = true;
  options.db_write_buffer_size = 32 << 20;
  options.max_open_files = 512;
  std::shared_ptr<rocksdb::Cache> cache = rocksdb::NewLRUCache(kBlockCacheBytes);
  std::vector<rocksdb::ColumnFamilyDescriptor> families;
  const auto& names = schema::ColumnFamilyNames();
  for (size_t i = 0; i < names.size(); ++i) {
    families.emplace_back(names[i], FamilyOptions(cache, static_cast<int>(i)));
  }
  // A store from before blob grants gets them from its jobs (below).
  std::vector<std::string> existing;
  const bool needs_grants =
      rocksdb::DB::ListColumnFamilies(options, dir, &existing).ok() &&
      std::find(existing.begin(), existing.end(), names[schema::kBlobProjects]) == existing.end();
  std::unique_ptr<RocksStore> store(new RocksStore());
  rocksdb::DB* db = nullptr;
  if (auto s = FromRocks(rocksdb::DB::Open(options, dir, families, &store->handles_, &db),
                         "open store " + dir);
      !s.ok()) {
    return s;
  }
  store->db_.reset(db);
  if (needs_grants) {
    if (absl::Status s = store->GrantFromJobs(); !s.ok()) return s;
  }

  auto* settings = store->handles_[schema::kSettings];
  std::string version;
  rocksdb::Status got =
      db->Get(rocksdb::ReadOptions(), settings, schema::kSchemaVersionKey, &version);
  const std::string want = std::to_string(schema::kSchemaVersion);
  if (got.ok() && version == "1") {
    if (absl::Status s = store->UpgradeFromV1(); !s.ok()) return s;
    rocksdb::WriteOptions sync;
    sync.sync = true;
    version = "2";
    if (auto s = FromRocks(db->Put(sync, settings, schema::kSchemaVersionKey, version),
                           "write schema version");
        !s.ok()) {
      return s;
    }
  }
  if (got.ok() && version == "2") {
    // The manifests move into the content store: MoveManifestsOut, which
    // writes the new marker.
    store->manifests_inline_ = true;
    return store;
  }
  if (got.IsNotFound()) {
    rocksdb::WriteOptions sync;
    sync.sync = true;
    if (auto s = FromRocks(db->Put(sync, settings, schema::kSchemaVersionKey, want),
                           "write schema version");
        !s.ok()) {
      return s;
    }
  } else if (!got.ok()) {
    return FromRocks(got, "read schema version");
  } else if (version != want) {
    return absl::FailedPreconditionError(
        absl::StrCat("store ", dir, " has schema version ", version, "; this build reads ", want));
  }
  return store;
}

absl::Status RocksStore::UpgradeFromV1() {
  rocksdb::WriteBatch batch;
  auto flush = [&](bool force) {
    return WriteUpgradeBatch(db_.get(), &batch, 10'000, force, "upgrade the store to schema 2");
  };
  {
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ScanOptions(), handles_[schema::kMemo]));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      deja::v1::MemoEntry entry;
      if (absl::Status s = Parse(it->value(), &entry, "memo"); !s.ok()) return s;
      const std::string id = MemoId(entry.project(), entry.job_hash());
      if (it->key() == id) continue;  // an interrupted upgrade re-keyed it already
      batch.Delete(handles_[schema::kMemo], it->key());
      batch.Put(handles_[schema::kMemo], id, it->value());
      if (absl::Status s = flush(false); !s.ok()) return s;
    }
    if (auto s = FromRocks(it->status(), "scan memo"); !s.ok()) return s;
  }
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ScanOptions(), handles_[schema::kJobs]));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    deja::v1::Job job;
    if (absl::Status s = Parse(it->value(), &job, "job"); !s.ok()) return s;
    if (job.spec().request_id().empty()) continue;
    batch.Put(handles_[schema::kRequests],
              RequestKey(job.spec().project(), job.spec().request_id()), it->key());
    if (absl::Status s = flush(false); !s.ok()) return s;
  }
  if (auto s = FromRocks(it->status(), "scan jobs"); !s.ok()) return s;
  return flush(true);
}

absl::Status RocksStore::MoveManifestsOut(
    const std::function<absl::Status(absl::string_view)>& put_blob) {
  if (!manifests_inline_) return absl::OkStatus();
  rocksdb::WriteBatch batch;
  auto flush = [&](bool force) {
    return WriteUpgradeBatch(db_.get(), &batch, 1'000, force, "upgrade the store to schema 3");
  };
  // A manifest goes to the content store (durably) before the record that
  // names it is rewritten without it: an interruption leaves records that
  // still hold theirs, and the upgrade is simply redone.
  std::string bytes;
  auto move_out = [&](const deja::v1::Manifest& inline_manifest, deja::v1::ManifestRef* ref) {
    *ref = SerializeManifest(inline_manifest, &bytes);
    return put_blob(bytes);
  };
  std::string value;
  for (int family : {schema::kJobs, schema::kMemo}) {
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ScanOptions(), handles_[family]));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      if (family == schema::kJobs) {
        deja::v1::Job job;
        if (absl::Status s = Parse(it->value(), &job, "job"); !s.ok()) return s;
        if (!job.has_legacy_manifest()) continue;
        if (absl::Status s = move_out(job.legacy_manifest(), job.mutable_manifest()); !s.ok()) {
          return s;
        }
        job.clear_legacy_manifest();
        job.SerializeToString(&value);
      } else {
        deja::v1::MemoEntry entry;
        if (absl::Status s = Parse(it->value(), &entry, "memo"); !s.ok()) return s;
        if (!entry.has_legacy_manifest()) continue;
        if (absl::Status s = move_out(entry.legacy_manifest(), entry.mutable_manifest()); !s.ok()) {
          return s;
        }
        entry.clear_legacy_manifest();
        entry.SerializeToString(&value);
      }
      batch.Put(handles_[family], it->key(), value);
      if (absl::Status s = flush(false); !s.ok()) return s;
    }
    if (auto s = FromRocks(it->status(), "scan for inline manifests"); !s.ok()) return s;
  }
  batch.Put(handles_[schema::kSettings], schema::kSchemaVersionKey,
            std::to_string(schema::kSchemaVersion));
  if (absl::Status s = flush(true); !s.ok()) return s;
  manifests_inline_ = false;
  return absl::OkStatus();
}

RocksStore::~RocksStore() {
  if (db_ == nullptr) return;
  for (auto* handle : handles_) db_->DestroyColumnFamilyHandle(handle);
  db_->Close();
}

absl::StatusOr<deja::v1::Job> RocksStore::ReadJob(uint64_t seq) const {
  std::string value;
  if (auto s = FromRocks(
          db_->Get(rocksdb::ReadOptions(), handles_[schema::kJobs], schema::JobKey(seq), &value),
          absl::StrCat("job ", JobIdFromSeq(seq), " not found"));
      !s.ok()) {
    return s;
  }
  deja::v1::Job job;
  if (absl::Status s = Parse(value, &job, "job"); !s.ok()) return s;
  return job;
}

absl::Status RocksStore::ScanJobs(uint64_t seq, bool backward,
                                  const std::function<bool(deja::v1::Job&)>& visit) const {
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ScanOptions(), handles_[schema::kJobs]));
  if (backward) {
    if (seq == 0) {
      it->SeekToLast();
    } else {
      it->SeekForPrev(schema::JobKey(seq));
    }
  } else {
    it->Seek(schema::JobKey(seq));
  }
  for (; it->Valid(); backward ? it->Prev() : it->Next()) {
    deja::v1::Job job;
    if (absl::Status s = Parse(it->value(), &job, "job"); !s.ok()) return s;
    if (!visit(job)) return absl::OkStatus();
  }
  return FromRocks(it->status(), "scan jobs");
}

absl::StatusOr<deja::v1::MemoEntry> RocksStore::ReadMemo(const std::string& memo_id) const {
  std::string value;
  if (auto s = FromRocks(db_->Get(rocksdb::ReadOptions(), handles_[schema::kMemo], memo_id, &value),
                         "memo entry not found");
      !s.ok()) {
    return s;
  }
  deja::v1::MemoEntry entry;
  if (absl::Status s = Parse(value, &entry, "memo"); !s.ok()) return s;
  return entry;
}

absl::Status RocksStore::ScanMemo(const std::function<bool(deja::v1::MemoEntry&)>& visit) const {
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ScanOptions(), handles_[schema::kMemo]));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    deja::v1::MemoEntry entry;
    if (absl::Status s = Parse(it->value(), &entry, "memo"); !s.ok()) return s;
    if (!visit(entry)) return absl::OkStatus();
  }
  return FromRocks(it->status(), "scan memo");
}

absl::StatusOr<uint64_t> RocksStore::ReadRequest(const std::string& request_key) const {
  std::string value;
  if (auto s = FromRocks(
          db_->Get(rocksdb::ReadOptions(), handles_[schema::kRequests], request_key, &value),
          "request id not found");
      !s.ok()) {
    return s;
  }
  uint64_t seq = schema::SeqFromKey(value);
  if (seq == 0) return absl::DataLossError("a request record in the store is malformed");
  return seq;
}

absl::Status RocksStore::ScanProjects(
    const std::function<void(deja::v1::ProjectSettings&)>& visit) const {
  std::unique_ptr<rocksdb::Iterator> it(
      db_->NewIterator(ScanOptions(), handles_[schema::kSettings]));
  for (it->Seek(schema::kProjectPrefix);
       it->Valid() && it->key().starts_with(schema::kProjectPrefix); it->Next()) {
    deja::v1::ProjectSettings settings;
    if (absl::Status s = Parse(it->value(), &settings, "project settings"); !s.ok()) return s;
    visit(settings);
  }
  return FromRocks(it->status(), "scan settings");
}

absl::Status RocksStore::ScanImages(
    const std::function<void(deja::v1::ImageRecord&)>& visit) const {
  std::unique_ptr<rocksdb::Iterator> it(
      db_->NewIterator(ScanOptions(), handles_[schema::kSettings]));
  for (it->Seek(schema::kImagePrefix); it->Valid() && it->key().starts_with(schema::kImagePrefix);
       it->Next()) {
    deja::v1::ImageRecord record;
    if (absl::Status s = Parse(it->value(), &record, "image record"); !s.ok()) return s;
    visit(record);
  }
  return FromRocks(it->status(), "scan images");
}

absl::Status RocksStore::ScanPipelines(
    const std::function<void(deja::v1::Pipeline&)>& visit) const {
  std::unique_ptr<rocksdb::Iterator> it(
      db_->NewIterator(ScanOptions(), handles_[schema::kPipelines]));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    deja::v1::Pipeline pipeline;
    if (absl::Status s = Parse(it->value(), &pipeline, "pipeline"); !s.ok()) return s;
    visit(pipeline);
  }
  return FromRocks(it->status(), "scan pipelines");
}

absl::StatusOr<deja::v1::BlobMeta> RocksStore::GetBlobMeta(const std::string& digest) const {
  std::string value;
  if (auto s = FromRocks(db_->Get(rocksdb::ReadOptions(), handles_[schema::kBlobs], digest, &value),
                         "read blob record " + digest);
      !s.ok()) {
    return s;
  }
  deja::v1::BlobMeta meta;
  if (!meta.ParseFromString(value)) {
    return absl::DataLossError(absl::StrCat("blob record ", digest, " does not parse"));
  }
  return meta;
}

absl::Status RocksStore::PutBlobMeta(const std::string& digest, const deja::v1::BlobMeta& meta) {
  rocksdb::WriteOptions sync;
  sync.sync = true;
  return FromRocks(db_->Put(sync, handles_[schema::kBlobs], digest, meta.SerializeAsString()),
                   "write blob record " + digest);
}

absl::Status RocksStore::PutBlobMetaLazily(const std::string& digest,
                                           const deja::v1::BlobMeta& meta) {
  return FromRocks(
      db_->Put(rocksdb::WriteOptions(), handles_[schema::kBlobs], digest, meta.SerializeAsString()),
      "write blob record " + digest);
}

absl::Status RocksStore::DeleteBlobMeta(const std::string& digest) {
  rocksdb::WriteOptions sync;
  sync.sync = true;
  rocksdb::WriteBatch batch;
  batch.Delete(handles_[schema::kBlobs], digest);
  // Its grants: "<digest>/" up to "<digest>0" ('0' follows '/').
  batch.DeleteRange(handles_[schema::kBlobProjects], digest + "/", digest + "0");
  return FromRocks(db_->Write(sync, &batch), "delete blob record " + digest);
}

absl::Status RocksStore::ScanBlobMetas(
    const std::function<bool(const std::string& digest, const deja::v1::BlobMeta& meta)>& visit)
    const {
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ScanOptions(), handles_[schema::kBlobs]));
  deja::v1::BlobMeta meta;
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    if (absl::Status s = Parse(it->value(), &meta, "blob record"); !s.ok()) return s;
    if (!visit(it->key().ToString(), meta)) break;
  }
  return FromRocks(it->status(), "scan blob records");
}

absl::Status RocksStore::PutToken(const deja::v1::TokenRecord& record) {
  rocksdb::WriteOptions sync;
  sync.sync = true;
  return FromRocks(
      db_->Put(sync, handles_[schema::kTokens], record.token().id(), record.SerializeAsString()),
      "write token " + record.token().id());
}

absl::Status RocksStore::ScanTokens(
    const std::function<void(const deja::v1::TokenRecord&)>& visit) const {
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ScanOptions(), handles_[schema::kTokens]));
  deja::v1::TokenRecord record;
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    if (absl::Status s = Parse(it->value(), &record, "token record"); !s.ok()) return s;
    visit(record);
  }
  return FromRocks(it->status(), "scan tokens");
}

absl::Status RocksStore::PutEnrollment(const deja::v1::WorkerEnrollment& enrollment) {
  rocksdb::WriteOptions sync;
  sync.sync = true;
  return FromRocks(db_->Put(sync, handles_[schema::kWorkers], enrollment.worker_id(),
                            enrollment.SerializeAsString()),
                   "write the enrollment of worker " + enrollment.worker_id());
}

absl::Status RocksStore::ScanEnrollments(
    const std::function<void(const deja::v1::WorkerEnrollment&)>& visit) const {
  std::unique_ptr<rocksdb::Iterator> it(
      db_->NewIterator(ScanOptions(), handles_[schema::kWorkers]));
  deja::v1::WorkerEnrollment enrollment;
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    if (absl::Status s = Parse(it->value(), &enrollment, "worker enrollment"); !s.ok()) return s;
    visit(enrollment);
  }
  return FromRocks(it->status(), "scan worker enrollments");
}

absl::Status RocksStore::AppendAudit(const deja::v1::AuditEvent& event, uint64_t drop_seq,
                                     bool durable) {
  rocksdb::WriteBatch batch;
  rocksdb::ColumnFamilyHandle* audit = handles_[schema::kAudit];
  if (auto s = FromRocks(batch.Put(audit, schema::AuditKey(event.seq()), event.SerializeAsString()),
                         "batch an audit event");
      !s.ok()) {
    return s;
  }
  if (drop_seq != 0) {
    if (auto s = FromRocks(batch.Delete(audit, schema::AuditKey(drop_seq)), "batch an audit drop");
        !s.ok()) {
      return s;
    }
  }
  rocksdb::WriteOptions options;
  options.sync = durable;
  return FromRocks(db_->Write(options, &batch), "write an audit event");
}

absl::Status RocksStore::ScanAudit(
    const std::function<bool(const deja::v1::AuditEvent&)>& visit) const {
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ScanOptions(), handles_[schema::kAudit]));
  deja::v1::AuditEvent event;
  for (it->SeekToLast(); it->Valid(); it->Prev()) {
    if (absl::Status s = Parse(it->value(), &event, "audit event"); !s.ok()) return s;
    if (!visit(event)) break;
  }
  return FromRocks(it->status(), "scan the audit log");
}

uint64_t RocksStore::ApproximateBytes() const {
  uint64_t files = 0;
  uint64_t memtables = 0;
  db_->GetAggregatedIntProperty(rocksdb::DB::Properties::kTotalSstFilesSize, &files);
  db_->GetAggregatedIntProperty(rocksdb::DB::Properties::kCurSizeAllMemTables, &memtables);
  return files + memtables;
}

absl::Status RocksStore::CompactAll() {
  rocksdb::CompactRangeOptions options;
  options.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForceOptimized;
  for (auto* handle : handles_) {
    if (auto s = FromRocks(db_->CompactRange(options, handle, nullptr, nullptr), "compact");
        !s.ok()) {
      return s;
    }
  }
  return absl::OkStatus();
}

void RocksStore::PutGrants(const deja::v1::Job& job, rocksdb::WriteBatch* batch) {
  if (!IsTerminal(job.state())) return;
  const std::string& project = job.spec().project();
  auto grant = [&](const std::string& digest) {
    if (!digest.empty()) {
      batch->Put(handles_[schema::kBlobProjects], schema::BlobGrantKey(digest, project), "");
    }
  };
  for (const auto& input : job.spec().inputs()) grant(input.digest());
  for (const auto& output : job.outputs()) grant(output.digest());
  grant(job.manifest().digest());
}

absl::Status RocksStore::GrantFromJobs() {
  rocksdb::WriteBatch batch;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ScanOptions(), handles_[schema::kJobs]));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    deja::v1::Job job;
    if (absl::Status s = Parse(it->value(), &job, "job"); !s.ok()) return s;
    PutGrants(job, &batch);
    if (absl::Status s =
            WriteUpgradeBatch(db_.get(), &batch, 10'000, false, "grant projects their jobs' blobs");
        !s.ok()) {
      return s;
    }
  }
  if (auto s = FromRocks(it->status(), "scan jobs"); !s.ok()) return s;
  return WriteUpgradeBatch(db_.get(), &batch, 0, true, "grant projects their jobs' blobs");
}

absl::Status RocksStore::GrantBlob(const std::string& digest, const std::string& project) {
  rocksdb::WriteOptions sync;
  sync.sync = true;
  return FromRocks(
      db_->Put(sync, handles_[schema::kBlobProjects], schema::BlobGrantKey(digest, project), ""),
      "grant blob " + digest);
}

bool RocksStore::BlobGranted(const std::string& digest, const std::string& project) const {
  std::string value;
  return db_
      ->Get(rocksdb::ReadOptions(), handles_[schema::kBlobProjects],
            schema::BlobGrantKey(digest, project), &value)
      .ok();
}

absl::Status RocksStore::Commit(const Effects& fx, bool durable) {
  if (fx.jobs.empty() && fx.memo_puts.empty() && fx.memo_deletes.empty() && fx.projects.empty() &&
      fx.pipelines.empty() && fx.requests.empty() && fx.images.empty()) {
    return absl::OkStatus();
  }
  rocksdb::WriteBatch batch;
  for (const auto& [id, job] : fx.jobs) {
    batch.Put(handles_[schema::kJobs], schema::JobKey(ParseJobId(id)), job.SerializeAsString());
    PutGrants(job, &batch);
  }
  for (const auto& [key, id] : fx.requests) {
    batch.Put(handles_[schema::kRequests], key, schema::JobKey(ParseJobId(id)));
  }
  for (const auto& key : fx.memo_deletes) batch.Delete(handles_[schema::kMemo], key);
  for (const auto& [key, entry] : fx.memo_puts) {
    batch.Put(handles_[schema::kMemo], key, entry.SerializeAsString());
  }
  for (const auto& [id, pipeline] : fx.pipelines) {
    batch.Put(handles_[schema::kPipelines], schema::PipelineKey(ParsePipelineId(id)),
              pipeline.SerializeAsString());
  }
  for (const auto& [name, settings] : fx.projects) {
    batch.Put(handles_[schema::kSettings], schema::kProjectPrefix + name,
              settings.SerializeAsString());
  }
  for (const auto& [name, record] : fx.images) {
    batch.Put(handles_[schema::kSettings], schema::kImagePrefix + name, record.SerializeAsString());
  }
  rocksdb::WriteOptions options;
  options.sync = durable;
  return FromRocks(db_->Write(options, &batch), "commit");
}

}  // namespace deja
