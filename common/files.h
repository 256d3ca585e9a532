// Small filesystem helpers shared by the client and the daemons.
#ifndef DEJA_COMMON_FILES_H_
#define DEJA_COMMON_FILES_H_

#include <string>

#include "absl/status/status.h"

namespace deja {

// mkdir -p of every directory above `path` (mode 0755); existing ones are
// fine. The failing mkdir's errno as an ErrnoStatus naming the directory.
absl::Status MakeParentDirs(const std::string& path);

}  // namespace deja

#endif  // DEJA_COMMON_FILES_H_
