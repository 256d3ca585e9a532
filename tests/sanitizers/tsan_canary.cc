// The tsan stage's proof that it can fail, and that its preload works: run
// as `tsan_canary unguarded`, two threads write one int with nothing between
// them, which TSan must report; as `tsan_canary guarded`, the same writes go
// through absl::Mutex (a plain lock, a Condition another thread evaluates on
// its Unlock, and a CondVar), which TSan must not report, though Abseil is
// not instrumented (tests/sanitizers/CMakeLists.txt runs both).
#include <cstdio>
#include <string_view>
#include <thread>

#include "absl/synchronization/mutex.h"

namespace {

int Unguarded() {
  int value = 0;
  std::thread other([&value] { ++value; });
  ++value;
  other.join();
  return 0;
}

int Guarded() {
  absl::Mutex mu;
  absl::CondVar changed;
  int value = 0;
  bool ready = false;
  std::thread producer([&] {
    for (int i = 0; i < 1000; ++i) {
      absl::MutexLock lock(&mu);
      ++value;
    }
    absl::MutexLock lock(&mu);
    ready = true;  // the consumer's Condition is evaluated here, on Unlock
    changed.SignalAll();
  });
  {
    mu.LockWhen(absl::Condition(&ready));
    ++value;
    mu.Unlock();
  }
  {
    absl::MutexLock lock(&mu);
    while (value < 1001) changed.Wait(&mu);
    ++value;
  }
  producer.join();
  return value == 1002 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string_view mode = argc == 2 ? argv[1] : "";
  if (mode == "unguarded") return Unguarded();
  if (mode == "guarded") return Guarded();
  std::fprintf(stderr, "usage: tsan_canary unguarded|guarded\n");
  return 2;
}
