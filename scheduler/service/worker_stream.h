// WorkerStream: the server side of one worker's WorkerService.Connect
// stream (a bidi callback reactor), and WorkerConnectService, the service
// that opens one per call.
//
// Reactions never block: each message read is posted to the SchedulerLoop,
// which owns the worker's session; writes go out one at a time through the
// stream's outbox (at most one read and one write in flight). The first
// message must be a Register, else the stream ends with INVALID_ARGUMENT,
// for the worker id its certificate names (else PERMISSION_DENIED).
//
// Lifetime: a WorkerStream deletes itself in OnDone, after posting its end
// to the loop (the outbox lives on in that closure, so its address is not
// reused before the loop forgets it).
#ifndef DEJA_SCHEDULER_SERVICE_WORKER_STREAM_H_
#define DEJA_SCHEDULER_SERVICE_WORKER_STREAM_H_

#include <grpcpp/grpcpp.h>

#include <functional>
#include <memory>
#include <string>
#include <utility>

#include "common/tls.h"
#include "deja/v1/worker.grpc.pb.h"
#include "scheduler/access/call_auth.h"
#include "scheduler/service/scheduler_loop.h"

namespace deja {

class WorkerStream
    : public grpc::ServerBidiReactor<deja::v1::WorkerMessage, deja::v1::SchedulerMessage> {
 public:
  // `admit` says whether the stream may register as a worker id.
  using Admit = std::function<absl::Status(const std::string& worker_id)>;
  WorkerStream(SchedulerLoop* loop, Admit admit);
  void OnReadDone(bool ok) override;
  void OnWriteDone(bool ok) override { outbox_->OnWriteDone(ok); }
  void OnDone() override;

 private:
  SchedulerLoop* const loop_;
  const Admit admit_;
  const std::shared_ptr<WorkerOutbox> outbox_;
  deja::v1::WorkerMessage in_;
  bool registered_ = false;  // only touched by OnReadDone, which never overlaps itself
};

// The WorkerService: Enroll issues a worker certificate, signed by
// `issuer`, to a worker token; Connect opens a WorkerStream for a worker
// token presenting the certificate of the id it registers with (any other
// caller is refused: scheduler/access). `loop` and `access` must outlive it.
class WorkerConnectService final : public deja::v1::WorkerService::CallbackService {
 public:
  WorkerConnectService(SchedulerLoop* loop, AccessControl* access, tls::KeyCert issuer)
      : loop_(loop), access_(access), issuer_(std::move(issuer)) {}
  grpc::ServerBidiReactor<deja::v1::WorkerMessage, deja::v1::SchedulerMessage>* Connect(
      grpc::CallbackServerContext* ctx) override;
  grpc::ServerUnaryReactor* Enroll(grpc::CallbackServerContext* ctx,
                                   const deja::v1::EnrollRequest* request,
                                   deja::v1::EnrollResponse* response) override;

 private:
  absl::Status DoEnroll(const grpc::CallbackServerContext& ctx,
                        const deja::v1::EnrollRequest& request, deja::v1::EnrollResponse* response);

  SchedulerLoop* const loop_;
  AccessControl* const access_;
  const tls::KeyCert issuer_;
};

}  // namespace deja

#endif  // DEJA_SCHEDULER_SERVICE_WORKER_STREAM_H_
