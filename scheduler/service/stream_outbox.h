// StreamOutbox: the write side of a server-streaming callback reactor.
//
// gRPC allows one write in flight per stream and reactions must not block,
// so messages sent from any thread queue here and go out one at a time; the
// reactor calls OnWriteDone when each completes. Finish waits for the write
// in flight. Once finishing, Send is a no-op, so the event loop may hold a
// shared_ptr to an outbox whose reactor is gone.
//
// Thread-safe.
#ifndef DEJA_SCHEDULER_SERVICE_STREAM_OUTBOX_H_
#define DEJA_SCHEDULER_SERVICE_STREAM_OUTBOX_H_

#include <grpcpp/support/status.h>

#include <deque>
#include <functional>
#include <optional>
#include <utility>

#include "absl/synchronization/mutex.h"

namespace deja {

template <typename Message>
class StreamOutbox {
 public:
  // `start_write` and `finish` call the reactor's StartWrite / Finish; they
  // run with the outbox lock held and never after finish.
  StreamOutbox(std::function<void(const Message*)> start_write,
               std::function<void(const grpc::Status&)> finish)
      : start_write_(std::move(start_write)), finish_(std::move(finish)) {}

  // Queues `message`; false when the stream is finishing.
  bool Send(Message message) {
    absl::MutexLock lock(&mu_);
    if (finishing_) return false;
    queue_.push_back(std::move(message));
    if (!in_flight_) StartNext();
    return true;
  }

  // Sends `message`, then finishes the stream with OK.
  void SendAndFinish(Message message) {
    absl::MutexLock lock(&mu_);
    if (finishing_) return;
    queue_.push_back(std::move(message));
    finishing_ = true;
    pending_finish_ = grpc::Status::OK;
    if (!in_flight_) StartNext();
  }

  // Ends the stream after the write in flight, dropping queued messages.
  void Finish(const grpc::Status& status) {
    absl::MutexLock lock(&mu_);
    if (finishing_) return;
    finishing_ = true;
    // Keep the message in flight: its buffer must outlive the write.
    queue_.erase(in_flight_ ? queue_.begin() + 1 : queue_.begin(), queue_.end());
    pending_finish_ = status;
    if (!in_flight_) StartNext();
  }

  // From the reactor's OnWriteDone.
  void OnWriteDone(bool ok) {
    absl::MutexLock lock(&mu_);
    in_flight_ = false;
    queue_.pop_front();
    if (!ok) {  // the stream is broken: the read side notices and finishes
      queue_.clear();
      if (!finishing_) {
        finishing_ = true;
        pending_finish_ = grpc::Status(grpc::StatusCode::UNAVAILABLE, "write failed");
      }
    }
    StartNext();
  }

  bool finishing() {
    absl::MutexLock lock(&mu_);
    return finishing_;
  }

 private:
  void StartNext() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (!queue_.empty()) {
      in_flight_ = true;
      start_write_(&queue_.front());  // std::deque keeps the address stable
      return;
    }
    if (pending_finish_.has_value()) {
      grpc::Status status = *std::move(pending_finish_);
      pending_finish_.reset();
      finish_(status);
    }
  }

  // Constant after construction.
  const std::function<void(const Message*)> start_write_;
  const std::function<void(const grpc::Status&)> finish_;

  absl::Mutex mu_;
  std::deque<Message> queue_ ABSL_GUARDED_BY(mu_);  // front() is in flight
  bool in_flight_ ABSL_GUARDED_BY(mu_) = false;
  bool finishing_ ABSL_GUARDED_BY(mu_) = false;
  std::optional<grpc::Status> pending_finish_ ABSL_GUARDED_BY(mu_);
};

}  // namespace deja

#endif  // DEJA_SCHEDULER_SERVICE_STREAM_OUTBOX_H_
