// deja-scheduler: accepts jobs over gRPC, keeps them and the memo index in
// RocksDB, and dispatches them to deja-worker daemons.
#include <signal.h>

#include <cstdio>
#include <fstream>
#include <string>
#include <thread>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "common/clock.h"
#include "common/daemon_flags.h"
#include "scheduler/service/scheduler_server.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:7070",
          "Address to serve clients and workers on (host:port; port 0 picks a free port).");
ABSL_FLAG(std::string, data_dir, "", "Directory of the RocksDB store (required).");
ABSL_FLAG(absl::Duration, worker_timeout, absl::Seconds(10),
          "A worker whose stream is gone or whose heartbeats stop for this long is lost, "
          "and its running jobs are requeued. A worker that hears nothing from the scheduler "
          "for this long less two heartbeat intervals (at least half of it) stops its running "
          "jobs itself, so keep scheduler restarts shorter than that.");
ABSL_FLAG(int, max_attempts, 3,
          "Executions a job gets before lost workers make it FAILED. Attempts a worker handed "
          "back when it was stopped (SIGTERM) do not count.");
ABSL_FLAG(absl::Duration, heartbeat_interval, absl::Seconds(1),
          "How often workers are asked to send heartbeats (less than --worker_timeout).");
ABSL_FLAG(int, dispatch_ahead, 0,
          "Jobs each worker may be sent beyond its free slots (0-64), so it starts the next "
          "the moment one ends: more throughput for many short jobs, but a job sent ahead "
          "waits for that worker even if another frees a slot first.");
ABSL_FLAG(absl::Duration, gc_interval, absl::Hours(1),
          "How often the content store's garbage collector deletes the blobs nothing keeps "
          "(no job within its retention, memo entry, running pipeline or recent use refers to "
          "them); the first time a minute after start. 0: never.");
ABSL_FLAG(absl::Duration, gc_grace, absl::Hours(1),
          "How long a blob uploaded, or used (found present by a client, referenced by a "
          "submit), is kept whatever refers to it: the time a client may take between "
          "uploading inputs and submitting the job.");
ABSL_FLAG(std::string, port_file, "",
          "If set, the bound port is written to this file once serving (for --listen=...:0).");

namespace {

absl::StatusOr<deja::SchedulerConfig> ConfigFromFlags() {
  deja::SchedulerConfig config;
  config.listen = absl::GetFlag(FLAGS_listen);
  config.data_dir = absl::GetFlag(FLAGS_data_dir);
  config.core.worker_timeout = absl::GetFlag(FLAGS_worker_timeout);
  config.core.max_attempts = absl::GetFlag(FLAGS_max_attempts);
  config.core.heartbeat_interval = absl::GetFlag(FLAGS_heartbeat_interval);
  config.core.dispatch_ahead = absl::GetFlag(FLAGS_dispatch_ahead);
  if (config.data_dir.empty()) return absl::InvalidArgumentError("--data_dir: must be set");
  if (config.listen.empty()) return absl::InvalidArgumentError("--listen: must be host:port");
  if (config.core.worker_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("--worker_timeout: must be positive");
  }
  if (config.core.max_attempts < 1) {
    return absl::InvalidArgumentError("--max_attempts: must be at least 1");
  }
  if (config.core.dispatch_ahead < 0 || config.core.dispatch_ahead > 64) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--dispatch_ahead: must be between 0 and 64, got ", config.core.dispatch_ahead));
  }
  if (config.core.heartbeat_interval <= absl::ZeroDuration() ||
      config.core.heartbeat_interval >= config.core.worker_timeout) {
    return absl::InvalidArgumentError(
        "--heartbeat_interval: must be positive and less than --worker_timeout");
  }
  config.tick = std::min(absl::Milliseconds(100), config.core.worker_timeout / 4);
  config.gc_interval = absl::GetFlag(FLAGS_gc_interval);
  config.gc_grace = absl::GetFlag(FLAGS_gc_grace);
  if (config.gc_interval < absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--gc_interval ", absl::FormatDuration(config.gc_interval), ": must be >= 0"));
  }
  if (config.gc_grace < absl::Minutes(1)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--gc_grace ", absl::FormatDuration(config.gc_grace), ": must be at least 1m"));
  }
  return config;
}

}  // namespace

int main(int argc, char** argv) {
  deja::ParseDaemonFlags(
      argc, argv,
      "The Deja scheduler. Accepts jobs from the deja CLI over gRPC, keeps\n"
      "jobs and the memo index in RocksDB under --data_dir, and dispatches work to\n"
      "deja-worker daemons.\n\n"
      "Usage: deja-scheduler --data_dir=DIR [--listen=HOST:PORT] [--worker_timeout=10s]\n"
      "                      [--max_attempts=3] [--dispatch_ahead=0]");
  auto config = ConfigFromFlags();
  if (!config.ok()) {
    std::fprintf(stderr, "deja-scheduler: %s\n", std::string(config.status().message()).c_str());
    return 2;
  }

  // Signals are taken by a thread of our own, which shuts the server down.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  deja::RealClock clock;
  auto server = deja::SchedulerServer::Start(*config, &clock);
  if (!server.ok()) {
    std::fprintf(stderr, "deja-scheduler: %s\n", std::string(server.status().message()).c_str());
    return 1;
  }
  std::fprintf(stderr, "deja-scheduler: listening on port %d, data in %s\n", (*server)->port(),
               config->data_dir.c_str());
  if (std::string port_file = absl::GetFlag(FLAGS_port_file); !port_file.empty()) {
    std::string tmp = port_file + ".tmp";
    std::ofstream(tmp) << (*server)->port() << "\n";
    std::rename(tmp.c_str(), port_file.c_str());
  }
  std::thread waiter([&] {
    int sig = 0;
    sigwait(&signals, &sig);
    std::fprintf(stderr, "deja-scheduler: signal %d, shutting down\n", sig);
    (*server)->Shutdown();
  });
  (*server)->Wait();
  waiter.join();
  return 0;
}
