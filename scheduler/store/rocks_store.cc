#include "scheduler/store/rocks_store.h"

#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/write_batch.h>

#include "absl/strings/str_cat.h"
#include "scheduler/store/schema.h"

namespace deja {
namespace {

absl::Status FromRocks(const rocksdb::Status& s, const std::string& what) {
  if (s.ok()) return absl::OkStatus();
  return absl::InternalError(absl::StrCat(what, ": ", s.ToString()));
}

}  // namespace

absl::StatusOr<std::unique_ptr<RocksStore>> RocksStore::Open(const std::string& dir) {
  rocksdb::DBOptions options;
  options.create_if_missing = true;
  options.create_missing_column_families = true;
  std::vector<rocksdb::ColumnFamilyDescriptor> families;
  for (const auto& name : schema::ColumnFamilyNames()) {
    families.emplace_back(name, rocksdb::ColumnFamilyOptions());
  }
  std::unique_ptr<RocksStore> store(new RocksStore());
  rocksdb::DB* db = nullptr;
  if (auto s = FromRocks(rocksdb::DB::Open(options, dir, families, &store->handles_, &db),
                         "open store " + dir);
      !s.ok()) {
    return s;
  }
  store->db_.reset(db);

  auto* settings = store->handles_[schema::kSettings];
  std::string version;
  rocksdb::Status got = db->Get(rocksdb::ReadOptions(), settings, schema::kSchemaVersionKey,
                                &version);
  const std::string want = std::to_string(schema::kSchemaVersion);
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
    return absl::FailedPreconditionError(absl::StrCat("store ", dir, " has schema version ",
                                                      version, "; this build reads ", want));
  }
  return store;
}

RocksStore::~RocksStore() {
  if (db_ == nullptr) return;
  for (auto* handle : handles_) db_->DestroyColumnFamilyHandle(handle);
  db_->Close();
}

absl::Status RocksStore::Load(std::vector<deja::v1::Job>* jobs,
                              std::vector<deja::v1::MemoEntry>* memo,
                              std::vector<deja::v1::ProjectSettings>* projects,
                              std::vector<deja::v1::Pipeline>* pipelines) {
  {
    std::unique_ptr<rocksdb::Iterator> it(
        db_->NewIterator(rocksdb::ReadOptions(), handles_[schema::kPipelines]));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      deja::v1::Pipeline pipeline;
      if (!pipeline.ParseFromArray(it->value().data(), static_cast<int>(it->value().size()))) {
        return absl::DataLossError("a pipeline record in the store does not parse");
      }
      pipelines->push_back(std::move(pipeline));
    }
    if (auto s = FromRocks(it->status(), "scan pipelines"); !s.ok()) return s;
  }
  {
    std::unique_ptr<rocksdb::Iterator> it(
        db_->NewIterator(rocksdb::ReadOptions(), handles_[schema::kSettings]));
    for (it->Seek(schema::kProjectPrefix);
         it->Valid() && it->key().starts_with(schema::kProjectPrefix); it->Next()) {
      deja::v1::ProjectSettings settings;
      if (!settings.ParseFromArray(it->value().data(), static_cast<int>(it->value().size()))) {
        return absl::DataLossError("a project settings record in the store does not parse");
      }
      projects->push_back(std::move(settings));
    }
    if (auto s = FromRocks(it->status(), "scan settings"); !s.ok()) return s;
  }
  {
    std::unique_ptr<rocksdb::Iterator> it(
        db_->NewIterator(rocksdb::ReadOptions(), handles_[schema::kJobs]));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      deja::v1::Job job;
      if (!job.ParseFromArray(it->value().data(), static_cast<int>(it->value().size()))) {
        return absl::DataLossError("a job record in the store does not parse");
      }
      jobs->push_back(std::move(job));
    }
    if (auto s = FromRocks(it->status(), "scan jobs"); !s.ok()) return s;
  }
  std::unique_ptr<rocksdb::Iterator> it(
      db_->NewIterator(rocksdb::ReadOptions(), handles_[schema::kMemo]));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    deja::v1::MemoEntry entry;
    if (!entry.ParseFromArray(it->value().data(), static_cast<int>(it->value().size()))) {
      return absl::DataLossError("a memo record in the store does not parse");
    }
    memo->push_back(std::move(entry));
  }
  return FromRocks(it->status(), "scan memo");
}

absl::Status RocksStore::Commit(const Effects& fx, bool durable) {
  if (fx.jobs.empty() && fx.memo_puts.empty() && fx.memo_deletes.empty() &&
      fx.projects.empty() && fx.pipelines.empty()) {
    return absl::OkStatus();
  }
  rocksdb::WriteBatch batch;
  for (const auto& [id, job] : fx.jobs) {
    batch.Put(handles_[schema::kJobs], schema::JobKey(ParseJobId(id)), job.SerializeAsString());
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
  rocksdb::WriteOptions options;
  options.sync = durable;
  return FromRocks(db_->Write(options, &batch), "commit");
}

}  // namespace deja
