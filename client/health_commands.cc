#include "client/health_commands.h"

#include <CLI/CLI.hpp>
#include <memory>

#include "absl/strings/str_cat.h"
#include "client/cli.h"
#include "common/bytes.h"
#include "common/files.h"
#include "common/tls.h"

namespace deja::cli {
namespace {

using grpc::health::v1::HealthCheckResponse;

std::string StatusName(HealthCheckResponse::ServingStatus status) {
  return HealthCheckResponse::ServingStatus_Name(status);
}

// "connected, 2 of 4 slots busy, 81.2 GiB free" / "disconnected".
std::string WorkerHealth(const deja::v1::WorkerInfo& worker) {
  if (!worker.connected()) return "disconnected";
  std::string line =
      absl::StrCat("connected, ", worker.busy_slots(), " of ", worker.slots(), " slots busy, ",
                   FormatBytes(worker.disk().free_bytes()), " free");
  if (!worker.disk().refusing().empty()) absl::StrAppend(&line, "; ", worker.disk().refusing());
  return line;
}

}  // namespace

void HealthCommands::Register(CommandTable& table) {
  struct Flags {
    std::string target;
    std::string identity;
  };
  auto flags = std::make_shared<Flags>();
  CLI::App* health = table.AddCommand(
      "health",
      "Check that the scheduler answers (gRPC health: SERVING) and how each worker stands; or "
      "check one daemon at ADDRESS. Exit 0 when SERVING",
      [flags](CommandContext& context) {
        return HealthCommands(context).Check(flags->target, flags->identity);
      });
  health
      ->add_option("ADDRESS", flags->target,
                   "A daemon's HOST:PORT to check instead: a worker's peer port (--advertise), "
                   "or a scheduler")
      ->type_name("ADDRESS");
  health
      ->add_option("--identity", flags->identity,
                   "PEM file with the client key and certificate to present (a worker's "
                   "WORK_DIR/meta/tls/worker.pem): a worker's peer port under TLS takes only "
                   "callers with a worker certificate")
      ->type_name("FILE");
}

int HealthCommands::Check(const std::string& target, const std::string& identity_file) {
  tls::KeyCert identity;
  if (!identity_file.empty()) {
    auto pem = ReadWholeFile(identity_file);
    if (!pem.ok()) {
      return context_.UsageError(absl::InvalidArgumentError(
          absl::StrCat("--identity ", identity_file, ": ", pem.status().message())));
    }
    identity = tls::SplitIdentityPem(*pem).pair;
    if (identity.cert_pem.empty() || identity.key_pem.empty()) {
      return context_.UsageError(absl::InvalidArgumentError(
          absl::StrCat("--identity ", identity_file, ": holds no key and certificate (PEM)")));
    }
  }
  const std::string name = target.empty() ? "scheduler" : target;
  auto status = context_.client().CheckHealth(target, identity);
  if (!status.ok()) {
    if (context_.json()) {
      context_.out() << "{\"target\":\"" << name << "\",\"status\":\"UNREACHABLE\"}\n";
    }
    return context_.Fail(status.status());
  }
  const bool serving = *status == HealthCheckResponse::SERVING;
  if (context_.json()) {
    context_.out() << "{\"target\":\"" << name << "\",\"status\":\"" << StatusName(*status)
                   << "\"}\n";
  } else {
    context_.out() << name << ": " << StatusName(*status) << "\n";
  }
  if (!target.empty() || !serving) return serving ? kExitOk : kExitError;
  // The workers, as the scheduler sees them: reported, never failing the
  // check (a scheduler with no worker is healthy).
  auto workers = context_.client().ListWorkers();
  if (!workers.ok()) {
    if (!context_.json()) {
      context_.out() << "workers: not listed (" << workers.status().message() << ")\n";
    }
    return kExitOk;
  }
  for (const deja::v1::WorkerInfo& worker : *workers) {
    if (context_.json()) {
      context_.PrintJson(worker);
    } else {
      context_.out() << "worker " << worker.worker_id() << ": " << WorkerHealth(worker) << "\n";
    }
  }
  return kExitOk;
}

}  // namespace deja::cli
