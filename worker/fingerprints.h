// Stat fingerprints of finished workspaces, so that a reuse verifies its
// source against the manifest without re-reading every file (git's index).
//
// When a job succeeds its workspace is sealed (Seal): every regular file of
// its manifest loses its write bits (a file that shares its inode with
// another name, which may be outside the workspace, is first replaced by a
// copy of its own; one reached through a symlinked directory is left alone),
// and the file's stat fingerprint (dev,
// inode, size, mtime ns, ctime ns) is recorded next to the digest the
// manifest gives it. A reuse then trusts a file whose current lstat still
// matches its recorded fingerprint and whose manifest digest is the recorded
// one, and hashes every other file as before (Verify). A write, truncate,
// chmod, rename over or re-creation changes the inode, size, mtime or ctime,
// so the file is hashed again and a changed one fails verification.
//
// Racy fingerprints (git's "racy clean" problem) are never recorded: the
// caller passes a time `hashed_after`, read from the coarse real-time clock
// that file timestamps come from before the hashing started; a file whose
// mtime is not strictly older than it may have been written while it was
// hashed, so it gets no fingerprint and is always hashed. Linking a file
// (a hard-link reuse) changes its ctime: RefreshFingerprints() re-takes a
// fingerprint only when the file kept its inode, size and mtime since it was
// verified.
//
// Durability: fingerprints are a cache. They live in one append-only file
// (worker/record_log.h), <work_dir>/meta/fingerprints, one checksummed
// record per Put, never fsynced: a record lost in a crash only means hashing again, a torn or
// corrupt one is dropped at Load (with everything after it). Load also drops
// records superseded by a later one or whose workspace is gone, rewriting
// the file (temp file + rename). Memory holds only an index (job id ->
// offset of its last record); records are read back when a reuse asks.
//
// Thread-safety: FingerprintStore is thread-safe.
#ifndef DEJA_WORKER_FINGERPRINTS_H_
#define DEJA_WORKER_FINGERPRINTS_H_

#include <sys/stat.h>
#include <time.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "deja/v1/job.pb.h"
#include "worker/record_log.h"

namespace deja::worker {

struct FileFingerprint {
  uint64_t dev = 0;
  uint64_t ino = 0;
  uint64_t size = 0;
  int64_t mtime_ns = 0;
  int64_t ctime_ns = 0;
  std::string digest;  // the manifest digest the file was verified against

  // Same file, same stat (the digest is compared separately).
  bool SameStat(const FileFingerprint& other) const {
    return dev == other.dev && ino == other.ino && size == other.size &&
           mtime_ns == other.mtime_ns && ctime_ns == other.ctime_ns;
  }
};

// Manifest path -> fingerprint.
using Fingerprints = std::map<std::string, FileFingerprint>;

// The fingerprint of `st` (no digest).
FileFingerprint StatFingerprint(const struct stat& st);

// CLOCK_REALTIME_COARSE: the clock file timestamps are taken from; a file
// written after this call has an mtime no older than what it returns.
struct timespec FileClockNow();

// True when a file with modification time `mtime` was last written strictly
// before `t` (so that a fingerprint taken now is not racy).
bool WrittenBefore(const struct timespec& mtime, const struct timespec& t);

class FingerprintStore {
 public:
  // `work_dir` absolute.
  explicit FingerprintStore(std::string work_dir);
  FingerprintStore(const FingerprintStore&) = delete;
  FingerprintStore& operator=(const FingerprintStore&) = delete;

  // Reads meta/fingerprints (creating meta/ if needed), keeps the last
  // intact record of each job whose workspace still exists, and rewrites the
  // file when anything was dropped. I/O errors name the path.
  absl::Status Load() ABSL_LOCKS_EXCLUDED(mu_);

  // Seals jobs/<job_id> after a successful run whose manifest was built
  // from hashing that started after `hashed_after` (FileClockNow()): takes
  // the write bits off every regular file of `manifest` and records the
  // fingerprints of those not written since `hashed_after`. A file that is
  // gone or cannot be sealed is skipped (a reuse will hash it, and fail if
  // it changed). Errors only when the record cannot be written.
  absl::Status Seal(const std::string& job_id, const deja::v1::Manifest& manifest,
                    const struct timespec& hashed_after) ABSL_LOCKS_EXCLUDED(mu_);

  // The job's recorded fingerprints; empty when there are none (or the
  // record cannot be read back: fingerprints are only an optimisation).
  Fingerprints Get(const std::string& job_id) const ABSL_LOCKS_EXCLUDED(mu_);

  // Replaces the job's fingerprints. INVALID_ARGUMENT for a bad job id;
  // FAILED_PRECONDITION before Load(); I/O errors name the path.
  absl::Status Put(const std::string& job_id, const Fingerprints& fingerprints)
      ABSL_LOCKS_EXCLUDED(mu_);

  // Jobs with a record (for tests and logs).
  size_t JobCount() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  struct Slot {
    uint64_t offset = 0;  // of the record's payload
    uint32_t size = 0;
  };

  const std::string work_dir_;
  const std::string path_;

  mutable absl::Mutex mu_;
  std::unique_ptr<RecordLog> log_ ABSL_GUARDED_BY(mu_);  // null before Load
  std::map<std::string, Slot> index_ ABSL_GUARDED_BY(mu_);
};

// Verifies `root` against `manifest` like deja::VerifyManifest (same
// DATA_LOSS messages), but trusts a regular file whose lstat matches its
// entry in `known` (recorded for the same digest) instead of hashing it.
// `*seen` (if given) gets, on success, the lstat fingerprint (with its
// digest) of each regular file proven either way, except the hashed ones
// written after `hashed_after` (racy). `*hashed_files` (if given) counts the
// entries handed to deja::VerifyManifest (symlinks included).
absl::Status VerifyWithFingerprints(const std::string& root, const deja::v1::Manifest& manifest,
                                    const Fingerprints& known, const struct timespec& hashed_after,
                                    Fingerprints* seen, int* hashed_files = nullptr);

// After a copy from `root` that `seen` (from VerifyWithFingerprints)
// verified: each file's fingerprint now, kept only when its inode, size and
// mtime are still those verified (a link or chmod changed just the ctime).
// `taken` (may be null) holds stats already taken after the copy (a hard
// link's own lstat is its source inode's): those files are not stat'ed again.
Fingerprints RefreshFingerprints(const std::string& root, const Fingerprints& seen,
                                 const Fingerprints* taken = nullptr);

}  // namespace deja::worker

#endif  // DEJA_WORKER_FINGERPRINTS_H_
