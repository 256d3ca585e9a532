// Test scratch space: a temp dir per test, and whole-file reads and writes.
#ifndef DEJA_TESTS_FAKES_TEMP_DIR_H_
#define DEJA_TESTS_FAKES_TEMP_DIR_H_

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>

namespace deja::testing {

// A fresh directory under $TMPDIR (or /tmp), removed with everything in it
// when destroyed, also when a test left read-only directories in it (sealed
// workspaces, read-only inputs).
class TempDir {
 public:
  explicit TempDir(const std::string& prefix = "deja-test") {
    const char* base = std::getenv("TMPDIR");
    std::string pattern =
        std::string(base != nullptr && base[0] != '\0' ? base : "/tmp") + "/" + prefix + "-XXXXXX";
    char* made = mkdtemp(pattern.data());
    EXPECT_NE(made, nullptr) << "mkdtemp " << pattern;
    path_ = pattern;
  }
  ~TempDir() { RemoveTree(path_); }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  std::string Sub(const std::string& rel) const { return path_ + "/" + rel; }

  // Removes `dir` and everything under it, making read-only directories
  // writable first.
  static void RemoveTree(const std::string& dir) {
    std::error_code ec;
    std::filesystem::permissions(dir, std::filesystem::perms::owner_all,
                                 std::filesystem::perm_options::add, ec);
    for (auto it = std::filesystem::recursive_directory_iterator(dir, ec);
         !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
      if (it->is_directory(ec) && !it->is_symlink(ec)) chmod(it->path().c_str(), 0755);
    }
    std::filesystem::remove_all(dir, ec);
  }

 private:
  std::string path_;
};

// The whole file, or "" if it cannot be read.
inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

// Writes `bytes` to `path`, creating parent directories; then sets `mode`
// when one is given (else a new file gets 0666 less the umask, and an
// existing one keeps its mode).
inline void WriteFile(const std::string& path, const std::string& bytes,
                      std::optional<mode_t> mode = std::nullopt) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  out.close();
  EXPECT_TRUE(out.good()) << "write " << path;
  if (mode.has_value()) {
    EXPECT_EQ(chmod(path.c_str(), *mode), 0) << "chmod " << path;
  }
}

}  // namespace deja::testing

#endif  // DEJA_TESTS_FAKES_TEMP_DIR_H_
