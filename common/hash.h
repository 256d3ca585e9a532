// XXH3-128 content hashing, the digest used for job identity, manifests and
// (later) content-store blobs. Digests are 32 lowercase hex characters, the
// canonical (big-endian) form of the 128-bit value.
#ifndef DEJA_COMMON_HASH_H_
#define DEJA_COMMON_HASH_H_

#include <xxhash.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace deja {

// Incremental XXH3-128. Not thread-safe; one per stream of bytes.
class Hasher {
 public:
  Hasher();
  ~Hasher();
  Hasher(const Hasher&) = delete;
  Hasher& operator=(const Hasher&) = delete;

  void Update(std::string_view bytes);
  // The hex digest of everything passed to Update so far.
  std::string HexDigest() const;

 private:
  XXH3_state_t* state_;
};

// The hex digest of `bytes`.
std::string HashBytes(std::string_view bytes);

// Whether `text` is non-empty and only lowercase hex digits (0-9a-f).
bool IsLowerHex(std::string_view text);

// Whether `text` has the form of a digest: 32 lowercase hex digits, as
// HexDigest writes them. Digests from the network and from blobs become
// file names and keys: every reader checks them with this.
bool IsDigest(std::string_view text);

// Reads the file at `path` in chunks and returns its hex digest, or an
// error naming the path (NOT_FOUND when it does not exist).
absl::StatusOr<std::string> HashFile(const std::string& path);

}  // namespace deja

#endif  // DEJA_COMMON_HASH_H_
