// SchedulerServer: deja-scheduler's gRPC front (the client Scheduler
// service, the WorkerService stream, the ContentStore service) around
// SchedulerCore and RocksStore. The pieces:
//
//   scheduler_loop.h     the event loop and commit path (owns the core)
//   scheduler_service.h  the client-facing Scheduler service (+ pipeline_rpcs.cc)
//   worker_stream.h      one worker's Connect stream
//   watch_stream.h       one WatchJob / WatchPipeline stream
//
// Execution model: gRPC reactions never block and never touch the core or
// the store. They post closures to one event-loop thread, which owns the
// core, runs every closure queued so far, writes the blobs the round built,
// commits the resulting Effects to RocksDB in one synced WriteBatch (group
// commit), and only then sends messages to workers, pushes job updates to
// watchers and finishes the RPCs. A client is never told about a write that
// a crash could lose.
//
// Thread-safety: public methods are thread-safe.
#ifndef DEJA_SCHEDULER_SERVICE_SCHEDULER_SERVER_H_
#define DEJA_SCHEDULER_SERVICE_SCHEDULER_SERVER_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "common/credentials.h"
#include "common/tls.h"
#include "scheduler/core/scheduler_core.h"

namespace deja {

struct SchedulerConfig {
  // host:port; port 0 picks a free port (see SchedulerServer::port()).
  std::string listen = "127.0.0.1:7070";
  std::string data_dir;
  CoreOptions core;
  // How often the loop checks worker liveness and request timeouts.
  absl::Duration tick = absl::Milliseconds(100);
  // The content store's garbage collector (service/blob_collector.h): how
  // often it runs (the first time a minute after start, or sooner; zero:
  // never) and how long a blob created or used is kept whatever refers to
  // it.
  absl::Duration gc_interval = absl::Hours(1);
  absl::Duration gc_grace = absl::Hours(1);
  // How it listens (common/credentials.h): TLS and tokens unless insecure.
  ServerSecurity security;
  // The CA that signs workers' certificates (WorkerService.Enroll): the
  // cluster's own, whose certificate is in security.client_ca_pem.
  tls::KeyCert worker_issuer;
  // If set, where the scheduler writes what workers enroll with on every
  // start: ca.crt and worker.token (a worker token, kept while in force).
  std::string worker_credentials_dir;
  // If set, HOST:PORT of the HTTP side: /metrics (Prometheus) and the
  // dashboard (dashboard.h, docs/operations.md), behind the CLI's tokens.
  std::string http_listen;
};

class SchedulerServer {
 public:
  // Opens the store, restores state, and starts serving. Errors name the
  // data dir or listen address at fault. `clock` must outlive the server.
  static absl::StatusOr<std::unique_ptr<SchedulerServer>> Start(const SchedulerConfig& config,
                                                                Clock* clock);
  virtual ~SchedulerServer() = default;

  // The bound port.
  virtual int port() const = 0;
  // The bound HTTP port; 0 without http_listen.
  virtual int http_port() const = 0;
  // Blocks until Shutdown() is called from another thread.
  virtual void Wait() = 0;
  // Stops accepting calls, ends streams, stops the loop. Idempotent.
  virtual void Shutdown() = 0;
};

}  // namespace deja

#endif  // DEJA_SCHEDULER_SERVICE_SCHEDULER_SERVER_H_
