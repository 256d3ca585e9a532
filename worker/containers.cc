#include "worker/containers.h"

#include <unistd.h>

#include <filesystem>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/hash.h"
#include "common/resources.h"
#include "worker/log.h"

namespace deja::worker {
namespace {

constexpr char kWorkDirLabel[] = "org.deja.work_dir";

// How long a probe of the engine may take (a Register waits for it).
constexpr absl::Duration kProbeTimeout = absl::Seconds(3);

std::string DefaultShim() {
  std::error_code ec;
  const std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return "deja-container-shim";
  return (self.parent_path() / "deja-container-shim").string();
}

}  // namespace

Containers::Containers(ContainerOptions options)
    : options_([&] {
        if (options.shim.empty()) options.shim = DefaultShim();
        if (options.engine_work_dir.empty()) options.engine_work_dir = options.work_dir;
        return std::move(options);
      }()),
      engine_(options_.socket) {}

void Containers::Probe(deja::v1::Capacity* capacity) const {
  capacity->clear_engine();
  capacity->clear_no_engine();
  if (!configured()) {
    capacity->set_no_engine("no container engine (--docker_socket is empty)");
    return;
  }
  if (access(options_.shim.c_str(), X_OK) != 0) {
    capacity->set_no_engine(absl::StrCat(options_.shim, " is missing (it comes with deja-worker)"));
    return;
  }
  absl::StatusOr<std::string> version = DockerEngine(options_.socket, kProbeTimeout).Version();
  if (!version.ok()) {
    capacity->set_no_engine(std::string(version.status().message()));
    return;
  }
  capacity->set_engine(absl::StrCat(*version, " at ", options_.socket));
}

std::string Containers::Name(const std::string& job_id, uint32_t attempt) const {
  // The work dir tells two workers of one host apart; a worker id may hold
  // characters a container name may not.
  return absl::StrCat("deja-", HashBytes(options_.work_dir).substr(0, 8), "-", job_id, "-",
                      attempt);
}

absl::StatusOr<std::string> Containers::ResolveImage(const std::string& image) const {
  absl::StatusOr<std::string> id = engine_.ImageId(image);
  if (absl::IsNotFound(id.status())) {
    return absl::FailedPreconditionError(absl::StrCat(
        "image ", image, " is not on worker ", options_.worker_id,
        " (its engine has no such image): push it with `deja image push ", image, "`"));
  }
  return id;
}

absl::StatusOr<std::string> Containers::EnsureImage(const deja::v1::Assignment& assignment,
                                                    const Download& download) const {
  const std::string& pinned = assignment.image_id();
  if (pinned.empty()) return ResolveImage(assignment.image());
  absl::StatusOr<std::string> id = engine_.ImageId(pinned);
  if (!absl::IsNotFound(id.status())) return id;
  if (assignment.image_digest().empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "image ", assignment.image(), " (", pinned, ") is not on worker ", options_.worker_id,
        " and was not pushed: push it with `deja image push ", assignment.image(), "`"));
  }
  std::shared_ptr<absl::Mutex> lock;
  {
    absl::MutexLock guard(&mu_);
    auto& slot = loading_[assignment.image_digest()];
    if (slot == nullptr) slot = std::make_shared<absl::Mutex>();
    lock = slot;
  }
  absl::MutexLock loading(lock.get());
  id = engine_.ImageId(pinned);  // loaded by the job that held the lock
  if (!absl::IsNotFound(id.status())) return id;
  const std::string dir = absl::StrCat(options_.work_dir, "/meta/images");
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  const std::string tar = absl::StrCat(dir, "/", assignment.image_digest(), ".tar");
  const absl::Time start = absl::Now();
  absl::Status st = download(tar);
  if (st.ok()) st = engine_.LoadImage(tar);
  std::filesystem::remove(tar, ec);
  if (!st.ok()) {
    return absl::Status(st.code(), absl::StrCat("loading image ", assignment.image(), " (", pinned,
                                                ") from the content store: ", st.message()));
  }
  id = engine_.ImageId(pinned);
  if (absl::IsNotFound(id.status())) {
    return absl::DataLossError(absl::StrCat("the image pushed as ", assignment.image(),
                                            " loaded, but it is not ", pinned));
  }
  if (id.ok()) {
    Log("loaded image %s (%s, %d bytes) from the content store in %s", assignment.image(), pinned,
        assignment.image_size(),
        absl::FormatDuration(absl::Trunc(absl::Now() - start, absl::Milliseconds(1))));
  }
  return id;
}

std::string Containers::EnginePath(const std::string& path) const {
  if (options_.engine_work_dir == options_.work_dir) return path;
  return absl::StrCat(options_.engine_work_dir, path.substr(options_.work_dir.size()));
}

absl::StatusOr<std::vector<std::string>> Containers::Create(
    const deja::v1::Assignment& assignment, const std::string& image_id,
    const std::string& workspace, const std::optional<JobUser>& user) const {
  ContainerSpec spec;
  spec.image = image_id;
  spec.argv.assign(assignment.argv().begin(), assignment.argv().end());
  spec.env = {{"HOME", kContainerWorkspace},
              {"DEJA_JOB_ID", assignment.job_id()},
              {"DEJA_WORKSPACE", kContainerWorkspace}};
  for (const auto& [key, value] : assignment.env()) spec.env[key] = value;
  spec.working_dir = kContainerWorkspace;
  spec.user = user.has_value() ? absl::StrCat(user->uid, ":", user->gid)
                               : absl::StrCat(getuid(), ":", getgid());
  spec.mounts.push_back({EnginePath(workspace), kContainerWorkspace, false});
  for (const deja::v1::InputRef& input : assignment.inputs()) {
    const std::string rel = input.path().empty() ? "inputs/" + input.name() : input.path();
    spec.mounts.push_back({EnginePath(absl::StrCat(workspace, "/", rel)),
                           absl::StrCat(kContainerWorkspace, "/", rel), true});
  }
  spec.network = assignment.network();
  spec.memory_bytes = assignment.resources().memory_bytes();
  spec.milli_cpus = assignment.resources().milli_cpus();
  spec.gpus = assignment.resources().gpus();
  spec.labels = {{kWorkDirLabel, options_.work_dir},
                 {"org.deja.job", assignment.job_id()},
                 {"org.deja.attempt", absl::StrCat(assignment.attempt())}};
  const std::string name = Name(assignment.job_id(), assignment.attempt());
  if (absl::Status st = engine_.Create(name, spec); !st.ok()) return st;
  return std::vector<std::string>{options_.shim, options_.socket, name};
}

void Containers::End(const std::string& name, uint64_t memory_limit, std::string* error) const {
  absl::StatusOr<ContainerState> state = engine_.Inspect(name);
  if (state.ok() && state->oom_killed && memory_limit > 0) {
    *error = absl::StrCat("out of memory (limit ", FormatMemory(memory_limit), ")");
  } else if (state.ok() && !state->error.empty() && error->empty()) {
    *error = absl::StrCat("container: ", state->error);
  }
  if (absl::Status st = engine_.Remove(name); !st.ok()) {
    Log("removing container %s: %s", name, st.ToString());
  }
}

int Containers::RemoveLeftovers() const {
  if (!configured()) return 0;
  absl::StatusOr<std::vector<std::string>> names =
      engine_.ListLabelled(kWorkDirLabel, options_.work_dir);
  if (!names.ok()) {
    // No engine now: nothing of ours can run in it either.
    return 0;
  }
  int removed = 0;
  for (const std::string& name : *names) {
    if (absl::Status st = engine_.Remove(name); !st.ok()) {
      Log("removing leftover container %s: %s", name, st.ToString());
      continue;
    }
    ++removed;
  }
  return removed;
}

}  // namespace deja::worker
