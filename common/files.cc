#include "common/files.h"

#include <sys/stat.h>

#include <cerrno>

#include "common/errors.h"

namespace deja {

absl::Status MakeParentDirs(const std::string& path) {
  for (size_t slash = path.find('/', 1); slash != std::string::npos;
       slash = path.find('/', slash + 1)) {
    std::string dir = path.substr(0, slash);
    if (mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) return ErrnoStatus(errno, "mkdir " + dir);
  }
  return absl::OkStatus();
}

}  // namespace deja
