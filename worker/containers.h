// Image jobs: a job whose app has an image runs in a container of it,
// started through the container engine of the worker's host
// (common/docker_engine.h), docs/containers.md.
//
// The container:
//   - runs the image the job's image names, by ID (resolved when the job is
//     about to start: the ID is what the job reports, and what reuse is
//     decided on);
//   - has the workspace bind-mounted at /workspace (its working directory
//     and HOME), each input bind-mounted read-only over its own path;
//   - runs as the job user (uid:gid; the worker's own ids without one),
//     with no capability, no-new-privileges, an init as pid 1, no network
//     unless the job asks for one, and the job's memory (no swap past it),
//     CPUs and GPUs as the engine's limits;
//   - is named deja-<worker>-<job>-<attempt> and labelled org.deja.work_dir
//     (the worker's work dir), org.deja.job and org.deja.attempt.
// The job's leader process is deja-container-shim (worker/container_shim.cc),
// so that cancel, the time limit and the worker's death reach it as they
// reach any job's process group; the container is removed once the shim is
// reaped (End), by the watchdog when the worker dies (the attempt's running
// record names it), and by the worker's next life (RemoveLeftovers).
//
// Images: a job pinned to an image ID (docs/containers.md) runs that ID; when
// the engine lacks it and it was pushed (deja image push), the worker loads
// its `docker save` from the content store first (EnsureImage).
//
// Thread-safety: thread-safe.
#ifndef DEJA_WORKER_CONTAINERS_H_
#define DEJA_WORKER_CONTAINERS_H_

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/docker_engine.h"
#include "deja/v1/worker.pb.h"
#include "worker/job_user.h"

namespace deja::worker {

// Where the workspace is in a job's container.
inline constexpr char kContainerWorkspace[] = "/workspace";

struct ContainerOptions {
  // The engine's unix socket; empty: the worker runs no image job.
  std::string socket;
  // deja-container-shim; empty: beside this program.
  std::string shim;
  std::string work_dir;
  // Where the engine sees work_dir (a worker in a container of the same
  // engine); empty: the same path.
  std::string engine_work_dir;
  std::string worker_id;
};

class Containers {
 public:
  explicit Containers(ContainerOptions options);

  bool configured() const { return !options_.socket.empty(); }
  const std::string& socket() const { return options_.socket; }

  // Fills `capacity`'s engine ("docker 20.10.24 at /var/run/docker.sock")
  // or, when there is none to use, no_engine with the reason.
  void Probe(deja::v1::Capacity* capacity) const;

  // The name of `job_id`'s `attempt`'s container.
  std::string Name(const std::string& job_id, uint32_t attempt) const;

  // The ID of the image `image` names on this worker's engine.
  // FAILED_PRECONDITION naming the image and the worker when the engine
  // lacks it.
  absl::StatusOr<std::string> ResolveImage(const std::string& image) const;

  // Writes the blob of a pushed image to a path (the worker's content
  // store download, with the assignment's ticket).
  using Download = std::function<absl::Status(const std::string& path)>;

  // The ID of the image `assignment` runs: its pinned image_id, or what its
  // image names on this engine. A pinned image the engine lacks is loaded
  // from its pushed `docker save` first (`download`), once however many
  // jobs wait for it; then the engine has it for every later job.
  // FAILED_PRECONDITION when the engine lacks it and it was never pushed;
  // DATA_LOSS when what was loaded is not the pinned image.
  absl::StatusOr<std::string> EnsureImage(const deja::v1::Assignment& assignment,
                                          const Download& download) const;

  // Creates the attempt's container (see above) from `image_id`, for
  // `assignment` in `workspace`, run as `user` (nullopt: the worker's ids).
  // Returns the argv of its shim, the process to spawn.
  absl::StatusOr<std::vector<std::string>> Create(const deja::v1::Assignment& assignment,
                                                  const std::string& image_id,
                                                  const std::string& workspace,
                                                  const std::optional<JobUser>& user) const;

  // After the shim was reaped: what the container says (out of memory,
  // the image it ran), then removes it. Sets `*error` to "out of memory
  // (limit 4 GiB)" when the engine killed it for its memory limit.
  void End(const std::string& name, uint64_t memory_limit, std::string* error) const;

  // Removes every container labelled with this worker's work dir: at start,
  // before any job runs, all are leftovers of an earlier life. Returns how
  // many.
  int RemoveLeftovers() const;

 private:
  // A path of the worker's as the engine sees it.
  std::string EnginePath(const std::string& path) const;

  const ContainerOptions options_;
  const DockerEngine engine_;
  // A lock per image being loaded (by blob digest).
  mutable absl::Mutex mu_;
  mutable std::map<std::string, std::shared_ptr<absl::Mutex>> loading_ ABSL_GUARDED_BY(mu_);
};

}  // namespace deja::worker

#endif  // DEJA_WORKER_CONTAINERS_H_
