// SchedulerSession: the worker's gRPC link to the scheduler, one long-lived
// WorkerService.Connect stream at a time (gRPC sync client API). It knows
// nothing of jobs: it carries messages between the stream and a
// SessionHandler (the Worker, which feeds them to its WorkerCore).
//
// Execution model:
//   - Run() (on the caller's thread) loops until Stop(): a fresh channel,
//     connect with a deadline, send Register (SessionHandler::MakeRegister),
//     wait for RegisterAck, re-send every unacknowledged result, publish the
//     stream for Send(), then read SchedulerMessages on the Run() thread and
//     hand each to SessionHandler::OnMessage, until the stream ends; then
//     reconnect with exponential backoff (initial_backoff doubling to
//     max_backoff, with jitter; reset once a stream registered).
//   - A heartbeat thread per stream sends Heartbeat at the interval from
//     RegisterAck and calls SessionHandler::OnHeartbeat after each.
//   - Send() may be called from any thread; writes are serialised by
//     write_mu_. Until a stream is published (and after it ends) Send()
//     returns false: the next Register lists every held job, and results
//     are re-sent after it.
//
// Thread-safety: thread-safe; Run() is called once, Stop() from any thread
// (not from a signal handler). Lock order: write_mu_ before the handler's
// locks (UnackedResults() is called under write_mu_, so that a result that
// misses the re-sent list is sent by its own Send() on the new stream); mu_
// is a leaf, never held while calling out.
#ifndef DEJA_WORKER_SCHEDULER_SESSION_H_
#define DEJA_WORKER_SCHEDULER_SESSION_H_

#include <grpcpp/grpcpp.h>

#include <functional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/credentials.h"
#include "deja/v1/worker.grpc.pb.h"

namespace deja::worker {

// What the session needs of the worker.
class SessionHandler {
 public:
  virtual ~SessionHandler() = default;
  // The Register of a new stream (it lists the held jobs).
  virtual deja::v1::Register MakeRegister() = 0;
  // What each heartbeat carries (the disk's state).
  virtual deja::v1::Heartbeat MakeHeartbeat() = 0;
  // The results to re-send once registered, called under write_mu_.
  virtual std::vector<deja::v1::JobResult> UnackedResults() = 0;
  // The stream is published: Send() works from now on. `ack` is the
  // scheduler's RegisterAck.
  virtual void OnRegistered(const deja::v1::RegisterAck& ack) = 0;
  // A message after RegisterAck, on the Run() thread. Must not block.
  virtual void OnMessage(const deja::v1::SchedulerMessage& message) = 0;
  // After each heartbeat, on the heartbeat thread.
  virtual void OnHeartbeat() = 0;
  // A stream ended (or a connection attempt failed), on the Run() thread.
  virtual void OnSessionEnded() = 0;
};

class SchedulerSession {
 public:
  struct Options {
    std::string scheduler_address;
    ClientSecurity scheduler_security;
    // Called before each stream with a copy of scheduler_security, to add
    // the worker's certificate (enrolling for one when needed); an error
    // fails that attempt. Empty: none.
    std::function<absl::Status(ClientSecurity*)> prepare_security;
    absl::Duration connect_timeout = absl::Seconds(5);
    absl::Duration initial_backoff = absl::Milliseconds(100);
    absl::Duration max_backoff = absl::Seconds(5);
  };

  // `handler` (not owned) must outlive the session.
  SchedulerSession(Options options, SessionHandler* handler);

  SchedulerSession(const SchedulerSession&) = delete;
  SchedulerSession& operator=(const SchedulerSession&) = delete;

  // Serves streams until Stop(); a stream breaking is never an error (it
  // reconnects). Returns at once if Stop() came first.
  void Run() ABSL_LOCKS_EXCLUDED(mu_, write_mu_);

  // Makes Run() return soon: cancels the live stream, ends the backoff.
  void Stop() ABSL_LOCKS_EXCLUDED(mu_);

  // Cancels the live stream, if any; Run() connects and registers again.
  void Drop() ABSL_LOCKS_EXCLUDED(mu_);

  // The worker is leaving: no new stream from now on (one would only take
  // new work). The live one, if any, stays, to carry the results of the
  // jobs handed back, until it ends; Run() then waits for Stop().
  void Leave() ABSL_LOCKS_EXCLUDED(mu_);

  // Lowers the reconnect backoff's ceiling to `ceiling` (never raises it
  // above Options::max_backoff): a worker must be back within the
  // scheduler's --worker_timeout of its return, or its jobs run elsewhere.
  void CapBackoff(absl::Duration ceiling) ABSL_LOCKS_EXCLUDED(mu_);

  // Writes on the published stream; false when there is none or it broke.
  bool Send(const deja::v1::WorkerMessage& message) ABSL_LOCKS_EXCLUDED(write_mu_);

 private:
  using Stream = grpc::ClientReaderWriter<deja::v1::WorkerMessage, deja::v1::SchedulerMessage>;

  // One stream: connect, register, read until it ends. Sets `registered`
  // once RegisterAck arrived (the backoff then resets).
  absl::Status RunStream(bool* registered);
  // Waits for the channel to be ready (polling, so that Stop() is honoured).
  absl::Status Connect(grpc::Channel* channel);
  // Sends the unacknowledged results, then publishes `stream` for Send()
  // and tells the handler (with the scheduler's `ack`).
  void Publish(Stream* stream, const deja::v1::RegisterAck& ack) ABSL_LOCKS_EXCLUDED(write_mu_);
  void HeartbeatLoop(absl::Duration interval) ABSL_LOCKS_EXCLUDED(mu_);
  bool Stopping() const ABSL_LOCKS_EXCLUDED(mu_);
  // Stopping, or leaving: no stream is to be opened.
  bool Ending() const ABSL_LOCKS_EXCLUDED(mu_);
  bool HeartbeatShouldExit() const ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    return stream_done_ || stopping_;
  }
  // Sleeps `d` unless Stop() comes first.
  void SleepUnlessStopped(absl::Duration d) ABSL_LOCKS_EXCLUDED(mu_);

  // Constant after construction.
  const Options options_;
  SessionHandler* const handler_;

  absl::Mutex write_mu_;
  // The live stream once RegisterAck arrived; null otherwise.
  Stream* stream_ ABSL_GUARDED_BY(write_mu_) = nullptr;

  mutable absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool leaving_ ABSL_GUARDED_BY(mu_) = false;
  grpc::ClientContext* context_ ABSL_GUARDED_BY(mu_) = nullptr;  // of the live stream
  absl::Duration backoff_cap_ ABSL_GUARDED_BY(mu_) = absl::InfiniteDuration();
  bool stream_done_ ABSL_GUARDED_BY(mu_) = false;  // tells the heartbeat to end
};

}  // namespace deja::worker

#endif  // DEJA_WORKER_SCHEDULER_SESSION_H_
