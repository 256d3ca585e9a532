#include "worker/scheduler_session.h"

#include <algorithm>
#include <memory>
#include <random>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/grpc_status.h"
#include "worker/channel_args.h"
#include "worker/log.h"

namespace deja::worker {
namespace {

constexpr absl::Duration kDefaultHeartbeat = absl::Seconds(5);
constexpr absl::Duration kMinHeartbeat = absl::Milliseconds(10);
constexpr absl::Duration kConnectPoll = absl::Milliseconds(250);

}  // namespace

SchedulerSession::SchedulerSession(Options options, SessionHandler* handler)
    : options_(std::move(options)), handler_(handler) {}

void SchedulerSession::Stop() {
  absl::MutexLock lock(&mu_);
  stopping_ = true;
  if (context_ != nullptr) context_->TryCancel();
}

void SchedulerSession::Drop() {
  absl::MutexLock lock(&mu_);
  if (context_ != nullptr) context_->TryCancel();
}

void SchedulerSession::Leave() {
  absl::MutexLock lock(&mu_);
  leaving_ = true;
}

void SchedulerSession::CapBackoff(absl::Duration ceiling) {
  absl::MutexLock lock(&mu_);
  backoff_cap_ = ceiling;
}

bool SchedulerSession::Stopping() const {
  absl::MutexLock lock(&mu_);
  return stopping_;
}

bool SchedulerSession::Ending() const {
  absl::MutexLock lock(&mu_);
  return stopping_ || leaving_;
}

bool SchedulerSession::Send(const deja::v1::WorkerMessage& message) {
  absl::MutexLock lock(&write_mu_);
  if (stream_ == nullptr) return false;
  return stream_->Write(message);
}

void SchedulerSession::SleepUnlessStopped(absl::Duration d) {
  mu_.LockWhenWithTimeout(absl::Condition(&stopping_), d);
  mu_.Unlock();
}

void SchedulerSession::Run() {
  std::mt19937_64 rng(std::random_device{}());
  absl::Duration backoff = options_.initial_backoff;
  while (!Stopping()) {
    bool registered = false;
    absl::Status status = RunStream(&registered);
    handler_->OnSessionEnded();
    if (Ending()) {
      mu_.LockWhen(absl::Condition(&stopping_));  // leaving: no new stream
      mu_.Unlock();
      break;
    }
    if (registered) backoff = options_.initial_backoff;
    std::uniform_real_distribution<double> jitter(0.5, 1.0);
    const absl::Duration delay = backoff * jitter(rng);
    Log("reconnect to %s in %d ms: %s", options_.scheduler_address,
        absl::ToInt64Milliseconds(delay), status.ToString());
    SleepUnlessStopped(delay);
    absl::Duration cap;
    {
      absl::MutexLock lock(&mu_);
      cap = std::min(options_.max_backoff, backoff_cap_);
    }
    backoff = std::min(backoff * 2, std::max(cap, options_.initial_backoff));
  }
}

absl::Status SchedulerSession::Connect(grpc::Channel* channel) {
  const absl::Time deadline = absl::Now() + options_.connect_timeout;
  while (true) {
    if (Ending()) return absl::CancelledError("stopping");
    const grpc_connectivity_state state = channel->GetState(/*try_to_connect=*/true);
    if (state == GRPC_CHANNEL_READY) return absl::OkStatus();
    if (state == GRPC_CHANNEL_TRANSIENT_FAILURE || state == GRPC_CHANNEL_SHUTDOWN) {
      return absl::UnavailableError(
          absl::StrCat("cannot connect to scheduler ", options_.scheduler_address));
    }
    if (absl::Now() >= deadline) {
      return absl::UnavailableError(absl::StrCat("scheduler ", options_.scheduler_address,
                                                 " unreachable for ",
                                                 absl::FormatDuration(options_.connect_timeout)));
    }
    channel->WaitForStateChange(state,
                                absl::ToChronoTime(std::min(deadline, absl::Now() + kConnectPoll)));
  }
}

absl::Status SchedulerSession::RunStream(bool* registered) {
  // A fresh channel per stream, with its own subchannel: every attempt is
  // then a real connection attempt, paced by our backoff rather than gRPC's.
  // Connect with a deadline, polling so that Stop() is honoured quickly; a
  // refused connection fails at once instead of waiting out the deadline.
  if (Ending()) return absl::CancelledError("stopping");
  ClientSecurity security = options_.scheduler_security;
  if (options_.prepare_security) {
    if (absl::Status st = options_.prepare_security(&security); !st.ok()) return st;
  }
  std::shared_ptr<grpc::Channel> channel = grpc::CreateCustomChannel(
      options_.scheduler_address, MakeChannelCredentials(security), WorkerChannelArgs());
  if (absl::Status st = Connect(channel.get()); !st.ok()) return st;
  auto stub = deja::v1::WorkerService::NewStub(channel);

  grpc::ClientContext context;
  {
    absl::MutexLock lock(&mu_);
    if (stopping_ || leaving_) return absl::CancelledError("stopping");
    context_ = &context;
    stream_done_ = false;
  }
  std::unique_ptr<Stream> stream = stub->Connect(&context);

  // Ends the call properly: no more writes, drain reads, then Finish.
  // `fallback` (when not OK) is what the stream returns; `cancel` ends a
  // call the scheduler has not ended itself.
  auto finish = [&](absl::Status fallback, bool cancel) {
    {
      absl::MutexLock lock(&write_mu_);
      stream_ = nullptr;
    }
    if (cancel) context.TryCancel();
    deja::v1::SchedulerMessage ignored;
    while (stream->Read(&ignored)) {
    }
    grpc::Status status = stream->Finish();
    {
      absl::MutexLock lock(&mu_);
      context_ = nullptr;
    }
    if (!fallback.ok()) return fallback;
    if (status.ok()) return absl::UnavailableError("scheduler closed the stream");
    return FromGrpcStatus(status);
  };

  deja::v1::WorkerMessage hello;
  *hello.mutable_register_() = handler_->MakeRegister();
  if (!stream->Write(hello)) return finish(absl::OkStatus(), true);

  deja::v1::SchedulerMessage first;
  if (!stream->Read(&first)) return finish(absl::OkStatus(), false);
  if (!first.has_register_ack()) {
    return finish(
        absl::FailedPreconditionError(absl::StrCat("scheduler answered Register with message case ",
                                                   first.msg_case(), ", expected register_ack")),
        true);
  }
  *registered = true;
  absl::Duration interval = absl::Milliseconds(first.register_ack().heartbeat_interval_ms());
  if (interval <= absl::ZeroDuration()) interval = kDefaultHeartbeat;
  interval = std::max(interval, kMinHeartbeat);
  const deja::v1::Register& reg = hello.register_();
  Log("connected to %s as %s (%d slots, %d held jobs, heartbeat every %d ms)",
      options_.scheduler_address, reg.worker_id(), reg.slots(), reg.held_size(),
      absl::ToInt64Milliseconds(interval));

  Publish(stream.get(), first.register_ack());
  std::thread heartbeat([this, interval] { HeartbeatLoop(interval); });
  deja::v1::SchedulerMessage message;
  while (stream->Read(&message)) handler_->OnMessage(message);
  {
    absl::MutexLock lock(&mu_);
    stream_done_ = true;
  }
  heartbeat.join();
  return finish(absl::OkStatus(), false);
}

void SchedulerSession::Publish(Stream* stream, const deja::v1::RegisterAck& ack) {
  bool published = false;
  {
    // Results that were waiting go first. Holding write_mu_ from the list
    // to the publication, a result finished meanwhile is either in the list
    // or sent by its own Send() once the stream is published.
    absl::MutexLock write_lock(&write_mu_);
    std::vector<deja::v1::JobResult> pending = handler_->UnackedResults();
    bool ok = true;
    for (auto& result : pending) {
      deja::v1::WorkerMessage message;
      *message.mutable_result() = std::move(result);
      if (!(ok = stream->Write(message))) break;
    }
    if (!pending.empty()) Log("re-sent %d unacknowledged results", pending.size());
    if (ok) {
      stream_ = stream;
      published = true;
    }
  }
  if (published) handler_->OnRegistered(ack);
}

void SchedulerSession::HeartbeatLoop(absl::Duration interval) {
  deja::v1::WorkerMessage beat;
  while (true) {
    mu_.LockWhenWithTimeout(absl::Condition(this, &SchedulerSession::HeartbeatShouldExit),
                            interval);
    const bool exit = HeartbeatShouldExit();
    mu_.Unlock();
    if (exit) return;
    *beat.mutable_heartbeat() = handler_->MakeHeartbeat();
    Send(beat);
    handler_->OnHeartbeat();
  }
}

}  // namespace deja::worker
