#include "common/retry.h"

#include <algorithm>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"

namespace deja {
namespace {

// The last transient failure, saying that (and when) the retries stopped;
// as it is for a policy of one attempt.
absl::Status GaveUp(const absl::Status& last, const RetryPolicy& policy, absl::Duration waited,
                    int attempts) {
  if (policy.give_up_after == absl::ZeroDuration()) return last;
  return absl::Status(last.code(),
                      absl::StrCat(last.message(), " (gave up after ",
                                   absl::FormatDuration(absl::Trunc(waited, absl::Milliseconds(1))),
                                   ", ", attempts, attempts == 1 ? " attempt)" : " attempts)"));
}

}  // namespace

bool IsTransient(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDeadlineExceeded:
    case absl::StatusCode::kAborted:
    case absl::StatusCode::kResourceExhausted:
      return true;
    default:
      return false;
  }
}

absl::Status RetryTransient(const RetryPolicy& policy, Clock* clock,
                            const std::function<absl::Status()>& attempt) {
  const absl::Time start = clock->Now();
  absl::BitGen bitgen;
  absl::Duration backoff = policy.initial_backoff;
  for (int attempts = 1;; ++attempts) {
    absl::Status status = attempt();
    if (status.ok() || !IsTransient(status.code())) return status;
    const absl::Duration delay = backoff * absl::Uniform(bitgen, 0.5, 1.0);
    if (clock->Now() - start + delay > policy.give_up_after) {
      return GaveUp(status, policy, clock->Now() - start, attempts);
    }
    if (policy.on_retry) policy.on_retry(status, attempts, delay);
    if (policy.sleep) {
      if (!policy.sleep(delay)) return GaveUp(status, policy, clock->Now() - start, attempts);
    } else {
      absl::SleepFor(delay);
    }
    backoff = std::min(backoff * 2, policy.max_backoff);
  }
}

}  // namespace deja
