// Reading a job's logs for the scheduler's LogRequest (deja logs).
//
// Thread-safety: a function of the files only; call it from any thread (the
// worker's log thread does, so that the stream reader never reads a file).
#ifndef DEJA_WORKER_JOB_LOG_H_
#define DEJA_WORKER_JOB_LOG_H_

#include <cstdint>
#include <string>

#include "deja/v1/worker.pb.h"

namespace deja::worker {

// The most a LogData carries (a larger or zero `limit` is cut to it).
inline constexpr uint32_t kMaxLogChunk = 1 << 20;

// Answers `request` from jobs/<job_id>/logs/{stdout,stderr} under `work_dir`:
// up to `limit` bytes from `offset`, and eof when they reach the end of the
// file. A bad job id, a missing log or one that is not a regular file (never
// followed through a symlink) answers error "no logs for job <id> on worker
// <worker_id>"; an unknown stream answers "stream: unknown log stream <n>".
deja::v1::LogData ReadJobLog(const std::string& work_dir, const std::string& worker_id,
                             const deja::v1::LogRequest& request);

}  // namespace deja::worker

#endif  // DEJA_WORKER_JOB_LOG_H_
