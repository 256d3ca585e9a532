// deja-worker: runs jobs and reuses for a deja-scheduler. Flags are turned
// into a validated WorkerConfig here and nowhere else.
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "common/credentials.h"
#include "common/daemon_flags.h"
#include "common/docker_engine.h"
#include "common/event_log.h"
#include "common/files.h"
#include "common/http_endpoint.h"
#include "common/metrics.h"
#include "common/resources.h"
#include "common/version.h"
#include "worker/capacity.h"
#include "worker/job_user.h"
#include "worker/log.h"
#include "worker/paths.h"
#include "worker/platform_flags.h"
#include "worker/watchdog.h"
#include "worker/worker.h"
#include "worker/worker_id.h"
#include "worker/workspace_sweeper.h"

namespace {

int32_t DefaultSlots() {
  unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : static_cast<int32_t>(n);
}

}  // namespace

ABSL_FLAG(std::string, scheduler, "127.0.0.1:7070", "Address (host:port) of the deja-scheduler.");
ABSL_FLAG(std::string, tls_ca, "",
          "The CA certificate (PEM) the scheduler's certificate is checked against: the "
          "scheduler's DATA_DIR/tls/ca.crt, or the operator's --tls_ca. Required unless "
          "--insecure.");
ABSL_FLAG(std::string, token_file, "",
          "File holding the worker token (`deja token create --role worker`), sent to the "
          "scheduler and the content store; with it the worker enrolls for the certificate "
          "that binds its id (<work_dir>/meta/tls/worker.pem). Required unless --insecure.");
ABSL_FLAG(bool, insecure, false,
          "Dial the scheduler in plaintext without a token: for a scheduler started with "
          "--insecure.");
ABSL_FLAG(std::string, job_user, "",
          "A worker started as root runs its jobs as this user (name or uid). Default: "
          "deja-job, a system user created when missing (else nobody). Not root unless "
          "--allow_root_jobs. A worker not started as root runs jobs as itself.");
ABSL_FLAG(bool, allow_root_jobs, false,
          "Allow --job_user=root: jobs may then do anything on this machine.");
ABSL_FLAG(std::string, work_dir, "",
          "Required. Directory holding job workspaces (jobs/<job_id>/) and worker metadata. "
          "One deja-worker at a time (it is locked: meta/lock).");
ABSL_FLAG(int32_t, slots, DefaultSlots(),
          "Number of jobs the scheduler may run here at once (>= 1; default: number of CPUs).");
ABSL_FLAG(std::string, id, "",
          "Worker id. Default: the one stored in <work_dir>/meta/worker_id, else a new "
          "w-<hostname>-<6 hex> that is stored there.");
ABSL_FLAG(std::string, advertise, "",
          "HOST:PORT at which other workers reach this worker's peer service (default "
          "<hostname>:0). Port 0: a free port is bound and HOST:<bound port> is advertised.");
ABSL_FLAG(std::string, peer_listen, "",
          "HOST:PORT the peer service listens on (default: the --advertise address; without "
          "--advertise, 0.0.0.0:0). Set it when the advertised address is not a local one "
          "(NAT, port mapping). With TLS, only workers holding a ticket from the scheduler "
          "are served.");
ABSL_FLAG(std::string, content_store, "",
          "Address (host:port) of the content store, from which inputs are fetched and to "
          "which outputs are uploaded (default: the --scheduler address).");
ABSL_FLAG(int64_t, cache_bytes, int64_t{10} << 30,
          "Bound, in bytes, of the local blob cache (<work_dir>/cache/blobs), evicted least "
          "recently used first (default 10 GiB). A blob larger than the bound is still "
          "fetched, and evicted first.");
ABSL_FLAG(absl::Duration, sweep_interval, absl::Seconds(60),
          "How often expired workspaces are deleted (e.g. 60s, 5m; > 0). A finished job's "
          "workspace (intermediate files and logs) is kept until the expiry the scheduler "
          "sent with its result's acknowledgement, and longer while another worker or a "
          "local reuse is copying it; the expired ones are reported to the scheduler.");
ABSL_FLAG(int64_t, min_free_disk, int64_t{1} << 30,
          "Free bytes to keep under --work_dir (default 1 GiB; 0: not watched). Checked every "
          "2 s: below it the worker deletes expired workspaces, then the kept ones that expire "
          "first (their reuses are dropped), until 5/4 of it is free; while that is not enough "
          "it takes no job (`deja workers` shows `disk full`) and hands back what was sent to it.");
ABSL_FLAG(absl::Duration, store_retry_for, absl::Minutes(10),
          "How long a call to the content store (an input's download, an output's upload) is "
          "retried while the store is unreachable (a scheduler restart, a network blip), with "
          "backoff from 100ms to 5s (e.g. 10m; 0: never retried). A job whose outputs cannot "
          "be uploaded within it fails, saying it gave up.");
ABSL_FLAG(std::vector<std::string>, platform, {},
          "Platform property K=V; repeat the flag (or separate with commas) for several. "
          "os=linux and arch=<uname -m> are always added.");

ABSL_FLAG(std::string, cpus, "",
          "CPUs jobs may ask for in all (2, 0.5; default: the CPUs this process may run on).");
ABSL_FLAG(std::string, memory, "",
          "Memory jobs may ask for in all (16GiB, 512M; default: the machine's physical memory).");
ABSL_FLAG(int32_t, gpus, -1, "GPUs jobs may ask for in all (default: /dev/nvidia0, 1, ...).");

ABSL_FLAG(std::string, docker_socket, deja::kDefaultDockerSocket,
          "Unix socket of the container engine (Docker, or podman's compatible service) that "
          "runs jobs with an image. Empty: no engine; the worker takes no image job.");
ABSL_FLAG(std::string, http_listen, "",
          "If set, HOST:PORT serving Prometheus metrics on /metrics (port 0 picks a free "
          "port). Unauthenticated: bind it to an address only your monitoring reaches. Off by "
          "default. See docs/operations.md.");
ABSL_FLAG(std::string, http_port_file, "",
          "If set, the bound HTTP port is written to this file once serving.");
ABSL_FLAG(std::string, log_format, "text",
          "The log on stderr: text (\"<RFC 3339 time> deja-worker: <event>\") or json (one "
          "object per line: time, daemon, msg).");
ABSL_FLAG(std::string, engine_work_dir, "",
          "Where the container engine sees --work_dir, when the worker itself runs in a "
          "container of that engine (default: the same path).");

namespace {

using deja::worker::WorkerConfig;

// The port of "HOST:PORT" ("[v6]:PORT" too), 0..65535.
absl::StatusOr<int> PortOf(const std::string& address) {
  const size_t colon = address.rfind(':');
  int port = -1;
  if (colon == std::string::npos || colon == 0 ||
      !absl::SimpleAtoi(absl::string_view(address).substr(colon + 1), &port) || port < 0 ||
      port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("\"", address, "\": expected HOST:PORT with a port in 0..65535"));
  }
  return port;
}

// A worker in a container of the engine it runs jobs with (the Compose
// cluster) bind-mounts paths the engine knows by their host names: where
// the engine sees the work dir, from this container's own mounts. "" (the
// same path) outside of a container, or when it cannot be told.
std::string DetectEngineWorkDir(const std::string& socket, const std::string& work_dir) {
  const std::string self = deja::OwnContainerId();
  if (self.empty()) return "";
  auto mounts = deja::DockerEngine(socket, absl::Seconds(3)).Mounts(self);
  if (!mounts.ok()) return "";  // no engine: no image job either
  std::string seen = deja::EnginePathOf(work_dir, *mounts);
  if (!seen.empty() && seen != work_dir) {
    deja::worker::Log("the container engine sees %s as %s", work_dir, seen);
  }
  return seen;
}

// /metrics on `listen`: the worker's counters, its disk, its version.
absl::StatusOr<std::unique_ptr<deja::HttpEndpoint>> StartHttp(const std::string& listen,
                                                              const std::string& work_dir,
                                                              deja::Metrics* metrics) {
  using Type = deja::Metrics::Type;
  metrics->Declare("deja_build_info", Type::kGauge,
                   "Always 1: the version and git commit of the worker.", {"version", "commit"});
  metrics->Set("deja_build_info", {std::string(deja::Version()), std::string(deja::GitCommit())},
               1);
  metrics->Declare("deja_worker_disk_free_bytes", Type::kGauge,
                   "Free bytes of the file system of --work_dir.");
  metrics->Declare("deja_worker_disk_total_bytes", Type::kGauge,
                   "Size of the file system of --work_dir.");
  metrics->AddCollector([work_dir](deja::Metrics& m) {
    auto space = deja::worker::ReadDiskSpace(work_dir);
    if (!space.ok()) return;
    m.Set("deja_worker_disk_free_bytes", {}, static_cast<double>(space->free_bytes));
    m.Set("deja_worker_disk_total_bytes", {}, static_cast<double>(space->total_bytes));
  });
  auto http = deja::HttpEndpoint::Start(listen, [metrics](httplib::Server& server) {
    server.Get("/metrics", [metrics](const httplib::Request&, httplib::Response& response) {
      response.set_content(metrics->Render(), "text/plain; version=0.0.4; charset=utf-8");
    });
  });
  if (!http.ok()) return http.status();
  deja::worker::Log("serving metrics on http port %d", (*http)->port());
  return http;
}

absl::StatusOr<WorkerConfig> ConfigFromFlags() {
  WorkerConfig config;
  config.scheduler_address = absl::GetFlag(FLAGS_scheduler);
  if (config.scheduler_address.empty()) {
    return absl::InvalidArgumentError("--scheduler: must not be empty");
  }

  const std::string work_dir = absl::GetFlag(FLAGS_work_dir);
  if (work_dir.empty()) return absl::InvalidArgumentError("--work_dir is required");
  std::error_code ec;
  std::filesystem::path abs = std::filesystem::absolute(work_dir, ec);
  if (ec) {
    return absl::InvalidArgumentError(absl::StrCat("--work_dir ", work_dir, ": ", ec.message()));
  }
  config.work_dir = abs.lexically_normal().string();
  if (config.work_dir.size() > 1 && config.work_dir.back() == '/') config.work_dir.pop_back();
  if (absl::Status st = deja::worker::paths::MakeDirs(config.work_dir); !st.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("--work_dir: ", st.message()));
  }

  const int32_t slots = absl::GetFlag(FLAGS_slots);
  if (slots < 1) {
    return absl::InvalidArgumentError(absl::StrCat("--slots ", slots, ": must be >= 1"));
  }
  config.slots = static_cast<uint32_t>(slots);

  config.worker_id = absl::GetFlag(FLAGS_id);
  if (config.worker_id.empty()) {
    auto id = deja::worker::LoadOrCreateWorkerId(config.work_dir);
    if (!id.ok()) return id.status();
    config.worker_id = *id;
  } else if (absl::Status st = deja::worker::ValidateWorkerId(config.worker_id); !st.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("--id ", st.message()));
  }

  const std::string advertise = absl::GetFlag(FLAGS_advertise);
  config.advertise = advertise.empty() ? absl::StrCat(deja::worker::Hostname(), ":0") : advertise;
  auto port = PortOf(config.advertise);
  if (!port.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("--advertise: ", port.status().message()));
  }
  config.peer_listen = absl::GetFlag(FLAGS_peer_listen);
  if (config.peer_listen.empty()) {
    // The address --advertise names. Without one, every interface: the host
    // name may resolve here to an address no other host reaches (Debian's
    // 127.0.1.1).
    config.peer_listen = advertise.empty() ? absl::StrCat("0.0.0.0:", *port) : advertise;
  } else if (auto listen_port = PortOf(config.peer_listen); !listen_port.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--peer_listen: ", listen_port.status().message()));
  }

  std::vector<std::string> notes;
  auto job_user = deja::worker::ResolveJobUser(absl::GetFlag(FLAGS_job_user),
                                               absl::GetFlag(FLAGS_allow_root_jobs), geteuid(),
                                               deja::worker::SystemUsers(), &notes);
  if (!job_user.ok()) return job_user.status();
  for (const std::string& note : notes) deja::worker::Log("%s", note);
  config.job_user = *job_user;
  if (config.job_user.has_value()) {
    if (access(deja::worker::kSetpriv, X_OK) != 0) {
      return absl::FailedPreconditionError(
          absl::StrCat("running jobs as user ", config.job_user->name, " needs ",
                       deja::worker::kSetpriv, " (Debian's util-linux)"));
    }
    deja::worker::Log("jobs run as user %s (uid %d)", config.job_user->name, config.job_user->uid);
  }

  config.scheduler_security.insecure = absl::GetFlag(FLAGS_insecure);
  const std::string tls_ca = absl::GetFlag(FLAGS_tls_ca);
  const std::string token_file = absl::GetFlag(FLAGS_token_file);
  if (config.scheduler_security.insecure) {
    if (!tls_ca.empty() || !token_file.empty()) {
      return absl::InvalidArgumentError(
          "--insecure: dials in plaintext, so --tls_ca and --token_file cannot be given");
    }
  } else {
    if (tls_ca.empty()) {
      return absl::InvalidArgumentError(
          "--tls_ca: required (the scheduler's DATA_DIR/tls/ca.crt), unless the scheduler "
          "runs with --insecure and so does this worker");
    }
    auto ca = deja::ReadWholeFile(tls_ca);
    if (!ca.ok())
      return absl::InvalidArgumentError(absl::StrCat("--tls_ca: ", ca.status().message()));
    config.scheduler_security.ca_pem = *std::move(ca);
    if (token_file.empty()) {
      return absl::InvalidArgumentError(
          "--token_file: required (a worker token: `deja token create --role worker`), unless "
          "the scheduler runs with --insecure and so does this worker");
    }
    auto token = deja::ReadTokenFile(token_file);
    if (!token.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("--token_file: ", token.status().message()));
    }
    config.scheduler_security.token = *std::move(token);
  }
  config.content_store_address = absl::GetFlag(FLAGS_content_store);
  if (config.content_store_address.empty()) {
    config.content_store_address = config.scheduler_address;
  }
  const int64_t cache_bytes = absl::GetFlag(FLAGS_cache_bytes);
  if (cache_bytes < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--cache_bytes ", cache_bytes, ": must be >= 0"));
  }
  config.cache_bytes = static_cast<uint64_t>(cache_bytes);

  config.sweep_interval = absl::GetFlag(FLAGS_sweep_interval);
  if (config.sweep_interval <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--sweep_interval ", absl::FormatDuration(config.sweep_interval), ": must be > 0"));
  }

  const int64_t min_free_disk = absl::GetFlag(FLAGS_min_free_disk);
  if (min_free_disk < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--min_free_disk ", min_free_disk, ": must be >= 0"));
  }
  config.min_free_disk = static_cast<uint64_t>(min_free_disk);

  config.store_retry_for = absl::GetFlag(FLAGS_store_retry_for);
  if (config.store_retry_for < absl::ZeroDuration()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--store_retry_for ", absl::FormatDuration(config.store_retry_for), ": must be >= 0"));
  }

  auto platform = deja::worker::ParsePlatform(absl::GetFlag(FLAGS_platform));
  if (!platform.ok()) return platform.status();
  config.platform = *std::move(platform);
  auto resources = deja::worker::WorkerResources(
      {absl::GetFlag(FLAGS_cpus), absl::GetFlag(FLAGS_memory), absl::GetFlag(FLAGS_gpus)});
  if (!resources.ok()) return resources.status();
  config.resources = *std::move(resources);
  config.docker_socket = absl::GetFlag(FLAGS_docker_socket);
  config.engine_work_dir = absl::GetFlag(FLAGS_engine_work_dir);
  if (!config.engine_work_dir.empty() && config.engine_work_dir.front() != '/') {
    return absl::InvalidArgumentError(
        absl::StrCat("--engine_work_dir ", config.engine_work_dir, ": must be an absolute path"));
  }
  if (config.engine_work_dir.empty() && !config.docker_socket.empty()) {
    config.engine_work_dir = DetectEngineWorkDir(config.docker_socket, config.work_dir);
  }
  return config;
}

}  // namespace

int main(int argc, char** argv) {
  // --platform is repeatable: its occurrences are merged before parsing.
  std::string merged;
  std::vector<char*> args = deja::worker::MergePlatformFlags(argc, argv, &merged);
  deja::ParseDaemonFlags(
      static_cast<int>(args.size()), args.data(), "deja-worker",
      "Runs Deja jobs for a deja-scheduler. The process started is the worker's watchdog\n"
      "(deja-watchdog): it passes its signals on to the worker, its child, and kills the\n"
      "worker's jobs if the worker dies or is cut off from the scheduler (docs/worker.md).\n"
      "Usage: deja-worker --work_dir=DIR [--scheduler=HOST:PORT] [--slots=N] [--id=ID]\n"
      "                   (--tls_ca=FILE --token_file=FILE | --insecure)\n"
      "                   [--advertise=HOST:PORT] [--peer_listen=HOST:PORT]\n"
      "                   [--content_store=HOST:PORT] [--cache_bytes=N] [--sweep_interval=D]\n"
      "                   [--min_free_disk=N] [--store_retry_for=D]\n"
      "                   [--job_user=USER] [--allow_root_jobs]\n"
      "                   [--platform K=V]... [--cpus=N] [--memory=SIZE] [--gpus=N]\n"
      "                   [--docker_socket=PATH] [--engine_work_dir=PATH]");

  std::optional<deja::LogFormat> log_format = deja::ParseLogFormat(absl::GetFlag(FLAGS_log_format));
  if (!log_format.has_value()) {
    absl::FPrintF(stderr, "deja-worker: --log_format=%s: use text or json\n",
                  absl::GetFlag(FLAGS_log_format));
    return 2;
  }
  deja::ConfigureEventLog("deja-worker", *log_format);
  auto config = ConfigFromFlags();
  if (!config.ok()) {
    deja::LogEvent(config.status().message());
    return 2;
  }

  // SIGTERM/SIGINT are taken by a dedicated thread (blocked everywhere else,
  // before gRPC starts threads); jobs get them unblocked by JobRunner.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  if (absl::Status locked = deja::worker::LockWorkDir(config->work_dir); !locked.ok()) {
    deja::LogEvent(locked.message());
    return 1;
  }
  // Before any thread: this process becomes the watchdog, and the worker
  // goes on in a fork of it (the watchdog kills the jobs if the worker dies
  // or gets stuck; worker/watchdog.h).
  auto contact = deja::worker::StartWatchdog(config->work_dir);
  if (!contact.ok()) {
    deja::LogEvent(contact.status().message());
    return 1;
  }
  config->contact = *contact;

  deja::worker::Log(
      "%s: id %s, work_dir %s, scheduler %s, content store %s, %d slots, "
      "cache %d bytes, sweep every %s, keeping %d bytes free; offers %s",
      deja::VersionLine("deja-worker"), config->worker_id, config->work_dir,
      config->scheduler_address, config->content_store_address, config->slots, config->cache_bytes,
      absl::FormatDuration(config->sweep_interval), config->min_free_disk,
      deja::FormatResources(config->resources));
  // In the worker (the watchdog's child): the metrics are the worker's.
  deja::Metrics metrics;
  config->metrics = &metrics;
  std::unique_ptr<deja::HttpEndpoint> http;
  if (const std::string listen = absl::GetFlag(FLAGS_http_listen); !listen.empty()) {
    auto started = StartHttp(listen, config->work_dir, &metrics);
    if (!started.ok()) {
      deja::LogEvent(started.status().message());
      return 2;
    }
    http = *std::move(started);
    deja::WritePortFile(absl::GetFlag(FLAGS_http_port_file), http->port());
  }
  deja::worker::Worker worker(*std::move(config));
  std::atomic<bool> run_returned{false};
  std::thread signal_thread([&worker, &run_returned, stop_signals] {
    int sig = 0;
    sigwait(&stop_signals, &sig);
    if (run_returned) return;  // the wake-up below, not a signal to act on
    deja::worker::Log("got signal %d, handing back its jobs and stopping", sig);
    worker.Leave(sig == SIGTERM ? "SIGTERM" : "SIGINT");
    worker.Stop();
  });

  absl::Status status = worker.Run();
  run_returned = true;
  worker.Stop();
  // Ends the sigwait if no signal came. Every thread blocks SIGTERM (it is
  // only ever taken by sigwait), so this wakes that thread and kills nothing.
  // NOLINTNEXTLINE(bugprone-bad-signal-to-kill-thread)
  pthread_kill(signal_thread.native_handle(), SIGTERM);
  signal_thread.join();
  http.reset();
  if (!status.ok()) {
    deja::LogEvent(status.ToString());
    return 1;
  }
  return 0;
}
