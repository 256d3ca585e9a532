#include "worker/worker_core.h"

#include <signal.h>

#include <algorithm>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/clock.h"
#include "worker/job_runner.h"
#include "worker/paths.h"

namespace deja::worker {

deja::v1::JobResult UnstartedResult(const JobKey& key, int exit_code, const std::string& error,
                                    absl::Time now) {
  deja::v1::JobResult result;
  result.set_job_id(key.first);
  result.set_attempt(key.second);
  result.set_exit_code(exit_code);
  result.set_error(error);
  result.set_finished_at_ms(ToMillis(now));
  return result;
}

WorkerCore::WorkerCore(uint32_t slots) : slots_(slots) {}

void WorkerCore::OnMessage(const deja::v1::SchedulerMessage& message, absl::Time now,
                           WorkerActions* actions) {
  switch (message.msg_case()) {
    case deja::v1::SchedulerMessage::kAssignment:
      OnAssignment(message.assignment(), now, actions);
      break;
    case deja::v1::SchedulerMessage::kCancel:
      OnCancel(message.cancel(), now, actions);
      break;
    case deja::v1::SchedulerMessage::kResultAck: {
      const deja::v1::ResultAck& ack = message.result_ack();
      unacked_.erase(JobKey(ack.job_id(), ack.attempt()));
      // The expiry record (disk) and any deletion are the sweeper's.
      actions->acks.push_back(ack);
      break;
    }
    case deja::v1::SchedulerMessage::kLogRequest:
      actions->log_requests.push_back(message.log_request());
      break;
    case deja::v1::SchedulerMessage::kRegisterAck:
      break;  // only meaningful as the first message
    default:
      actions->log.push_back(
          absl::StrFormat("ignoring unknown scheduler message case %d", message.msg_case()));
      break;
  }
}

bool WorkerCore::AlreadyHeld(const JobKey& key, WorkerActions* actions) const {
  if (active_.count(key) != 0) return true;
  auto it = unacked_.find(key);
  if (it == unacked_.end()) return false;
  *actions->send.emplace_back().mutable_result() = it->second;
  return true;
}

void WorkerCore::OnAssignment(const deja::v1::Assignment& assignment, absl::Time now,
                              WorkerActions* actions) {
  const JobKey key(assignment.job_id(), assignment.attempt());
  if (AlreadyHeld(key, actions)) {
    actions->log.push_back(absl::StrFormat(
        "assignment %s attempt %d: already held, not started again", key.first, key.second));
    return;
  }
  if (assignment.kind() != deja::v1::Assignment::MATERIALIZE) {
    OnRun(assignment, now, actions);
    return;
  }
  actions->log.push_back(absl::StrFormat(
      "assignment %s attempt %d: materialize from %s%s%s (%d files)", key.first, key.second,
      assignment.source_job_id(), assignment.source_address().empty() ? "" : " on worker ",
      assignment.source_worker_id(), assignment.source_manifest().files()));
  NoteAttempt(key);
  active_[key].state = State::kCopying;
  actions->start.push_back(assignment);
}

void WorkerCore::OnRun(const deja::v1::Assignment& assignment, absl::Time now,
                       WorkerActions* actions) {
  const JobKey key(assignment.job_id(), assignment.attempt());
  actions->log.push_back(absl::StrFormat("assignment %s attempt %d: run %s", key.first, key.second,
                                         absl::StrJoin(assignment.argv(), " ")));
  if (absl::Status st = paths::ValidateJobId(key.first); !st.ok()) {
    OnJobFinished(UnstartedResult(key, kExitInternal, std::string(st.message()), now), actions);
    return;
  }
  // A newer attempt supersedes an older one still running or waiting here:
  // both would use the same workspace.
  for (auto it = active_.begin(); it != active_.end();) {
    const auto& [other, attempt] = *it;
    if (other.first == key.first && other != key && attempt.state == State::kWaiting) {
      actions->log.push_back(
          absl::StrFormat("dropping %s attempt %d before it started: superseded by attempt %d",
                          other.first, other.second, key.second));
      it = active_.erase(it);
      continue;
    }
    if (other.first == key.first && attempt.state == State::kRunning) {
      actions->log.push_back(absl::StrFormat("killing %s attempt %d: superseded by attempt %d",
                                             other.first, other.second, key.second));
      actions->kill.push_back(other);
    }
    ++it;
  }
  NoteAttempt(key);
  if (RunningRuns() >= slots_) {
    // Sent ahead of a free slot (--dispatch_ahead): it starts when one frees.
    actions->log.push_back(
        absl::StrFormat("assignment %s attempt %d: waiting for a slot (%d running)", key.first,
                        key.second, RunningRuns()));
    Attempt& waiting = active_[key];
    waiting.state = State::kWaiting;
    waiting.waiting = assignment;
    waiting.waiting_seq = ++next_waiting_seq_;
    return;
  }
  active_[key].state = State::kRunning;
  actions->start.push_back(assignment);
}

void WorkerCore::OnCancel(const deja::v1::CancelJob& cancel, absl::Time now,
                          WorkerActions* actions) {
  const JobKey key(cancel.job_id(), cancel.attempt());
  auto it = active_.find(key);
  if (it == active_.end()) return;  // unknown
  switch (it->second.state) {
    case State::kCopying:
      return;
    case State::kRunning:
      actions->log.push_back(
          absl::StrFormat("cancel %s attempt %d", cancel.job_id(), cancel.attempt()));
      actions->cancel.push_back(key);
      return;
    case State::kWaiting:
      break;
  }
  active_.erase(it);
  actions->log.push_back(
      absl::StrFormat("cancel %s attempt %d: dropped before it started", key.first, key.second));
  OnJobFinished(UnstartedResult(key, -SIGTERM,
                                "cancelled before it started (it was waiting for a slot)", now),
                actions);
}

void WorkerCore::OnJobFinished(deja::v1::JobResult result, WorkerActions* actions) {
  const JobKey key(result.job_id(), result.attempt());
  *actions->send.emplace_back().mutable_result() = result;
  unacked_[key] = std::move(result);
  active_.erase(key);
  StartWaiting(actions);
}

uint32_t WorkerCore::RunningRuns() const {
  uint32_t running = 0;
  for (const auto& [key, attempt] : active_) running += attempt.state == State::kRunning ? 1 : 0;
  return running;
}

size_t WorkerCore::WaitingRuns() const {
  size_t waiting = 0;
  for (const auto& [key, attempt] : active_) waiting += attempt.state == State::kWaiting ? 1 : 0;
  return waiting;
}

void WorkerCore::StartWaiting(WorkerActions* actions) {
  if (RunningRuns() >= slots_) return;
  Attempt* oldest = nullptr;
  for (auto& [key, attempt] : active_) {
    if (attempt.state == State::kWaiting &&
        (oldest == nullptr || attempt.waiting_seq < oldest->waiting_seq)) {
      oldest = &attempt;
    }
  }
  if (oldest == nullptr) return;
  oldest->state = State::kRunning;
  actions->start.push_back(std::move(oldest->waiting));
  oldest->waiting.Clear();
}

void WorkerCore::NoteAttempt(const JobKey& key) {
  if (key.second <= 1) return;  // no older attempt to tell apart
  uint32_t& newest = newer_attempts_[key.first];
  newest = std::max(newest, key.second);
}

std::vector<deja::v1::HeldJob> WorkerCore::HeldJobs() const {
  std::set<JobKey> held;
  for (const auto& [key, attempt] : active_) held.insert(key);
  for (const auto& [key, result] : unacked_) held.insert(key);
  std::vector<deja::v1::HeldJob> jobs;
  for (const auto& [job_id, attempt] : held) {
    deja::v1::HeldJob& h = jobs.emplace_back();
    h.set_job_id(job_id);
    h.set_attempt(attempt);
  }
  return jobs;
}

std::vector<deja::v1::JobResult> WorkerCore::UnackedResults() const {
  std::vector<deja::v1::JobResult> results;
  for (const auto& [key, result] : unacked_) results.push_back(result);
  return results;
}

std::set<std::string> WorkerCore::HeldJobIds() const {
  std::set<std::string> ids;
  for (const auto& [key, attempt] : active_) ids.insert(key.first);
  for (const auto& [key, result] : unacked_) ids.insert(key.first);
  for (const auto& [job_id, attempt] : newer_attempts_) ids.insert(job_id);
  return ids;
}

bool WorkerCore::ApplyAck(const deja::v1::ResultAck& ack, std::string* left_alone) {
  const std::string& job_id = ack.job_id();
  const bool not_kept = ack.expires_at_ms() <= 0;
  auto newer = newer_attempts_.find(job_id);
  if (newer != newer_attempts_.end() && newer->second <= ack.attempt()) {
    newer_attempts_.erase(newer);
  } else if (newer != newer_attempts_.end() && not_kept) {
    // A failed copy's "not kept", applied after the fresh run that followed
    // it was assigned here: the workspace is that run's.
    *left_alone = absl::StrFormat(
        "workspace of %s attempt %d not kept, but attempt %d of the job ran here: left alone",
        job_id, ack.attempt(), newer->second);
    return false;
  }
  // "Not kept" is about this attempt: the workspace may be another's.
  if (not_kept && HeldJobIds().count(job_id) != 0) {
    *left_alone = absl::StrFormat(
        "workspace of %s attempt %d not kept, but another attempt of the job holds it here: "
        "left alone",
        job_id, ack.attempt());
    return false;
  }
  return true;
}

void WorkerCore::Shutdown() { active_.clear(); }

}  // namespace deja::worker
