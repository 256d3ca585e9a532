// RocksStore: the scheduler's durable state in RocksDB (schema in schema.h).
//
// Durability: Commit writes one WriteBatch. With `durable` (the default) it
// is written with WriteOptions::sync = true, so the batch, and every batch
// written before it, survives a crash of the process or the machine. The
// scheduler commits once per event-loop round (group commit) and only then
// answers clients or sends to workers. A round that tells nobody anything
// (a job moving to RUNNING, say) is written without the sync: it survives a
// crash of the process, and the next durable commit makes it durable too
// (RocksDB syncs the whole WAL up to that batch); a machine crash before then
// loses only state the workers report again when they reconnect.
//
// Thread-safety: Load must run before any Commit; Commit is called from one
// thread (the event loop). No method is ever called from a gRPC reaction.
#ifndef DEJA_SCHEDULER_STORE_ROCKS_STORE_H_
#define DEJA_SCHEDULER_STORE_ROCKS_STORE_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "deja/v1/job.pb.h"
#include "deja/v1/scheduler.pb.h"
#include "scheduler/core/scheduler_core.h"
#include "scheduler/store/schema.h"

namespace rocksdb {
class DB;
class ColumnFamilyHandle;
}  // namespace rocksdb

namespace deja {

class RocksStore {
 public:
  // Opens or creates the store in `dir`. FAILED_PRECONDITION when it was
  // written with another schema version; INTERNAL on RocksDB errors.
  static absl::StatusOr<std::unique_ptr<RocksStore>> Open(const std::string& dir);
  ~RocksStore();

  // Every stored job (in submission order) and memo entry. DATA_LOSS when a
  // record does not parse.
  absl::Status Load(std::vector<deja::v1::Job>* jobs, std::vector<deja::v1::MemoEntry>* memo,
                    std::vector<deja::v1::ProjectSettings>* projects,
                    std::vector<deja::v1::Pipeline>* pipelines);

  // Persists the records of `fx` atomically; durably unless `durable` is
  // false (see above).
  absl::Status Commit(const Effects& fx, bool durable = true);

  // The database and the "blobs" column family, for the content store's
  // metadata (RocksDB is thread-safe; blob records are written from the
  // content store's threads, never from the event loop).
  rocksdb::DB* db() const { return db_.get(); }
  rocksdb::ColumnFamilyHandle* blobs_family() const { return handles_[schema::kBlobs]; }

 private:
  RocksStore() = default;

  std::unique_ptr<rocksdb::DB> db_;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;  // ColumnFamily order
};

}  // namespace deja

#endif  // DEJA_SCHEDULER_STORE_ROCKS_STORE_H_
