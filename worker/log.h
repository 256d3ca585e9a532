// The worker's event log: one line per event on stderr, the form operators
// read and grep ("<UTC time> deja-worker: <event>").
//
// Thread-safety: Log may be called from any thread; each call writes one
// line with a single stdio call, so lines do not interleave.
#ifndef DEJA_WORKER_LOG_H_
#define DEJA_WORKER_LOG_H_

#include <cstdio>

#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace deja::worker {

template <typename... Args>
void Log(const absl::FormatSpec<Args...>& format, const Args&... args) {
  absl::FPrintF(stderr, "%s deja-worker: %s\n",
                absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::Now(), absl::UTCTimeZone()),
                absl::StrFormat(format, args...));
}

}  // namespace deja::worker

#endif  // DEJA_WORKER_LOG_H_
