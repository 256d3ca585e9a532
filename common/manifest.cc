#include "common/manifest.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "common/errors.h"
#include "common/hash.h"

namespace deja {
namespace fs = std::filesystem;

namespace {

absl::StatusOr<std::string> ReadLink(const std::string& path) {
  std::string target(4096, '\0');
  ssize_t n = readlink(path.c_str(), target.data(), target.size());
  if (n < 0) return ErrnoStatus(errno, "readlink " + path);
  target.resize(static_cast<size_t>(n));
  return target;
}

}  // namespace

absl::StatusOr<deja::v1::Manifest> BuildManifest(const std::string& root) {
  deja::v1::Manifest manifest;
  const fs::path base = fs::path(root).lexically_normal();
  std::error_code ec;
  fs::recursive_directory_iterator it(root, fs::directory_options::none, ec);
  if (ec) return absl::NotFoundError(absl::StrCat("open workspace ", root, ": ", ec.message()));
  for (; it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) return absl::InternalError(absl::StrCat("walk ", root, ": ", ec.message()));
    const std::string path = it->path().string();
    struct stat st;
    if (lstat(path.c_str(), &st) != 0) return ErrnoStatus(errno, "lstat " + path);
    deja::v1::FileEntry entry;
    // lexically: fs::relative would resolve the symlink itself.
    entry.set_path(it->path().lexically_relative(base).generic_string());
    if (S_ISREG(st.st_mode)) {
      auto digest = HashFile(path);
      if (!digest.ok()) return digest.status();
      entry.set_size(static_cast<uint64_t>(st.st_size));
      entry.set_digest(*digest);
    } else if (S_ISLNK(st.st_mode)) {
      auto target = ReadLink(path);
      if (!target.ok()) return target.status();
      entry.set_size(target->size());
      entry.set_digest(HashBytes(*target));
    } else {
      continue;  // directories, and special files a job has no business leaving
    }
    entry.set_mode(st.st_mode);
    *manifest.add_files() = std::move(entry);
  }
  std::sort(manifest.mutable_files()->begin(), manifest.mutable_files()->end(),
            [](const auto& a, const auto& b) { return a.path() < b.path(); });
  return manifest;
}

absl::Status VerifyManifest(const std::string& root, const deja::v1::Manifest& manifest) {
  for (const auto& entry : manifest.files()) {
    const std::string path = root + "/" + entry.path();
    struct stat st;
    if (lstat(path.c_str(), &st) != 0) {
      return absl::DataLossError(absl::StrCat(entry.path(), ": missing from ", root));
    }
    if ((st.st_mode & S_IFMT) != (entry.mode() & S_IFMT)) {
      return absl::DataLossError(absl::StrCat(entry.path(), ": file type changed"));
    }
    std::string digest;
    if (S_ISLNK(st.st_mode)) {
      auto target = ReadLink(path);
      if (!target.ok()) return absl::DataLossError(target.status().message());
      digest = HashBytes(*target);
    } else {
      if (static_cast<uint64_t>(st.st_size) != entry.size()) {
        return absl::DataLossError(absl::StrCat(entry.path(), ": size changed (", entry.size(),
                                                " -> ", st.st_size, " bytes)"));
      }
      auto hashed = HashFile(path);
      if (!hashed.ok()) return absl::DataLossError(hashed.status().message());
      digest = *hashed;
    }
    if (digest != entry.digest()) {
      return absl::DataLossError(absl::StrCat(entry.path(), ": content changed (digest ",
                                              entry.digest(), " -> ", digest, ")"));
    }
  }
  return absl::OkStatus();
}

uint64_t ManifestBytes(const deja::v1::Manifest& manifest) {
  uint64_t total = 0;
  for (const auto& entry : manifest.files()) total += entry.size();
  return total;
}

deja::v1::ManifestRef SerializeManifest(const deja::v1::Manifest& manifest, std::string* bytes) {
  bytes->clear();
  manifest.SerializeToString(bytes);
  deja::v1::ManifestRef ref;
  ref.set_digest(HashBytes(*bytes));
  ref.set_size(bytes->size());
  ref.set_files(static_cast<uint64_t>(manifest.files_size()));
  ref.set_bytes(ManifestBytes(manifest));
  return ref;
}

absl::StatusOr<deja::v1::Manifest> ParseManifest(const deja::v1::ManifestRef& ref,
                                                 std::string_view bytes) {
  if (bytes.size() != ref.size() || HashBytes(bytes) != ref.digest()) {
    return absl::DataLossError(absl::StrCat("manifest ", ref.digest(), ": the blob read (",
                                            bytes.size(), " bytes) is not the one named"));
  }
  deja::v1::Manifest manifest;
  if (!manifest.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return absl::DataLossError(absl::StrCat("manifest ", ref.digest(), ": does not parse"));
  }
  if (static_cast<uint64_t>(manifest.files_size()) != ref.files()) {
    return absl::DataLossError(absl::StrCat("manifest ", ref.digest(), ": lists ",
                                            manifest.files_size(), " entries, not ", ref.files()));
  }
  return manifest;
}

}  // namespace deja
