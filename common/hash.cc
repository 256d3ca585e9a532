#include "common/hash.h"

#include <fcntl.h>
#include <unistd.h>

// XXH3's speed depends on the SIMD width, and Debian's libxxhash builds the
// plain XXH3_* entry points for the baseline x86-64 ISA (SSE2). The
// *_dispatch variants in the same library pick AVX2 or AVX-512 at run time,
// as xxhsum does (~15% less CPU per GiB here). Every variant computes the
// same digest; tests/common/hash_test.cc pins it with vectors from xxhsum.
#if (defined(__x86_64__) || defined(__i386__)) && __has_include(<xxh_x86dispatch.h>)
#define DEJA_XXH_DISPATCH 1
#define XXH_DISPATCH_DISABLE_REPLACE
#include <xxh_x86dispatch.h>
#endif

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "common/errors.h"

namespace deja {
namespace {

XXH128_hash_t Xxh3128(const void* data, size_t len) {
#ifdef DEJA_XXH_DISPATCH
  return XXH3_128bits_dispatch(data, len);
#else
  return XXH3_128bits(data, len);
#endif
}

void Xxh3128Update(XXH3_state_t* state, const void* data, size_t len) {
#ifdef DEJA_XXH_DISPATCH
  XXH3_128bits_update_dispatch(state, data, len);
#else
  XXH3_128bits_update(state, data, len);
#endif
}

std::string ToHex(XXH128_hash_t hash) {
  XXH128_canonical_t canonical;
  XXH128_canonicalFromHash(&canonical, hash);
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(2 * sizeof(canonical.digest));
  for (unsigned char byte : canonical.digest) {
    out.push_back(kDigits[byte >> 4]);
    out.push_back(kDigits[byte & 0xf]);
  }
  return out;
}

}  // namespace

bool IsLowerHex(std::string_view text) {
  return !text.empty() && std::all_of(text.begin(), text.end(), [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
  });
}

bool IsDigest(std::string_view text) { return text.size() == 32 && IsLowerHex(text); }

Hasher::Hasher() : state_(XXH3_createState()) { XXH3_128bits_reset(state_); }

Hasher::~Hasher() { XXH3_freeState(state_); }

void Hasher::Update(std::string_view bytes) { Xxh3128Update(state_, bytes.data(), bytes.size()); }

std::string Hasher::HexDigest() const { return ToHex(XXH3_128bits_digest(state_)); }

std::string HashBytes(std::string_view bytes) { return ToHex(Xxh3128(bytes.data(), bytes.size())); }

absl::StatusOr<std::string> HashFile(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return ErrnoStatus(errno, "open " + path);
  // A hint for the readahead of a file not yet in the page cache (it doubles
  // the window); no effect on cached pages.
  (void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  Hasher hasher;
  // 64 KiB stays in L2 between the kernel's copy and the hash: 1 MiB reads
  // measured slower (bench/README.md, B4). mmap and a reader thread did not
  // beat it on a shared 2-core machine either.
  std::string buffer(1 << 16, '\0');
  while (true) {
    ssize_t n = read(fd, buffer.data(), buffer.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      close(fd);
      return ErrnoStatus(err, "read " + path);
    }
    if (n == 0) break;
    hasher.Update(std::string_view(buffer.data(), static_cast<size_t>(n)));
  }
  close(fd);
  return hasher.HexDigest();
}

}  // namespace deja
