// Blobs as read back from the content store, written by whoever uploaded
// them: directory blobs (DecodeDirectory, common/tree.h) and workspace
// manifests (ParseManifest, common/manifest.h), then laid out the way a
// worker lays out a copy (worker/file_copy.h's MakeDestParents, files
// created with O_EXCL | O_NOFOLLOW, symlinks with their target text).
//
// Input: one byte choosing the blob (even: directory, odd: manifest), then
// its bytes. Properties:
//   - a decoded directory re-encodes to the same bytes, its names are one
//     component each and its digests 32 lowercase hex digits;
//   - a manifest that parses, whose paths the worker accepts, is laid out
//     under a scratch root without creating anything outside it (a symlink
//     "a" -> "/" followed by a file "a/x" must not write through the link).
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <set>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/hash.h"
#include "common/manifest.h"
#include "common/tree.h"
#include "tests/fuzz/fuzz_util.h"
#include "worker/file_copy.h"
#include "worker/paths.h"

namespace {

namespace paths = deja::worker::paths;

void FuzzDirectory(std::string_view bytes) {
  auto entries = deja::DecodeDirectory(absl::string_view(bytes.data(), bytes.size()));
  if (!entries.ok()) return;
  DEJA_CHECK(deja::EncodeDirectory(*entries) == bytes, "decoded directory re-encodes otherwise");
  for (const deja::DirEntry& entry : *entries) {
    DEJA_CHECK(
        paths::ValidateRelativePath(entry.name).ok() && entry.name.find('/') == std::string::npos,
        absl::StrCat("entry name \"", entry.name, "\""));
    if (entry.kind != deja::DirEntry::Kind::kSymlink) {
      DEJA_CHECK(deja::fuzz::IsLowerHex32(entry.digest),
                 absl::StrCat("entry \"", entry.name, "\" digest \"", entry.digest, "\""));
    }
  }
}

// The names directly in `dir`.
std::set<std::string> Names(const std::string& dir) {
  std::set<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    names.insert(entry.path().filename().string());
  }
  return names;
}

void FuzzManifest(std::string_view bytes) {
  deja::v1::ManifestRef ref;
  ref.set_digest(deja::HashBytes(bytes));
  ref.set_size(bytes.size());
  deja::v1::Manifest probe;
  if (!probe.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) return;
  ref.set_files(static_cast<uint64_t>(probe.files_size()));
  auto manifest = deja::ParseManifest(ref, bytes);
  DEJA_CHECK(manifest.ok(), manifest.status().ToString());
  if (manifest->files_size() > 64) return;  // the layout below is per file

  // The worker's checks (worker/materializer.cc, worker/peer_client.cc).
  std::set<std::string> seen;
  for (const auto& entry : manifest->files()) {
    if (!paths::ValidateRelativePath(entry.path()).ok()) return;
    if (!S_ISREG(entry.mode()) && !S_ISLNK(entry.mode())) return;
    if (!seen.insert(entry.path()).second) return;
  }

  // Scratch: <scratch>/m/ws is the workspace, <scratch>/m/outside a
  // sibling that must stay empty.
  const std::string top = deja::fuzz::ScratchDir() + "/m";
  const std::string root = top + "/ws";
  const std::string outside = top + "/outside";
  DEJA_CHECK(paths::RemoveTree(top).ok(), "clean scratch");
  DEJA_CHECK(paths::MakeDirs(root).ok() && paths::MakeDirs(outside).ok(), "make scratch");
  std::set<std::string> made;
  for (const auto& entry : manifest->files()) {
    if (!deja::worker::MakeDestParents(root, entry.path(), &made).ok()) break;
    const std::string dst = absl::StrCat(root, "/", entry.path());
    if (S_ISREG(entry.mode())) {
      int fd = open(dst.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
      if (fd < 0) break;
      close(fd);
    } else if (symlink(entry.digest().c_str(), dst.c_str()) != 0) {
      break;  // the digest's bytes stand for the link's target text here
    }
  }
  DEJA_CHECK(Names(top) == (std::set<std::string>{"outside", "ws"}),
             "a manifest created something beside the workspace");
  DEJA_CHECK(Names(outside).empty(), "a manifest wrote outside the workspace");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  deja::fuzz::Input in(data, size);
  if (in.Byte() % 2 == 0) {
    FuzzDirectory(in.rest());
  } else {
    FuzzManifest(in.rest());
  }
  return 0;
}
