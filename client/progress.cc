#include "client/progress.h"

#include <unistd.h>

#include <iostream>

#include "absl/strings/str_cat.h"
#include "client/cli_format.h"

namespace deja::cli {
namespace {

Clock* RealClockInstance() {
  static RealClock real;
  return &real;
}

}  // namespace

std::string FormatProgress(absl::string_view verb, uint64_t done, uint64_t total) {
  uint64_t percent = total == 0 ? 100 : (done >= total ? 100 : done * 100 / total);
  return absl::StrCat(verb, "  ", FormatBytes(done), " of ", FormatBytes(total), "  (", percent,
                      "%)");
}

bool StderrIsTerminal(const std::ostream& err) {
  return &err == &std::cerr && isatty(STDERR_FILENO);
}

ProgressBar::ProgressBar(std::ostream& out, bool enabled, std::string verb, Clock* clock)
    : out_(out),
      enabled_(enabled),
      verb_(std::move(verb)),
      clock_(clock != nullptr ? clock : RealClockInstance()) {}

ProgressBar::~ProgressBar() { Clear(); }

void ProgressBar::Update(uint64_t done, uint64_t total) {
  if (!enabled_ || total < kProgressMinBytes) return;
  absl::Time now = clock_->Now();
  if (done < total && now - last_draw_ < kProgressInterval) return;
  last_draw_ = now;
  std::string line = FormatProgress(verb_, done, total);
  // Pad over the tail of a longer previous line.
  size_t width = line.size();
  if (width < last_width_) line.append(last_width_ - width, ' ');
  last_width_ = width;
  out_ << '\r' << line;
  out_.flush();
  drawn_ = true;
}

void ProgressBar::Clear() {
  if (!drawn_) return;
  out_ << '\r' << std::string(last_width_, ' ') << '\r';
  out_.flush();
  drawn_ = false;
  last_width_ = 0;
}

}  // namespace deja::cli
