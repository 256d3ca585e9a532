// The worker's id: given by --id, or stored in <work_dir>/meta/worker_id
// (worker/paths.h) so that a restarted worker keeps its identity.
#ifndef DEJA_WORKER_WORKER_ID_H_
#define DEJA_WORKER_WORKER_ID_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace deja::worker {

// This machine's hostname, or "localhost" when it has none.
std::string Hostname();

// The id stored in meta/worker_id under `work_dir` (its first line, with
// surrounding whitespace stripped), else a new "w-<hostname>-<6 hex>" that
// is stored there first (written to a temp file, then renamed). INTERNAL
// naming the path when it cannot be stored; the error of creating meta/.
absl::StatusOr<std::string> LoadOrCreateWorkerId(const std::string& work_dir);

// OK for an id usable in paths and logs; INVALID_ARGUMENT
// "\"<id>\": must not contain '/' or whitespace" otherwise.
absl::Status ValidateWorkerId(const std::string& id);

}  // namespace deja::worker

#endif  // DEJA_WORKER_WORKER_ID_H_
