// WatchStream<Message>: the server side of one WatchJob or WatchPipeline
// stream (a write callback reactor) of `Message`s about the record `id`.
// The SchedulerLoop holds its outbox among the record's watchers and sends
// each committed change; a cancelled call finishes CANCELLED.
//
// Lifetime: deletes itself in OnDone, after posting to the loop that the
// watcher is gone.
#ifndef DEJA_SCHEDULER_SERVICE_WATCH_STREAM_H_
#define DEJA_SCHEDULER_SERVICE_WATCH_STREAM_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>
#include <utility>

#include "deja/v1/job.pb.h"
#include "deja/v1/pipeline.pb.h"
#include "scheduler/service/scheduler_loop.h"
#include "scheduler/service/stream_outbox.h"

namespace deja {

template <typename Message>
class WatchStream : public grpc::ServerWriteReactor<Message> {
 public:
  WatchStream(SchedulerLoop* loop, std::string id)
      : loop_(loop),
        id_(std::move(id)),
        outbox_(std::make_shared<StreamOutbox<Message>>(
            [this](const Message* m) { this->StartWrite(m); },
            [this](const grpc::Status& s) { this->Finish(s); })) {}
  const std::shared_ptr<StreamOutbox<Message>>& outbox() const { return outbox_; }
  void OnWriteDone(bool ok) override { outbox_->OnWriteDone(ok); }
  void OnCancel() override { outbox_->Finish(grpc::Status::CANCELLED); }
  void OnDone() override {
    loop_->Post([loop = loop_, outbox = outbox_, id = id_] { Forget(loop, outbox.get(), id); });
    delete this;
  }

 private:
  static void Forget(SchedulerLoop* loop, JobWatchOutbox* outbox, const std::string& id) {
    loop->OnJobWatchDone(outbox, id);
  }
  static void Forget(SchedulerLoop* loop, PipelineWatchOutbox* outbox, const std::string& id) {
    loop->OnPipelineWatchDone(outbox, id);
  }

  SchedulerLoop* const loop_;
  const std::string id_;
  const std::shared_ptr<StreamOutbox<Message>> outbox_;
};

}  // namespace deja

#endif  // DEJA_SCHEDULER_SERVICE_WATCH_STREAM_H_
