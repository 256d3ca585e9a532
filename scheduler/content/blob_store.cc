#include "scheduler/content/blob_store.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <functional>
#include <iterator>
#include <string_view>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/errors.h"
#include "common/hash.h"
#include "common/manifest.h"

namespace deja {
namespace {

// A failed system call is the store's problem, not the client's: INTERNAL
// whatever the errno (a missing directory is not the client's NOT_FOUND).
absl::Status SysError(int err, const std::string& what) {
  absl::Status status = ErrnoStatus(err, what);
  return absl::InternalError(status.message());
}

absl::Status MakeDir(const std::string& path) {
  if (mkdir(path.c_str(), 0755) == 0 || errno == EEXIST) return absl::OkStatus();
  return SysError(errno, "mkdir " + path);
}

absl::Status MakeDirs(const std::string& path) {
  for (size_t slash = path.find('/', 1); slash != std::string::npos;
       slash = path.find('/', slash + 1)) {
    if (auto s = MakeDir(path.substr(0, slash)); !s.ok()) return s;
  }
  return MakeDir(path);
}

absl::Status SyncDir(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return SysError(errno, "open directory " + path);
  int rc = fsync(fd);
  int err = errno;
  close(fd);
  if (rc != 0) return SysError(err, "fsync directory " + path);
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateDigest(absl::string_view field, absl::string_view digest) {
  if (IsDigest(std::string_view(digest.data(), digest.size()))) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(field, ": \"", digest.substr(0, 64),
                                                 "\" is not a digest (32 lowercase hex digits)"));
}

// ---------------------------------------------------------------------------
// BlobWriter

BlobWriter::BlobWriter(BlobStore* store, deja::v1::BlobRef expected, std::string temp_path, int fd)
    : store_(store), expected_(std::move(expected)), temp_path_(std::move(temp_path)), fd_(fd) {}

BlobWriter::~BlobWriter() {
  if (!done_) Discard();
}

void BlobWriter::Discard() {
  if (fd_ >= 0) {
    close(fd_);
    fd_ = -1;
  }
  unlink(temp_path_.c_str());
  done_ = true;
}

absl::Status BlobWriter::Append(absl::string_view data) {
  if (done_) {
    return absl::FailedPreconditionError(
        absl::StrCat("blob ", expected_.digest(), ": the upload is already finished"));
  }
  if (data.size() > expected_.size() - written_) {
    Discard();
    return absl::InvalidArgumentError(absl::StrCat("blob ", expected_.digest(),
                                                   ": size mismatch: expected ", expected_.size(),
                                                   " bytes, got more"));
  }
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = write(fd_, data.data() + off, data.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      absl::Status status = SysError(errno, "write " + temp_path_);
      Discard();
      return status;
    }
    off += static_cast<size_t>(n);
  }
  hasher_.Update(std::string_view(data.data(), data.size()));
  written_ += data.size();
  return absl::OkStatus();
}

absl::StatusOr<bool> BlobWriter::Commit() {
  if (done_) {
    return absl::FailedPreconditionError(
        absl::StrCat("blob ", expected_.digest(), ": the upload is already finished"));
  }
  if (written_ != expected_.size()) {
    Discard();
    return absl::InvalidArgumentError(absl::StrCat("blob ", expected_.digest(), " truncated: got ",
                                                   written_, " of ", expected_.size(), " bytes"));
  }
  std::string got = hasher_.HexDigest();
  if (got != expected_.digest()) {
    Discard();
    return absl::InvalidArgumentError(absl::StrCat("blob ", expected_.digest(),
                                                   ": digest mismatch: expected ",
                                                   expected_.digest(), ", got ", got));
  }
  if (fsync(fd_) != 0) {
    absl::Status status = SysError(errno, "fsync " + temp_path_);
    Discard();
    return status;
  }
  int rc = close(fd_);
  fd_ = -1;
  if (rc != 0) {
    absl::Status status = SysError(errno, "close " + temp_path_);
    Discard();
    return status;
  }
  absl::StatusOr<bool> installed = store_->Install(temp_path_, expected_);
  if (!installed.ok()) {
    Discard();
    return installed.status();
  }
  done_ = true;
  return *installed;
}

// ---------------------------------------------------------------------------
// BlobStore

BlobStore::BlobStore(std::string dir, BlobMetadataStore* meta)
    : dir_(std::move(dir)), tmp_dir_(dir_ + "/tmp"), meta_(meta) {}

absl::StatusOr<std::unique_ptr<BlobStore>> BlobStore::Open(std::string dir,
                                                           BlobMetadataStore* meta) {
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  if (dir.empty()) return absl::InvalidArgumentError("blob store: the directory is empty");
  std::unique_ptr<BlobStore> store(new BlobStore(std::move(dir), meta));
  if (auto s = MakeDirs(store->tmp_dir_); !s.ok()) return s;
  // Leftovers of uploads cut short by a crash: never committed, so garbage.
  DIR* tmp = opendir(store->tmp_dir_.c_str());
  if (tmp == nullptr) return SysError(errno, "open directory " + store->tmp_dir_);
  std::vector<std::string> stale;
  while (dirent* entry = readdir(tmp)) {
    std::string name = entry->d_name;
    if (name != "." && name != "..") stale.push_back(store->tmp_dir_ + "/" + name);
  }
  closedir(tmp);
  for (const std::string& path : stale) {
    if (unlink(path.c_str()) != 0 && errno != ENOENT) {
      return SysError(errno, "delete stale upload " + path);
    }
  }
  return store;
}

std::string BlobStore::PathOf(const std::string& digest) const {
  return absl::StrCat(dir_, "/", digest.substr(0, 2), "/", digest);
}

absl::StatusOr<std::unique_ptr<BlobWriter>> BlobStore::BeginWrite(deja::v1::BlobRef expected) {
  if (auto s = ValidateDigest("blob.digest", expected.digest()); !s.ok()) return s;
  std::string temp = absl::StrCat(tmp_dir_, "/", expected.digest(), ".XXXXXX");
  int fd = mkostemp(temp.data(), O_CLOEXEC);
  if (fd < 0) return SysError(errno, "create " + temp);
  return std::unique_ptr<BlobWriter>(new BlobWriter(this, std::move(expected), temp, fd));
}

absl::StatusOr<bool> BlobStore::Install(const std::string& temp_path,
                                        const deja::v1::BlobRef& blob) {
  const std::string final_path = PathOf(blob.digest());
  const std::string subdir = absl::StrCat(dir_, "/", blob.digest().substr(0, 2));
  struct stat st;
  if (stat(subdir.c_str(), &st) != 0) {
    if (auto s = MakeDir(subdir); !s.ok()) return s;
    if (auto s = SyncDir(dir_); !s.ok()) return s;
  }
  // Exclusive with a collection of this blob: it either happened before
  // (the file is gone: installed anew) or sees the use recorded below.
  absl::MutexLock lock(&LockOf(blob.digest()));
  bool already = false;
  if (stat(final_path.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
      static_cast<uint64_t>(st.st_size) == blob.size()) {
    // Same digest and size: the same bytes. Keep the file readers may have
    // open and drop this copy. (Two uploads racing past this check both
    // rename; the second replaces identical bytes atomically, and readers
    // keep the inode they opened.)
    already = true;
    unlink(temp_path.c_str());
  } else {
    // Absent, or damaged behind our back (wrong size): this checked copy
    // replaces it atomically.
    if (rename(temp_path.c_str(), final_path.c_str()) != 0) {
      return SysError(errno, "rename " + temp_path + " to " + final_path);
    }
    if (auto s = SyncDir(subdir); !s.ok()) return s;
  }

  // A record that is missing, does not parse or has another size is
  // (re)written: the file is the truth.
  absl::StatusOr<deja::v1::BlobMeta> got = meta_->GetBlobMeta(blob.digest());
  const int64_t now_ms = absl::ToUnixMillis(absl::Now());
  if (got.ok() && got->size() == blob.size()) {
    got->set_used_at_ms(now_ms);  // uploaded again: in use
    if (absl::Status s = meta_->PutBlobMetaLazily(blob.digest(), *got); !s.ok()) return s;
    return already;
  }
  if (!got.ok() && !absl::IsNotFound(got.status()) && !absl::IsDataLoss(got.status())) {
    return got.status();
  }
  deja::v1::BlobMeta meta;
  meta.set_size(blob.size());
  meta.set_created_at_ms(now_ms);
  if (absl::Status s = meta_->PutBlobMeta(blob.digest(), meta); !s.ok()) return s;
  return already;
}

absl::Mutex& BlobStore::LockOf(const std::string& digest) const {
  return stripes_[std::hash<std::string>{}(digest) % std::size(stripes_)];
}

bool BlobStore::Use(const deja::v1::BlobRef& blob) {
  if (!ValidateDigest("digest", blob.digest()).ok()) return false;
  absl::MutexLock lock(&LockOf(blob.digest()));
  if (!Has(blob)) return false;
  const int64_t now_ms = absl::ToUnixMillis(absl::Now());
  absl::StatusOr<deja::v1::BlobMeta> meta = meta_->GetBlobMeta(blob.digest());
  if (meta.ok() && meta->used_at_ms() > now_ms - 10'000) return true;
  if (!meta.ok()) {
    meta = deja::v1::BlobMeta();
    meta->set_size(blob.size());
    meta->set_created_at_ms(now_ms);
  }
  meta->set_used_at_ms(now_ms);
  // A lost write only makes the blob look older to the collector; the
  // lock still orders this use before any collection that follows.
  (void)meta_->PutBlobMetaLazily(blob.digest(), *meta);
  return true;
}

absl::StatusOr<uint64_t> BlobStore::CollectUnusedSince(const std::string& digest,
                                                       int64_t cutoff_ms) {
  if (auto s = ValidateDigest("digest", digest); !s.ok()) return s;
  absl::MutexLock lock(&LockOf(digest));
  absl::StatusOr<deja::v1::BlobMeta> meta = meta_->GetBlobMeta(digest);
  if (absl::IsNotFound(meta.status())) return 0;
  if (!meta.ok()) return meta.status();
  if (std::max(meta->created_at_ms(), meta->used_at_ms()) >= cutoff_ms) return 0;
  const std::string path = PathOf(digest);
  if (unlink(path.c_str()) != 0 && errno != ENOENT) return SysError(errno, "delete " + path);
  if (absl::Status s = meta_->DeleteBlobMeta(digest); !s.ok()) return s;
  return meta->size();
}

bool BlobStore::Has(const deja::v1::BlobRef& blob) const {
  if (!ValidateDigest("digest", blob.digest()).ok()) return false;
  struct stat st;
  if (stat(PathOf(blob.digest()).c_str(), &st) != 0) return false;
  return S_ISREG(st.st_mode) && static_cast<uint64_t>(st.st_size) == blob.size();
}

absl::StatusOr<int> BlobStore::OpenForRead(const std::string& digest) const {
  if (auto s = ValidateDigest("digest", digest); !s.ok()) return s;
  const std::string path = PathOf(digest);
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return absl::NotFoundError(absl::StrCat("blob ", digest, " not found"));
    return SysError(errno, "open " + path);
  }
  return fd;
}

absl::StatusOr<std::string> BlobStore::Read(const deja::v1::BlobRef& blob) const {
  absl::StatusOr<int> fd = OpenForRead(blob.digest());
  if (!fd.ok()) return fd.status();
  std::string bytes(blob.size(), '\0');
  size_t got = 0;
  int err = 0;
  while (got < bytes.size()) {
    ssize_t n = pread(*fd, bytes.data() + got, bytes.size() - got, static_cast<off_t>(got));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) err = errno;
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  close(*fd);
  if (err != 0) return SysError(err, "read " + PathOf(blob.digest()));
  if (got < bytes.size()) {
    return absl::DataLossError(
        absl::StrCat("blob ", blob.digest(), ": shorter than ", blob.size(), " bytes"));
  }
  return bytes;
}

absl::StatusOr<deja::v1::Manifest> BlobStore::ReadManifest(const deja::v1::ManifestRef& ref) const {
  deja::v1::BlobRef blob;
  blob.set_digest(ref.digest());
  blob.set_size(ref.size());
  absl::StatusOr<std::string> bytes = Read(blob);
  if (!bytes.ok()) {
    return absl::Status(bytes.status().code(),
                        absl::StrCat("manifest ", ref.digest(), ": ", bytes.status().message()));
  }
  return ParseManifest(ref, *bytes);
}

absl::StatusOr<deja::v1::BlobMeta> BlobStore::GetMeta(const std::string& digest) const {
  if (auto s = ValidateDigest("digest", digest); !s.ok()) return s;
  absl::StatusOr<deja::v1::BlobMeta> got = meta_->GetBlobMeta(digest);
  if (absl::IsNotFound(got.status())) {
    return absl::NotFoundError(absl::StrCat("blob ", digest, " has no record"));
  }
  return got;
}

absl::Status BlobStore::Put(absl::string_view bytes) {
  deja::v1::BlobRef ref;
  ref.set_digest(HashBytes(std::string_view(bytes.data(), bytes.size())));
  ref.set_size(bytes.size());
  if (Use(ref)) return absl::OkStatus();
  auto writer = BeginWrite(ref);
  if (!writer.ok()) return writer.status();
  if (absl::Status s = (*writer)->Append(bytes); !s.ok()) return s;
  return (*writer)->Commit().status();
}

}  // namespace deja
