// deja-scheduler: accepts jobs over gRPC, keeps them and the memo index in
// RocksDB, and dispatches them to deja-worker daemons.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "common/clock.h"
#include "common/credentials.h"
#include "common/daemon_flags.h"
#include "common/event_log.h"
#include "common/files.h"
#include "common/tls.h"
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
ABSL_FLAG(bool, insecure, false,
          "Serve in plaintext and take no tokens: whoever reaches --listen may do anything. "
          "Only for a single trusted host or a test (the scheduler warns when --listen "
          "reaches beyond loopback).");
ABSL_FLAG(std::string, tls_cert, "",
          "The scheduler's certificate (PEM), from the operator's own CA; with --tls_key and "
          "--tls_ca. Default: the cluster's own CA and a certificate it issues, created on "
          "first start in DATA_DIR/tls (clients trust DATA_DIR/tls/ca.crt).");
ABSL_FLAG(std::string, tls_key, "", "The key of --tls_cert (PEM).");
ABSL_FLAG(std::string, tls_ca, "",
          "The CA (PEM) that signed --tls_cert: what clients and workers trust.");
ABSL_FLAG(std::vector<std::string>, tls_names, {},
          "More names and addresses clients reach the scheduler at, for the certificate it "
          "issues itself (comma-separated). It always names localhost, 127.0.0.1, ::1, this "
          "host's name and --listen's host.");
ABSL_FLAG(std::string, worker_credentials_dir, "",
          "If set, the scheduler writes what workers need to join into this directory on "
          "every start: ca.crt, and worker.token (a worker token, created once and kept while "
          "in force). For clusters whose workers share a volume with it (Compose).");
ABSL_FLAG(std::string, port_file, "",
          "If set, the bound port is written to this file once serving (for --listen=...:0).");
ABSL_FLAG(std::string, http_listen, "",
          "If set, HOST:PORT of the HTTP side (port 0 picks a free port): the web dashboard on "
          "/ and Prometheus metrics on /metrics, behind the CLI's tokens (/metrics: one that "
          "may read every project); none with --insecure. Off by default. See "
          "docs/operations.md.");
ABSL_FLAG(std::string, http_port_file, "",
          "If set, the bound HTTP port is written to this file once serving "
          "(for --http_listen=...:0).");
ABSL_FLAG(std::string, log_format, "text",
          "The log on stderr: text (\"<RFC 3339 time> deja-scheduler: <event> key=value...\") "
          "or json (one object per line: time, daemon, msg and the event's fields).");

namespace {

// The names the certificate the scheduler issues itself carries.
std::vector<std::string> CertificateNames(const std::string& listen) {
  std::vector<std::string> names = {"localhost", "127.0.0.1", "::1"};
  char host[256] = {};
  if (gethostname(host, sizeof(host) - 1) == 0 && host[0] != '\0') names.emplace_back(host);
  const std::string listen_host = deja::HostOf(listen);
  if (!listen_host.empty() && listen_host != "0.0.0.0" && listen_host != "::") {
    names.push_back(listen_host);
  }
  for (const std::string& name : absl::GetFlag(FLAGS_tls_names)) names.push_back(name);
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  return names;
}

// The scheduler's TLS material: the operator's (--tls_cert, --tls_key,
// --tls_ca), or the cluster's own in DATA_DIR/tls. Workers' certificates
// are always signed by the cluster's own CA (config->worker_issuer).
absl::StatusOr<deja::ServerSecurity> SecurityFromFlags(deja::SchedulerConfig* config) {
  const std::string cert = absl::GetFlag(FLAGS_tls_cert);
  const std::string key = absl::GetFlag(FLAGS_tls_key);
  const std::string ca = absl::GetFlag(FLAGS_tls_ca);
  deja::ServerSecurity security;
  if (absl::GetFlag(FLAGS_insecure)) {
    if (!cert.empty() || !key.empty() || !ca.empty()) {
      return absl::InvalidArgumentError(
          "--insecure: serves plaintext, so --tls_cert, --tls_key and --tls_ca cannot be given");
    }
    security.insecure = true;
    return security;
  }
  if (!cert.empty() || !key.empty() || !ca.empty()) {
    if (cert.empty() || key.empty() || ca.empty()) {
      return absl::InvalidArgumentError(
          "--tls_cert, --tls_key and --tls_ca: give all three, or none (the scheduler then "
          "makes its own in DATA_DIR/tls)");
    }
    for (const auto& [flag, path, pem] : {std::tuple{"--tls_cert", cert, &security.server.cert_pem},
                                          std::tuple{"--tls_key", key, &security.server.key_pem},
                                          std::tuple{"--tls_ca", ca, &security.client_ca_pem}}) {
      auto contents = deja::ReadWholeFile(path);
      if (!contents.ok()) {
        return absl::InvalidArgumentError(absl::StrCat(flag, ": ", contents.status().message()));
      }
      *pem = *std::move(contents);
    }
    if (absl::Status st = deja::tls::CheckPair(security.server); !st.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("--tls_cert, --tls_key: ", st.message()));
    }
    if (absl::Status st =
            deja::tls::Verify(security.server.cert_pem, security.client_ca_pem, absl::Now());
        !st.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--tls_cert: not a valid certificate of --tls_ca: ", st.message()));
    }
  }
  std::error_code error;
  std::filesystem::create_directories(config->data_dir, error);
  if (error) {
    return absl::InvalidArgumentError(
        absl::StrCat("--data_dir ", config->data_dir, ": ", error.message()));
  }
  auto cluster =
      deja::tls::LoadOrCreateCluster(config->data_dir + "/tls", CertificateNames(config->listen));
  if (!cluster.ok()) return cluster.status();
  if (cluster->ca.key_pem.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        config->data_dir, "/tls/ca.key is missing: workers' certificates cannot be issued"));
  }
  config->worker_issuer = cluster->ca;
  if (security.server.cert_pem.empty()) {
    security.server = std::move(cluster->server);
    security.client_ca_pem = std::move(cluster->ca.cert_pem);
  } else {
    // The operator's CA for clients, the cluster's own for workers.
    absl::StrAppend(&security.client_ca_pem, "\n", cluster->ca.cert_pem);
  }
  return security;
}

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
  config.http_listen = absl::GetFlag(FLAGS_http_listen);
  config.worker_credentials_dir = absl::GetFlag(FLAGS_worker_credentials_dir);
  if (!config.worker_credentials_dir.empty() && absl::GetFlag(FLAGS_insecure)) {
    return absl::InvalidArgumentError(
        "--worker_credentials_dir: an --insecure scheduler has no credentials to hand out");
  }
  auto security = SecurityFromFlags(&config);
  if (!security.ok()) return security.status();
  config.security = *std::move(security);
  return config;
}

}  // namespace

int main(int argc, char** argv) {
  deja::ParseDaemonFlags(
      argc, argv, "deja-scheduler",
      "The Deja scheduler. Accepts jobs from the deja CLI over gRPC, keeps\n"
      "jobs and the memo index in RocksDB under --data_dir, and dispatches work to\n"
      "deja-worker daemons.\n\n"
      "Usage: deja-scheduler --data_dir=DIR [--listen=HOST:PORT] [--worker_timeout=10s]\n"
      "                      [--max_attempts=3] [--dispatch_ahead=0]\n"
      "                      [--tls_names=NAME,... | --tls_cert=F --tls_key=F --tls_ca=F |\n"
      "                       --insecure]\n\n"
      "Every connection is TLS: on first start the scheduler makes the cluster's CA and its\n"
      "own certificate in DATA_DIR/tls; clients and workers trust DATA_DIR/tls/ca.crt.\n"
      "See docs/security.md.");
  std::optional<deja::LogFormat> log_format = deja::ParseLogFormat(absl::GetFlag(FLAGS_log_format));
  if (!log_format.has_value()) {
    std::fprintf(stderr, "deja-scheduler: --log_format=%s: use text or json\n",
                 absl::GetFlag(FLAGS_log_format).c_str());
    return 2;
  }
  deja::ConfigureEventLog("deja-scheduler", *log_format);
  auto config = ConfigFromFlags();
  if (!config.ok()) {
    deja::LogEvent(config.status().message());
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
    deja::LogEvent(server.status().message());
    return 1;
  }
  deja::LogEvent(absl::StrCat(deja::VersionLine("deja-scheduler"), " listening on port ",
                              (*server)->port(), ", data in ", config->data_dir));
  if (config->security.insecure) {
    deja::LogEvent(absl::StrCat(
        "--insecure: plaintext, no tokens",
        deja::IsLoopback(config->listen)
            ? ""
            : "; WARNING: --listen reaches beyond loopback, so anyone on the network can run "
              "commands on the workers and change what is stored"));
  } else if (absl::GetFlag(FLAGS_tls_cert).empty()) {
    deja::LogEvent(
        absl::StrCat("TLS on: clients and workers trust ", config->data_dir, "/tls/ca.crt"));
  } else {
    deja::LogEvent(absl::StrCat("TLS on: clients and workers trust ", absl::GetFlag(FLAGS_tls_ca)));
  }
  deja::WritePortFile(absl::GetFlag(FLAGS_port_file), (*server)->port());
  deja::WritePortFile(absl::GetFlag(FLAGS_http_port_file), (*server)->http_port());
  std::thread waiter([&] {
    int sig = 0;
    sigwait(&signals, &sig);
    deja::LogEvent(absl::StrCat("signal ", sig, ", shutting down"));
    (*server)->Shutdown();
  });
  (*server)->Wait();
  waiter.join();
  return 0;
}
