#include "scheduler/service/scheduler_server.h"

#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <thread>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "common/bytes.h"
#include "common/event_log.h"
#include "common/files.h"
#include "common/http_endpoint.h"
#include "common/job_spec.h"
#include "common/metrics.h"
#include "common/transfer_window.h"
#include "common/version.h"
#include "scheduler/access/access_control.h"
#include "scheduler/content/blob_store.h"
#include "scheduler/content/content_service.h"
#include "scheduler/service/blob_collector.h"
#include "scheduler/service/dashboard.h"
#include "scheduler/service/scheduler_loop.h"
#include "scheduler/service/scheduler_service.h"
#include "scheduler/service/worker_stream.h"
#include "scheduler/store/rocks_store.h"

namespace deja {
namespace {

// The core's view of the content store: whether a blob a submit or a memo
// hit references is there, which also marks it in use (BlobStore::Use) for
// the collector.
class ContentBlobIndex final : public BlobIndex {
 public:
  explicit ContentBlobIndex(BlobStore* blobs) : blobs_(blobs) {}
  bool Has(const std::string& digest, uint64_t size) override {
    deja::v1::BlobRef ref;
    ref.set_digest(digest);
    ref.set_size(size);
    return blobs_->Use(ref);
  }

 private:
  BlobStore* const blobs_;
};

// Owns the pieces and the gRPC server: the store, the content store, the
// event loop (which owns the core), and the three services.
class ServerImpl final : public SchedulerServer {
 public:
  ServerImpl(const SchedulerConfig& config, Clock* clock, std::unique_ptr<RocksStore> store,
             std::unique_ptr<BlobStore> blobs)
      : config_(config),
        store_(std::move(store)),
        blobs_(std::move(blobs)),
        blob_index_(blobs_.get()),
        access_(store_.get(), clock, !config.security.insecure),
        content_(blobs_.get(), &access_,
                 config.security.insecure ? std::string() : config.worker_issuer.cert_pem),
        loop_(config.tick, config.core, clock, store_.get(), blobs_.get(), &blob_index_, &metrics_),
        collector_(blobs_.get(), store_.get(), clock, config.gc_grace),
        scheduler_service_(&loop_, &access_, &collector_),
        worker_service_(&loop_, &access_, config.worker_issuer) {}

  ~ServerImpl() override { Shutdown(); }

  absl::Status Init() {
    if (auto s = loop_.Load(); !s.ok()) return s;
    if (!config_.security.insecure) {
      auto signer = tls::Signer::Create(config_.worker_issuer.key_pem);
      if (!signer.ok()) {
        return absl::Status(
            signer.status().code(),
            absl::StrCat("the CA key that signs workers' tickets: ", signer.status().message()));
      }
      loop_.SetTicketSigner(*std::move(signer));
    }
    LogEvent(absl::StrCat("restored state from ", config_.data_dir));
    if (absl::Status s = InitAccess(); !s.ok()) return s;

    grpc::EnableDefaultHealthCheckService(true);
    grpc::ServerBuilder builder;
    builder.AddListeningPort(config_.listen, MakeServerCredentials(config_.security), &port_);
    builder.SetMaxReceiveMessageSize(kMaxGrpcMessageBytes);
    builder.SetMaxSendMessageSize(kMaxGrpcMessageBytes);
    BoundTransferWindow(&builder);  // uploads stay small whatever the blob size
    builder.RegisterService(&scheduler_service_);
    builder.RegisterService(&worker_service_);
    builder.RegisterService(&content_);
    server_ = builder.BuildAndStart();
    if (server_ == nullptr || port_ == 0) {
      return absl::UnavailableError(absl::StrCat("cannot listen on ", config_.listen));
    }
    loop_.Start();
    if (absl::Status s = StartHttp(); !s.ok()) return s;
    if (config_.gc_interval > absl::ZeroDuration()) {
      collector_thread_ = std::thread([this] { CollectorThread(); });
    }
    return absl::OkStatus();
  }

  int port() const override { return port_; }
  int http_port() const override { return http_ == nullptr ? 0 : http_->port(); }

  void Wait() override {
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(&shut_down_));
  }

  void Shutdown() override {
    {
      absl::MutexLock lock(&mu_);
      if (shutting_down_) {
        mu_.Await(absl::Condition(&shut_down_));
        return;
      }
      shutting_down_ = true;
    }
    // The loop keeps running while gRPC cancels the streams, so that every
    // pending call is finished.
    if (collector_thread_.joinable()) collector_thread_.join();  // sees shutting_down_
    http_.reset();                                               // its handlers post to the loop
    if (server_ != nullptr) {
      server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
    }
    loop_.Stop();
    absl::MutexLock lock(&mu_);
    shut_down_ = true;
  }

 private:
  // Tokens: the first admin token (DATA_DIR/admin.token), and the worker
  // credentials exported for workers to enroll with.
  absl::Status InitAccess() {
    if (config_.security.insecure) return absl::OkStatus();
    if (absl::Status s = access_.Load(); !s.ok()) return s;
    const std::string admin_file = config_.data_dir + "/admin.token";
    auto admin = access_.EnsureAdminToken();
    if (!admin.ok()) return admin.status();
    if (admin->has_value()) {
      if (absl::Status s = WriteFileAtomically(admin_file, **admin + "\n", /*sync=*/true, 0600);
          !s.ok()) {
        return s;
      }
      LogEvent(absl::StrCat("a new admin token (every project) is in ", admin_file));
    } else {
      LogEvent(absl::StrCat("tokens on; the first admin token was written to ", admin_file));
    }
    const std::string& dir = config_.worker_credentials_dir;
    if (dir.empty()) return absl::OkStatus();
    const std::string token_file = dir + "/worker.token";
    auto current = ReadWholeFile(token_file);
    auto token = access_.EnsureWorkerToken(
        current.ok() ? std::string(absl::StripAsciiWhitespace(*current)) : std::string(),
        absl::StrCat("exported to ", dir, " for workers to enroll with"));
    if (!token.ok()) return token.status();
    if (absl::Status s = WriteFileAtomically(token_file, *token + "\n", /*sync=*/true, 0600);
        !s.ok()) {
      return s;
    }
    if (absl::Status s = WriteFileAtomically(dir + "/ca.crt", config_.security.client_ca_pem,
                                             /*sync=*/true, 0644);
        !s.ok()) {
      return s;
    }
    LogEvent(absl::StrCat("worker credentials in ", dir, " (ca.crt, worker.token)"));
    return absl::OkStatus();
  }

  // The HTTP side (--http_listen): /metrics, behind a token that may read
  // every project (or none with --insecure).
  absl::Status StartHttp() {
    if (config_.http_listen.empty()) return absl::OkStatus();
    metrics_.Declare("deja_build_info", Metrics::Type::kGauge,
                     "Always 1: the version and git commit of the scheduler.",
                     {"version", "commit"});
    metrics_.Set("deja_build_info", {std::string(Version()), std::string(GitCommit())}, 1);
    metrics_.AddCollector([this](Metrics& metrics) {
      // The core's state is the loop's: read it there, waiting a bounded time.
      auto done = std::make_shared<absl::Notification>();
      loop_.Post([this, done, &metrics] {
        loop_.CollectMetrics(metrics);
        done->Notify();
      });
      done->WaitForNotificationWithTimeout(absl::Seconds(5));
    });
    auto http = HttpEndpoint::Start(config_.http_listen, [this](httplib::Server& server) {
      dashboard_.Register(server);
      server.Get("/metrics", [this](const httplib::Request& request, httplib::Response& response) {
        if (!HttpAllowed(request, response, "GET /metrics")) return;
        response.set_content(metrics_.Render(), "text/plain; version=0.0.4; charset=utf-8");
      });
    });
    if (!http.ok()) return http.status();
    http_ = *std::move(http);
    LogEvent(absl::StrCat("serving metrics (/metrics) and the dashboard (/) on http port ",
                          http_->port()));
    return absl::OkStatus();
  }

  // Whether `request` carries a token that may read every project; if not,
  // answers it with 401 or 403.
  bool HttpAllowed(const httplib::Request& request, httplib::Response& response,
                   const std::string& what) {
    auto caller = AuthenticateHttp(access_, request, what);
    absl::Status allowed =
        caller.ok() ? access_.Authorize(*caller, Right::kRead, "") : caller.status();
    if (allowed.ok()) return true;
    response.status = allowed.code() == absl::StatusCode::kUnauthenticated ? 401 : 403;
    if (response.status == 401) response.set_header("WWW-Authenticate", "Bearer");
    response.set_content(std::string(allowed.message()) + "\n", "text/plain; charset=utf-8");
    return false;
  }

  // Collects every gc_interval (the first time after a minute at most)
  // until the server shuts down.
  void CollectorThread() {
    absl::Duration wait = std::min(config_.gc_interval, absl::Minutes(1));
    while (true) {
      {
        absl::MutexLock lock(&mu_);
        if (mu_.AwaitWithTimeout(absl::Condition(&shutting_down_), wait)) return;
      }
      wait = config_.gc_interval;
      auto stats = collector_.Collect();
      if (!stats.ok()) {
        LogEvent(absl::StrCat("content store collection failed: ", stats.status().ToString()));
        continue;
      }
      LogEvent(absl::StrCat("content store: ", stats->blobs(), " blobs, ",
                            FormatBytes(stats->bytes()), " kept; collected ",
                            stats->collected_blobs(), " (", FormatBytes(stats->collected_bytes()),
                            ")"));
    }
  }

  // Constant after construction.
  const SchedulerConfig config_;
  // Written on the loop thread only (records), by the content service
  // (blob metadata) and by access control (tokens, audit), thread-safe.
  const std::unique_ptr<RocksStore> store_;
  const std::unique_ptr<BlobStore> blobs_;  // thread-safe
  ContentBlobIndex blob_index_;
  Metrics metrics_;         // thread-safe
  AccessControl access_;    // thread-safe
  ContentService content_;  // sync handlers on gRPC's thread pool
  SchedulerLoop loop_;
  Dashboard dashboard_{&loop_, &access_};
  BlobCollector collector_;  // thread-safe
  SchedulerService scheduler_service_;
  WorkerConnectService worker_service_;

  absl::Mutex mu_;
  bool shutting_down_ ABSL_GUARDED_BY(mu_) = false;
  std::thread collector_thread_;
  bool shut_down_ ABSL_GUARDED_BY(mu_) = false;

  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<HttpEndpoint> http_;  // after the loop: stopped first
};

}  // namespace

absl::StatusOr<std::unique_ptr<SchedulerServer>> SchedulerServer::Start(
    const SchedulerConfig& config, Clock* clock) {
  if (config.data_dir.empty()) return absl::InvalidArgumentError("--data_dir: must be set");
  auto store = RocksStore::Open(config.data_dir);
  if (!store.ok()) return store.status();
  auto blobs = BlobStore::Open(config.data_dir + "/blobs", store->get());
  if (!blobs.ok()) return blobs.status();
  if ((*store)->manifests_inline()) {
    LogEvent("moving manifests into the content store (schema 3)");
    BlobStore* content = blobs->get();
    if (absl::Status s = (*store)->MoveManifestsOut(
            [content](absl::string_view bytes) { return content->Put(bytes); });
        !s.ok()) {
      return s;
    }
  }
  auto server = std::make_unique<ServerImpl>(config, clock, *std::move(store), *std::move(blobs));
  if (auto s = server->Init(); !s.ok()) return s;
  return server;
}

}  // namespace deja
