#include "scheduler/service/worker_stream.h"

#include <utility>

namespace deja {

WorkerStream::WorkerStream(SchedulerLoop* loop)
    : loop_(loop),
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

}  // namespace deja
