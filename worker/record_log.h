// An append-only file of checksummed records, the worker's metadata format
// where one file per item would cost an inode (and fsyncs) per job:
// expiry records (worker/retention.h) and fingerprints
// (worker/fingerprints.h).
//
// Each record is [u32 payload size][payload][32 hex digits: XXH3-128 of
// the payload] (native byte order: the file never leaves its machine).
// Open() keeps every intact record up to the first torn or corrupt one (a
// crash mid-append) and truncates the file there, so later appends are
// read back. Rewrite() replaces the whole file atomically (temp file,
// fsync, rename, fsync of the directory) for compaction.
//
// Durability: Append(sync = true) returns once the record is on disk
// (fdatasync; the directory is fsynced once when Open creates the file).
// Append(sync = false) leaves it to the page cache: it may be lost in a
// crash, never half-read.
//
// Thread-safety: not thread-safe; callers serialise (ReadAt may run
// concurrently with Append: it reads through its own descriptor).
#ifndef DEJA_WORKER_RECORD_LOG_H_
#define DEJA_WORKER_RECORD_LOG_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "worker/file_copy.h"

namespace deja::worker {

class RecordLog {
 public:
  struct Record {
    uint64_t offset = 0;  // of the payload, for ReadAt
    std::string payload;
  };

  // Opens (creating it, and its directory entry durably) the log at `path`
  // and appends to `*records` every intact record in order. `*truncated`
  // (if given) says whether a torn or corrupt tail was cut off. I/O errors
  // name the path.
  static absl::StatusOr<std::unique_ptr<RecordLog>> Open(const std::string& path,
                                                         std::vector<Record>* records,
                                                         bool* truncated = nullptr);

  // Reads the intact records of the log at `path` without changing it (a
  // missing file has none): for inspection while another process appends.
  static absl::Status Read(const std::string& path, std::vector<Record>* records,
                           bool* truncated = nullptr);

  RecordLog(const RecordLog&) = delete;
  RecordLog& operator=(const RecordLog&) = delete;

  // Appends one record; returns its payload offset. On error the file is cut
  // back to where it was, as far as possible.
  absl::StatusOr<uint64_t> Append(std::string_view payload, bool sync);

  // Makes every record appended so far durable (fdatasync).
  absl::Status Sync();

  // Reads back the payload of `size` bytes at `offset` (from Open or
  // Append), checking its checksum: DATA_LOSS when it does not match.
  absl::StatusOr<std::string> ReadAt(uint64_t offset, uint32_t size) const;

  // Replaces the file's content by `payloads`, durably and atomically;
  // `*offsets` (if given) gets each one's new offset.
  absl::Status Rewrite(const std::vector<std::string>& payloads, std::vector<uint64_t>* offsets);

  uint64_t size() const { return end_; }
  const std::string& path() const { return path_; }

 private:
  explicit RecordLog(std::string path) : path_(std::move(path)) {}

  const std::string path_;
  Fd fd_;  // O_APPEND
  uint64_t end_ = 0;
};

}  // namespace deja::worker

#endif  // DEJA_WORKER_RECORD_LOG_H_
