// StoreReader: what SchedulerCore reads back from the durable store, so that
// it need not keep every record in memory (scheduler/core stays free of
// RocksDB: the store adapter implements this, tests use an in-memory fake).
//
// Contract: every method sees exactly what was committed (the caller commits
// an Effects value before SchedulerCore::Committed is told about it); reads
// are synchronous point lookups or scans, done on the scheduler's event loop.
//
// Errors: NOT_FOUND when a point lookup finds no record; DATA_LOSS when a
// stored record does not parse; INTERNAL for I/O errors. Scans stop at the
// first error and return it.
//
// Thread-safety: implementations are called from one thread at a time.
#ifndef DEJA_SCHEDULER_CORE_STORE_READER_H_
#define DEJA_SCHEDULER_CORE_STORE_READER_H_

#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "deja/v1/job.pb.h"
#include "deja/v1/pipeline.pb.h"
#include "deja/v1/scheduler.pb.h"

namespace deja {

class StoreReader {
 public:
  virtual ~StoreReader() = default;

  // The committed job with sequence number `seq` ("j<seq>").
  virtual absl::StatusOr<deja::v1::Job> ReadJob(uint64_t seq) const = 0;
  // Visits committed jobs in sequence order: ascending from `seq` (0: the
  // first), or descending from `seq` (0: the last) when `backward`, until
  // `visit` returns false.
  virtual absl::Status ScanJobs(uint64_t seq, bool backward,
                                const std::function<bool(deja::v1::Job&)>& visit) const = 0;

  // The committed memo entry with this id (MemoId(project, job_hash)).
  virtual absl::StatusOr<deja::v1::MemoEntry> ReadMemo(const std::string& memo_id) const = 0;
  // Visits every committed memo entry, in no particular order.
  virtual absl::Status ScanMemo(const std::function<bool(deja::v1::MemoEntry&)>& visit) const = 0;

  // The sequence number of the job created for a request key
  // (RequestKey(project, request_id), scheduler/core/keys.h).
  virtual absl::StatusOr<uint64_t> ReadRequest(const std::string& request_key) const = 0;

  // Every project's settings and every pipeline, for SchedulerCore::LoadFromStore.
  virtual absl::Status ScanProjects(
      const std::function<void(deja::v1::ProjectSettings&)>& visit) const = 0;
  virtual absl::Status ScanPipelines(
      const std::function<void(deja::v1::Pipeline&)>& visit) const = 0;
  // Every image pushed (deja image push), for the same.
  virtual absl::Status ScanImages(
      const std::function<void(deja::v1::ImageRecord&)>& visit) const = 0;
};

}  // namespace deja

#endif  // DEJA_SCHEDULER_CORE_STORE_READER_H_
