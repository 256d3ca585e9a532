// WorkerReportHandler: what a worker's reports do to its jobs — a job
// started, a job's result (success records the memo entry, failure, a
// reuse copy that failed and runs fresh), workspaces the worker expired.
//
// Every result is acknowledged, even one that is ignored (a superseded
// attempt), so the worker forgets it; the ack goes before anything the
// result causes and carries the workspace's expiry when the result is
// current and final.
//
// May call: the JobTable, the MemoIndex (puts a success's entry, drops one
// whose copy failed verification or whose workspace expired), the
// ProjectTable (expiry, memo policy), the Dispatcher (releases the slot,
// dispatches after a result) and `finished`, the core's hook for a job
// that ended.
//
// Thread-safety: not thread-safe; the event loop's.
#ifndef DEJA_SCHEDULER_CORE_WORKER_REPORT_HANDLER_H_
#define DEJA_SCHEDULER_CORE_WORKER_REPORT_HANDLER_H_

#include <string>

#include "absl/time/time.h"
#include "deja/v1/worker.pb.h"
#include "scheduler/core/dispatcher.h"
#include "scheduler/core/effects.h"
#include "scheduler/core/job_table.h"
#include "scheduler/core/memo_index.h"
#include "scheduler/core/project_table.h"

namespace deja {

class WorkerReportHandler {
 public:
  // Nothing owned; everything must outlive the handler.
  WorkerReportHandler(JobTable* jobs, MemoIndex* memo, const ProjectTable* projects,
                      Dispatcher* dispatcher, Dispatcher::FinishedHook finished);
  WorkerReportHandler(const WorkerReportHandler&) = delete;
  WorkerReportHandler& operator=(const WorkerReportHandler&) = delete;

  // Reports of `worker_id`, whose session the caller checked is current.
  void Started(const std::string& worker_id, const deja::v1::JobStarted& started, absl::Time now,
               Effects* fx);
  void Result(const std::string& worker_id, const deja::v1::JobResult& result, absl::Time now,
              Effects* fx);
  void WorkspacesExpired(const std::string& worker_id, const deja::v1::WorkspacesExpired& expired,
                         Effects* fx);

 private:
  // A success of an earlier attempt than the job's current one, which the
  // scheduler requeued when it lost the attempt's worker (a pause, a cut,
  // a restart) while the command had already completed: kept rather than
  // running the command again, when the job is queued or runs on another
  // worker (on the same worker the new attempt has replaced the workspace).
  bool IsLateSuccess(const deja::v1::Job& job, const std::string& worker_id,
                     const deja::v1::JobResult& result) const;
  // Makes that attempt the job's success, calling off the current one.
  void AcceptLateSuccess(deja::v1::Job& job, const std::string& worker_id,
                         const deja::v1::JobResult& result, absl::Time now, Effects* fx);
  // The job SUCCEEDED with `result`'s outputs: expiry, memo entry, hooks.
  void Succeed(deja::v1::Job& job, const deja::v1::JobResult& result, const std::string& worker_id,
               absl::Time now, Effects* fx);

  // Constant after construction.
  JobTable* const jobs_;
  MemoIndex* const memo_;
  const ProjectTable* const projects_;
  Dispatcher* const dispatcher_;
  const Dispatcher::FinishedHook finished_;
};

}  // namespace deja

#endif  // DEJA_SCHEDULER_CORE_WORKER_REPORT_HANDLER_H_
