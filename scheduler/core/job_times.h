// Times on job and memo records (Unix milliseconds), as the core compares
// and prints them. Pure inline functions.
#ifndef DEJA_SCHEDULER_CORE_JOB_TIMES_H_
#define DEJA_SCHEDULER_CORE_JOB_TIMES_H_

#include <cstdint>
#include <string>

#include "absl/time/time.h"

namespace deja {

// True when an expiry is set (> 0) and `now` reached it.
inline bool Expired(int64_t expires_at_ms, absl::Time now) {
  return expires_at_ms > 0 && absl::FromUnixMillis(expires_at_ms) <= now;
}

// "2024-05-01 12:00:00 UTC", for messages.
inline std::string FormatMillis(int64_t ms) {
  return absl::FormatTime("%Y-%m-%d %H:%M:%S UTC", absl::FromUnixMillis(ms), absl::UTCTimeZone());
}

}  // namespace deja

#endif  // DEJA_SCHEDULER_CORE_JOB_TIMES_H_
