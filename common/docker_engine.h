// A client of the Docker Engine API (v1.41, Docker 20.10 and later; podman's
// compatible service answers it too) over the engine's unix socket, with
// libcurl. What Deja needs of an engine and no more: its version, image IDs,
// `docker save` and `docker load` of images, and the life of one container
// (create, start, wait, logs, inspect, kill, remove).
//
// Every call is one HTTP request on a connection of its own, with a deadline
// (`timeout`, except the calls that last as long as a container or an image
// stream: Wait, Logs, SaveImage, LoadImage, which have none). An engine that
// cannot be reached is UNAVAILABLE naming the socket; an error the engine
// answers is the engine's message, as NOT_FOUND (404), FAILED_PRECONDITION
// (409) or INTERNAL.
//
// Thread-safety: thread-safe (no state but the constants).
#ifndef DEJA_COMMON_DOCKER_ENGINE_H_
#define DEJA_COMMON_DOCKER_ENGINE_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace deja {

// Where an engine listens unless told otherwise.
inline constexpr char kDefaultDockerSocket[] = "/var/run/docker.sock";

// A bind mount into a container.
struct BindMount {
  std::string source;  // as the engine sees it (a path on its host)
  std::string target;  // in the container
  bool read_only = false;
};

// What DockerEngine::Create makes.
struct ContainerSpec {
  // An image ID ("sha256:...") or name.
  std::string image;
  // The command, run as is: the image's ENTRYPOINT is not used.
  std::vector<std::string> argv;
  // Added to the image's own environment ("K" -> "V").
  std::map<std::string, std::string> env;
  std::string working_dir;
  // "UID:GID".
  std::string user;
  std::vector<BindMount> mounts;
  // false: no network at all (NetworkMode none).
  bool network = false;
  // Limits; 0: none.
  uint64_t memory_bytes = 0;
  uint32_t milli_cpus = 0;
  uint32_t gpus = 0;
  std::map<std::string, std::string> labels;
};

// A container's state, from Inspect.
struct ContainerState {
  bool running = false;
  int exit_code = 0;
  bool oom_killed = false;
  // The image it runs ("sha256:...").
  std::string image_id;
  // What the engine says went wrong starting it, if anything.
  std::string error;
};

class DockerEngine {
 public:
  explicit DockerEngine(std::string socket_path, absl::Duration timeout = absl::Seconds(30));

  const std::string& socket_path() const { return socket_path_; }

  // "docker 20.10.24" (podman says "podman 4.3.1").
  absl::StatusOr<std::string> Version() const;

  // The ID ("sha256:...") of the image `image` names; NOT_FOUND when the
  // engine has no such image.
  absl::StatusOr<std::string> ImageId(const std::string& image) const;
  // Writes `docker save IMAGE` (a tar) to `fd`.
  absl::Status SaveImage(const std::string& image, int fd) const;
  // `docker load` of the tar in file `path`.
  absl::Status LoadImage(const std::string& path) const;

  // Creates container `name` (not started). A container of that name left
  // over from an earlier try is removed first.
  absl::Status Create(const std::string& name, const ContainerSpec& spec) const;
  absl::Status Start(const std::string& name) const;
  // Blocks until the container is not running; returns its exit code.
  absl::StatusOr<int> Wait(const std::string& name) const;
  // Bytes of a container's stdout and stderr already written by Logs: a
  // Logs call given them skips that much of each stream, so one that
  // broke (the engine restarted) is taken up again where it stopped.
  struct LogsWritten {
    uint64_t stdout_bytes = 0;
    uint64_t stderr_bytes = 0;
  };
  // Writes what the container printed: its stdout to `out_fd`, its stderr to
  // `err_fd`, past what `written` (if given) says is written, which it
  // counts on. With `follow`, as the container prints it, until it stops.
  absl::Status Logs(const std::string& name, int out_fd, int err_fd, bool follow = false,
                    LogsWritten* written = nullptr) const;
  absl::StatusOr<ContainerState> Inspect(const std::string& name) const;
  // Sends `signal` (e.g. "SIGTERM") to the container's main process. A
  // container that no longer runs is OK.
  absl::Status Kill(const std::string& name, const std::string& signal) const;
  // Removes the container, killing it if it runs. One that is already gone
  // is OK.
  absl::Status Remove(const std::string& name) const;
  // The mounts of container `name` (a bind's source as the engine's host
  // sees it, a volume's directory there).
  absl::StatusOr<std::vector<BindMount>> Mounts(const std::string& name) const;
  // The names of the containers (running or not) labelled `key`=`value`.
  absl::StatusOr<std::vector<std::string>> ListLabelled(const std::string& key,
                                                        const std::string& value) const;

 private:
  const std::string socket_path_;
  const absl::Duration timeout_;
};

// The ID of the container this process runs in, from /proc/self/mountinfo
// (the engine's bind mounts of /etc/hostname and /etc/resolv.conf name it),
// or "" outside of one.
std::string OwnContainerId();

// Where the engine sees `path`, given the mounts of the container `path` is
// in: the source of the mount holding it, plus the rest of the path; "" when
// no mount holds it.
std::string EnginePathOf(const std::string& path, const std::vector<BindMount>& mounts);

// The Create request body for `spec` (JSON), for tests.
std::string ContainerCreateBody(const ContainerSpec& spec);

// Splits the engine's multiplexed log stream (8-byte frame headers: stream 1
// stdout, 2 stderr, then the big-endian length) as it arrives. Feed it bytes
// in any slicing; it calls `write(stream, bytes)` per frame part.
class LogDemuxer {
 public:
  using Sink = std::function<void(int stream, std::string_view bytes)>;
  explicit LogDemuxer(Sink sink) : sink_(std::move(sink)) {}
  void Feed(std::string_view data);

 private:
  Sink sink_;
  std::string header_;
  uint32_t left_ = 0;  // bytes of the current frame not yet seen
  int stream_ = 0;
};

}  // namespace deja

#endif  // DEJA_COMMON_DOCKER_ENGINE_H_
