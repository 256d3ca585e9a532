#include "worker/capacity.h"

#include <sched.h>
#include <unistd.h>

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "common/resources.h"
#include "worker/paths.h"

namespace deja::worker {

deja::v1::Resources DetectResources() {
  deja::v1::Resources r;
  cpu_set_t set;
  CPU_ZERO(&set);
  int cpus = sched_getaffinity(0, sizeof(set), &set) == 0 ? CPU_COUNT(&set) : 0;
  if (cpus <= 0) cpus = static_cast<int>(std::max(1L, sysconf(_SC_NPROCESSORS_ONLN)));
  r.set_milli_cpus(static_cast<uint32_t>(cpus) * 1000);
  const long pages = sysconf(_SC_PHYS_PAGES);
  const long page_size = sysconf(_SC_PAGESIZE);
  if (pages > 0 && page_size > 0) {
    r.set_memory_bytes(static_cast<uint64_t>(pages) * static_cast<uint64_t>(page_size));
  }
  uint32_t gpus = 0;
  for (const std::string& name : paths::ListNames("/dev")) {
    int index = 0;
    if (absl::StartsWith(name, "nvidia") && absl::SimpleAtoi(name.substr(6), &index)) ++gpus;
  }
  r.set_gpus(gpus);
  return r;
}

absl::StatusOr<deja::v1::Resources> WorkerResources(const CapacityFlags& flags) {
  deja::v1::Resources r = DetectResources();
  if (!flags.cpus.empty()) {
    absl::StatusOr<uint32_t> cpus = ParseCpus("--cpus", flags.cpus);
    if (!cpus.ok()) return cpus.status();
    r.set_milli_cpus(*cpus);
  }
  if (!flags.memory.empty()) {
    absl::StatusOr<uint64_t> memory = ParseMemory("--memory", flags.memory);
    if (!memory.ok()) return memory.status();
    r.set_memory_bytes(*memory);
  }
  if (flags.gpus >= 0) {
    if (absl::Status st = CheckGpus("--gpus", flags.gpus); !st.ok()) return st;
    r.set_gpus(static_cast<uint32_t>(flags.gpus));
  }
  return r;
}

}  // namespace deja::worker
