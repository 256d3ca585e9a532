#include "scheduler/core/image_table.h"

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/hash.h"
#include "common/job_spec.h"

namespace deja {

bool IsImageName(const std::string& name) {
  if (name.empty() || name.size() > 255 || !absl::ascii_isalnum(name.front())) return false;
  for (char c : name) {
    if (!absl::ascii_isalnum(c) && c != '.' && c != '_' && c != '-' && c != '/' && c != ':' &&
        c != '@') {
      return false;
    }
  }
  return true;
}

void ImageTable::Load(deja::v1::ImageRecord record) {
  std::string name = record.name();
  by_name_[std::move(name)] = std::move(record);
}

absl::StatusOr<deja::v1::ImageRecord> ImageTable::Push(const deja::v1::PushImageRequest& request,
                                                       const std::string& pushed_by, absl::Time now,
                                                       Effects* fx) {
  if (!IsImageName(request.name())) {
    return absl::InvalidArgumentError(
        absl::StrCat("name: \"", request.name(),
                     "\" is not an image name (NAME:TAG: letters, digits, . _ - / : @)"));
  }
  if (IsImageId(request.name())) {
    return absl::InvalidArgumentError("name: an image ID names itself; push it by a NAME:TAG");
  }
  if (!IsImageId(request.image_id())) {
    return absl::InvalidArgumentError(
        "image_id: must be \"sha256:\" and 64 lowercase hex digits (docker image inspect)");
  }
  if (!IsDigest(request.digest())) {
    return absl::InvalidArgumentError("digest: must be 32 lowercase hex digits");
  }
  deja::v1::ImageRecord record;
  record.set_name(request.name());
  record.set_image_id(request.image_id());
  record.set_digest(request.digest());
  record.set_size(request.size());
  record.set_pushed_at_ms(absl::ToUnixMillis(now));
  record.set_pushed_by(pushed_by);
  by_name_[record.name()] = record;
  fx->images[record.name()] = record;
  return record;
}

void ImageTable::Pin(deja::v1::JobSpec* spec) const {
  deja::v1::AppSpec* app = spec->mutable_app();
  if (app->image().empty() || !app->image_id().empty()) return;
  auto it = by_name_.find(app->image());
  if (it != by_name_.end()) app->set_image_id(it->second.image_id());
}

const deja::v1::ImageRecord* ImageTable::FindId(const std::string& image_id) const {
  const deja::v1::ImageRecord* newest = nullptr;
  for (const auto& [name, record] : by_name_) {
    if (record.image_id() == image_id &&
        (newest == nullptr || record.pushed_at_ms() > newest->pushed_at_ms())) {
      newest = &record;
    }
  }
  return newest;
}

std::vector<deja::v1::ImageRecord> ImageTable::List() const {
  std::vector<deja::v1::ImageRecord> out;
  out.reserve(by_name_.size());
  for (const auto& [name, record] : by_name_) out.push_back(record);
  return out;
}

std::vector<std::string> ImageTable::Digests() const {
  std::vector<std::string> out;
  for (const auto& [name, record] : by_name_) out.push_back(record.digest());
  return out;
}

}  // namespace deja
