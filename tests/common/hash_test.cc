#include "common/hash.h"

#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace deja {
namespace {

// Deterministic bytes; the expected digests below are `xxhsum -H2` (Debian's
// xxhash 0.8.1) of files holding exactly these bytes, so they pin the
// digest independently of which SIMD path the library dispatches to.
std::string Pattern(size_t n) {
  std::string bytes(n, '\0');
  for (size_t i = 0; i < n; ++i) bytes[i] = static_cast<char>(((i * 131 + 7) >> 3) & 0xff);
  return bytes;
}

struct Vector {
  size_t size;
  const char* digest;
};

// Sizes cross every XXH3 length class: 0, 1-3, 4-8, 9-16, 17-128, 129-240,
// long inputs, and more than one 1 KiB block and the 64 KiB read buffer.
const std::vector<Vector>& Vectors() {
  static const std::vector<Vector> kVectors = {
      {0, "99aa06d3014798d86001c324468d497f"},
      {1, "a6cd5e9392000f6ac44bdff4074eecdb"},
      {3, "b0acb3b2c3465ab81a3a66496931073f"},
      {4, "41ac1272941220e8df1d918745fb90ce"},
      {8, "f51384433ef6d29d81dcba75305967cc"},
      {9, "ef2fb2e5aedde99b0306c6891cefc100"},
      {16, "aadd3b0293adfce6ccccf553f6bc34e6"},
      {17, "5bcf04975483baf49681b4b6c1ca6880"},
      {128, "8a63d9fef8cb1fe065201ba4fbacf961"},
      {129, "1ed8484fec303a9bb9ab9e95390ef6fd"},
      {240, "1f86edf319d5937d6872b5d65ed42985"},
      {241, "6c141edae892b655de294e75b086ff27"},
      {1024, "529276ddd974dc74d88d47d4c6df242f"},
      {100000, "7d2159b46e07739c33e908aa477dcb43"},
      {(1 << 20) + 13, "1464b59ef6e3dbb49f0120dbed4b6f0c"},
  };
  return kVectors;
}

TEST(HashTest, HashBytesMatchesXxhsum) {
  for (const Vector& v : Vectors()) {
    EXPECT_EQ(HashBytes(Pattern(v.size)), v.digest) << v.size << " bytes";
  }
}

TEST(HashTest, HasherGivesTheSameDigestWhateverTheUpdateSizes) {
  for (const Vector& v : Vectors()) {
    const std::string bytes = Pattern(v.size);
    for (size_t step : {size_t{1}, size_t{7}, size_t{64}, size_t{1000}, size_t{65536}}) {
      if (step == 1 && v.size > 100000) continue;  // slow, and 7 covers odd splits
      Hasher hasher;
      for (size_t off = 0; off < bytes.size(); off += step) {
        hasher.Update(std::string_view(bytes).substr(off, step));
      }
      EXPECT_EQ(hasher.HexDigest(), v.digest) << v.size << " bytes in steps of " << step;
    }
  }
}

TEST(HashTest, HashFileMatchesXxhsum) {
  std::string dir = ::testing::TempDir() + "/deja-hash-XXXXXX";
  ASSERT_NE(mkdtemp(dir.data()), nullptr);
  for (const Vector& v : Vectors()) {
    const std::string path = dir + "/f" + std::to_string(v.size);
    std::ofstream(path, std::ios::binary) << Pattern(v.size);
    absl::StatusOr<std::string> digest = HashFile(path);
    ASSERT_TRUE(digest.ok()) << digest.status();
    EXPECT_EQ(*digest, v.digest) << v.size << " bytes";
    unlink(path.c_str());
  }
  rmdir(dir.c_str());
}

TEST(HashTest, HashFileOfAMissingFileIsNotFoundNamingThePath) {
  absl::StatusOr<std::string> digest = HashFile("/nonexistent/deja-hash-test");
  ASSERT_FALSE(digest.ok());
  EXPECT_TRUE(absl::IsNotFound(digest.status())) << digest.status();
  EXPECT_NE(digest.status().message().find("/nonexistent/deja-hash-test"), std::string::npos);
}

}  // namespace
}  // namespace deja
