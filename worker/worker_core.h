// WorkerCore: the worker's side of the WorkerService protocol, with no gRPC,
// no threads and no I/O. It is the worker's counterpart of SchedulerCore.
//
// It owns the protocol state: the attempts held here (running, copying, or
// waiting for a slot: a RUN sent ahead by the scheduler's --dispatch_ahead,
// started in arrival order as slots free), the results the scheduler has not
// acknowledged yet (kept, listed as held in Register and re-sent after it,
// so results survive broken streams), and the newest attempt of each job
// assigned here whose ack has not been applied (see ApplyAck).
//
// Execution model: not thread-safe; the caller serialises every call (the
// Worker holds its mutex around each). Methods never block. Each event
// method appends what must happen next to a WorkerActions value, which the
// caller carries out after the call: the core never starts, signals or
// sends anything itself. Time is passed in (`now`), so tests drive it.
#ifndef DEJA_WORKER_WORKER_CORE_H_
#define DEJA_WORKER_WORKER_CORE_H_

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/time/time.h"
#include "deja/v1/worker.pb.h"

namespace deja::worker {

using JobKey = std::pair<std::string, uint32_t>;  // (job_id, attempt)

// What a WorkerCore call asks its caller to carry out, in this order.
struct WorkerActions {
  // 1. Log these lines (worker/log.h), one event each.
  std::vector<std::string> log;
  // 2. SIGKILL these started RUN attempts (superseded by a newer attempt).
  std::vector<JobKey> kill;
  // 3. Cancel these started RUN attempts (SIGTERM, SIGKILL after the grace).
  std::vector<JobKey> cancel;
  // 4. Start these, in order: a JobRunner for a RUN, a copy for a
  //    MATERIALIZE. Each one's end must come back as OnJobFinished.
  std::vector<deja::v1::Assignment> start;
  // 5. Queue these for the log thread (they are answered with LogData).
  std::vector<deja::v1::LogRequest> log_requests;
  // 6. Hand these to the retention sweeper: it records each one's expiry
  //    (after ApplyAck agrees).
  std::vector<deja::v1::ResultAck> acks;
  // 7. Then send these, in order, on the scheduler stream. A message that
  //    cannot be sent (no stream) may be dropped: results are re-sent after
  //    the next Register (UnackedResults), which lists every held attempt.
  std::vector<deja::v1::WorkerMessage> send;
};

class WorkerCore {
 public:
  // `slots`: RUN attempts that may run at once (>= 1).
  explicit WorkerCore(uint32_t slots);

  WorkerCore(const WorkerCore&) = delete;
  WorkerCore& operator=(const WorkerCore&) = delete;

  // A message read from the scheduler after RegisterAck.
  //   - Assignment: a duplicate of an attempt held here is not started
  //     again (its result is re-sent if it has one). A RUN supersedes every
  //     older attempt of its job held here (a waiting one is dropped, a
  //     running one killed: they would share the workspace); it starts if a
  //     slot is free, else waits. A RUN with an invalid job id fails at once
  //     (exit code kExitInternal). A MATERIALIZE starts at once (no slot).
  //   - CancelJob: a running RUN is cancelled; a waiting one is dropped and
  //     fails unstarted (exit code -SIGTERM); a copy or an unknown attempt
  //     is left alone.
  //   - ResultAck: the result is no longer kept; the ack goes to the
  //     sweeper (actions->acks).
  //   - LogRequest: goes to the log thread (actions->log_requests).
  void OnMessage(const deja::v1::SchedulerMessage& message, absl::Time now, WorkerActions* actions);

  // A started attempt ended (a runner's exit, a copy's end) with `result`,
  // also called for an attempt no longer held (after Shutdown). The result
  // is kept until acknowledged and sent; the oldest waiting RUN starts if a
  // slot is now free.
  void OnJobFinished(deja::v1::JobResult result, WorkerActions* actions);

  // The attempts to list as held in Register: every attempt running,
  // copying, waiting, or with a result not acknowledged. Sorted.
  std::vector<deja::v1::HeldJob> HeldJobs() const;

  // The results not acknowledged yet, to re-send after Register; sorted by
  // (job id, attempt).
  std::vector<deja::v1::JobResult> UnackedResults() const;

  // Job ids whose workspace is in use here: an attempt running, copying,
  // waiting or unacknowledged, or a newer attempt assigned whose ack has not
  // been applied. The sweeper never deletes these workspaces.
  std::set<std::string> HeldJobIds() const;

  // The sweeper is about to record the expiry of `ack` (whose job id is
  // valid). Returns true when it should. Returns false, with the line to
  // log in `*left_alone`, when the ack says "not kept" (expires_at_ms <= 0)
  // but the workspace is another attempt's: a newer attempt of the job was
  // assigned here and its own ack has not been applied, or another attempt
  // of the job is held here. Applying the ack of the newest attempt (or a
  // newer one) ends the newer-attempt hold. Workspaces are per job id, so
  // however results and acks interleave, a late "not kept" of an older
  // attempt never deletes a newer attempt's workspace.
  bool ApplyAck(const deja::v1::ResultAck& ack, std::string* left_alone);

  // The worker is stopping: forgets every attempt running, copying or
  // waiting (the caller kills their processes). Their results, if they
  // still come, are kept as unacknowledged; nothing waiting starts.
  void Shutdown();

  // RUN attempts started and not finished (each holds a slot).
  uint32_t RunningRuns() const;
  // RUN attempts waiting for a slot.
  size_t WaitingRuns() const;

 private:
  enum class State { kWaiting, kRunning, kCopying };
  struct Attempt {
    State state = State::kRunning;
    deja::v1::Assignment waiting;  // the RUN, while kWaiting
    uint64_t waiting_seq = 0;      // arrival order of the waiting
  };

  void OnAssignment(const deja::v1::Assignment& assignment, absl::Time now, WorkerActions* actions);
  void OnRun(const deja::v1::Assignment& assignment, absl::Time now, WorkerActions* actions);
  void OnCancel(const deja::v1::CancelJob& cancel, absl::Time now, WorkerActions* actions);
  // True when `key` is held already (its result, if any, is re-sent).
  bool AlreadyHeld(const JobKey& key, WorkerActions* actions) const;
  // Starts the oldest waiting RUN if a slot is free.
  void StartWaiting(WorkerActions* actions);
  // Records an assigned attempt in newer_attempts_.
  void NoteAttempt(const JobKey& key);

  const uint32_t slots_;
  std::map<JobKey, Attempt> active_;
  std::map<JobKey, deja::v1::JobResult> unacked_;
  // Job id -> the newest attempt (> 1) assigned here whose ack has not been
  // applied: until it is, the workspace is held, and a "not kept" ack of an
  // older attempt leaves it alone, however results and acks interleave.
  std::map<std::string, uint32_t> newer_attempts_;
  uint64_t next_waiting_seq_ = 0;
};

// The result of an attempt that never started: finished at `now`.
deja::v1::JobResult UnstartedResult(const JobKey& key, int exit_code, const std::string& error,
                                    absl::Time now);

}  // namespace deja::worker

#endif  // DEJA_WORKER_WORKER_CORE_H_
