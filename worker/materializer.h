// A reuse: copies a finished job's workspace into a new job's workspace.
//
// The source is verified against its manifest first (common/manifest.h);
// only manifest entries are copied, and the copy never shares a writable
// inode with the source. Per regular file, in order of preference:
//   1. reflink (ioctl FICLONE): a private copy-on-write clone;
//   2. hard link, only when not running as root: the source file is made
//      read-only first (root ignores permission bits, so a root worker never
//      hard-links);
//   3. copy_file_range in a loop (read/write when the kernel cannot),
// then the recorded mode bits are applied (minus write bits for a hard link).
// Symlinks are re-created as symlinks, never followed. Memory use is bounded
// by one 1 MiB buffer whatever the file sizes.
//
// Verification: every manifest entry must be present with its size and
// digest. With a FingerprintStore, a regular file whose stat still matches
// the fingerprint recorded when its workspace was sealed (or at the last
// reuse) is trusted without hashing; every other file is hashed (see
// worker/fingerprints.h). A sealed (read-only) source is hard-linked by
// name without opening it, and the link is checked to be the verified inode.
// After a successful copy the sources' fingerprints are recorded again
// (linking changes their ctime).
//
// With a WorkspaceRetention, the source holds a lease for the whole copy (so
// the sweeper cannot delete it midway), and a source whose expiry has passed
// is refused before anything is read.
//
// Thread-safety: Materializer is thread-safe (constants and thread-safe stores);
// callers must not materialize into the same job id concurrently.
#ifndef DEJA_WORKER_MATERIALIZER_H_
#define DEJA_WORKER_MATERIALIZER_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "deja/v1/job.pb.h"
#include "worker/file_copy.h"
#include "worker/fingerprints.h"
#include "worker/retention.h"

namespace deja::worker {

struct MaterializeResult {
  // The least efficient method any regular file needed (copy < hardlink <
  // reflink); kCopy when the manifest has no regular file.
  CopyMethod method = CopyMethod::kCopy;
  // Bytes of regular files materialized, whatever the method.
  uint64_t bytes = 0;
  uint64_t files = 0;  // regular files and symlinks
};

class Materializer {
 public:
  struct Options {
    // Tests turn methods off to exercise the fallbacks.
    bool allow_reflink = true;
    bool allow_hardlink = true;
  };

  // `work_dir` must be absolute (it is written into REUSED markers).
  // `retention` (not owned; may be null: no leases, no expiry check) and
  // `fingerprints` (not owned; may be null: every source file is hashed)
  // must outlive the Materializer.
  explicit Materializer(std::string work_dir, WorkspaceRetention* retention = nullptr,
                        FingerprintStore* fingerprints = nullptr);
  Materializer(std::string work_dir, Options options, WorkspaceRetention* retention = nullptr,
               FingerprintStore* fingerprints = nullptr);

  // Copies every entry of `manifest` from jobs/<source_job_id> into a fresh
  // jobs/<new_job_id> (an existing one is removed first) and writes REUSED.
  // Returns:
  //   DATA_LOSS         the source failed verification (missing file, other
  //                     size or content), also when it changes during the
  //                     copy; the message names the path; or the source's
  //                     expiry has passed ("workspace of <id> expired");
  //   INVALID_ARGUMENT  a bad job id or manifest path, or source == new;
  //   other codes       I/O failures, naming the path.
  // On any error no new workspace is left behind.
  absl::StatusOr<MaterializeResult> Materialize(const std::string& source_job_id,
                                                const deja::v1::Manifest& manifest,
                                                const std::string& new_job_id) const;

 private:
  const std::string work_dir_;
  const Options options_;
  WorkspaceRetention* const retention_;
  FingerprintStore* const fingerprints_;
};

}  // namespace deja::worker

#endif  // DEJA_WORKER_MATERIALIZER_H_
