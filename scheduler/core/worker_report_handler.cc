#include "scheduler/core/worker_report_handler.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/job_state.h"
#include "scheduler/core/job_state_machine.h"
#include "scheduler/core/keys.h"
#include "scheduler/core/memo_policy.h"
#include "scheduler/core/reuse_decider.h"

namespace deja {

using deja::v1::Job;

WorkerReportHandler::WorkerReportHandler(JobTable* jobs, MemoIndex* memo,
                                         const ProjectTable* projects, Dispatcher* dispatcher,
                                         Dispatcher::FinishedHook finished)
    : jobs_(jobs),
      memo_(memo),
      projects_(projects),
      dispatcher_(dispatcher),
      finished_(std::move(finished)) {}

void WorkerReportHandler::Started(const std::string& worker_id, const deja::v1::JobStarted& started,
                                  absl::Time now, Effects* fx) {
  Job* found = jobs_->Find(started.job_id());
  if (found == nullptr) return;
  Job& job = *found;
  if (job.worker_id() != worker_id || job.attempt() != started.attempt()) return;
  if (job.state() == deja::v1::ASSIGNED) {
    SetJobState(job, deja::v1::RUNNING, now);
    job.set_started_at_ms(started.started_at_ms());
    fx->jobs[job.job_id()] = job;
  } else if (job.state() == deja::v1::MATERIALIZING) {
    job.set_started_at_ms(started.started_at_ms());
    fx->jobs[job.job_id()] = job;
  }
}

void WorkerReportHandler::Result(const std::string& worker_id, const deja::v1::JobResult& result,
                                 absl::Time now, Effects* fx) {
  // Acknowledge every result, even one we ignore, so the worker forgets it.
  // The ack goes before anything this result causes (a fresh run of the same
  // job on this worker, say) and tells the worker how long to keep the
  // workspace: 0, not at all, unless the result is current and final.
  const size_t ack_index = fx->to_workers.size();
  deja::v1::SchedulerMessage ack;
  ack.mutable_result_ack()->set_job_id(result.job_id());
  ack.mutable_result_ack()->set_attempt(result.attempt());
  fx->to_workers.emplace_back(worker_id, std::move(ack));

  Job* found = jobs_->Find(result.job_id());
  bool current = found != nullptr &&
                 dispatcher_->HoldsAttempt(worker_id, result.job_id(), result.attempt()) &&
                 found->worker_id() == worker_id && found->attempt() == result.attempt();
  if (!current && found != nullptr && IsLateSuccess(*found, worker_id, result)) {
    AcceptLateSuccess(*found, worker_id, result, now, fx);
    fx->to_workers[ack_index].second.mutable_result_ack()->set_expires_at_ms(
        found->expires_at_ms());
    dispatcher_->Dispatch(now, fx);
    return;
  }
  if (!current) {
    // Ignored, never committed: a superseded attempt, or one committed
    // already whose ack was lost (with a stream, or the worker's life: it
    // keeps results on disk until acked). That one's ack repeats the
    // committed expiry, or the worker would delete a workspace that the
    // memo index still points to.
    // The job in memory, else the stored one (read only then: an ended job
    // leaves memory).
    absl::StatusOr<Job> stored;
    const Job* job = found;
    if (job == nullptr && (stored = jobs_->Get(result.job_id())).ok()) job = &*stored;
    if (job != nullptr && IsTerminal(job->state()) && job->worker_id() == worker_id &&
        job->attempt() == result.attempt() && !job->workspace_expired()) {
      fx->to_workers[ack_index].second.mutable_result_ack()->set_expires_at_ms(
          job->expires_at_ms());
    }
    return;
  }
  Job& job = *found;
  dispatcher_->Release(worker_id, job.job_id());

  if (job.state() == deja::v1::CANCELLED) {
    job.set_exit_code(result.exit_code());
    job.set_run_time_ms(result.run_time_ms());
  } else if (job.state() == deja::v1::MATERIALIZING) {
    if (result.error().empty()) {
      SetJobState(job, deja::v1::SUCCEEDED, now);
      job.set_exit_code(0);
      *job.mutable_manifest() = result.manifest();
      *job.mutable_outputs() = result.outputs();
      job.set_run_time_ms(result.run_time_ms());
      // Served from a run of the same identity: the same pinned image.
      job.set_image_id(job.spec().app().image_id());
      finished_(job, now, fx);
    } else {
      const std::string memo_id = MemoId(job.spec().project(), job.job_hash());
      if (result.verification_failed() &&
          memo_->HasSource(memo_id, ParseJobId(job.reused_from()))) {
        memo_->Drop(memo_id, fx);
      }
      ClearReuse(job, absl::StrCat("not reused: copying the workspace of ", job.reused_from(),
                                   " failed (", result.error(), "); running fresh"));
      // A new attempt: the worker tells the failed copy's late ack ("not
      // kept") apart from the fresh run, which may land on the same worker.
      job.set_attempt(job.attempt() + 1);
      SetJobState(job, deja::v1::QUEUED, now);
      jobs_->Enqueue(job);
    }
  } else if (result.handed_back()) {
    // Its worker is stopping, or was cut off from us, and killed it: not
    // the job's outcome.
    dispatcher_->HandBack(job,
                          result.error().empty()
                              ? dispatcher_->WhyStopped(worker_id)
                              : absl::StrCat("worker ", worker_id, " ", result.error()),
                          now);
  } else {
    // A command that never started has no exit code (the CLI's `run` exits 1).
    if (!result.never_started()) job.set_exit_code(result.exit_code());
    job.set_run_time_ms(result.run_time_ms());
    *job.mutable_manifest() = result.manifest();
    if (!result.image_id().empty()) job.set_image_id(result.image_id());
    if (result.never_started() || !result.error().empty() || result.exit_code() != 0) {
      // E.g. a declared output that matched no file: never memoized.
      SetJobState(job, deja::v1::FAILED, now);
      job.set_message(result.never_started() ? absl::StrCat("could not start: ", result.error())
                      : !result.error().empty()
                          ? result.error()
                          : absl::StrCat("command ", DescribeExit(result.exit_code())));
      finished_(job, now, fx);
    } else {
      Succeed(job, result, worker_id, now, fx);
    }
  }
  fx->jobs[job.job_id()] = job;
  if (IsTerminal(job.state())) {
    fx->to_workers[ack_index].second.mutable_result_ack()->set_expires_at_ms(job.expires_at_ms());
  }
  dispatcher_->Dispatch(now, fx);
}

bool WorkerReportHandler::IsLateSuccess(const Job& job, const std::string& worker_id,
                                        const deja::v1::JobResult& result) const {
  if (result.attempt() >= job.attempt() || result.exit_code() != 0 || !result.error().empty() ||
      result.never_started() || result.handed_back() || result.verification_failed()) {
    return false;
  }
  // Only from the worker that attempt was sent to.
  const auto sent = job.attempt_workers().find(result.attempt());
  if (sent == job.attempt_workers().end() || sent->second != worker_id) return false;
  // Requeued and not on a worker yet, or running on another one: the
  // workspace the result describes is still the attempt's own.
  return job.state() == deja::v1::QUEUED ||
         (OnWorker(job.state()) && job.state() != deja::v1::MATERIALIZING &&
          job.worker_id() != worker_id);
}

void WorkerReportHandler::AcceptLateSuccess(Job& job, const std::string& worker_id,
                                            const deja::v1::JobResult& result, absl::Time now,
                                            Effects* fx) {
  const uint32_t superseded = job.attempt();
  if (job.state() == deja::v1::QUEUED) {
    jobs_->Dequeue(job.job_id());
  } else {
    // Its worker kills it and reports; that result is then superseded.
    fx->to_workers.emplace_back(job.worker_id(), CancelMessage(job.job_id(), superseded));
    dispatcher_->Release(job.worker_id(), job.job_id());
  }
  job.set_attempt(result.attempt());
  job.set_worker_id(worker_id);
  job.set_exit_code(0);
  job.set_run_time_ms(result.run_time_ms());
  *job.mutable_manifest() = result.manifest();
  Succeed(job, result, worker_id, now, fx);
  job.set_message(absl::StrCat("attempt ", result.attempt(), " on worker ", worker_id,
                               " had succeeded; its result came after the job was requeued, so "
                               "attempt ",
                               superseded, " was called off"));
  fx->jobs[job.job_id()] = job;
}

void WorkerReportHandler::Succeed(Job& job, const deja::v1::JobResult& result,
                                  const std::string& worker_id, absl::Time now, Effects* fx) {
  SetJobState(job, deja::v1::SUCCEEDED, now);
  *job.mutable_outputs() = result.outputs();
  // Fixed now, from the setting in force now; the entry lives as long.
  const deja::v1::ProjectSettings& settings = projects_->Settings(job.spec().project());
  job.set_expires_at_ms(absl::ToUnixMillis(WorkspaceExpiry(now, settings)));
  if (DecideMemoPolicy(job.spec(), settings).record) {
    deja::v1::MemoEntry entry;
    entry.set_project(job.spec().project());
    entry.set_job_hash(job.job_hash());
    entry.set_app_name(job.spec().app().name());
    entry.set_source_job_id(job.job_id());
    entry.set_worker_id(worker_id);
    *entry.mutable_manifest() = job.manifest();
    *entry.mutable_outputs() = job.outputs();
    entry.set_run_time_ms(job.run_time_ms());
    entry.set_created_at_ms(absl::ToUnixMillis(now));
    entry.set_expires_at_ms(job.expires_at_ms());
    memo_->Put(std::move(entry), fx);
  }
  finished_(job, now, fx);  // after the entry: waiting followers reuse it
}

void WorkerReportHandler::WorkspacesExpired(const std::string& worker_id,
                                            const deja::v1::WorkspacesExpired& expired,
                                            Effects* fx) {
  for (const auto& id : expired.job_ids()) {
    absl::StatusOr<Job> job = jobs_->Get(id);  // mostly ended jobs, from the store
    if (!job.ok() || job->worker_id() != worker_id) continue;
    if (!job->workspace_expired()) {
      // Back in memory until this change is committed.
      if (Job* resident = jobs_->Resident(id); resident != nullptr) {
        resident->set_workspace_expired(true);
        fx->jobs[id] = *resident;
      }
    }
    const std::string memo_id = MemoId(job->spec().project(), job->job_hash());
    if (memo_->HasSource(memo_id, ParseJobId(id))) memo_->Drop(memo_id, fx);
  }
}

}  // namespace deja
