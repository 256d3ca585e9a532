// Small filesystem helpers shared by the client and the daemons.
#ifndef DEJA_COMMON_FILES_H_
#define DEJA_COMMON_FILES_H_

#include <sys/types.h>

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace deja {

// mkdir -p of every directory above `path` (mode 0755); existing ones are
// fine. The failing mkdir's errno as an ErrnoStatus naming the directory.
absl::Status MakeParentDirs(const std::string& path);

// Replaces `path` with `contents` so that a crash leaves the old file or the
// new one, never a mix: writes <path>.tmp and renames it over `path`. With
// `sync`, the new file is also on disk when this returns (the temporary is
// fsynced before the rename, the directory after it), so it survives the
// machine's crash too, not only the process's. The parent directory must
// exist. Errors name the step and the file (ENOSPC as "No space left on
// device"). The new file gets `mode` (its temporary has it from the start).
absl::Status WriteFileAtomically(const std::string& path, const std::string& contents, bool sync,
                                 mode_t mode = 0644);

// The whole content of `path`. Errors as an ErrnoStatus naming the step and
// the file (a missing file is NotFound). read(2), not a stream: a /proc
// entry whose process ends while it is read fails with ESRCH, which
// libstdc++'s filebuf throws.
absl::StatusOr<std::string> ReadWholeFile(const std::string& path);

// fsyncs the directory holding `path`, so that a name just created, renamed
// or removed in it survives a crash of the machine.
absl::Status SyncParentDir(const std::string& path);

}  // namespace deja

#endif  // DEJA_COMMON_FILES_H_
