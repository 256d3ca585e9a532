#include "worker/identity.h"

#include <grpcpp/grpcpp.h>
#include <sys/stat.h>

#include <cerrno>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/errors.h"
#include "common/files.h"
#include "common/grpc_status.h"
#include "deja/v1/worker.grpc.pb.h"
#include "worker/paths.h"

namespace deja::worker {

WorkerIdentity::WorkerIdentity(const std::string& work_dir, std::string worker_id,
                               std::vector<std::string> names, std::string scheduler_address,
                               absl::Duration timeout)
    : dir_(paths::TlsDir(work_dir)),
      path_(paths::IdentityPath(work_dir)),
      worker_id_(std::move(worker_id)),
      names_(std::move(names)),
      scheduler_address_(std::move(scheduler_address)),
      timeout_(timeout) {}

bool WorkerIdentity::Usable(const tls::KeyCert& pair, const std::string& ca_pem) const {
  if (!tls::CheckPair(pair).ok() || ca_pem.empty()) return false;
  auto info = tls::Inspect(pair.cert_pem);
  const absl::Time now = absl::Now();
  return info.ok() && info->common_name == worker_id_ &&
         tls::NamesAllWithTimeLeft(*info, names_, now) &&
         tls::Verify(pair.cert_pem, ca_pem, now).ok();
}

absl::Status WorkerIdentity::Prepare(ClientSecurity* security) {
  tls::KeyCert current;
  std::string ca_pem;
  {
    absl::MutexLock lock(&mu_);
    if (current_.cert_pem.empty()) {
      // One file, key, certificate and CA, written atomically: never a
      // certificate without its key.
      if (auto pem = ReadWholeFile(path_); pem.ok()) {
        tls::Identity identity = tls::SplitIdentityPem(*pem);
        if (!identity.pair.cert_pem.empty()) {
          current_ = std::move(identity.pair);
          ca_pem_ = std::move(identity.ca_pem);
        }
      }
    }
    current = current_;
    ca_pem = ca_pem_;
  }
  if (!Usable(current, ca_pem)) {
    if (absl::Status st = Enroll(*security); !st.ok()) return st;
  }
  absl::MutexLock lock(&mu_);
  usable_ = true;
  security->client = current_;
  return absl::OkStatus();
}

absl::StatusOr<PeerTls> WorkerIdentity::Peer() const {
  absl::MutexLock lock(&mu_);
  if (!usable_) {
    return absl::FailedPreconditionError(
        absl::StrCat("worker ", worker_id_, " has no certificate yet (not enrolled)"));
  }
  return PeerTls{current_, ca_pem_};
}

absl::Status WorkerIdentity::Enroll(const ClientSecurity& security) {
  // The old certificate, when it is still this worker's, proves the id is
  // ours: the scheduler renews it.
  ClientSecurity enrolling = security;
  tls::KeyCert current;
  {
    absl::MutexLock lock(&mu_);
    current = current_;
  }
  auto info = tls::Inspect(current.cert_pem);
  if (tls::CheckPair(current).ok() && info.ok() && info->common_name == worker_id_ &&
      absl::Now() < info->not_after) {
    enrolling.client = current;
  }
  auto stub = deja::v1::WorkerService::NewStub(
      grpc::CreateChannel(scheduler_address_, MakeChannelCredentials(enrolling)));
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + timeout_));
  deja::v1::EnrollRequest request;
  request.set_worker_id(worker_id_);
  for (const std::string& name : names_) request.add_names(name);
  deja::v1::EnrollResponse response;
  if (absl::Status st = FromGrpcStatus(stub->Enroll(&ctx, request, &response)); !st.ok()) {
    return absl::Status(st.code(), absl::StrCat("enrolling as worker ", worker_id_,
                                                " with the "
                                                "scheduler: ",
                                                st.message()));
  }
  if (mkdir(dir_.c_str(), 0700) != 0 && errno != EEXIST) {
    return ErrnoStatus(errno, "mkdir " + dir_);
  }
  if (response.ca_pem().empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "enrolling as worker ", worker_id_,
        ": the scheduler sent no CA certificate (a scheduler older than this worker?)"));
  }
  if (absl::Status st = WriteFileAtomically(
          path_, absl::StrCat(response.key_pem(), response.cert_pem(), response.ca_pem()),
          /*sync=*/true, 0600);
      !st.ok()) {
    return st;
  }
  absl::MutexLock lock(&mu_);
  current_ = {response.key_pem(), response.cert_pem()};
  ca_pem_ = response.ca_pem();
  return absl::OkStatus();
}

}  // namespace deja::worker
