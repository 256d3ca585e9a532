// What a dispatch round sent: the helper the dispatcher and placement tests
// share.
#ifndef DEJA_TESTS_SCHEDULER_ASSIGNED_H_
#define DEJA_TESTS_SCHEDULER_ASSIGNED_H_

#include <string>
#include <vector>

#include "scheduler/core/effects.h"

namespace deja::testing {

// The job ids assigned to `worker` in `fx`, in order.
inline std::vector<std::string> Assigned(const Effects& fx, const std::string& worker) {
  std::vector<std::string> out;
  for (const auto& [w, msg] : fx.to_workers) {
    if (w == worker && msg.has_assignment()) out.push_back(msg.assignment().job_id());
  }
  return out;
}

}  // namespace deja::testing

#endif  // DEJA_TESTS_SCHEDULER_ASSIGNED_H_
