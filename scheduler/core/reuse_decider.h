// ReuseDecider: whether a job is served from an earlier success, and from
// which — the memo entry of its identity, or the job named with --reuse.
//
// A source serves only when the memo policy allows a lookup, the entry is
// not expired, every output blob is in the content store, and the worker
// holding the source workspace is connected. An expired or incomplete
// entry is dropped on the way (LookUp); a failed read is not (the store
// may answer next time). The decision is also what PlanPipeline predicts.
//
// May call: the MemoIndex (reads; LookUp drops), the JobTable (reads), the
// ProjectTable, the BlobIndex (Has) and the Dispatcher (IsConnected).
// Errors: CheckManualReuse returns INVALID_ARGUMENT or FAILED_PRECONDITION
// naming reuse_job_id and the problem, or the store's error.
//
// Thread-safety: not thread-safe; the event loop's.
#ifndef DEJA_SCHEDULER_CORE_REUSE_DECIDER_H_
#define DEJA_SCHEDULER_CORE_REUSE_DECIDER_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "deja/v1/job.pb.h"
#include "scheduler/core/blob_index.h"
#include "scheduler/core/effects.h"
#include "scheduler/core/job_table.h"
#include "scheduler/core/memo_index.h"
#include "scheduler/core/project_table.h"

namespace deja {

class Dispatcher;

// Whether a job would be served from an earlier success now, and from
// which; `problem` says why not.
struct ReuseDecision {
  bool reuse = false;
  std::string source_id, worker_id;
  int64_t time_saved_ms = 0;
  int64_t expires_at_ms = 0;
  int64_t source_finished_at_ms = 0;
  google::protobuf::RepeatedPtrField<deja::v1::OutputFile> outputs;  // when reuse
  std::string problem;
  bool drop_entry = false;  // the entry is expired or incomplete
};

class ReuseDecider {
 public:
  // Nothing owned; everything must outlive the decider. `blobs` may be null
  // (tests that use no files: every blob counts as present).
  ReuseDecider(const JobTable* jobs, MemoIndex* memo, const ProjectTable* projects,
               const Dispatcher* workers, BlobIndex* blobs);
  ReuseDecider(const ReuseDecider&) = delete;
  ReuseDecider& operator=(const ReuseDecider&) = delete;

  // --reuse JOB at submit: OK when `spec` may name its reuse_job_id.
  absl::Status CheckManualReuse(const deja::v1::JobSpec& spec, absl::Time now) const;
  // The decision for a job with `spec` and `job_hash`, changing nothing.
  ReuseDecision Decide(const deja::v1::JobSpec& spec, const std::string& job_hash,
                       absl::Time now) const;
  // A submit's lookup: sets `job` up as a reuse candidate (true), or says
  // in its message why an entry or named job could not serve it, dropping
  // an expired or incomplete entry (false).
  bool LookUp(deja::v1::Job& job, absl::Time now, Effects* fx);

 private:
  // Empty when the manifest blob and every output blob are in the store;
  // else says which is not ("its manifest ..." / "its output <path> ...").
  std::string MissingBlob(
      const deja::v1::ManifestRef& manifest,
      const google::protobuf::RepeatedPtrField<deja::v1::OutputFile>& outputs) const;

  // Constant after construction.
  const JobTable* const jobs_;
  MemoIndex* const memo_;
  const ProjectTable* const projects_;
  const Dispatcher* const workers_;
  BlobIndex* const blobs_;
};

// The job will run fresh: forgets its reuse, saying why in its message.
void ClearReuse(deja::v1::Job& job, const std::string& why);

}  // namespace deja

#endif  // DEJA_SCHEDULER_CORE_REUSE_DECIDER_H_
