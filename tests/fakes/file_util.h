// File helpers beside tests/fakes/temp_dir.h: mtimes, deterministic content,
// listing what a command left, and whether a program is installed.
#ifndef DEJA_TESTS_FAKES_FILE_UTIL_H_
#define DEJA_TESTS_FAKES_FILE_UTIL_H_

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "absl/time/time.h"

namespace deja::testing {

// Whether `program` is an executable in a directory of $PATH (as `command
// -v` finds it): tests of optional tools skip, saying why, without it.
inline bool Installed(const std::string& program) {
  const char* path = getenv("PATH");
  for (absl::string_view dir :
       absl::StrSplit(path == nullptr ? "" : path, ':', absl::SkipEmpty())) {
    if (access((std::string(dir) + "/" + program).c_str(), X_OK) == 0) return true;
  }
  return false;
}

// Sets the file's mtime (and atime) to `t`.
inline void SetMtime(const std::string& path, absl::Time t) {
  struct timespec times[2];
  times[0] = absl::ToTimespec(t);
  times[1] = absl::ToTimespec(t);
  ASSERT_EQ(utimensat(AT_FDCWD, path.c_str(), times, 0), 0) << path;
}

// Deterministic pseudo-random bytes.
inline std::string RandomBytes(size_t n, uint32_t seed) {
  std::string out(n, '\0');
  uint32_t x = seed * 2654435761u + 1;
  for (size_t i = 0; i < n; ++i) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    out[i] = static_cast<char>(x & 0xff);
  }
  return out;
}

// Regular files under `dir`, recursively.
inline std::vector<std::string> FilesUnder(const std::string& dir) {
  std::vector<std::string> files;
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(dir, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    if (it->is_regular_file()) files.push_back(it->path().string());
  }
  return files;
}

}  // namespace deja::testing

#endif  // DEJA_TESTS_FAKES_FILE_UTIL_H_
