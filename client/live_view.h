// The live view of `deja pipeline run|retry` on a terminal: a block of
// lines redrawn in place with ANSI escapes (client/pipeline_format.h makes
// the lines).
#ifndef DEJA_CLIENT_LIVE_VIEW_H_
#define DEJA_CLIENT_LIVE_VIEW_H_

#include <cstddef>
#include <ostream>
#include <string>
#include <vector>

namespace deja::cli {

// Redraws a block of lines in place on a terminal: cursor up over the
// lines drawn last time, each line cleared and rewritten, leftovers below
// erased. Lines are cut to `width` - 1 columns (0: not cut) so that none
// wraps, which would break the count. Not thread-safe.
class LiveView {
 public:
  LiveView(std::ostream& out, size_t width) : out_(out), width_(width) {}
  // Replaces the block drawn last with `lines`; the cursor ends below them.
  void Draw(const std::vector<std::string>& lines);
  // Erases the block (e.g. to print a message), so the next Draw starts
  // fresh where it was.
  void Erase();

 private:
  std::ostream& out_;
  const size_t width_;
  size_t drawn_ = 0;
  std::vector<std::string> last_;
};

// True when `out` is std::cout, file descriptor 1 is a terminal and TERM is
// not "dumb". Sets *width to the terminal's columns (0 if unknown).
bool StdoutIsTerminal(const std::ostream& out, size_t* width);

}  // namespace deja::cli

#endif  // DEJA_CLIENT_LIVE_VIEW_H_
