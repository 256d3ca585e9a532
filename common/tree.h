// Directory trees in the content store. A directory is a blob holding the
// canonical encoding of its entries ("deja.dir.v1", docs/content-store.md);
// its digest is the XXH3-128 of that encoding, so a directory's digest is a
// Merkle digest of everything below it. File entries point at file blobs,
// directory entries at directory blobs; symlinks are recorded with their
// target text and never followed.
#ifndef DEJA_COMMON_TREE_H_
#define DEJA_COMMON_TREE_H_

#include <sys/stat.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace deja {

inline constexpr absl::string_view kDirectoryTag = "deja.dir.v1";

struct DirEntry {
  enum class Kind { kFile, kDirectory, kSymlink };
  std::string name;  // one path component
  Kind kind = Kind::kFile;
  bool executable = false;  // files only: any x bit set
  std::string digest;       // files and directories: the blob's digest
  uint64_t size = 0;        // files and directories: the blob's size
  std::string target;       // symlinks only
};

// "file", "dir", "symlink".
absl::string_view DirEntryKindName(DirEntry::Kind kind);

// The canonical bytes of a directory: entries sorted by name.
std::string EncodeDirectory(std::vector<DirEntry> entries);

// The entry naming the directory blob `bytes` (from EncodeDirectory).
DirEntry DirectoryEntry(const std::string& name, const std::string& bytes);

// Parses a directory blob. INVALID_ARGUMENT if it is not canonical: bad tag,
// truncated, a name that is empty, ".", "..", or holds '/' or NUL, names
// not strictly ascending, an unknown kind.
absl::StatusOr<std::vector<DirEntry>> DecodeDirectory(absl::string_view bytes);

// One blob of a tree: a file on disk (`path` set) or a directory blob
// (`bytes` set).
struct TreeBlob {
  std::string digest;
  uint64_t size = 0;
  std::string path;
  std::string bytes;
};

struct TreeDigest {
  std::string digest;           // of the root directory blob
  uint64_t size = 0;            // of the root directory blob
  std::vector<TreeBlob> blobs;  // every distinct blob of the tree, root first
  uint64_t total_file_bytes = 0;
};

// Returns the hex digest of the regular file at `path` (stat'ed as `st`);
// lets callers consult a hash cache instead of reading the file.
using FileHasher =
    std::function<absl::StatusOr<std::string>(const std::string& path, const struct stat& st)>;

// Digests the directory tree at `root`. Symlinks are recorded, never
// followed; special files (sockets, fifos, devices) are INVALID_ARGUMENT
// naming the path.
absl::StatusOr<TreeDigest> DigestTree(const std::string& root, const FileHasher& hash_file);

}  // namespace deja

#endif  // DEJA_COMMON_TREE_H_
