// RocksStore: the scheduler's durable state in RocksDB (schema in schema.h):
// the StoreReader SchedulerCore reads committed records back through, and
// the BlobMetadataStore of the content store. Nothing else touches the
// database: no handle to it leaves this class.
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
// Memory: RocksDB's own use is bounded: one LRU block cache of
// kBlockCacheBytes shared by every column family, small memtables, and a
// Bloom filter per table (10 bits a key) so that a point lookup of an absent
// key (a new request id) rarely reads a data block. The memo and requests
// families, read on every submit, use small uncompressed blocks.
//
// Thread-safety: Commit is called from one thread (the event loop), never
// from a gRPC reaction; so are the StoreReader methods, except the scans,
// which the content store's collector also runs on its own thread (RocksDB
// iterators are thread-safe and see a consistent snapshot). The
// BlobMetadataStore methods are thread-safe (RocksDB is): the content store
// reads and writes blob records from gRPC's sync-handler threads.
#ifndef DEJA_SCHEDULER_STORE_ROCKS_STORE_H_
#define DEJA_SCHEDULER_STORE_ROCKS_STORE_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "deja/v1/content.pb.h"
#include "deja/v1/job.pb.h"
#include "deja/v1/scheduler.pb.h"
#include "scheduler/access/access_store.h"
#include "scheduler/content/blob_metadata_store.h"
#include "scheduler/core/effects.h"
#include "scheduler/core/store_reader.h"
#include "scheduler/store/schema.h"

namespace rocksdb {
class DB;
class WriteBatch;
class ColumnFamilyHandle;
}  // namespace rocksdb

namespace deja {

class RocksStore final : public StoreReader, public BlobMetadataStore, public AccessStore {
 public:
  static constexpr size_t kBlockCacheBytes = 64 << 20;

  // Opens or creates the store in `dir`; upgrades a version-1 store to 2 (see
  // schema.h), and leaves a version-2 one to MoveManifestsOut. FAILED_PRECONDITION when it was
  // written with another schema version; INTERNAL on RocksDB errors; DATA_LOSS when an upgrade
  // meets a record that does not parse.
  static absl::StatusOr<std::unique_ptr<RocksStore>> Open(const std::string& dir);
  ~RocksStore() override;

  // Persists the records of `fx` atomically; durably unless `durable` is
  // false (see above). `fx.blob_puts` are not records: the caller writes
  // them to the content store first.
  absl::Status Commit(const Effects& fx, bool durable = true);

  // True when the store was written with schema 2, whose job and memo
  // records hold their manifests: MoveManifestsOut must run before the
  // store is used.
  bool manifests_inline() const { return manifests_inline_; }
  // Schema 2 -> 3: stores each inline manifest with `put_blob` (the content
  // store's durable Put), replaces it by its ManifestRef, then writes the
  // new version marker. Resumable: an interrupted run is redone at the next
  // open. OK at once when there is nothing to move.
  absl::Status MoveManifestsOut(const std::function<absl::Status(absl::string_view)>& put_blob);

  // Compacts every column family fully and waits for it: a store written in
  // bulk (a benchmark, an import) then reads as one that grew over time.
  // Slow; never called by the scheduler. INTERNAL on RocksDB errors.
  absl::Status CompactAll();
  // The store's size on disk (SST files) and in memory (memtables), over
  // every column family; for metrics.
  uint64_t ApproximateBytes() const;

  // StoreReader.
  absl::StatusOr<deja::v1::Job> ReadJob(uint64_t seq) const override;
  absl::Status ScanJobs(uint64_t seq, bool backward,
                        const std::function<bool(deja::v1::Job&)>& visit) const override;
  absl::StatusOr<deja::v1::MemoEntry> ReadMemo(const std::string& memo_id) const override;
  absl::Status ScanMemo(const std::function<bool(deja::v1::MemoEntry&)>& visit) const override;
  absl::StatusOr<uint64_t> ReadRequest(const std::string& request_key) const override;
  absl::Status ScanProjects(
      const std::function<void(deja::v1::ProjectSettings&)>& visit) const override;
  absl::Status ScanImages(const std::function<void(deja::v1::ImageRecord&)>& visit) const override;
  absl::Status ScanPipelines(const std::function<void(deja::v1::Pipeline&)>& visit) const override;

  // BlobMetadataStore ("blobs" family; thread-safe).
  absl::StatusOr<deja::v1::BlobMeta> GetBlobMeta(const std::string& digest) const override;
  absl::Status PutBlobMeta(const std::string& digest, const deja::v1::BlobMeta& meta) override;
  absl::Status PutBlobMetaLazily(const std::string& digest,
                                 const deja::v1::BlobMeta& meta) override;
  absl::Status DeleteBlobMeta(const std::string& digest) override;  // and its grants
  absl::Status GrantBlob(const std::string& digest, const std::string& project) override;
  bool BlobGranted(const std::string& digest, const std::string& project) const override;
  absl::Status ScanBlobMetas(
      const std::function<bool(const std::string& digest, const deja::v1::BlobMeta& meta)>& visit)
      const override;

  // AccessStore ("tokens", "workers" and "audit" families; thread-safe).
  absl::Status PutToken(const deja::v1::TokenRecord& record) override;
  absl::Status ScanTokens(
      const std::function<void(const deja::v1::TokenRecord&)>& visit) const override;
  absl::Status PutEnrollment(const deja::v1::WorkerEnrollment& enrollment) override;
  absl::Status ScanEnrollments(
      const std::function<void(const deja::v1::WorkerEnrollment&)>& visit) const override;
  absl::Status AppendAudit(const deja::v1::AuditEvent& event, uint64_t drop_seq,
                           bool durable) override;
  absl::Status ScanAudit(
      const std::function<bool(const deja::v1::AuditEvent&)>& visit) const override;

 private:
  RocksStore() = default;
  // Schema version 1 -> 2 (schema.h).
  absl::Status UpgradeFromV1();
  // Grants each ended job's project its inputs, outputs and manifest
  // (BlobGrantKey): at every commit, and once from every stored job when
  // the store predates blob_projects.
  void PutGrants(const deja::v1::Job& job, rocksdb::WriteBatch* batch);
  absl::Status GrantFromJobs();

  std::unique_ptr<rocksdb::DB> db_;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;  // ColumnFamily order
  bool manifests_inline_ = false;
};

}  // namespace deja

#endif  // DEJA_SCHEDULER_STORE_ROCKS_STORE_H_
