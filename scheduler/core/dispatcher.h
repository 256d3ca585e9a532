// Dispatcher: the worker registry and everything that puts jobs on
// workers — placement, assignments, liveness, requeues.
//
// Owns: every worker the scheduler knows (connected or not, its slots,
// platform and capacity, the job attempts sent to it that have not reported
// back). Dispatch() sends queued jobs, oldest first, to the least busy
// connected worker that fits (free slot, platform, a container engine for an
// image job, the CPUs, memory and GPUs the job asks for free); a queued job
// that no connected worker could ever run says why (Job.unplaceable), or
// fails at once if its spec says so. A reuse candidate goes to the
// worker holding its source workspace, or to another that pulls it from
// the holder's Peer service. A worker silent past worker_timeout, or one
// that comes back without its jobs, is lost: its jobs are requeued with
// attempt + 1, or FAILED past max_attempts.
//
// May call: the JobTable (the queue, job records), the MemoIndex (reads
// the entry a reuse copies; never changes it), and `finished`, the core's
// hook for a job the dispatcher ended (FAILED), before it dispatches again.
// Every change goes into the caller's Effects: assignments and cancels to
// send, jobs to persist, streams to close.
//
// Thread-safety: not thread-safe; the event loop's.
#ifndef DEJA_SCHEDULER_CORE_DISPATCHER_H_
#define DEJA_SCHEDULER_CORE_DISPATCHER_H_

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "deja/v1/job.pb.h"
#include "deja/v1/scheduler.pb.h"
#include "deja/v1/worker.pb.h"
#include "scheduler/core/effects.h"
#include "scheduler/core/image_table.h"
#include "scheduler/core/job_table.h"
#include "scheduler/core/memo_index.h"

namespace deja {

// The message of a job failed for `why` it cannot be placed
// (--unplaceable fail).
inline std::string UnplaceableMessage(const std::string& why) {
  return "unplaceable: " + why + " (--unplaceable fail)";
}

// The message that tells a worker to stop `job_id`'s `attempt`.
deja::v1::SchedulerMessage CancelMessage(const std::string& job_id, uint32_t attempt);

class Dispatcher {
 public:
  // Where RUN assignments of pinned image jobs learn the blob of the image
  // (not owned; may be unset: no image is ever loaded then).
  void SetImages(const ImageTable* images) { images_ = images; }

  // Called with a job the dispatcher just made terminal.
  using FinishedHook = std::function<void(deja::v1::Job&, absl::Time, Effects*)>;

  // `jobs` and `memo` (not owned) must outlive the dispatcher.
  Dispatcher(const CoreOptions& options, JobTable* jobs, const MemoIndex* memo,
             FinishedHook finished);
  Dispatcher(const Dispatcher&) = delete;
  Dispatcher& operator=(const Dispatcher&) = delete;

  // Startup: a stored job still on a worker (or cancelled there without a
  // result) stays that worker's, "disconnected since `now`", until the
  // worker reconnects and claims it or worker_timeout passes.
  void ClaimAtLoad(const deja::v1::Job& job, absl::Time now);

  // A worker stream registered (`session` unique per stream; messages of an
  // older session of the same worker are ignored from now on). Sends the
  // RegisterAck first, reconciles what the worker holds with what it was
  // sent (cancels what it must not run, requeues what it lost), then
  // dispatches. INVALID_ARGUMENT naming register.worker_id or
  // register.slots.
  absl::Status Connect(const deja::v1::Register& reg, uint64_t session, absl::Time now,
                       Effects* fx);
  // The stream of `session` ended: the worker's jobs wait for it until
  // worker_timeout passes.
  void Disconnect(const std::string& worker_id, uint64_t session, absl::Time now);
  // A message from `session` arrived: true (and the worker seen now) when it
  // is the worker's current, connected session; false to ignore it.
  bool Touch(const std::string& worker_id, uint64_t session, absl::Time now);
  // The worker of `session` is stopping (WorkerMessage.leaving): it gets
  // nothing more; the jobs it has not started are handed back (requeued, the
  // attempt not counted against max_attempts) now, the running ones when
  // their handed_back results come (HandBack), or if the worker is lost
  // before that.
  void Leaving(const std::string& worker_id, uint64_t session, const std::string& reason,
               absl::Time now, Effects* fx);
  // The worker's disk, from a heartbeat of its current session: while it
  // is refusing (disk full) it is assigned nothing; when it stops refusing
  // the queue is dispatched.
  void SetDisk(const std::string& worker_id, const deja::v1::DiskStatus& disk, absl::Time now,
               Effects* fx);
  // Requeues `job`, whose attempt its worker handed back (or lost while
  // stopping): a new attempt that does not count against max_attempts.
  void HandBack(deja::v1::Job& job, const std::string& why, absl::Time now);
  // "worker <id> stopped (<reason>)", as its Leaving said.
  std::string WhyStopped(const std::string& worker_id) const;
  // The attempts that count against max_attempts.
  static uint32_t ChargedAttempts(const deja::v1::Job& job) {
    return job.attempt() - job.handed_back();
  }
  // Declares silent workers lost (closing their streams) and requeues
  // their jobs. Call periodically.
  void CheckLiveness(absl::Time now, Effects* fx);

  // Assigns queued jobs, oldest first, to connected workers with free slots.
  // Jobs queued since the last call are judged first (CheckPlaceable).
  void Dispatch(absl::Time now, Effects* fx);

  // Why no connected worker could ever run `job` (too small, no platform
  // match, no engine for its image), as things stand: "no worker has gpus ≥
  // 1 (largest: 0)"; "no worker is connected"; "" when one could.
  std::string WhyUnplaceable(const deja::v1::Job& job) const;
  // WhyUnplaceable without any connected worker: no verdict yet.
  static constexpr char kNoWorker[] = "no worker is connected";

  // Whether `worker_id` was sent `job_id`'s `attempt` and has not reported
  // it; Release frees that slot.
  bool HoldsAttempt(const std::string& worker_id, const std::string& job_id,
                    uint32_t attempt) const;
  void Release(const std::string& worker_id, const std::string& job_id);
  // A worker still holds `job` (a cancelled job whose result has not come).
  bool Holds(const deja::v1::Job& job) const;
  bool IsConnected(const std::string& worker_id) const;
  std::vector<deja::v1::WorkerInfo> List() const;

 private:
  struct Worker {
    deja::v1::Register info;
    uint64_t session = 0;
    bool connected = false;
    absl::Time last_seen;  // last message, or disconnect time when !connected
    // Jobs sent to this worker whose result has not arrived: id -> attempt.
    std::map<std::string, uint32_t> jobs;
    int busy_slots = 0;  // RUN assignments among `jobs`
    // What the RUN assignments among `jobs` asked for, in all and each.
    deja::v1::Resources used;
    std::map<std::string, deja::v1::Resources> uses;
    // It said it is stopping (Leaving): nothing more is assigned to it.
    bool draining = false;
    std::string leaving_why;
  };

  Worker* FindWorker(const std::string& worker_id);
  // Requeues (or fails, past max_attempts) every job on a lost worker; a
  // draining one's are handed back.
  void LoseWorker(Worker& worker, const std::string& why, absl::Time now, Effects* fx);
  void Release(Worker& worker, const std::string& job_id);
  // A reuse candidate: MATERIALIZE on the holder, or on another worker that
  // pulls the workspace. False when it must run fresh instead (the job's
  // message says why); true when assigned or waiting for a slot.
  bool DispatchReuse(deja::v1::Job& job, absl::Time now, Effects* fx);
  // Sends `msg` (an assignment of `job`) to `worker`, after Place.
  void Assign(deja::v1::Job& job, Worker& worker, deja::v1::SchedulerMessage msg,
              deja::v1::JobState state, absl::Time now, Effects* fx);
  // `job`'s current attempt is on `worker` in `state`, taking a slot.
  void Place(deja::v1::Job& job, Worker& worker, deja::v1::JobState state, absl::Time now,
             Effects* fx);
  Worker* PickWorker(const deja::v1::Job& job);
  // Counts what a RUN of `job` on `worker` asks for as used, once.
  static void TakeResources(Worker& worker, const deja::v1::Job& job);
  // Whether `worker` could run `job` with `have` of its capacity: platform,
  // engine, resources (`have`: its total to judge it idle, what is free to
  // place the job now).
  static bool CouldRun(const Worker& worker, const deja::v1::Job& job,
                       const deja::v1::Resources& have);
  // Sets `job`'s unplaceable reason (persisting a change), and fails it when
  // its spec asks to and some worker is connected. True when it failed.
  bool CheckPlaceable(deja::v1::Job& job, absl::Time now, Effects* fx);
  // CheckPlaceable on every queued job: the workers changed.
  void RecheckQueue(absl::Time now, Effects* fx);
  bool Fits(const Worker& worker, const deja::v1::Job& job) const;
  // Assignments `worker` may hold: its slots plus options_.dispatch_ahead.
  int Capacity(const Worker& worker) const;

  // Constant after construction.
  const CoreOptions options_;
  JobTable* const jobs_;
  const MemoIndex* const memo_;
  const FinishedHook finished_;

  std::map<std::string, Worker> workers_;
  const ImageTable* images_ = nullptr;
};

}  // namespace deja

#endif  // DEJA_SCHEDULER_CORE_DISPATCHER_H_
