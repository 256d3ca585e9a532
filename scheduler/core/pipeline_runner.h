// PipelineRunner: pipelines — a stored DAG whose nodes become jobs as soon
// as their inputs are known. Node identity uses the upstream output
// digests, so an upstream recomputed with identical outputs still lets
// downstream hit (Reflow).
//
// Owns: every pipeline (in memory: they are few and small), which node each
// pipeline job runs, pipeline request ids. Each change of a pipeline goes
// into the caller's Effects; so does each directory blob an edge builds
// (Effects::blob_puts: written before the records that name it).
//
// May call: the JobSubmitter (the core: submits a node's job, cancels
// one), the JobTable (reads node jobs), the ReuseDecider (PlanPipeline's
// predictions) and the BlobIndex (Has, for submitted inputs).
// Errors: Submit returns INVALID_ARGUMENT naming the node and field,
// FAILED_PRECONDITION for a file input not in the store; Get, Cancel and
// Retry NOT_FOUND "pipeline <id> not found"; Cancel FAILED_PRECONDITION
// once it ended; Retry FAILED_PRECONDITION while it runs, INVALID_ARGUMENT
// for an unknown node.
//
// Thread-safety: not thread-safe; the event loop's.
#ifndef DEJA_SCHEDULER_CORE_PIPELINE_RUNNER_H_
#define DEJA_SCHEDULER_CORE_PIPELINE_RUNNER_H_

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "deja/v1/pipeline.pb.h"
#include "deja/v1/scheduler.pb.h"
#include "scheduler/core/blob_index.h"
#include "scheduler/core/effects.h"
#include "scheduler/core/image_table.h"
#include "scheduler/core/job_table.h"
#include "scheduler/core/reuse_decider.h"

namespace deja {

// What a pipeline asks of the rest of the core. SchedulerCore implements it.
class JobSubmitter {
 public:
  virtual ~JobSubmitter() = default;
  virtual absl::StatusOr<deja::v1::SubmitResponse> Submit(deja::v1::JobSpec spec, absl::Time now,
                                                          Effects* fx) = 0;
  virtual absl::StatusOr<deja::v1::Job> CancelJob(const std::string& job_id, absl::Time now,
                                                  Effects* fx) = 0;
};

class PipelineRunner {
 public:
  // Nothing owned; everything must outlive the runner. `blobs` may be null
  // (tests that use no files).
  // `images` pins the plan's node jobs as Submit pins jobs.
  PipelineRunner(JobSubmitter* submitter, JobTable* jobs, const ReuseDecider* reuse,
                 BlobIndex* blobs, const ImageTable* images);
  PipelineRunner(const PipelineRunner&) = delete;
  PipelineRunner& operator=(const PipelineRunner&) = delete;

  // A stored pipeline, at startup. Crashes on a malformed id.
  void Load(deja::v1::Pipeline pipeline);

  absl::StatusOr<deja::v1::Pipeline> Submit(const deja::v1::SubmitPipelineRequest& request,
                                            absl::Time now, Effects* fx);
  absl::StatusOr<deja::v1::Pipeline> Get(const std::string& pipeline_id) const;
  // Every pipeline of `project` (empty: all), oldest first; the RPC pages.
  std::vector<deja::v1::Pipeline> List(const std::string& project) const;
  absl::StatusOr<deja::v1::Pipeline> Cancel(const std::string& pipeline_id, absl::Time now,
                                            Effects* fx);
  absl::StatusOr<deja::v1::Pipeline> Retry(const deja::v1::RetryPipelineRequest& request,
                                           absl::Time now, Effects* fx);
  absl::StatusOr<deja::v1::PipelinePlan> Plan(const deja::v1::SubmitPipelineRequest& request,
                                              absl::Time now) const;
  // Moves pipelines forward after the jobs in `fx` changed; may add jobs.
  void Sync(absl::Time now, Effects* fx);
  // After Load: catches up every running pipeline.
  void Resume(absl::Time now, Effects* fx);

 private:
  // Submits the nodes whose inputs are known, marks the ones whose
  // upstream failed, and settles the pipeline when every node is final.
  void Advance(deja::v1::Pipeline& pipeline, absl::Time now, Effects* fx);
  deja::v1::Pipeline* Find(const std::string& pipeline_id);

  // Constant after construction.
  JobSubmitter* const submitter_;
  JobTable* const jobs_;
  const ReuseDecider* const reuse_;
  BlobIndex* const blobs_;
  const ImageTable* const images_;

  // Pipelines by id ("p<seq>"), and the node each pipeline job runs.
  std::map<uint64_t, deja::v1::Pipeline> pipelines_;
  uint64_t next_seq_ = 1;
  absl::flat_hash_map<std::string, std::pair<std::string, int>> job_nodes_;  // job -> (id, node)
  absl::flat_hash_map<std::string, std::string> requests_;  // RequestKey -> pipeline id
};

}  // namespace deja

#endif  // DEJA_SCHEDULER_CORE_PIPELINE_RUNNER_H_
