// PollUntil: how every test waits for state it cannot be told about, with a
// deadline instead of a sleep.
#ifndef DEJA_TESTS_FAKES_POLL_UNTIL_H_
#define DEJA_TESTS_FAKES_POLL_UNTIL_H_

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace deja::testing {

// Calls `done` every `interval` until it returns true or `timeout` passes.
// Returns true as soon as `done` does; false if it never did, including a
// last call made at the deadline.
template <typename F>
bool PollUntil(F done, absl::Duration timeout = absl::Seconds(20),
               absl::Duration interval = absl::Milliseconds(5)) {
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    if (done()) return true;
    absl::SleepFor(interval);
  }
  return done();
}

}  // namespace deja::testing

#endif  // DEJA_TESTS_FAKES_POLL_UNTIL_H_
