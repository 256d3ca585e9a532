#include "common/tree.h"

#include <dirent.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <set>

#include "absl/strings/str_cat.h"
#include "common/errors.h"
#include "common/hash.h"

namespace deja {
namespace {

void PutU64(uint64_t value, std::string* out) {
  for (int i = 0; i < 8; ++i) out->push_back(static_cast<char>((value >> (8 * i)) & 0xff));
}

void PutString(absl::string_view value, std::string* out) {
  PutU64(value.size(), out);
  out->append(value.data(), value.size());
}

class Reader {
 public:
  explicit Reader(absl::string_view bytes) : bytes_(bytes) {}
  bool U64(uint64_t* out) {
    if (bytes_.size() < 8) return false;
    *out = 0;
    for (int i = 0; i < 8; ++i) *out |= uint64_t{static_cast<unsigned char>(bytes_[i])} << (8 * i);
    bytes_.remove_prefix(8);
    return true;
  }
  bool String(std::string* out) {
    uint64_t n = 0;
    if (!U64(&n) || n > bytes_.size()) return false;
    out->assign(bytes_.data(), n);
    bytes_.remove_prefix(n);
    return true;
  }
  bool done() const { return bytes_.empty(); }

 private:
  absl::string_view bytes_;
};

absl::Status Invalid(absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("directory blob: ", what));
}

struct Walker {
  const FileHasher& hash_file;
  TreeDigest* tree;
  std::set<std::string> seen;

  // Returns the directory entry for the directory at `path`.
  absl::StatusOr<DirEntry> Directory(const std::string& path, const std::string& name) {
    DIR* dir = opendir(path.c_str());
    if (dir == nullptr) return ErrnoStatus(errno, "open directory " + path);
    std::vector<std::string> names;
    while (dirent* d = readdir(dir)) {
      std::string n = d->d_name;
      if (n != "." && n != "..") names.push_back(std::move(n));
    }
    closedir(dir);
    std::vector<DirEntry> entries;
    for (const std::string& n : names) {
      std::string child = absl::StrCat(path, "/", n);
      struct stat st;
      if (lstat(child.c_str(), &st) != 0) return ErrnoStatus(errno, "lstat " + child);
      DirEntry entry;
      entry.name = n;
      if (S_ISDIR(st.st_mode)) {
        auto sub = Directory(child, n);
        if (!sub.ok()) return sub.status();
        entry = *std::move(sub);
      } else if (S_ISREG(st.st_mode)) {
        auto digest = hash_file(child, st);
        if (!digest.ok()) return digest.status();
        entry.kind = DirEntry::Kind::kFile;
        entry.executable = (st.st_mode & 0111) != 0;
        entry.digest = *digest;
        entry.size = static_cast<uint64_t>(st.st_size);
        tree->total_file_bytes += entry.size;
        if (seen.insert(entry.digest).second) {
          tree->blobs.push_back(TreeBlob{entry.digest, entry.size, child, ""});
        }
      } else if (S_ISLNK(st.st_mode)) {
        std::string target(4096, '\0');
        ssize_t len = readlink(child.c_str(), target.data(), target.size());
        if (len < 0) return ErrnoStatus(errno, "readlink " + child);
        target.resize(static_cast<size_t>(len));
        entry.kind = DirEntry::Kind::kSymlink;
        entry.target = std::move(target);
      } else {
        return absl::InvalidArgumentError(
            absl::StrCat(child, ": not a regular file, directory or symlink"));
      }
      entries.push_back(std::move(entry));
    }
    std::string bytes = EncodeDirectory(std::move(entries));
    DirEntry self = DirectoryEntry(name, bytes);
    if (seen.insert(self.digest).second) {
      tree->blobs.push_back(TreeBlob{self.digest, self.size, "", std::move(bytes)});
    }
    return self;
  }
};

}  // namespace

DirEntry DirectoryEntry(const std::string& name, const std::string& bytes) {
  DirEntry self;
  self.name = name;
  self.kind = DirEntry::Kind::kDirectory;
  self.digest = HashBytes(bytes);
  self.size = bytes.size();
  return self;
}

absl::string_view DirEntryKindName(DirEntry::Kind kind) {
  switch (kind) {
    case DirEntry::Kind::kFile:
      return "file";
    case DirEntry::Kind::kDirectory:
      return "dir";
    case DirEntry::Kind::kSymlink:
      return "symlink";
  }
  return "file";
}

std::string EncodeDirectory(std::vector<DirEntry> entries) {
  std::sort(entries.begin(), entries.end(),
            [](const DirEntry& a, const DirEntry& b) { return a.name < b.name; });
  std::string out;
  PutString(kDirectoryTag, &out);
  PutU64(entries.size(), &out);
  for (const DirEntry& e : entries) {
    PutString(e.name, &out);
    PutString(DirEntryKindName(e.kind), &out);
    PutU64(e.kind == DirEntry::Kind::kFile && e.executable ? 1 : 0, &out);
    PutString(e.kind == DirEntry::Kind::kSymlink ? "" : e.digest, &out);
    PutU64(e.kind == DirEntry::Kind::kSymlink ? 0 : e.size, &out);
    PutString(e.kind == DirEntry::Kind::kSymlink ? e.target : "", &out);
  }
  return out;
}

absl::StatusOr<std::vector<DirEntry>> DecodeDirectory(absl::string_view bytes) {
  Reader in(bytes);
  std::string tag;
  uint64_t count = 0;
  if (!in.String(&tag) || tag != kDirectoryTag) return Invalid("bad tag");
  if (!in.U64(&count) || count > bytes.size()) return Invalid("bad entry count");
  std::vector<DirEntry> entries;
  for (uint64_t i = 0; i < count; ++i) {
    DirEntry e;
    std::string kind;
    uint64_t executable = 0;
    if (!in.String(&e.name) || !in.String(&kind) || !in.U64(&executable) || !in.String(&e.digest) ||
        !in.U64(&e.size) || !in.String(&e.target)) {
      return Invalid("truncated");
    }
    if (e.name.empty() || e.name == "." || e.name == ".." ||
        e.name.find_first_of(std::string("/\0", 2)) != std::string::npos) {
      return Invalid(absl::StrCat("bad entry name \"", e.name, "\""));
    }
    if (!entries.empty() && entries.back().name >= e.name) {
      return Invalid(absl::StrCat("entries not sorted at \"", e.name, "\""));
    }
    if (kind == "file") {
      e.kind = DirEntry::Kind::kFile;
    } else if (kind == "dir") {
      e.kind = DirEntry::Kind::kDirectory;
    } else if (kind == "symlink") {
      e.kind = DirEntry::Kind::kSymlink;
    } else {
      return Invalid(absl::StrCat("unknown kind \"", kind, "\" of \"", e.name, "\""));
    }
    if (e.kind != DirEntry::Kind::kSymlink && !IsDigest(e.digest)) {
      return Invalid(absl::StrCat("bad digest of \"", e.name, "\""));
    }
    e.executable = executable != 0;
    entries.push_back(std::move(e));
  }
  if (!in.done()) return Invalid("trailing bytes");
  // Anything the fields above cannot tell (a symlink with a digest, an
  // executable directory, a flag other than 0 or 1) fails this.
  if (EncodeDirectory(entries) != bytes) return Invalid("not in canonical form");
  return entries;
}

absl::StatusOr<TreeDigest> DigestTree(const std::string& root, const FileHasher& hash_file) {
  TreeDigest tree;
  Walker walker{hash_file, &tree, {}};
  auto self = walker.Directory(root, "");
  if (!self.ok()) return self.status();
  tree.digest = self->digest;
  tree.size = self->size;
  // The root was appended last (post-order); callers want it first.
  auto it = std::find_if(tree.blobs.begin(), tree.blobs.end(),
                         [&](const TreeBlob& b) { return b.digest == tree.digest; });
  std::rotate(tree.blobs.begin(), it, it + 1);
  return tree;
}

}  // namespace deja
