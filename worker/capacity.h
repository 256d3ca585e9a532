// What a worker offers its jobs (Register.capacity): its CPUs, memory and
// GPUs, detected and overridable by --cpus, --memory and --gpus.
#ifndef DEJA_WORKER_CAPACITY_H_
#define DEJA_WORKER_CAPACITY_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "deja/v1/job.pb.h"

namespace deja::worker {

// The flags as given: empty (and gpus < 0) when not given.
struct CapacityFlags {
  std::string cpus;
  std::string memory;
  int64_t gpus = -1;
};

// What the machine has: the CPUs this process may run on
// (sched_getaffinity), its physical memory, and its NVIDIA GPUs
// (/dev/nvidia0, /dev/nvidia1, ...).
deja::v1::Resources DetectResources();

// DetectResources() with what `flags` give instead. INVALID_ARGUMENT
// naming the flag for a bad value.
absl::StatusOr<deja::v1::Resources> WorkerResources(const CapacityFlags& flags);

}  // namespace deja::worker

#endif  // DEJA_WORKER_CAPACITY_H_
