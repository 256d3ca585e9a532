// The worker's event log: one line per event on stderr, the form operators
// read and grep ("<RFC 3339 UTC time> deja-worker: <event>", or JSON with
// --log_format=json: common/event_log.h).
//
// Thread-safety: Log may be called from any thread; each call writes one
// line with a single stdio call, so lines do not interleave.
#ifndef DEJA_WORKER_LOG_H_
#define DEJA_WORKER_LOG_H_

#include "absl/strings/str_format.h"
#include "common/event_log.h"

namespace deja::worker {

template <typename... Args>
void Log(const absl::FormatSpec<Args...>& format, const Args&... args) {
  LogEvent(absl::StrFormat(format, args...));
}

}  // namespace deja::worker

#endif  // DEJA_WORKER_LOG_H_
