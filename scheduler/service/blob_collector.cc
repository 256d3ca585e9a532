#include "scheduler/service/blob_collector.h"

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "common/bytes.h"
#include "common/clock.h"
#include "common/job_state.h"
#include "common/tree.h"

namespace deja {

BlobCollector::BlobCollector(BlobStore* blobs, const StoreReader* store, Clock* clock,
                             absl::Duration grace)
    : blobs_(blobs), store_(store), clock_(clock), grace_(grace) {}

deja::v1::ContentStoreStats BlobCollector::Last() const {
  absl::MutexLock lock(&mu_);
  return last_;
}

absl::StatusOr<deja::v1::ContentStoreStats> BlobCollector::Collect() {
  const int64_t now_ms = absl::ToUnixMillis(clock_->Now());
  const int64_t cutoff_ms = now_ms - absl::ToInt64Milliseconds(grace_);
  deja::v1::ContentStoreStats stats;
  stats.set_collected_at_ms(now_ms);

  // The candidates: blobs neither created nor used within the grace.
  std::vector<std::string> old;
  absl::Status scanned = blobs_->ScanMetas([&](const std::string& digest, const auto& meta) {
    stats.set_blobs(stats.blobs() + 1);
    stats.set_bytes(stats.bytes() + meta.size());
    if (std::max(meta.created_at_ms(), meta.used_at_ms()) < cutoff_ms) old.push_back(digest);
    return true;
  });
  if (!scanned.ok()) return scanned;

  if (!old.empty()) {
    // The mark: what the records keep.
    absl::flat_hash_set<std::string> keep;
    std::vector<deja::v1::BlobRef> dirs;  // directory blobs still to walk
    auto inputs = [&](const google::protobuf::RepeatedPtrField<deja::v1::InputRef>& refs) {
      for (const deja::v1::InputRef& in : refs) {
        if (in.kind() == "dir") {
          deja::v1::BlobRef dir;
          dir.set_digest(in.digest());
          dir.set_size(in.size());
          dirs.push_back(std::move(dir));
        } else {
          keep.insert(in.digest());
        }
      }
    };
    auto outputs = [&](const google::protobuf::RepeatedPtrField<deja::v1::OutputFile>& files) {
      for (const deja::v1::OutputFile& out : files) keep.insert(out.digest());
    };
    auto manifest = [&](const deja::v1::ManifestRef& ref) {
      if (!ref.digest().empty()) keep.insert(ref.digest());
    };
    auto alive = [now_ms](int64_t expires_at_ms) {
      return expires_at_ms == 0 || expires_at_ms > now_ms;
    };
    constexpr int64_t kFailedManifestMs = kFailedManifestHours * 3600 * 1000;
    absl::Status status = store_->ScanJobs(0, /*backward=*/false, [&](deja::v1::Job& job) {
      if (!IsTerminal(job.state())) {
        inputs(job.spec().inputs());
      } else if (job.state() == deja::v1::SUCCEEDED) {
        if (!job.workspace_expired() && alive(job.expires_at_ms())) {
          inputs(job.spec().inputs());
          outputs(job.outputs());
          manifest(job.manifest());
        }
      } else if (job.finished_at_ms() + kFailedManifestMs > now_ms) {
        manifest(job.manifest());
      }
      return true;
    });
    if (!status.ok()) return status;
    status = store_->ScanMemo([&](deja::v1::MemoEntry& entry) {
      if (alive(entry.expires_at_ms())) {
        outputs(entry.outputs());
        manifest(entry.manifest());
      }
      return true;
    });
    if (!status.ok()) return status;
    status = store_->ScanPipelines([&](deja::v1::Pipeline& pipeline) {
      if (pipeline.state() != deja::v1::PIPELINE_RUNNING) return;
      for (const auto& node : pipeline.spec().nodes()) inputs(node.inputs());
    });
    if (!status.ok()) return status;
    status = store_->ScanImages([&](deja::v1::ImageRecord& image) { keep.insert(image.digest()); });
    if (!status.ok()) return status;
    // Directory inputs keep their whole tree. A directory blob that cannot
    // be read keeps only itself (its files stay unless otherwise unkept:
    // such a tree is broken already).
    while (!dirs.empty()) {
      deja::v1::BlobRef dir = std::move(dirs.back());
      dirs.pop_back();
      if (!keep.insert(dir.digest()).second) continue;
      absl::StatusOr<std::string> bytes = blobs_->Read(dir);
      if (!bytes.ok()) continue;
      absl::StatusOr<std::vector<DirEntry>> entries = DecodeDirectory(*bytes);
      if (!entries.ok()) continue;
      for (const DirEntry& entry : *entries) {
        if (entry.kind == DirEntry::Kind::kFile) {
          keep.insert(entry.digest);
        } else if (entry.kind == DirEntry::Kind::kDirectory) {
          deja::v1::BlobRef child;
          child.set_digest(entry.digest);
          child.set_size(entry.size);
          dirs.push_back(std::move(child));
        }
      }
    }
    // The sweep: each delete re-checks the blob's times under its lock.
    for (const std::string& digest : old) {
      if (keep.contains(digest)) continue;
      absl::StatusOr<uint64_t> freed = blobs_->CollectUnusedSince(digest, cutoff_ms);
      if (!freed.ok()) return freed.status();
      if (*freed == 0) continue;
      stats.set_collected_blobs(stats.collected_blobs() + 1);
      stats.set_collected_bytes(stats.collected_bytes() + *freed);
    }
    stats.set_blobs(stats.blobs() - stats.collected_blobs());
    stats.set_bytes(stats.bytes() - stats.collected_bytes());
  }
  absl::MutexLock lock(&mu_);
  last_ = stats;
  return stats;
}

}  // namespace deja
