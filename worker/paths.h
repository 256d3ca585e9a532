// Every path of the worker's work dir, in one place (Mesos `paths.hpp`
// style). Nothing else in the worker builds a work-dir path by hand.
//
// The on-disk tree:
//
//   <work_dir>/
//   |-- meta/
//   |   |-- worker_id            this worker's id, one line, written once
//   |   |-- expiry.log           expiry records (worker/retention.h): an
//   |   |                        append-only log of checksummed batches of
//   |   |                        "set <job_id> <expires_at_ms> <attempt>"
//   |   |                        (0: not kept; from the ResultAck; held until
//   |   |                        the workspace is deleted and reported) and
//   |   |                        "forget <job_id>"; fdatasynced per batch of
//   |   |                        sets, compacted at start and as it grows
//   |   |-- expiry.log.tmp       the compacted log being written
//   |   |-- expiry/<job_id>      the old layout's records ("<expires_at_ms>\n
//   |   |                        <attempt>\n"): imported into expiry.log and
//   |   |                        removed at start
//   |   |-- expiry.tmp-XXXXXX    an old-layout record being written (removed
//   |   |                        at start)
//   |   |-- fingerprints         stat fingerprints of sealed workspaces
//   |   |                        (worker/fingerprints.h): append-only
//   |   |                        checksummed records, a cache (not fsynced)
//   |   |-- fingerprints.tmp     the compacted file being written at start
//   |   |-- tls/worker.pem       the worker's key and certificate (0600;
//   |   |                        worker/identity.h), tls/ 0700
//   |   `-- running/<pgid>       a running job's process group: "<job_id>
//   |                            <attempt> <start time>\n" (worker/
//   |                            leftovers.h); a previous life's are killed
//   |                            at start
//   |-- cache/
//   |   `-- blobs/               content-store blobs (BlobCache), LRU-bounded
//   |       `-- <d0d1>/          the digest's first two hex digits
//   |           |-- <digest>     one blob, read-only (0444), verified on download
//   |           `-- <digest>.part-XXXXXX   a download in progress (removed at start)
//   |-- spare/
//   |   `-- <n>/                 an empty workspace made ahead of time
//   |                            (logs/stdout, logs/stderr, both empty),
//   |                            renamed to jobs/<job_id> when a job starts
//   |                            (worker/workspace_pool.h; emptied at start)
//   |-- trash/
//   |   `-- <n>/                 an expired workspace being deleted: moved
//   |                            here by one rename, then removed (emptied
//   |                            at start)
//   `-- jobs/
//       `-- <job_id>/            the job's workspace; HOME and cwd of the job
//           |-- inputs/<name>    inputs at their default path (any relative
//           |                    path is allowed); files 0444 / 0555
//           |-- ...              whatever the job (or a reuse) put there
//           |-- logs/
//           |   |-- stdout       the command's stdout (0644)
//           |   `-- stderr       the command's stderr (0644)
//           `-- REUSED           only in a reuse: "source_job=<id>\n
//                                source_workspace=<abs path>\nmethod=<m>\n"
//                                (local), or "source_job=<id>\n
//                                source_worker=<id>\nmethod=peer\n" (pulled)
//
// A workspace belongs to one job id; a new attempt of the same job starts
// from an empty workspace. A workspace without an expiry record is never
// deleted by the sweeper (worker/retention.h). REUSED is never part of a manifest: a reuse
// reports its source's manifest.
//
// Thread-safety: the functions are pure or touch only the paths they are
// given; callers serialise work on one workspace.
#ifndef DEJA_WORKER_PATHS_H_
#define DEJA_WORKER_PATHS_H_

#include <string>
#include <vector>

#include "absl/status/status.h"

namespace deja::worker::paths {

// Names inside a workspace, relative to its root.
inline constexpr char kLogsDir[] = "logs";
inline constexpr char kStdoutFile[] = "logs/stdout";
inline constexpr char kStderrFile[] = "logs/stderr";
inline constexpr char kReusedMarker[] = "REUSED";

std::string JobsDir(const std::string& work_dir);
std::string WorkspaceDir(const std::string& work_dir, const std::string& job_id);
std::string LogsDir(const std::string& work_dir, const std::string& job_id);
std::string StdoutPath(const std::string& work_dir, const std::string& job_id);
std::string StderrPath(const std::string& work_dir, const std::string& job_id);
std::string ReusedMarkerPath(const std::string& work_dir, const std::string& job_id);
std::string MetaDir(const std::string& work_dir);
std::string CacheBlobsDir(const std::string& work_dir);
// <blobs_dir>/<first two digits>/<digest>; `digest` must be valid
// (ValidateDigest).
std::string CachedBlobPath(const std::string& blobs_dir, const std::string& digest);

// Blob digests come from the network and become file names: OK when
// `digest` is 32 lowercase hex digits, else INVALID_ARGUMENT naming it.
absl::Status ValidateDigest(const std::string& digest);
std::string WorkerIdPath(const std::string& work_dir);
std::string ExpiryLogPath(const std::string& work_dir);
// The old layout (read at start only): meta/expiry/, and
// <work_dir>/meta/expiry/<job_id>; `job_id` must be valid (ValidateJobId).
std::string ExpiryDir(const std::string& work_dir);
// meta/running: the process groups of running jobs (worker/leftovers.h).
std::string RunningDir(const std::string& work_dir);
std::string TlsDir(const std::string& work_dir);
std::string IdentityPath(const std::string& work_dir);
std::string ExpiryRecordPath(const std::string& work_dir, const std::string& job_id);
// The prefix of the old layout's records being written.
inline constexpr char kExpiryTempPrefix[] = "expiry.tmp-";
std::string TrashDir(const std::string& work_dir);
std::string SpareDir(const std::string& work_dir);
std::string FingerprintsPath(const std::string& work_dir);

// Job ids come from the network and become one path component: OK when
// `job_id` is non-empty, at most 255 bytes, not "." or "..", and has no '/'
// or NUL. Otherwise INVALID_ARGUMENT naming the id.
absl::Status ValidateJobId(const std::string& job_id);

// Manifest paths come from the network too: OK when `path` is relative,
// non-empty, and has no empty, "." or ".." component (so it cannot escape
// the workspace). Otherwise INVALID_ARGUMENT naming the path.
absl::Status ValidateRelativePath(const std::string& path);

// Removes `dir` and everything below it, without following symlinks, also
// when the job left read-only directories behind. OK when `dir` is gone
// (including when it never existed); otherwise an error naming the path.
absl::Status RemoveTree(const std::string& dir);

// Creates `dir` and missing parents (0755). OK if it already is a directory.
absl::Status MakeDirs(const std::string& dir);

// The names in `dir` that do not start with '.', in no order; none when it
// cannot be read (it does not exist yet, say).
std::vector<std::string> ListNames(const std::string& dir);

// The whole content of a small file (a record, a /proc entry); empty when
// it cannot be read.
std::string ReadSmallFile(const std::string& path);

}  // namespace deja::worker::paths

#endif  // DEJA_WORKER_PATHS_H_
