// ProgressBar: one line on a terminal, rewritten in place with '\r', for
// transfers (`deja get`, input uploads). Draws nothing unless enabled (stderr
// is a terminal) and the transfer is at least kProgressMinBytes; redraws at
// most 10 times a second.
//
// Not thread-safe: one transfer, one thread.
#ifndef DEJA_CLIENT_PROGRESS_H_
#define DEJA_CLIENT_PROGRESS_H_

#include <cstdint>
#include <ostream>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/clock.h"

namespace deja::cli {

inline constexpr uint64_t kProgressMinBytes = 4 << 20;
inline constexpr absl::Duration kProgressInterval = absl::Milliseconds(100);

// "uploading  45.2 MiB of 1.0 GiB  (4%)".
std::string FormatProgress(absl::string_view verb, uint64_t done, uint64_t total);

// True when `err` is std::cerr and file descriptor 2 is a terminal.
bool StderrIsTerminal(const std::ostream& err);

class ProgressBar {
 public:
  // `clock` is not owned; nullptr: the real clock.
  ProgressBar(std::ostream& out, bool enabled, std::string verb, Clock* clock = nullptr);
  ~ProgressBar();
  ProgressBar(const ProgressBar&) = delete;
  ProgressBar& operator=(const ProgressBar&) = delete;

  // `done` of `total` bytes moved. Draws when enabled, `total` is big
  // enough, and the last draw was kProgressInterval ago (or done == total).
  void Update(uint64_t done, uint64_t total);
  // Erases the line, if one was drawn, so the next output starts clean.
  void Clear();

 private:
  std::ostream& out_;
  const bool enabled_;
  const std::string verb_;
  Clock* const clock_;
  bool drawn_ = false;
  absl::Time last_draw_ = absl::InfinitePast();
  size_t last_width_ = 0;
};

}  // namespace deja::cli

#endif  // DEJA_CLIENT_PROGRESS_H_
