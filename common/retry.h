// Retries of the calls one daemon makes to another (the worker's uploads and
// downloads to the scheduler's content store): a transient outage (the other
// side restarting, a network blip) is waited out with exponential backoff
// and jitter, up to a deadline; a real refusal is returned at once.
//
// Thread-safety: RetryTransient keeps no state; concurrent calls are fine.
#ifndef DEJA_COMMON_RETRY_H_
#define DEJA_COMMON_RETRY_H_

#include <functional>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/clock.h"

namespace deja {

// True for the codes that mean "not now" rather than "no": UNAVAILABLE (the
// other side is down, restarting, or the connection broke), DEADLINE_EXCEEDED
// (one attempt timed out), ABORTED and RESOURCE_EXHAUSTED (try again later).
// Everything else (INVALID_ARGUMENT, NOT_FOUND, DATA_LOSS, a local I/O
// error...) is an answer, and retrying would only repeat it.
bool IsTransient(absl::StatusCode code);

struct RetryPolicy {
  // Waits between attempts: `initial_backoff`, doubling up to `max_backoff`,
  // each drawn uniformly from [half, all] of that (jitter, so that workers
  // cut off together do not come back together).
  absl::Duration initial_backoff = absl::Milliseconds(100);
  absl::Duration max_backoff = absl::Seconds(5);
  // No attempt starts later than this after the first; zero: one attempt.
  absl::Duration give_up_after = absl::ZeroDuration();
  // Waits `delay` between attempts; returns false to stop retrying (the
  // daemon is stopping). Unset: absl::SleepFor.
  std::function<bool(absl::Duration delay)> sleep;
  // Told about each transient failure that will be retried (for the log).
  std::function<void(const absl::Status& failure, int attempt, absl::Duration delay)> on_retry;
};

// Calls `attempt` until it returns OK or a status that is not transient, or
// until `policy.give_up_after` (on `clock`) has passed since the first call
// or `policy.sleep` said stop; returns the last status. When it gave up on a
// transient failure, the message says so: "<message> (gave up after 2m0s,
// 25 attempts)".
absl::Status RetryTransient(const RetryPolicy& policy, Clock* clock,
                            const std::function<absl::Status()>& attempt);

}  // namespace deja

#endif  // DEJA_COMMON_RETRY_H_
