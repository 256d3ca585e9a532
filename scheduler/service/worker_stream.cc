#include "scheduler/service/worker_stream.h"

#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/credentials.h"
#include "common/grpc_status.h"

namespace deja {

WorkerStream::WorkerStream(SchedulerLoop* loop, Admit admit)
    : loop_(loop),
      admit_(std::move(admit)),
      outbox_(std::make_shared<WorkerOutbox>(
          [this](const deja::v1::SchedulerMessage* msg) { StartWrite(msg); },
          [this](const grpc::Status& s) { Finish(s); })) {
  StartRead(&in_);
}

void WorkerStream::OnReadDone(bool ok) {
  if (!ok) {
    outbox_->Finish(grpc::Status::OK);
    return;
  }
  auto msg = std::make_shared<deja::v1::WorkerMessage>(std::move(in_));
  in_.Clear();
  if (!registered_) {
    if (!msg->has_register_()) {
      outbox_->Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                   "the first message on a worker stream must be register"));
      return;
    }
    if (absl::Status admitted = admit_(msg->register_().worker_id()); !admitted.ok()) {
      outbox_->Finish(ToGrpcStatus(admitted));
      return;
    }
    registered_ = true;
    loop_->Post([loop = loop_, outbox = outbox_, msg] {
      loop->OnWorkerRegister(outbox, msg->register_());
    });
  } else {
    loop_->Post(
        [loop = loop_, outbox = outbox_.get(), msg] { loop->OnWorkerMessage(outbox, *msg); });
  }
  StartRead(&in_);
}

void WorkerStream::OnDone() {
  loop_->Post([loop = loop_, outbox = outbox_] { loop->OnWorkerGone(outbox.get()); });
  delete this;
}

grpc::ServerBidiReactor<deja::v1::WorkerMessage, deja::v1::SchedulerMessage>*
WorkerConnectService::Connect(grpc::CallbackServerContext* ctx) {
  auto caller = Admit(access_, *ctx, "Connect", Right::kWorker, std::nullopt);
  if (!caller.ok()) {
    return new Refused<
        grpc::ServerBidiReactor<deja::v1::WorkerMessage, deja::v1::SchedulerMessage>>(
        caller.status());
  }
  return new WorkerStream(loop_, [access = access_, caller = *std::move(caller),
                                  presented = PresentedCommonName(*ctx)](const std::string& id) {
    return access->CheckWorkerIdentity(caller, presented, id);
  });
}

grpc::ServerUnaryReactor* WorkerConnectService::Enroll(grpc::CallbackServerContext* ctx,
                                                       const deja::v1::EnrollRequest* request,
                                                       deja::v1::EnrollResponse* response) {
  auto* reactor = ctx->DefaultReactor();
  reactor->Finish(ToGrpcStatus(DoEnroll(*ctx, *request, response)));
  return reactor;
}

absl::Status WorkerConnectService::DoEnroll(const grpc::CallbackServerContext& ctx,
                                            const deja::v1::EnrollRequest& request,
                                            deja::v1::EnrollResponse* response) {
  auto caller = Admit(access_, ctx, "Enroll", Right::kWorker, std::nullopt);
  if (!caller.ok()) return caller.status();
  const std::string& id = request.worker_id();
  if (id.empty() || id.size() > 128 || id.find_first_of("/ \t\r\n") != std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("worker_id \"", id, "\": 1 to 128 characters, without '/' or white space"));
  }
  std::vector<std::string> names(request.names().begin(), request.names().end());
  if (names.empty()) names.emplace_back("localhost");
  auto issued = tls::Issue(issuer_, id, names, tls::kCertValidity);
  if (!issued.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("names: ", issued.status().message()));
  }
  if (absl::Status st = access_->Enroll(*caller, id, PresentedCommonName(ctx), issued->cert_pem);
      !st.ok()) {
    return st;
  }
  response->set_key_pem(std::move(issued->key_pem));
  response->set_cert_pem(std::move(issued->cert_pem));
  response->set_ca_pem(issuer_.cert_pem);
  return absl::OkStatus();
}

}  // namespace deja
