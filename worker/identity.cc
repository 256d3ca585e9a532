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

bool WorkerIdentity::Usable(const tls::KeyCert& pair) const {
  if (!tls::CheckPair(pair).ok()) return false;
  auto info = tls::Inspect(pair.cert_pem);
  return info.ok() && info->common_name == worker_id_ &&
         tls::NamesAllWithTimeLeft(*info, names_, absl::Now());
}

absl::Status WorkerIdentity::Prepare(ClientSecurity* security) {
  if (current_.cert_pem.empty()) {
    // One file, key then certificate, written atomically: never a
    // certificate without its key.
    auto pem = ReadWholeFile(path_);
    const size_t cert = pem.ok() ? pem->find("-----BEGIN CERTIFICATE-----") : std::string::npos;
    if (cert != std::string::npos) current_ = {pem->substr(0, cert), pem->substr(cert)};
  }
  if (!Usable(current_)) {
    if (absl::Status st = Enroll(*security); !st.ok()) return st;
  }
  security->client = current_;
  return absl::OkStatus();
}

absl::Status WorkerIdentity::Enroll(const ClientSecurity& security) {
  // The old certificate, when it is still this worker's, proves the id is
  // ours: the scheduler renews it.
  ClientSecurity enrolling = security;
  auto info = tls::Inspect(current_.cert_pem);
  if (tls::CheckPair(current_).ok() && info.ok() && info->common_name == worker_id_ &&
      absl::Now() < info->not_after) {
    enrolling.client = current_;
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
  if (absl::Status st = WriteFileAtomically(path_, response.key_pem() + response.cert_pem(),
                                            /*sync=*/true, 0600);
      !st.ok()) {
    return st;
  }
  current_ = {response.key_pem(), response.cert_pem()};
  return absl::OkStatus();
}

}  // namespace deja::worker
