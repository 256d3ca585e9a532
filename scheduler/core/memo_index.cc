#include "scheduler/core/memo_index.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include "scheduler/core/keys.h"

namespace deja {

using deja::v1::MemoEntry;

MemoIndex::MemoIndex(StoreReader* store) : store_(store) {}

MemoIndex::Key MemoIndex::KeyOf(const std::string& memo_id) {
  Key key;
  if (memo_id.size() == 16) {
    std::memcpy(&key.hi, memo_id.data(), 8);
    std::memcpy(&key.lo, memo_id.data() + 8, 8);
  }
  return key;
}

std::string MemoIndex::IdOf(const Key& key) {
  std::string id(16, '\0');
  std::memcpy(id.data(), &key.hi, 8);
  std::memcpy(id.data() + 8, &key.lo, 8);
  return id;
}

uint32_t MemoIndex::InternWorker(const std::string& worker_id) {
  auto [it, added] = worker_index_.try_emplace(worker_id, worker_names_.size());
  if (added) worker_names_.push_back(worker_id);
  return it->second;
}

void MemoIndex::Index(const MemoEntry& entry) {
  hot_id_.clear();
  MemoRef ref;
  ref.source_seq = ParseJobId(entry.source_job_id());
  const int64_t ms = entry.expires_at_ms();
  ref.expires_at_s = ms <= 0 ? 0 : static_cast<uint32_t>((ms + 999) / 1000);
  ref.worker = InternWorker(entry.worker_id());
  index_[KeyOf(MemoId(entry.project(), entry.job_hash()))] = ref;
}

void MemoIndex::Load(MemoEntry entry) {
  Index(entry);
  full_[MemoId(entry.project(), entry.job_hash())] = std::move(entry);
}

const MemoIndex::MemoRef* MemoIndex::Find(const std::string& memo_id) const {
  auto it = index_.find(KeyOf(memo_id));
  return it == index_.end() ? nullptr : &it->second;
}

bool MemoIndex::HasSource(const std::string& memo_id, uint64_t source_seq) const {
  const MemoRef* ref = Find(memo_id);
  return ref != nullptr && ref->source_seq == source_seq;
}

absl::StatusOr<MemoEntry> MemoIndex::Read(const std::string& memo_id) const {
  if (Find(memo_id) == nullptr) return absl::NotFoundError("no such memo entry");
  if (auto it = full_.find(memo_id); it != full_.end()) return it->second;
  if (store_ == nullptr) return absl::NotFoundError("no such memo entry");
  if (!hot_id_.empty() && hot_id_ == memo_id) return hot_;
  absl::StatusOr<MemoEntry> read = store_->ReadMemo(memo_id);
  if (read.ok()) {
    hot_id_ = memo_id;
    hot_ = *read;
  }
  return read;
}

absl::Status MemoIndex::ForEach(const std::function<void(const MemoEntry&)>& visit) const {
  for (const auto& [id, entry] : full_) {
    if (Find(id) != nullptr) visit(entry);
  }
  if (store_ == nullptr) return absl::OkStatus();
  return store_->ScanMemo([&](MemoEntry& entry) {
    const std::string id = MemoId(entry.project(), entry.job_hash());
    // Skips a stored version that an uncommitted put or drop replaced.
    if (!full_.contains(id) && HasSource(id, ParseJobId(entry.source_job_id()))) visit(entry);
    return true;
  });
}

void MemoIndex::Put(MemoEntry entry, Effects* fx) {
  const std::string id = MemoId(entry.project(), entry.job_hash());
  Index(entry);
  fx->memo_deletes.erase(id);
  fx->memo_puts[id] = entry;
  full_[id] = std::move(entry);
}

void MemoIndex::Drop(const std::string& memo_id, Effects* fx) {
  hot_id_.clear();
  index_.erase(KeyOf(memo_id));
  full_.erase(memo_id);
  fx->memo_puts.erase(memo_id);
  fx->memo_deletes.insert(memo_id);
}

void MemoIndex::DropExpired(absl::Time now, Effects* fx) {
  std::vector<std::string> expired;
  const int64_t now_s = absl::ToUnixSeconds(now);
  for (const auto& [key, ref] : index_) {
    if (ref.expires_at_s != 0 && static_cast<int64_t>(ref.expires_at_s) <= now_s) {
      expired.push_back(IdOf(key));
    }
  }
  for (const auto& id : expired) Drop(id, fx);
}

absl::StatusOr<std::vector<MemoEntry>> MemoIndex::List(
    const deja::v1::ListMemoRequest& request) const {
  std::vector<MemoEntry> out;
  absl::Status scanned = ForEach([&](const MemoEntry& entry) {
    if (!request.project().empty() && entry.project() != request.project()) return;
    if (!request.app_name().empty() && entry.app_name() != request.app_name()) return;
    out.push_back(entry);
  });
  if (!scanned.ok()) return scanned;
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
    return std::make_pair(a.created_at_ms(), a.job_hash()) <
           std::make_pair(b.created_at_ms(), b.job_hash());
  });
  if (request.limit() > 0 && out.size() > request.limit()) {
    out.erase(out.begin(), out.end() - request.limit());
  }
  return out;
}

absl::StatusOr<deja::v1::EvictMemoResponse> MemoIndex::Evict(
    const deja::v1::EvictMemoRequest& request, Effects* fx) {
  int selectors = (request.job_hash().empty() ? 0 : 1) + (request.app_name().empty() ? 0 : 1) +
                  (request.before_ms() == 0 ? 0 : 1);
  if (selectors != 1) {
    return absl::InvalidArgumentError("evict: give exactly one of job_hash, app_name or before_ms");
  }
  deja::v1::EvictMemoResponse response;
  absl::Status scanned = ForEach([&](const MemoEntry& entry) {
    if (!request.project().empty() && entry.project() != request.project()) return;
    bool match = (!request.job_hash().empty() && entry.job_hash() == request.job_hash()) ||
                 (!request.app_name().empty() && entry.app_name() == request.app_name()) ||
                 (request.before_ms() != 0 && entry.created_at_ms() < request.before_ms());
    if (match) *response.add_evicted() = entry;
  });
  if (!scanned.ok()) return scanned;
  for (const auto& entry : response.evicted()) Drop(MemoId(entry.project(), entry.job_hash()), fx);
  return response;
}

void MemoIndex::Committed(const Effects& fx) {
  if (store_ == nullptr) return;
  for (const auto& [id, entry] : fx.memo_puts) full_.erase(id);
}

}  // namespace deja
