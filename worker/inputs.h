// InputPlacer: puts a RUN job's inputs (Assignment.inputs) into its
// workspace before the command starts.
//
// Each input goes to its `path` (default "inputs/<name>"), which must be
// relative, stay in the workspace, not exist yet, and not go through a
// symlink. A file input comes from the BlobCache. A dir input is a tree of
// directory blobs (common/tree.h): each directory blob is downloaded into
// memory and decoded, then its entries are created in order: directories
// (0755), symlinks (the target text, never followed or checked) and files
// from the cache, 0555 when the entry is executable, else 0444.
//
// A cached file gets into the workspace by, in order of preference:
//   1. a hard link to the read-only cached file, only when the worker does
//      not run as root (root ignores permission bits and could write the
//      cache through the link) and only for 0444 files (the cached inode is
//      0444; an executable needs its own inode);
//   2. a reflink (FICLONE) of it;
//   3. copy_file_range / read-write (worker/file_copy.h).
// A blob is pinned in the cache from its fetch until it is placed, so it
// cannot be evicted between the two; inputs are placed one file at a time,
// so a job's inputs may together exceed the cache.
//
// Thread-safety: InputPlacer is thread-safe (the cache and the client are);
// callers serialise work on one workspace.
#ifndef DEJA_WORKER_INPUTS_H_
#define DEJA_WORKER_INPUTS_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "common/blob_client.h"
#include "deja/v1/job.pb.h"
#include "google/protobuf/repeated_field.h"
#include "worker/blob_cache.h"
#include "worker/file_copy.h"

namespace deja::worker {

struct PlaceResult {
  uint64_t files = 0;  // regular files placed
  uint64_t bytes = 0;  // their total size
  // The least efficient method any file needed; kCopy when there was none.
  CopyMethod method = CopyMethod::kCopy;
};

class InputPlacer {
 public:
  struct Options {
    // Tests turn methods off to exercise the fallbacks.
    bool allow_hardlink = true;
    bool allow_reflink = true;
  };

  // `cache` and `client` (not owned) must outlive the placer; `client`
  // downloads the directory blobs, which are not cached.
  InputPlacer(BlobCache* cache, const BlobClient* client);
  InputPlacer(BlobCache* cache, const BlobClient* client, Options options);

  // Places every input under `workspace` (an existing directory). Returns on
  // the first failure, with a message starting 'input "<name>": ' and the
  // code of the cause (INVALID_ARGUMENT for a bad kind or path, ALREADY_EXISTS
  // for a path taken, NOT_FOUND for a blob the store lacks, DATA_LOSS for a
  // blob that failed verification or a bad directory blob). Whatever was
  // placed stays; the caller discards the workspace. Downloads show the
  // store `ticket` (the assignment's blob ticket, common/tickets.h).
  absl::StatusOr<PlaceResult> Place(
      const std::string& workspace,
      const google::protobuf::RepeatedPtrField<deja::v1::InputRef>& inputs,
      const deja::v1::SignedTicket& ticket = deja::v1::SignedTicket::default_instance()) const;

 private:
  struct State;
  absl::Status PlaceFile(const deja::v1::BlobRef& blob, const std::string& dst, bool executable,
                         State* state) const;
  absl::Status PlaceDir(const deja::v1::BlobRef& blob, const std::string& dst, State* state) const;

  // Constant after construction.
  BlobCache* const cache_;
  const BlobClient* const client_;
  const Options options_;
};

}  // namespace deja::worker

#endif  // DEJA_WORKER_INPUTS_H_
