#include "client/live_view.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <cstdlib>
#include <iostream>

#include "absl/strings/str_cat.h"

namespace deja::cli {

void LiveView::Draw(const std::vector<std::string>& lines) {
  if (drawn_ > 0 && lines == last_) return;
  std::string text;
  if (drawn_ > 0) absl::StrAppend(&text, "\033[", drawn_, "A");
  for (const std::string& line : lines) {
    text += "\r\033[2K";
    if (width_ > 1 && line.size() > width_ - 1) {
      text.append(line, 0, width_ - 1);
    } else {
      text += line;
    }
    text += "\n";
  }
  if (lines.size() < drawn_) text += "\033[J";
  out_ << text;
  out_.flush();
  drawn_ = lines.size();
  last_ = lines;
}

void LiveView::Erase() {
  if (drawn_ == 0) return;
  out_ << "\033[" << drawn_ << "A\r\033[J";
  out_.flush();
  drawn_ = 0;
  last_.clear();
}

bool StdoutIsTerminal(const std::ostream& out, size_t* width) {
  *width = 0;
  if (&out != &std::cout || isatty(STDOUT_FILENO) != 1) return false;
  const char* term = std::getenv("TERM");
  if (term != nullptr && std::string(term) == "dumb") return false;
  struct winsize size;
  if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &size) == 0) *width = size.ws_col;
  return true;
}

}  // namespace deja::cli
