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

// The WorkerService: Connect opens a WorkerStream. `loop` must outlive it.
class WorkerConnectService final : public deja::v1::WorkerService::CallbackService {
 public:
  explicit WorkerConnectService(SchedulerLoop* loop) : loop_(loop) {}
  grpc::ServerBidiReactor<deja::v1::WorkerMessage, deja::v1::SchedulerMessage>* Connect(
      grpc::CallbackServerContext* /*ctx*/) override {
    return new WorkerStream(loop_);
  }

 private:
  SchedulerLoop* const loop_;
};

}  // namespace deja

#endif  // DEJA_SCHEDULER_SERVICE_WORKER_STREAM_H_
