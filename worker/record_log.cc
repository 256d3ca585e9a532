#include "worker/record_log.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/errors.h"
#include "common/files.h"
#include "common/hash.h"

namespace deja::worker {
namespace {

constexpr size_t kChecksumSize = 32;
constexpr uint32_t kMaxPayload = 1u << 30;

std::string Frame(std::string_view payload) {
  std::string out;
  const uint32_t size = static_cast<uint32_t>(payload.size());
  out.append(reinterpret_cast<const char*>(&size), sizeof(size));
  out.append(payload);
  out.append(HashBytes(payload));
  return out;
}

absl::Status WriteAll(int fd, std::string_view data, const std::string& path) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus(errno, "write " + path);
    done += static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadWhole(int fd, const std::string& path) {
  std::string text;
  char buf[1 << 16];
  while (true) {
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus(errno, "read " + path);
    if (n == 0) return text;
    text.append(buf, static_cast<size_t>(n));
  }
}

// Appends the intact records at the start of `text`; returns where they end.
size_t Parse(const std::string& text, std::vector<RecordLog::Record>* records) {
  size_t pos = 0;
  while (pos + sizeof(uint32_t) <= text.size()) {
    uint32_t size = 0;
    std::memcpy(&size, text.data() + pos, sizeof(size));
    const size_t payload = pos + sizeof(size);
    if (size > kMaxPayload || payload + size + kChecksumSize > text.size()) break;
    const std::string_view bytes(text.data() + payload, size);
    if (HashBytes(bytes) != std::string_view(text.data() + payload + size, kChecksumSize)) break;
    records->push_back(RecordLog::Record{payload, std::string(bytes)});
    pos = payload + size + kChecksumSize;
  }
  return pos;
}

}  // namespace

absl::Status RecordLog::Read(const std::string& path, std::vector<Record>* records,
                             bool* truncated) {
  Fd fd(open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (fd.get() < 0) {
    if (errno == ENOENT) return absl::OkStatus();
    return ErrnoStatus(errno, "open " + path);
  }
  auto text = ReadWhole(fd.get(), path);
  if (!text.ok()) return text.status();
  const size_t pos = Parse(*text, records);
  if (truncated != nullptr) *truncated = pos != text->size();
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<RecordLog>> RecordLog::Open(const std::string& path,
                                                           std::vector<Record>* records,
                                                           bool* truncated) {
  std::unique_ptr<RecordLog> log(new RecordLog(path));
  struct stat st;
  const bool existed = lstat(path.c_str(), &st) == 0;
  log->fd_.Reset(open(path.c_str(), O_RDWR | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0644));
  if (log->fd_.get() < 0) return ErrnoStatus(errno, "open " + path);
  if (!existed) {
    if (absl::Status s = SyncParentDir(path); !s.ok()) return s;
  }
  auto text = ReadWhole(log->fd_.get(), path);
  if (!text.ok()) return text.status();
  const size_t pos = Parse(*text, records);
  if (truncated != nullptr) *truncated = pos != text->size();
  if (pos != text->size() && ftruncate(log->fd_.get(), static_cast<off_t>(pos)) != 0) {
    return ErrnoStatus(errno, "truncate " + path);
  }
  log->end_ = pos;
  return log;
}

absl::StatusOr<uint64_t> RecordLog::Append(std::string_view payload, bool sync) {
  if (payload.size() > kMaxPayload) {
    return absl::ResourceExhaustedError(
        absl::StrCat(path_, ": a record of ", payload.size(), " bytes is too large"));
  }
  absl::Status st = WriteAll(fd_.get(), Frame(payload), path_);
  if (st.ok() && sync && fdatasync(fd_.get()) != 0) st = ErrnoStatus(errno, "fdatasync " + path_);
  if (!st.ok()) {
    // Nothing half-written stays in front of the next append.
    if (ftruncate(fd_.get(), static_cast<off_t>(end_)) != 0) {
      struct stat now;
      if (fstat(fd_.get(), &now) == 0) end_ = static_cast<uint64_t>(now.st_size);
    }
    return st;
  }
  const uint64_t offset = end_ + sizeof(uint32_t);
  end_ += sizeof(uint32_t) + payload.size() + kChecksumSize;
  return offset;
}

absl::Status RecordLog::Sync() {
  if (fdatasync(fd_.get()) != 0) return ErrnoStatus(errno, "fdatasync " + path_);
  return absl::OkStatus();
}

absl::StatusOr<std::string> RecordLog::ReadAt(uint64_t offset, uint32_t size) const {
  Fd in(open(path_.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (in.get() < 0) return ErrnoStatus(errno, "open " + path_);
  std::string bytes(size + kChecksumSize, '\0');
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = pread(in.get(), bytes.data() + done, bytes.size() - done,
                      static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus(errno, "read " + path_);
    if (n == 0) return absl::DataLossError(absl::StrCat(path_, ": short record at ", offset));
    done += static_cast<size_t>(n);
  }
  std::string payload = bytes.substr(0, size);
  if (HashBytes(payload) != std::string_view(bytes.data() + size, kChecksumSize)) {
    return absl::DataLossError(absl::StrCat(path_, ": corrupt record at ", offset));
  }
  return payload;
}

absl::Status RecordLog::Rewrite(const std::vector<std::string>& payloads,
                                std::vector<uint64_t>* offsets) {
  std::string text;
  for (const std::string& payload : payloads) {
    if (offsets != nullptr) offsets->push_back(text.size() + sizeof(uint32_t));
    text.append(Frame(payload));
  }
  if (absl::Status st = WriteFileAtomically(path_, text, /*sync=*/true); !st.ok()) return st;
  // Appends go to the new file.
  fd_.Reset(open(path_.c_str(), O_WRONLY | O_APPEND | O_NOFOLLOW | O_CLOEXEC));
  if (fd_.get() < 0) return ErrnoStatus(errno, "open " + path_);
  end_ = text.size();
  return absl::OkStatus();
}

}  // namespace deja::worker
