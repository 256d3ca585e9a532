#include "scheduler/core/job_table.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/check.h"
#include "common/job_spec.h"
#include "common/job_state.h"
#include "google/protobuf/util/message_differencer.h"
#include "scheduler/core/keys.h"

namespace deja {

using deja::v1::Job;
using deja::v1::JobState;

JobTable::JobTable(StoreReader* store) : store_(store) {}

void JobTable::Load(Job job, bool held_by_worker) {
  uint64_t seq = ParseJobId(job.job_id());
  DEJA_CHECK(seq != 0, "stored job has a malformed id: " + job.job_id());
  next_seq_ = std::max(next_seq_, seq + 1);
  if (store_ == nullptr && !job.spec().request_id().empty()) {
    requests_[RequestKey(job.spec().project(), job.spec().request_id())] = job.job_id();
  }
  if (job.state() == deja::v1::QUEUED) queue_.insert(seq);
  if (store_ != nullptr && IsTerminal(job.state()) && !held_by_worker) {
    stored_stats_.Add(job, +1);  // stays in the store only
    return;
  }
  order_[seq] = job.job_id();
  std::string id = job.job_id();
  jobs_[id] = std::move(job);
}

Job& JobTable::Add(Job job) {
  const std::string id = job.job_id();
  order_[ParseJobId(id)] = id;
  Job& added = jobs_[id];
  added = std::move(job);
  return added;
}

Job* JobTable::Find(const std::string& job_id) {
  auto it = jobs_.find(job_id);
  return it == jobs_.end() ? nullptr : &it->second;
}

const Job* JobTable::Find(const std::string& job_id) const {
  auto it = jobs_.find(job_id);
  return it == jobs_.end() ? nullptr : &it->second;
}

Job& JobTable::At(const std::string& job_id) { return jobs_.at(job_id); }

absl::StatusOr<Job> JobTable::Get(const std::string& job_id) const {
  if (const Job* job = Find(job_id); job != nullptr) return *job;
  const uint64_t seq = ParseJobId(job_id);
  if (store_ == nullptr || seq == 0) {
    return absl::NotFoundError(absl::StrCat("job ", job_id, " not found"));
  }
  absl::StatusOr<Job> stored = store_->ReadJob(seq);
  if (absl::IsNotFound(stored.status())) {
    return absl::NotFoundError(absl::StrCat("job ", job_id, " not found"));
  }
  return stored;
}

Job* JobTable::Resident(const std::string& job_id) {
  if (Job* job = Find(job_id); job != nullptr) return job;
  const uint64_t seq = ParseJobId(job_id);
  if (store_ == nullptr || seq == 0) return nullptr;
  absl::StatusOr<Job> stored = store_->ReadJob(seq);
  if (!stored.ok()) return nullptr;
  stored_stats_.Add(*stored, -1);
  order_[seq] = job_id;
  auto placed = jobs_.try_emplace(job_id, *std::move(stored));
  return &placed.first->second;
}

bool JobFilter::Matches(const Job& job) const {
  if (!project.empty() && job.spec().project() != project) return false;
  if (!states.empty() && !states.contains(job.state())) return false;
  if (!app.empty() && job.spec().app().name() != app) return false;
  if (since_ms > 0 && job.created_at_ms() < since_ms) return false;
  if (!array_id.empty() && job.array_id() != array_id) return false;
  for (const auto& [key, value] : labels) {
    auto it = job.spec().labels().find(key);
    if (it == job.spec().labels().end() || it->second != value) return false;
  }
  return true;
}

JobFilter JobFilterOf(const deja::v1::ListJobsRequest& request) {
  JobFilter filter;
  filter.project = request.project();
  if (request.state() != deja::v1::JOB_STATE_UNSPECIFIED) filter.states.insert(request.state());
  for (int state : request.states()) filter.states.insert(static_cast<JobState>(state));
  filter.app = request.app();
  filter.labels.insert(request.labels().begin(), request.labels().end());
  filter.since_ms = request.since_ms();
  filter.array_id = request.array_id();
  return filter;
}

absl::StatusOr<std::vector<Job>> JobTable::List(const std::string& project, JobState state,
                                                size_t limit, uint64_t before, size_t max_bytes,
                                                uint64_t* next_before) const {
  JobFilter filter;
  filter.project = project;
  if (state != deja::v1::JOB_STATE_UNSPECIFIED) filter.states.insert(state);
  return List(filter, limit, before, max_bytes, next_before);
}

absl::StatusOr<std::vector<Job>> JobTable::List(const JobFilter& filter, size_t limit,
                                                uint64_t before, size_t max_bytes,
                                                uint64_t* next_before) const {
  // Newest first, merging the jobs in memory (newer versions, and jobs not
  // yet committed) into a backward scan of the store; stops at the first
  // match past `limit` or `max_bytes` (which a next page starts with), or
  // at the first job older than `since_ms`. An array's jobs are numbered
  // on from its first, so only those numbers are scanned.
  const uint64_t array_first = filter.array_id.empty() ? 0 : ParseArrayId(filter.array_id);
  if (!filter.array_id.empty()) {
    if (array_first == 0) return std::vector<Job>();
    const uint64_t array_end = array_first + kMaxArrayElements;
    if (before == 0 || before > array_end) before = array_end;
  }
  std::vector<Job> out;
  size_t bytes = 0;
  bool truncated = false;  // a match was left out
  bool older = false;      // past since_ms: nothing older matches
  auto full = [&] { return truncated || older; };
  auto consider = [&](const Job& job) {
    if ((filter.since_ms > 0 && job.created_at_ms() < filter.since_ms) ||
        ParseJobId(job.job_id()) < array_first) {
      older = true;
      return;
    }
    if (!filter.Matches(job)) return;
    if (limit > 0 && out.size() >= limit) {
      truncated = true;
      return;
    }
    const size_t size = job.ByteSizeLong();
    if (max_bytes > 0 && !out.empty() && bytes + size > max_bytes) {
      truncated = true;
      return;
    }
    bytes += size;
    out.push_back(job);
  };
  auto memory = order_.rbegin();
  if (before > 0) {
    while (memory != order_.rend() && memory->first >= before) ++memory;
  }
  auto memory_newer_than = [&](uint64_t seq) {
    for (; memory != order_.rend() && memory->first > seq && !full(); ++memory) {
      consider(jobs_.at(memory->second));
    }
  };
  if (store_ != nullptr && before != 1) {
    absl::Status scanned =
        store_->ScanJobs(before == 0 ? 0 : before - 1, /*backward=*/true, [&](Job& job) {
          memory_newer_than(ParseJobId(job.job_id()));
          if (!full() && !jobs_.contains(job.job_id())) consider(job);
          return !full();
        });
    if (!scanned.ok()) return scanned;
  }
  memory_newer_than(0);
  if (next_before != nullptr) *next_before = truncated ? ParseJobId(out.back().job_id()) : 0;
  std::reverse(out.begin(), out.end());
  return out;
}

void JobTable::ForEachResident(const std::function<void(const Job&)>& visit) const {
  for (const auto& [seq, id] : order_) visit(jobs_.at(id));
}

absl::Status JobTable::ScanStoredOnly(const std::function<void(const Job&)>& visit) const {
  if (store_ == nullptr) return absl::OkStatus();
  return store_->ScanJobs(0, /*backward=*/false, [&](Job& job) {
    if (!jobs_.contains(job.job_id())) visit(job);
    return true;
  });
}

void JobTable::Enqueue(Job& job) {
  job.clear_worker_id();
  const uint64_t seq = ParseJobId(job.job_id());
  queue_.insert(seq);
  freshly_queued_.push_back(seq);
}

void JobTable::Dequeue(const std::string& job_id) { queue_.erase(ParseJobId(job_id)); }

uint64_t JobTable::NextQueued(uint64_t seq) const {
  auto it = queue_.upper_bound(seq);
  return it == queue_.end() ? 0 : *it;
}

Job& JobTable::Queued(uint64_t seq) { return jobs_.at(order_.at(seq)); }

absl::StatusOr<std::string> JobTable::FindRequest(const std::string& request_key) const {
  if (auto it = requests_.find(request_key); it != requests_.end()) return it->second;
  if (store_ == nullptr) return absl::NotFoundError("request id not found");
  absl::StatusOr<uint64_t> seq = store_->ReadRequest(request_key);
  if (!seq.ok()) return seq.status();
  return JobIdFromSeq(*seq);
}

void JobTable::AddRequest(const std::string& request_key, const std::string& job_id, Effects* fx) {
  requests_[request_key] = job_id;
  fx->requests[request_key] = job_id;
}

void JobTable::Committed(const Effects& fx, const std::function<bool(const Job&)>& held) {
  if (store_ == nullptr) return;
  for (const auto& [key, id] : fx.requests) requests_.erase(key);
  for (const auto& [id, committed] : fx.jobs) {
    auto it = jobs_.find(id);
    if (it == jobs_.end() || !IsTerminal(it->second.state()) || held(it->second)) continue;
    // Only what the store now holds may leave (a change made after `fx`
    // took its copy would otherwise be lost; none is expected).
    if (!google::protobuf::util::MessageDifferencer::Equals(it->second, committed)) continue;
    stored_stats_.Add(it->second, +1);
    order_.erase(ParseJobId(id));
    jobs_.erase(it);
  }
}

}  // namespace deja
