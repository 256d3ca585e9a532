#include "common/glob.h"

#include <fnmatch.h>

#include <string>
#include <vector>

#include "absl/strings/str_split.h"

namespace deja {

bool GlobMatches(absl::string_view glob, absl::string_view path) {
  const std::vector<std::string> g = absl::StrSplit(glob, '/');
  const std::vector<std::string> p = absl::StrSplit(path, '/');
  // match[i][j]: glob components i.. match path components j.. (filled
  // from the back, so `**` costs O(|g| * |p|) whatever the pattern).
  std::vector<std::vector<char>> match(g.size() + 1, std::vector<char>(p.size() + 1, 0));
  match[g.size()][p.size()] = 1;
  for (size_t i = g.size(); i-- > 0;) {
    for (size_t j = p.size() + 1; j-- > 0;) {
      if (g[i] == "**") {
        // Zero components, or one more and still `**`.
        match[i][j] = static_cast<char>(match[i + 1][j] || (j < p.size() && match[i][j + 1]));
      } else {
        match[i][j] = static_cast<char>(j < p.size() && match[i + 1][j + 1] &&
                                        fnmatch(g[i].c_str(), p[j].c_str(), FNM_NOESCAPE) == 0);
      }
    }
  }
  return match[0][0] != 0;
}

bool HasGlobChars(absl::string_view text) {
  return text.find_first_of("*?[") != absl::string_view::npos;
}

}  // namespace deja
