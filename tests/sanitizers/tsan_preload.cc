// Shows ThreadSanitizer the happens-before edges that Debian's uninstrumented
// Abseil and gRPC make, so that only races in Deja's code are reported.
// Preloaded (LD_PRELOAD) into every process of scripts/test's tsan stage; it
// interposes a few exported functions, calls the real ones (found with
// dlsym(RTLD_NEXT)) and announces acquire and release around them.
//
// absl::Mutex. Its lock and unlock entry points (Mutex, CondVar) tell TSan
// the edge each one makes: acquire after a lock is taken, release before it
// is given up (Await and CondVar::Wait give it up and take it back). Without
// this, TSan sees every access guarded by an absl::Mutex as a race, since the
// real lock is futexes and atomics inside an uninstrumented library. gRPC's
// own locks are absl::Mutex too, so the edges they make are seen the same way.
// Only what the entry points promise is modelled: a reader lock acquires and
// releases like a writer lock (so a write made under a reader lock would go
// unreported).
//
// Abseil evaluates a waiter's Condition on whichever thread holds the lock
// when it looks, often inside another thread's Unlock, after the release
// above was announced. So Condition::Eval is interposed too: while one of the
// entry points is running on this thread, the evaluation is announced as its
// own acquire and release of that mutex, which orders what the condition
// reads against the next holder's writes, as the real lock does. And the
// thread that evaluates a Condition is not always the one that made it (on
// its stack, with what it points to): the entry points that take one release
// it, and Eval acquires it.
//
// gRPC batches. Everything a thread did before it starts a batch of
// operations on a call (grpc_call_start_batch: a write, a read, the status)
// happens before that batch's completion is handled, on whatever thread gRPC
// picks: the callback API runs the reaction from gRPC's completion
// (grpc_cq_end_op, which then runs it on that thread or hands it on through
// an absl::Mutex), a completion queue hands the event to the thread in
// grpc_completion_queue_next or _pluck. gRPC's own path between the two runs
// through lock-free queues TSan cannot see, so a reactor's fields written
// before StartWrite and read in OnWriteDone would look like a race. The batch's
// tag carries the edge: released at the start, acquired at the completion.
//
// gRPC's server calls. A callback call runs OnDone once every callback that
// holds a reference on it has dropped it (ServerCallbackCall::MaybeDone: an
// acq_rel decrement of callbacks_outstanding_). The decrements made in gRPC's
// headers are compiled into our binaries and seen; those made inside
// libgrpc++ (the cancellation path) are not, so when the last one is there,
// the reads of the callbacks before it (gRPC's, and the reactor's vtable)
// look as if they raced with the call's destruction after OnDone. Whoever
// drops the last reference calls ScheduleOnDone: it acquires the counter
// there, as the real decrement did.
//
// Built only with DEJA_SANITIZE=thread, not instrumented itself, harmless in
// a process without TSan (the hooks are weak) or without gRPC (the gRPC
// wrappers are only called where libgrpc is loaded).
#include <dlfcn.h>
#include <grpc/grpc.h>
#include <grpcpp/support/server_callback.h>

#include <cstdio>
#include <cstdlib>
#include <utility>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

extern "C" {
void __tsan_acquire(void* addr) __attribute__((weak));
void __tsan_release(void* addr) __attribute__((weak));
}

namespace {

void Acquire(const void* mu) {
  if (__tsan_acquire != nullptr) __tsan_acquire(const_cast<void*>(mu));
}
void Release(const void* mu) {
  if (__tsan_release != nullptr) __tsan_release(const_cast<void*>(mu));
}

// The next definition of `symbol` after this library: Abseil's or gRPC's.
template <typename F>
F Real(const char* symbol) {
  void* found = dlsym(RTLD_NEXT, symbol);
  if (found == nullptr) {
    std::fprintf(stderr, "tsan_preload: %s not found: %s\n", symbol, dlerror());
    std::abort();
  }
  return reinterpret_cast<F>(found);
}

// Looks the real function up once, by its mangled name (as `nm -D` lists it).
#define DEJA_REAL(type, symbol) static const auto real = Real<type>(symbol);

// The mutex whose entry point is running on this thread, if any: a
// Condition evaluated meanwhile is evaluated under it.
thread_local const void* in_entry_point = nullptr;

class EntryPoint {
 public:
  explicit EntryPoint(const void* mu) : saved_(in_entry_point) { in_entry_point = mu; }
  ~EntryPoint() { in_entry_point = saved_; }
  EntryPoint(const EntryPoint&) = delete;
  EntryPoint& operator=(const EntryPoint&) = delete;

 private:
  const void* saved_;
};

// Calls `real` as an entry point of mutex `mu`.
template <typename F, typename... Args>
auto Within(const void* mu, F real, Args... args) {
  EntryPoint entry(mu);
  return real(args...);
}

using absl::Condition;
using absl::CondVar;
using absl::Duration;
using absl::Mutex;
using absl::Time;

}  // namespace

namespace absl {
ABSL_NAMESPACE_BEGIN

void Mutex::Lock() {
  DEJA_REAL(void (*)(Mutex*), "_ZN4absl7debian35Mutex4LockEv");
  Within(this, real, this);
  Acquire(this);
}

void Mutex::Unlock() {
  DEJA_REAL(void (*)(Mutex*), "_ZN4absl7debian35Mutex6UnlockEv");
  Release(this);
  Within(this, real, this);
}

void Mutex::ReaderLock() {
  DEJA_REAL(void (*)(Mutex*), "_ZN4absl7debian35Mutex10ReaderLockEv");
  Within(this, real, this);
  Acquire(this);
}

void Mutex::ReaderUnlock() {
  DEJA_REAL(void (*)(Mutex*), "_ZN4absl7debian35Mutex12ReaderUnlockEv");
  Release(this);
  Within(this, real, this);
}

bool Mutex::TryLock() {
  DEJA_REAL(bool (*)(Mutex*), "_ZN4absl7debian35Mutex7TryLockEv");
  const bool locked = Within(this, real, this);
  if (locked) Acquire(this);
  return locked;
}

bool Mutex::ReaderTryLock() {
  DEJA_REAL(bool (*)(Mutex*), "_ZN4absl7debian35Mutex13ReaderTryLockEv");
  const bool locked = Within(this, real, this);
  if (locked) Acquire(this);
  return locked;
}

void Mutex::LockWhen(const Condition& cond) {
  DEJA_REAL(void (*)(Mutex*, const Condition&),
            "_ZN4absl7debian35Mutex8LockWhenERKNS0_9ConditionE");
  Release(&cond);
  Within(this, real, this, cond);
  Acquire(this);
}

void Mutex::ReaderLockWhen(const Condition& cond) {
  DEJA_REAL(void (*)(Mutex*, const Condition&),
            "_ZN4absl7debian35Mutex14ReaderLockWhenERKNS0_9ConditionE");
  Release(&cond);
  Within(this, real, this, cond);
  Acquire(this);
}

// The timed forms return with the lock held whether or not `cond` became true.
bool Mutex::LockWhenWithTimeout(const Condition& cond, Duration timeout) {
  DEJA_REAL(bool (*)(Mutex*, const Condition&, Duration),
            "_ZN4absl7debian35Mutex19LockWhenWithTimeoutERKNS0_9ConditionENS0_8DurationE");
  Release(&cond);
  const bool met = Within(this, real, this, cond, timeout);
  Acquire(this);
  return met;
}

bool Mutex::LockWhenWithDeadline(const Condition& cond, Time deadline) {
  DEJA_REAL(bool (*)(Mutex*, const Condition&, Time),
            "_ZN4absl7debian35Mutex20LockWhenWithDeadlineERKNS0_9ConditionENS0_4TimeE");
  Release(&cond);
  const bool met = Within(this, real, this, cond, deadline);
  Acquire(this);
  return met;
}

bool Mutex::ReaderLockWhenWithTimeout(const Condition& cond, Duration timeout) {
  DEJA_REAL(bool (*)(Mutex*, const Condition&, Duration),
            "_ZN4absl7debian35Mutex25ReaderLockWhenWithTimeoutERKNS0_9ConditionENS0_8DurationE");
  Release(&cond);
  const bool met = Within(this, real, this, cond, timeout);
  Acquire(this);
  return met;
}

bool Mutex::ReaderLockWhenWithDeadline(const Condition& cond, Time deadline) {
  DEJA_REAL(bool (*)(Mutex*, const Condition&, Time),
            "_ZN4absl7debian35Mutex26ReaderLockWhenWithDeadlineERKNS0_9ConditionENS0_4TimeE");
  Release(&cond);
  const bool met = Within(this, real, this, cond, deadline);
  Acquire(this);
  return met;
}

void Mutex::Await(const Condition& cond) {
  DEJA_REAL(void (*)(Mutex*, const Condition&), "_ZN4absl7debian35Mutex5AwaitERKNS0_9ConditionE");
  Release(&cond);
  Release(this);
  Within(this, real, this, cond);
  Acquire(this);
}

bool Mutex::AwaitWithTimeout(const Condition& cond, Duration timeout) {
  DEJA_REAL(bool (*)(Mutex*, const Condition&, Duration),
            "_ZN4absl7debian35Mutex16AwaitWithTimeoutERKNS0_9ConditionENS0_8DurationE");
  Release(&cond);
  Release(this);
  const bool met = Within(this, real, this, cond, timeout);
  Acquire(this);
  return met;
}

bool Mutex::AwaitWithDeadline(const Condition& cond, Time deadline) {
  DEJA_REAL(bool (*)(Mutex*, const Condition&, Time),
            "_ZN4absl7debian35Mutex17AwaitWithDeadlineERKNS0_9ConditionENS0_4TimeE");
  Release(&cond);
  Release(this);
  const bool met = Within(this, real, this, cond, deadline);
  Acquire(this);
  return met;
}

void CondVar::Wait(Mutex* mu) {
  DEJA_REAL(void (*)(CondVar*, Mutex*), "_ZN4absl7debian37CondVar4WaitEPNS0_5MutexE");
  Release(mu);
  Within(mu, real, this, mu);
  Acquire(mu);
}

bool CondVar::WaitWithTimeout(Mutex* mu, Duration timeout) {
  DEJA_REAL(bool (*)(CondVar*, Mutex*, Duration),
            "_ZN4absl7debian37CondVar15WaitWithTimeoutEPNS0_5MutexENS0_8DurationE");
  Release(mu);
  const bool timed_out = Within(mu, real, this, mu, timeout);
  Acquire(mu);
  return timed_out;
}

bool CondVar::WaitWithDeadline(Mutex* mu, Time deadline) {
  DEJA_REAL(bool (*)(CondVar*, Mutex*, Time),
            "_ZN4absl7debian37CondVar16WaitWithDeadlineEPNS0_5MutexENS0_4TimeE");
  Release(mu);
  const bool timed_out = Within(mu, real, this, mu, deadline);
  Acquire(mu);
  return timed_out;
}

bool Condition::Eval() const {
  DEJA_REAL(bool (*)(const Condition*), "_ZNK4absl7debian39Condition4EvalEv");
  Acquire(this);
  const void* mu = in_entry_point;
  if (mu == nullptr) return real(this);
  Acquire(mu);
  const bool holds = real(this);
  Release(mu);
  return holds;
}

ABSL_NAMESPACE_END
}  // namespace absl

// gRPC's completion, declared as libgrpc defines it (src/core/lib/surface/
// completion_queue.h); exported, and called through the PLT inside libgrpc.
struct grpc_cq_completion;
void grpc_cq_end_op(grpc_completion_queue* cq, void* tag, absl::Status error,
                    void (*done)(void* done_arg, grpc_cq_completion* storage), void* done_arg,
                    grpc_cq_completion* storage, bool internal) {
  DEJA_REAL(void (*)(grpc_completion_queue*, void*, absl::Status,
                     void (*)(void*, grpc_cq_completion*), void*, grpc_cq_completion*, bool),
            "_Z14grpc_cq_end_opP21grpc_completion_queuePvN4absl7debian36StatusEPFvS1_P18grpc_"
            "cq_completionES1_S6_b");
  Acquire(tag);
  real(cq, tag, std::move(error), done, done_arg, storage, internal);
}

extern "C" {

grpc_call_error grpc_call_start_batch(grpc_call* call, const grpc_op* ops, size_t nops, void* tag,
                                      void* reserved) {
  DEJA_REAL(grpc_call_error(*)(grpc_call*, const grpc_op*, size_t, void*, void*),
            "grpc_call_start_batch");
  Release(tag);
  return real(call, ops, nops, tag, reserved);
}

grpc_event grpc_completion_queue_next(grpc_completion_queue* cq, gpr_timespec deadline,
                                      void* reserved) {
  DEJA_REAL(grpc_event(*)(grpc_completion_queue*, gpr_timespec, void*),
            "grpc_completion_queue_next");
  const grpc_event event = real(cq, deadline, reserved);
  if (event.type == GRPC_OP_COMPLETE) Acquire(event.tag);
  return event;
}

grpc_event grpc_completion_queue_pluck(grpc_completion_queue* cq, void* tag, gpr_timespec deadline,
                                       void* reserved) {
  DEJA_REAL(grpc_event(*)(grpc_completion_queue*, void*, gpr_timespec, void*),
            "grpc_completion_queue_pluck");
  const grpc_event event = real(cq, tag, deadline, reserved);
  if (event.type == GRPC_OP_COMPLETE) Acquire(event.tag);
  return event;
}

}  // extern "C"

namespace grpc::internal {

// The counter's place in a ServerCallbackCall (private there): after the
// vtable pointer and on_cancel_conditions_remaining_, as server_callback.h
// declares them; the size check catches a gRPC that changed the class.
static_assert(sizeof(ServerCallbackCall) == sizeof(void*) + 2 * sizeof(std::atomic_int));
constexpr size_t kCallbacksOutstandingOffset = sizeof(void*) + sizeof(std::atomic_int);

void ServerCallbackCall::ScheduleOnDone(bool inline_ondone) {
  DEJA_REAL(void (*)(ServerCallbackCall*, bool),
            "_ZN4grpc8internal18ServerCallbackCall14ScheduleOnDoneEb");
  Acquire(reinterpret_cast<const char*>(this) + kCallbacksOutstandingOffset);
  real(this, inline_ondone);
}

}  // namespace grpc::internal
