// ImageTable: the images pushed with `deja image push` (docs/containers.md):
// what each name means now (its image ID), and where its `docker save` is in
// the content store. Jobs naming a pushed image are pinned to its ID at
// submit (Pin), which enters their identity; assignments carry the blob so a
// worker that lacks the image loads it.
//
// Thread-safety: not thread-safe; the event loop's.
#ifndef DEJA_SCHEDULER_CORE_IMAGE_TABLE_H_
#define DEJA_SCHEDULER_CORE_IMAGE_TABLE_H_

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "deja/v1/job.pb.h"
#include "deja/v1/scheduler.pb.h"
#include "scheduler/core/effects.h"

namespace deja {

class ImageTable {
 public:
  // A stored record, at startup.
  void Load(deja::v1::ImageRecord record);

  // Names `request.name` image `request.image_id`, saved in blob
  // `request.digest` (which the caller checked is in the store), replacing
  // what the name meant. INVALID_ARGUMENT naming the field.
  absl::StatusOr<deja::v1::ImageRecord> Push(const deja::v1::PushImageRequest& request,
                                             const std::string& pushed_by, absl::Time now,
                                             Effects* fx);

  // Sets `spec`'s app.image_id from the record its image names, when it has
  // an image not pinned yet and the name was pushed.
  void Pin(deja::v1::JobSpec* spec) const;

  // The newest record of `image_id`, or null: where a worker loads it from.
  const deja::v1::ImageRecord* FindId(const std::string& image_id) const;

  // Every record, by name.
  std::vector<deja::v1::ImageRecord> List() const;

  // The blobs records name (kept by the blob collector).
  std::vector<std::string> Digests() const;

 private:
  std::map<std::string, deja::v1::ImageRecord> by_name_;
};

// Whether `name` may name an image: 1 to 255 characters of a Docker
// reference (letters, digits, '.', '_', '-', '/', ':', '@'), not starting
// with a separator.
bool IsImageName(const std::string& name);

}  // namespace deja

#endif  // DEJA_SCHEDULER_CORE_IMAGE_TABLE_H_
