#include "scheduler/core/single_flight.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/job_state.h"
#include "scheduler/core/job_state_machine.h"
#include "scheduler/core/keys.h"

namespace deja {

using deja::v1::Job;

SingleFlight::SingleFlight(JobTable* jobs, ReuseDecider* reuse, const ProjectTable* projects)
    : jobs_(jobs), reuse_(reuse), projects_(projects) {}

void SingleFlight::Restore(const Job& job) {
  if (IsTerminal(job.state())) return;
  if (job.state() == deja::v1::WAITING) {
    followers_[job.waiting_for()].push_back(job.job_id());
  } else if (job.reused_from().empty() &&
             DecideMemoPolicy(job.spec(), projects_->Settings(job.spec().project())).record) {
    inflight_.try_emplace(MemoKey(job.spec().project(), job.job_hash()), job.job_id());
  }
}

bool SingleFlight::Join(Job& job, const MemoPolicy& policy, bool reused, absl::Time now) {
  const std::string key = MemoKey(job.spec().project(), job.job_hash());
  bool waiting = false;
  if (!reused && policy.lookup) {
    auto leader = inflight_.find(key);
    if (leader != inflight_.end()) {
      SetJobState(job, deja::v1::WAITING, now);
      job.set_waiting_for(leader->second);
      followers_[leader->second].push_back(job.job_id());
      waiting = true;
    }
  }
  if (!reused && !waiting && policy.record) inflight_.try_emplace(key, job.job_id());
  return waiting;
}

void SingleFlight::Leave(const Job& job) {
  auto group = followers_.find(job.waiting_for());
  if (group != followers_.end()) std::erase(group->second, job.job_id());
}

void SingleFlight::LeaderEnded(const Job& job, absl::Time now, Effects* fx) {
  const std::string key = MemoKey(job.spec().project(), job.job_hash());
  if (auto it = inflight_.find(key); it != inflight_.end() && it->second == job.job_id()) {
    inflight_.erase(it);
  }
  auto node = followers_.extract(job.job_id());
  if (node.empty()) return;
  std::vector<std::string> waiting;
  for (const auto& id : node.mapped()) {
    const Job* f = jobs_->Find(id);
    if (f != nullptr && f->state() == deja::v1::WAITING) waiting.push_back(id);
  }
  if (waiting.empty()) return;
  if (job.state() == deja::v1::SUCCEEDED) {
    // Every follower is served from the leader's fresh entry.
    for (const auto& id : waiting) {
      Job& f = jobs_->At(id);
      f.clear_waiting_for();
      SetJobState(f, deja::v1::QUEUED, now);
      if (!reuse_->LookUp(f, now, fx) && f.message().empty()) {
        f.set_message(
            absl::StrCat("waited for ", job.job_id(), ", which left no memo entry; running fresh"));
      }
      jobs_->Enqueue(f);
      fx->jobs[id] = f;
    }
    return;
  }
  // The leader failed: the oldest follower runs itself, the others wait on it.
  Job& next = jobs_->At(waiting.front());
  next.clear_waiting_for();
  next.set_message(absl::StrCat("the identical job ", job.job_id(), " it waited for ended ",
                                std::string(JobStateName(job.state())), "; running itself"));
  SetJobState(next, deja::v1::QUEUED, now);
  jobs_->Enqueue(next);
  fx->jobs[next.job_id()] = next;
  inflight_[key] = next.job_id();
  std::vector<std::string> rest(waiting.begin() + 1, waiting.end());
  for (const auto& id : rest) {
    Job& f = jobs_->At(id);
    f.set_waiting_for(next.job_id());
    fx->jobs[id] = f;
  }
  if (!rest.empty()) followers_[next.job_id()] = std::move(rest);
}

}  // namespace deja
