// WorkerStream: the server side of one worker's WorkerService.Connect
// stream (a bidi callback reactor), and WorkerConnectService, the service
// that opens one per call.
//
// Reactions never block: each message read is posted to the SchedulerLoop,
// which owns the worker's session; writes go out one at a time through the
// stream's outbox (at most one read and one write in flight). The first
// message must be a Register, else the stream ends with INVALID_ARGUMENT.
//
// Lifetime: a WorkerStream deletes itself in OnDone, after posting its end
// to the loop (the outbox lives on in that closure, so its address is not
// reused before the loop forgets it).
#ifndef DEJA_SCHEDULER_SERVICE_WORKER_STREAM_H_
#define DEJA_SCHEDULER_SERVICE_WORKER_STREAM_H_

#include <grpcpp/grpcpp.h>

#include <memory>

#include "deja/v1/worker.grpc.pb.h"
#include "scheduler/access/call_auth.h"
#include "scheduler/service/scheduler_loop.h"

namespace deja {

class WorkerStream
    : public grpc::ServerBidiReactor<deja::v1::WorkerMessage, deja::v1::SchedulerMessage> {
 public:
  explicit WorkerStream(SchedulerLoop* loop);
  void OnReadDone(bool ok) override;
  void OnWriteDone(bool ok) override { outbox_->OnWriteDone(ok); }
  void OnDone() override;

 private:
  SchedulerLoop* const loop_;
  const std::shared_ptr<WorkerOutbox> outbox_;
  deja::v1::WorkerMessage in_;
  bool registered_ = false;  // only touched by OnReadDone, which never overlaps itself
};

// The WorkerService: Connect opens a WorkerStream for a worker token (any
// other caller is refused: scheduler/access). `loop` and `access` must
// outlive it.
class WorkerConnectService final : public deja::v1::WorkerService::CallbackService {
 public:
  WorkerConnectService(SchedulerLoop* loop, AccessControl* access) : loop_(loop), access_(access) {}
  grpc::ServerBidiReactor<deja::v1::WorkerMessage, deja::v1::SchedulerMessage>* Connect(
      grpc::CallbackServerContext* ctx) override {
    auto caller = Admit(access_, *ctx, "Connect", Right::kWorker, std::nullopt);
    if (!caller.ok()) {
      return new Refused<
          grpc::ServerBidiReactor<deja::v1::WorkerMessage, deja::v1::SchedulerMessage>>(
          caller.status());
    }
    return new WorkerStream(loop_);
  }

 private:
  SchedulerLoop* const loop_;
  AccessControl* const access_;
};

}  // namespace deja

#endif  // DEJA_SCHEDULER_SERVICE_WORKER_STREAM_H_
