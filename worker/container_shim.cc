// deja-container-shim SOCKET CONTAINER: the process that stands for an image
// job's container in the worker's process-group model (worker/containers.h).
// The worker creates the container, then spawns this as the job's leader:
// it starts the container, copies what it prints to its own stdout and
// stderr (the job's logs/stdout and logs/stderr) as it prints it, so that
// `deja logs -f` follows an image job as it follows any other, and exits with
// the container's exit code. SIGTERM or SIGINT is passed on to the container
// (its init forwards it to the command). Whatever ends this process, the
// worker removes the container once it is reaped; should the worker die, its
// watchdog does (worker/leftovers.h).
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "common/docker_engine.h"

namespace {

// Exit codes of the shim's own failures, as `docker run` uses them.
constexpr int kEngineFailed = 125;
constexpr int kCannotStart = 127;

[[noreturn]] void Fail(int code, const absl::Status& st) {
  absl::FPrintF(stderr, "deja: %s\n", st.message());
  std::fflush(stderr);
  std::_Exit(code);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    absl::FPrintF(stderr, "usage: deja-container-shim SOCKET CONTAINER (spawned by deja-worker)\n");
    return 2;
  }
  const deja::DockerEngine engine(argv[1]);
  const std::string name = argv[2];

  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);
  std::thread([&engine, &name, stop] {
    for (;;) {
      int sig = 0;
      if (sigwait(&stop, &sig) != 0) continue;
      if (absl::Status st = engine.Kill(name, "SIGTERM"); !st.ok()) {
        absl::FPrintF(stderr, "deja: passing SIGTERM on to the container: %s\n", st.message());
      }
    }
  }).detach();

  if (absl::Status st = engine.Start(name); !st.ok()) Fail(kCannotStart, st);
  // The output as it comes, until the container stops. The engine may
  // restart meanwhile: the stream breaks, and is taken up again where it
  // stopped (LogsWritten skips what is written).
  deja::DockerEngine::LogsWritten written;
  bool complete = false;  // every byte the container printed is written
  for (int failures = 0;; ++failures) {
    absl::Status followed =
        engine.Logs(name, STDOUT_FILENO, STDERR_FILENO, /*follow=*/true, &written);
    absl::StatusOr<deja::ContainerState> state = engine.Inspect(name);
    if (state.ok() && !state->running) {
      complete = followed.ok();
      break;
    }
    if (absl::IsNotFound(state.status())) Fail(kEngineFailed, state.status());
    if (failures % 30 == 0 && !followed.ok()) {
      absl::FPrintF(stderr, "deja: following the container's output: %s; trying again\n",
                    followed.message());
    }
    absl::SleepFor(absl::Seconds(1));
  }
  // The engine may restart while the container runs: its wait breaks, and
  // is taken up again (or the container ended meanwhile).
  int code = 0;
  for (int failures = 0;; ++failures) {
    absl::StatusOr<int> waited = engine.Wait(name);
    if (waited.ok()) {
      code = *waited;
      break;
    }
    absl::StatusOr<deja::ContainerState> state = engine.Inspect(name);
    if (state.ok() && !state->running) {
      code = state->exit_code;
      break;
    }
    if (absl::IsNotFound(state.status())) Fail(kEngineFailed, state.status());
    if (failures % 30 == 0) {
      absl::FPrintF(stderr, "deja: waiting for the container: %s; trying again\n",
                    waited.status().message());
    }
    absl::SleepFor(absl::Seconds(1));
  }
  // A follow that broke at the end may have missed the last bytes.
  if (absl::Status st = complete ? absl::OkStatus()
                                 : engine.Logs(name, STDOUT_FILENO, STDERR_FILENO,
                                               /*follow=*/false, &written);
      !st.ok()) {
    absl::FPrintF(stderr, "deja: reading the container's output: %s\n", st.message());
  }
  std::fflush(stderr);
  std::_Exit(code & 0xff);
}
