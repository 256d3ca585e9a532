// B1: latency of a Submit that is a memo hit (no files), against a bare gRPC
// unary echo round trip to another process on the same machine.
#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "bench/bench.grpc.pb.h"
#include "bench/harness.h"
#include "common/credentials.h"
#include "common/tls.h"

namespace deja::bench {
namespace {

class EchoService final : public deja::bench::v1::Echo::CallbackService {
  grpc::ServerUnaryReactor* Echo(grpc::CallbackServerContext* ctx,
                                 const deja::v1::SubmitRequest* request,
                                 deja::v1::SubmitRequest* response) override {
    *response = *request;
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }
};

deja::v1::JobSpec NoopSpec() {
  deja::v1::JobSpec spec;
  spec.set_project("b1");
  spec.mutable_app()->set_name("noop");
  spec.mutable_app()->set_version("1");
  spec.mutable_app()->add_command("/bin/true");
  (*spec.mutable_params())["k"] = "v";
  return spec;
}

}  // namespace

int EchoServerMain(const std::string& port_file, const std::string& tls_dir) {
  EchoService service;
  grpc::ServerBuilder builder;
  int port = 0;
  auto tls = tls::LoadOrCreateCluster(tls_dir, {"127.0.0.1"});
  if (!tls.ok()) {
    std::fprintf(stderr, "echo server: %s\n", tls.status().ToString().c_str());
    return 1;
  }
  ServerSecurity security;
  security.server = tls->server;
  builder.AddListeningPort("127.0.0.1:0", MakeServerCredentials(security), &port);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) {
    std::fprintf(stderr, "echo server: cannot listen\n");
    return 1;
  }
  std::ofstream(port_file + ".tmp") << port << "\n";
  std::rename((port_file + ".tmp").c_str(), port_file.c_str());
  server->Wait();  // until killed
  return 0;
}

void RunB1(const Options& options, Report* report) {
  const int n = options.quick ? 200 : 2000;
  const int reps = options.Reps(5, 1);
  BenchCluster cluster(options.tmp_root, "b1");
  cluster.StartWorker("w1", 1);
  cluster.WaitForWorkers(1);
  // The same with TLS and tokens off: what security costs a submit.
  BenchCluster plain(options.tmp_root, "b1-insecure", {"--insecure"});
  plain.StartWorker("w1", 1);
  plain.WaitForWorkers(1);

  TempDir dir(options.tmp_root, "b1-echo");
  const std::string port_file = dir.path() + "/echo.port";
  Process echo(options.self,
               {"--mode=echo_server", "--port_file=" + port_file, "--dir=" + dir.path() + "/tls"},
               dir.path() + "/echo.log");
  const int port = WaitForPortFile(port_file, absl::Seconds(10), echo, dir.path() + "/echo.log");
  // Over TLS, as Deja's client is.
  ClientSecurity echo_security;
  echo_security.ca_pem = deja::testing::ReadFile(dir.path() + "/tls/ca.crt");
  auto stub = deja::bench::v1::Echo::NewStub(
      grpc::CreateChannel(absl::StrCat("127.0.0.1:", port), MakeChannelCredentials(echo_security)));

  // The source: one fresh run, so every later submit of the spec is a hit.
  deja::v1::JobSpec spec = NoopSpec();
  spec.set_request_id("b1-source");
  const std::string source = cluster.Submit(spec, "B1 source").job().job_id();
  deja::v1::Job done = cluster.Wait(source, absl::Seconds(60));
  Check(done.state() == deja::v1::SUCCEEDED, "B1 source job: " + done.DebugString());
  const std::string plain_source = plain.Submit(spec, "B1 source (insecure)").job().job_id();
  done = plain.Wait(plain_source, absl::Seconds(60));
  Check(done.state() == deja::v1::SUCCEEDED, "B1 source job (insecure): " + done.DebugString());

  int submitted = 1;
  int plain_submitted = 1;
  auto echo_once = [&](const deja::v1::SubmitRequest& request) {
    grpc::ClientContext ctx;  // a deadline, as DejaClient sets one
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    deja::v1::SubmitRequest response;
    const double t0 = Now();
    grpc::Status status = stub->Echo(&ctx, request, &response);
    const double t = Now() - t0;
    Check(status.ok(), "echo: " + status.error_message());
    return t * 1e6;
  };
  auto submit_once = [&](const deja::v1::JobSpec& hit) {
    const double t0 = Now();
    absl::StatusOr<deja::v1::SubmitResponse> r = cluster.client().Submit(hit);
    const double t = Now() - t0;
    ++submitted;
    Must(r.status(), "submit a memo hit");
    Check(r->reused() && r->job().reused_from() == source,
          "a B1 submit was not a memo hit: " + r->job().message());
    return t * 1e6;
  };
  auto plain_submit_once = [&](const deja::v1::JobSpec& hit) {
    const double t0 = Now();
    absl::StatusOr<deja::v1::SubmitResponse> r = plain.client().Submit(hit);
    const double t = Now() - t0;
    ++plain_submitted;
    Must(r.status(), "submit a memo hit (insecure)");
    Check(r->reused() && r->job().reused_from() == plain_source,
          "a B1 submit (insecure) was not a memo hit: " + r->job().message());
    return t * 1e6;
  };
  // Drains the MATERIALIZE jobs the hits queued on w1, so that every
  // repetition starts with an idle cluster.
  auto drain = [&] {
    const double t0 = Now();
    for (auto [c, count] : {std::pair{&cluster, &submitted}, std::pair{&plain, &plain_submitted}}) {
      WaitFor(
          [&] {
            auto stats = c->client().Stats("b1", 0);
            return stats.ok() && stats->total().succeeded() == static_cast<uint64_t>(*count);
          },
          absl::Seconds(300), "B1 reuses to finish", absl::Milliseconds(100));
    }
    return Now() - t0;
  };

  // Warm up both channels.
  deja::v1::SubmitRequest echo_request;
  *echo_request.mutable_spec() = spec;
  for (int i = 0; i < 20; ++i) {
    echo_once(echo_request);
    deja::v1::JobSpec hit = spec;
    hit.set_request_id(absl::StrCat("b1-warm-", i));
    submit_once(hit);
    plain_submit_once(hit);
  }
  double drained = drain();

  std::vector<double> deja_p50, deja_p99, echo_p50, echo_p99, r50, r99, plain_p50, security;
  for (int rep = 0; rep < reps; ++rep) {
    std::vector<double> echo_lat, deja_lat, plain_lat;
    auto run_echo = [&] {
      for (int i = 0; i < n; ++i) {
        echo_request.mutable_spec()->set_request_id(absl::StrCat("b1-", rep, "-", i));
        echo_lat.push_back(echo_once(echo_request));
      }
    };
    auto run_deja = [&] {
      deja::v1::JobSpec hit = spec;
      for (int i = 0; i < n; ++i) {
        hit.set_request_id(absl::StrCat("b1-", rep, "-", i));
        deja_lat.push_back(submit_once(hit));
      }
    };
    auto run_plain = [&] {
      deja::v1::JobSpec hit = spec;
      for (int i = 0; i < n; ++i) {
        hit.set_request_id(absl::StrCat("b1-", rep, "-", i));
        plain_lat.push_back(plain_submit_once(hit));
      }
    };
    if (rep % 2 == 0) {
      run_echo();
      run_deja();
      run_plain();
    } else {
      run_plain();
      run_deja();
      run_echo();
    }
    plain_p50.push_back(Percentile(plain_lat, 50));
    deja_p50.push_back(Percentile(deja_lat, 50));
    deja_p99.push_back(Percentile(deja_lat, 99));
    echo_p50.push_back(Percentile(echo_lat, 50));
    echo_p99.push_back(Percentile(echo_lat, 99));
    r50.push_back(deja_p50.back() / echo_p50.back());
    r99.push_back(deja_p99.back() / echo_p99.back());
    security.push_back(deja_p50.back() / plain_p50.back());
    Log(absl::StrCat("B1 rep ", rep, ": submit p50 ", FmtNum(deja_p50.back(), 0), " us p99 ",
                     FmtNum(deja_p99.back(), 0), " us; echo p50 ", FmtNum(echo_p50.back(), 0),
                     " us p99 ", FmtNum(echo_p99.back(), 0), " us"));
    drained = std::max(drained, drain());
  }

  // Diagnostics of what a submit is made of, after the measured batches.
  // The durable commit's floor: fdatasync of a small append on this disk.
  std::vector<double> sync_lat;
  {
    const std::string probe = cluster.root() + "/fdatasync-probe";
    int fd = open(probe.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    Check(fd >= 0, "open " + probe);
    const std::string block(1024, 'x');
    for (int i = 0; i < 200; ++i) {
      Check(write(fd, block.data(), block.size()) == static_cast<ssize_t>(block.size()), "write");
      const double t0 = Now();
      Check(fdatasync(fd) == 0, "fdatasync");
      sync_lat.push_back((Now() - t0) * 1e6);
    }
    close(fd);
  }
  // The same client, service and event-loop round trip with nothing to commit.
  std::vector<double> get_lat;
  for (int i = 0; i < n; ++i) {
    const double t0 = Now();
    Must(cluster.client().GetJob(source).status(), "get job");
    get_lat.push_back((Now() - t0) * 1e6);
  }
  // Submits with the worker paused, so that no reuse runs alongside.
  std::vector<double> paused_lat;
  cluster.SignalWorker("w1", SIGSTOP);
  {
    deja::v1::JobSpec hit = spec;
    for (int i = 0; i < n; ++i) {
      hit.set_request_id(absl::StrCat("b1-paused-", i));
      paused_lat.push_back(submit_once(hit));
    }
  }
  cluster.SignalWorker("w1", SIGCONT);

  const Summary ratio50 = Summarize(r50);
  report->Add({absl::StrCat("B1 submit of a memo hit, p50 (", n, " sequential)"),
               Fmt(Summarize(deja_p50), 0, "µs"), Fmt(Summarize(echo_p50), 0, "µs") + " gRPC echo",
               Fmt(ratio50, 2, "×"), "≤ 1.5×", ratio50.median <= 1.5});
  report->Add({"B1 submit of a memo hit, p99", Fmt(Summarize(deja_p99), 0, "µs"),
               Fmt(Summarize(echo_p99), 0, "µs") + " gRPC echo", Fmt(Summarize(r99), 2, "×"), "—",
               std::nullopt});
  const Summary cost = Summarize(security);
  report->Add({"B1 submit of a memo hit, p50: TLS and tokens on (default) vs off",
               Fmt(Summarize(deja_p50), 0, "µs"),
               Fmt(Summarize(plain_p50), 0, "µs") + " `--insecure`", Fmt(cost, 2, "×"), "≤ 1.2×",
               cost.median <= 1.2});
  report->Note(absl::StrCat(
      "**B1.** ", Reps(reps), " of ", n,
      " sequential `DejaClient::Submit` calls of the same no-file spec (a new request id "
      "each), every one a memo hit answered once its job record is committed (RocksDB "
      "`sync = true`); one worker with 1 slot performs the reuses the hits queue. Baseline: "
      "a unary call of a callback-API echo service (`bench/bench.proto`, same gRPC build, "
      "over TLS as Deja's client is) in another process, the same `SubmitRequest` bytes each way, "
      "interleaved with Deja's "
      "batches. The scheduler runs with TLS and tokens on (its default: the client sends its "
      "token over TLS, the scheduler checks it on every call); a second cluster with "
      "`--insecure` (plaintext, no tokens) gets the same batches, interleaved, and the cost "
      "of security is the ratio of the two p50s, rep by rep (target ≤ 1.2×). Between repetitions "
      "the queued reuses are drained (longest drain ",
      FmtNum(drained, 1),
      " s), so each repetition starts idle. Diagnostics from the same run "
      "(p50): `fdatasync` of a 1 KiB append on the same disk ",
      FmtNum(Percentile(sync_lat, 50), 0),
      " µs; `GetJob` (same client, service and "
      "event-loop round, nothing to commit) ",
      FmtNum(Percentile(get_lat, 50), 0),
      " µs; memo-hit submits with the worker paused (SIGSTOP: no reuse work alongside) ",
      FmtNum(Percentile(paused_lat, 50), 0), " µs (p99 ", FmtNum(Percentile(paused_lat, 99), 0),
      " µs)."));
}

}  // namespace deja::bench
