#include "scheduler/content/tree_index.h"

#include <deque>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/tree.h"

namespace deja {

TreeIndex::TreeIndex(const BlobStore* store, size_t max_entries)
    : store_(store), max_entries_(max_entries) {}

absl::StatusOr<std::shared_ptr<const TreeIndex::Below>> TreeIndex::Read(
    const std::string& tree) const {
  auto root = store_->GetMeta(tree);
  if (!root.ok()) return root.status();
  auto below = std::make_shared<Below>();
  std::deque<deja::v1::BlobRef> dirs(1);
  dirs.front().set_digest(tree);
  dirs.front().set_size(root->size());
  while (!dirs.empty()) {
    const deja::v1::BlobRef dir = std::move(dirs.front());
    dirs.pop_front();
    if (dir.size() > kMaxDirectoryBlob) {
      return absl::ResourceExhaustedError(absl::StrCat("directory blob ", dir.digest(), " has ",
                                                       dir.size(), " bytes, over the ",
                                                       kMaxDirectoryBlob, " this store reads"));
    }
    auto bytes = store_->Read(dir);
    if (!bytes.ok()) return bytes.status();
    auto entries = DecodeDirectory(*bytes);
    if (!entries.ok()) {
      return absl::DataLossError(
          absl::StrCat("directory blob ", dir.digest(), ": ", entries.status().message()));
    }
    for (DirEntry& entry : *entries) {
      if (entry.kind == DirEntry::Kind::kSymlink) continue;
      // A subtree seen before (the same directory twice) is read once.
      if (below->insert(entry.digest).second && entry.kind == DirEntry::Kind::kDirectory) {
        deja::v1::BlobRef& sub = dirs.emplace_back();
        sub.set_digest(std::move(entry.digest));
        sub.set_size(entry.size);
      }
    }
  }
  return below;
}

absl::StatusOr<bool> TreeIndex::Holds(const std::string& tree, const std::string& digest) {
  {
    absl::MutexLock lock(&mu_);
    if (auto it = kept_.find(tree); it != kept_.end()) {
      recent_.splice(recent_.begin(), recent_, it->second.position);
      return it->second.below->contains(digest);
    }
  }
  auto below = Read(tree);
  if (!below.ok()) return below.status();
  const bool holds = (*below)->contains(digest);
  const size_t size = (*below)->size();
  if (size > max_entries_) return holds;
  absl::MutexLock lock(&mu_);
  if (kept_.contains(tree)) return holds;
  while (entries_ + size > max_entries_ && !recent_.empty()) {
    auto oldest = kept_.find(recent_.back());
    entries_ -= oldest->second.below->size();
    kept_.erase(oldest);
    recent_.pop_back();
  }
  recent_.push_front(tree);
  kept_.emplace(tree, Kept{*std::move(below), recent_.begin()});
  entries_ += size;
  return holds;
}

}  // namespace deja
