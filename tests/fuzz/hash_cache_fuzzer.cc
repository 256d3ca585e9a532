// The CLI's hash-cache file (client/hash_cache.h), which any program of the
// user's may have written: header and length checks, the binary search
// over records, per-record checksums, and Save's merge and rewrite.
//
// Input: one byte of flags, then the file's bytes. Flag 1: the target first
// fixes every whole record's checksum, so that lookups reach records the
// fuzzer wrote. The first records' keys are looked up as stat results.
// Properties:
//   - Load never fails, whatever the file;
//   - a lookup answers a 32-hex-digit digest: the record's when its key
//     and checksum hold, else the hasher's (a miss);
//   - a file saved after the lookups loads again, and every digest looked
//     up is answered from it unchanged (but a miss on a file changed within
//     the racy window, which is never remembered).
#include <sys/stat.h>
#include <xxhash.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "client/hash_cache.h"
#include "common/clock.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

constexpr size_t kHeader = 16;
constexpr size_t kRecord = 72;
constexpr char kMissDigest[] = "0123456789abcdef0123456789abcdef";

uint64_t U64(const std::string& bytes, size_t at) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= uint64_t{static_cast<unsigned char>(bytes[at + i])} << (8 * i);
  return v;
}

// A stat result with the key (dev, ino, size, mtime ns, ctime ns).
struct stat StatOf(const std::vector<uint64_t>& key) {
  struct stat st;
  std::memset(&st, 0, sizeof(st));
  st.st_dev = key[0];
  st.st_ino = key[1];
  st.st_size = static_cast<off_t>(key[2]);
  const auto mtime = static_cast<int64_t>(key[3]);
  const auto ctime = static_cast<int64_t>(key[4]);
  st.st_mtim.tv_sec = mtime / 1'000'000'000;
  st.st_mtim.tv_nsec = mtime % 1'000'000'000;
  st.st_ctim.tv_sec = ctime / 1'000'000'000;
  st.st_ctim.tv_nsec = ctime % 1'000'000'000;
  return st;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  deja::fuzz::Input in(data, size);
  const uint8_t flags = in.Byte();
  std::string bytes(in.rest());
  if ((flags & 1) != 0) {
    for (size_t at = kHeader; at + kRecord <= bytes.size(); at += kRecord) {
      uint64_t sum = XXH3_64bits(bytes.data() + at, 64);
      for (int i = 0; i < 8; ++i) bytes[at + 64 + i] = static_cast<char>((sum >> (8 * i)) & 0xff);
    }
  }
  const std::string path = deja::fuzz::ScratchDir() + "/hashes";
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;

  // Every record's day is "today" or close: the clock sits at day 20000.
  deja::FakeClock clock(absl::FromUnixSeconds(int64_t{20000} * 86400));
  deja::HashCacheOptions options;
  options.clock = &clock;
  options.max_entries = 64;
  options.hash_file = [](const std::string&, const struct stat&) {
    return std::string(kMissDigest);
  };
  std::string warning;
  auto cache = deja::HashCache::Load(path, options, &warning);
  DEJA_CHECK(cache != nullptr, "Load gave no cache");
  cache->size();

  std::map<std::vector<uint64_t>, std::string> answered;
  for (size_t at = kHeader, n = 0; at + kRecord <= bytes.size() && n < 8; at += kRecord, ++n) {
    const std::vector<uint64_t> key = {U64(bytes, at), U64(bytes, at + 8), U64(bytes, at + 16),
                                       U64(bytes, at + 24), U64(bytes, at + 32)};
    const struct stat st = StatOf(key);
    const uint64_t hits = cache->hits();
    auto digest = cache->Digest("file", st);
    DEJA_CHECK(digest.ok() && deja::fuzz::IsLowerHex32(*digest),
               digest.ok() ? *digest : digest.status().ToString());
    // A miss on a file changed within the racy window is hashed but not
    // remembered (hash_cache.h): a later lookup may answer otherwise.
    const absl::Time changed =
        absl::FromUnixNanos(std::max(static_cast<int64_t>(key[3]), static_cast<int64_t>(key[4])));
    const bool racy = changed > clock.Now() - options.racy_window;
    if (cache->hits() > hits || !racy) answered[key] = *digest;
  }
  if (!cache->Save().ok()) return 0;  // a directory in the way, say: warned, never fatal
  auto reloaded = deja::HashCache::Load(path, options);
  for (const auto& [key, digest] : answered) {
    auto again = reloaded->Digest("file", StatOf(key));
    DEJA_CHECK(again.ok() && *again == digest,
               absl::StrCat("digest changed across Save: ", digest, " then ",
                            again.ok() ? *again : again.status().ToString()));
  }
  return 0;
}
