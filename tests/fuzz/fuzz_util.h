// Helpers the fuzz targets share (docs/testing.md, "Fuzzers"): a scratch
// directory per process, a reader that splits one input into fields, and an
// independent check of the digest form the parsers must enforce.
#ifndef DEJA_TESTS_FUZZ_FUZZ_UTIL_H_
#define DEJA_TESTS_FUZZ_FUZZ_UTIL_H_

#include <stdlib.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <string_view>

// Properties are checked with DEJA_CHECK (common/check.h): a failure
// prints the property and a detail and aborts, which libFuzzer reports as a
// crash with the input.
#include "common/check.h"

namespace deja::fuzz {

// A directory of this process under $TMPDIR (or /tmp), removed at exit.
inline const std::string& ScratchDir() {
  static const std::string* dir = [] {
    const char* base = std::getenv("TMPDIR");
    std::string pattern =
        std::string(base != nullptr && base[0] != '\0' ? base : "/tmp") + "/deja-fuzz-XXXXXX";
    if (mkdtemp(pattern.data()) == nullptr) {
      std::perror("mkdtemp");
      std::abort();
    }
    auto* made = new std::string(pattern);
    std::atexit([] {
      std::error_code ec;
      std::filesystem::remove_all(*dir, ec);
    });
    return made;
  }();
  return *dir;
}

// Whether `text` is 32 lowercase hex digits (written apart from
// deja::IsDigest, which the code under test uses).
inline bool IsLowerHex32(const std::string& text) {
  return text.size() == 32 && text.find_first_not_of("0123456789abcdef") == std::string::npos;
}

// Reads an input as a sequence of fields: bytes, runs of bytes, and strings
// ended by a separator byte (the last one runs to the end).
class Input {
 public:
  Input(const uint8_t* data, size_t size) : rest_(reinterpret_cast<const char*>(data), size) {}

  bool empty() const { return rest_.empty(); }
  std::string_view rest() const { return rest_; }

  uint8_t Byte() {
    if (rest_.empty()) return 0;
    auto b = static_cast<uint8_t>(rest_.front());
    rest_.remove_prefix(1);
    return b;
  }

  // The next `n` bytes, or what is left when fewer.
  std::string_view Take(size_t n) {
    std::string_view field = rest_.substr(0, n);
    rest_.remove_prefix(field.size());
    return field;
  }

  // Up to the next `sep` (dropped), or everything left.
  std::string_view Until(char sep) {
    size_t at = rest_.find(sep);
    std::string_view field = rest_.substr(0, at);
    rest_.remove_prefix(at == std::string_view::npos ? rest_.size() : at + 1);
    return field;
  }

 private:
  std::string_view rest_;
};

}  // namespace deja::fuzz

#endif  // DEJA_TESTS_FUZZ_FUZZ_UTIL_H_
