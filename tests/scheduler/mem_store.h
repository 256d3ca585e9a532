// MemStore: an in-memory StoreReader for tests, with the same Commit as
// RocksStore, so that a core test can run against either (TEST_P).
#ifndef DEJA_TESTS_SCHEDULER_MEM_STORE_H_
#define DEJA_TESTS_SCHEDULER_MEM_STORE_H_

#include <map>
#include <string>

#include "absl/strings/str_cat.h"
#include "scheduler/core/scheduler_core.h"
#include "scheduler/core/store_reader.h"

namespace deja {

class MemStore : public StoreReader {
 public:
  absl::Status Commit(const Effects& fx) {
    for (const auto& [id, job] : fx.jobs) jobs_[ParseJobId(id)] = job;
    for (const auto& [key, id] : fx.requests) requests_[key] = ParseJobId(id);
    for (const auto& key : fx.memo_deletes) memo_.erase(key);
    for (const auto& [key, entry] : fx.memo_puts) memo_[key] = entry;
    for (const auto& [id, p] : fx.pipelines) pipelines_[ParsePipelineId(id)] = p;
    for (const auto& [name, settings] : fx.projects) projects_[name] = settings;
    for (const auto& [name, record] : fx.images) images_[name] = record;
    return absl::OkStatus();
  }

  absl::StatusOr<deja::v1::Job> ReadJob(uint64_t seq) const override {
    auto it = jobs_.find(seq);
    if (it == jobs_.end()) return absl::NotFoundError(absl::StrCat("job ", seq, " not found"));
    return it->second;
  }
  absl::Status ScanJobs(uint64_t seq, bool backward,
                        const std::function<bool(deja::v1::Job&)>& visit) const override {
    if (backward) {
      auto it = seq == 0 ? jobs_.rbegin() : std::make_reverse_iterator(jobs_.upper_bound(seq));
      for (; it != jobs_.rend(); ++it) {
        deja::v1::Job job = it->second;
        if (!visit(job)) break;
      }
    } else {
      for (auto it = jobs_.lower_bound(seq); it != jobs_.end(); ++it) {
        deja::v1::Job job = it->second;
        if (!visit(job)) break;
      }
    }
    return absl::OkStatus();
  }
  absl::StatusOr<deja::v1::MemoEntry> ReadMemo(const std::string& memo_id) const override {
    auto it = memo_.find(memo_id);
    if (it == memo_.end()) return absl::NotFoundError("memo entry not found");
    return it->second;
  }
  absl::Status ScanMemo(const std::function<bool(deja::v1::MemoEntry&)>& visit) const override {
    for (const auto& [key, stored] : memo_) {
      deja::v1::MemoEntry entry = stored;
      if (!visit(entry)) break;
    }
    return absl::OkStatus();
  }
  absl::StatusOr<uint64_t> ReadRequest(const std::string& request_key) const override {
    auto it = requests_.find(request_key);
    if (it == requests_.end()) return absl::NotFoundError("request id not found");
    return it->second;
  }
  absl::Status ScanProjects(
      const std::function<void(deja::v1::ProjectSettings&)>& visit) const override {
    for (const auto& [name, stored] : projects_) {
      deja::v1::ProjectSettings settings = stored;
      visit(settings);
    }
    return absl::OkStatus();
  }
  absl::Status ScanImages(const std::function<void(deja::v1::ImageRecord&)>& visit) const override {
    for (const auto& [name, stored] : images_) {
      deja::v1::ImageRecord record = stored;
      visit(record);
    }
    return absl::OkStatus();
  }
  absl::Status ScanPipelines(const std::function<void(deja::v1::Pipeline&)>& visit) const override {
    for (const auto& [seq, stored] : pipelines_) {
      deja::v1::Pipeline pipeline = stored;
      visit(pipeline);
    }
    return absl::OkStatus();
  }

 private:
  std::map<uint64_t, deja::v1::Job> jobs_;
  std::map<std::string, uint64_t> requests_;
  std::map<std::string, deja::v1::MemoEntry> memo_;
  std::map<uint64_t, deja::v1::Pipeline> pipelines_;
  std::map<std::string, deja::v1::ProjectSettings> projects_;
  std::map<std::string, deja::v1::ImageRecord> images_;
};

}  // namespace deja

#endif  // DEJA_TESTS_SCHEDULER_MEM_STORE_H_
