// BlobStore: the content store's blobs on the scheduler's disk.
//
// Layout (docs/content-store.md):
//
//   <dir>/
//     tmp/                      uploads in progress, one unique temp file each;
//                               emptied at Open (leftovers of a crash)
//     <first 2 hex>/<digest>    one file per committed blob, named by its
//                               XXH3-128 digest (32 lowercase hex)
//
// and one deja.v1.BlobMeta per committed blob in a BlobMetadataStore (the
// scheduler's RocksStore: column family "blobs", key: the digest;
// scheduler/store/schema.h owns the schema).
//
// Durability: a blob is committed only after its size and digest were
// checked, its file fsync'ed, renamed into place, its directory fsync'ed,
// and its metadata written durably (BlobMetadataStore::PutBlobMeta). Nothing is visible
// under <digest> before that, so a crash leaves either no blob or a whole one
// (plus, at worst, a temp file that the next Open deletes). A blob file whose
// metadata write did not happen is still served: the file is the truth, the
// metadata is a record of when it arrived.
//
// Thread-safety: BlobStore is thread-safe; its state is the file system and
// the BlobMetadataStore (itself thread-safe), plus per-digest locks (striped)
// that make an upload's install, a use (Use) and the collector's delete of
// one blob exclusive: a blob a client was just told is present, or just
// uploaded, is never deleted by a collection that decided before. Two
// concurrent uploads of the same blob are safe: each writes its own temp
// file and the second to commit drops its copy. A BlobWriter belongs to one
// thread at a time.
//
// Every method does blocking file I/O: call it from a thread that may block
// (the content service's sync handlers), never from a gRPC reaction. Has()
// is a single stat and is the exception the scheduler's event loop may use.
#ifndef DEJA_SCHEDULER_CONTENT_BLOB_STORE_H_
#define DEJA_SCHEDULER_CONTENT_BLOB_STORE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "common/hash.h"
#include "deja/v1/content.pb.h"
#include "deja/v1/job.pb.h"
#include "scheduler/content/blob_metadata_store.h"

namespace deja {

class BlobStore;

// One upload in progress: the bytes go to a temp file while being hashed;
// Commit checks them and makes the blob visible. Destroying a writer that was
// not committed (or whose Commit failed) deletes its temp file: an abandoned
// upload stores nothing.
class BlobWriter {
 public:
  ~BlobWriter();
  BlobWriter(const BlobWriter&) = delete;
  BlobWriter& operator=(const BlobWriter&) = delete;

  // Appends `data`. INVALID_ARGUMENT as soon as the bytes exceed the expected
  // size ("blob <d>: more than <size> bytes"); INTERNAL on a write error.
  // After an error the writer is dead: every later call fails.
  absl::Status Append(absl::string_view data);

  // Checks what was appended against the expected blob and makes it visible.
  // Returns true when the store already had the blob (this copy is dropped).
  // INVALID_ARGUMENT: fewer bytes ("blob <d> truncated: got N of M bytes")
  // or another digest ("blob <d>: content hashes to <got>"); INTERNAL on a
  // file or metadata error. On any error nothing is stored.
  absl::StatusOr<bool> Commit();

  const deja::v1::BlobRef& expected() const { return expected_; }
  uint64_t bytes_written() const { return written_; }

 private:
  friend class BlobStore;
  BlobWriter(BlobStore* store, deja::v1::BlobRef expected, std::string temp_path, int fd);
  // Closes and deletes the temp file, if still there.
  void Discard();

  BlobStore* const store_;
  const deja::v1::BlobRef expected_;
  const std::string temp_path_;
  int fd_;  // -1 once closed
  Hasher hasher_;
  uint64_t written_ = 0;
  bool done_ = false;  // committed, or failed
};

class BlobStore {
 public:
  // Creates `dir` and `dir`/tmp if needed and deletes every file left in
  // `dir`/tmp. `meta` (not owned) must outlive the store. INTERNAL on a
  // file-system error.
  static absl::StatusOr<std::unique_ptr<BlobStore>> Open(std::string dir, BlobMetadataStore* meta);

  BlobStore(const BlobStore&) = delete;
  BlobStore& operator=(const BlobStore&) = delete;

  // Starts an upload of `expected`. INVALID_ARGUMENT naming the digest when
  // it is not 32 lowercase hex digits; INTERNAL when the temp file cannot be
  // created.
  absl::StatusOr<std::unique_ptr<BlobWriter>> BeginWrite(deja::v1::BlobRef expected);

  // True only when the blob's file exists with exactly `blob.size()` bytes
  // (one stat; a blob file deleted or truncated behind the store's back
  // counts as missing). False for a malformed digest.
  bool Has(const deja::v1::BlobRef& blob) const;

  // Has(), and when the blob is there, records that it is in use now
  // (BlobMeta.used_at_ms, at most every 10 s, written lazily; a file
  // without a record gets one): the collector keeps it for its grace
  // period. For blobs a client is told are present and blobs a submit
  // references.
  bool Use(const deja::v1::BlobRef& blob);

  // The collector's delete: removes the blob (its file, then its record)
  // unless it was created or used at or after `cutoff_ms`. Returns the
  // bytes freed: 0 when it was kept (or had no record).
  absl::StatusOr<uint64_t> CollectUnusedSince(const std::string& digest, int64_t cutoff_ms);

  // Every blob record, for the collector (BlobMetadataStore::ScanBlobMetas).
  absl::Status ScanMetas(const std::function<bool(const std::string& digest,
                                                  const deja::v1::BlobMeta& meta)>& visit) const {
    return meta_->ScanBlobMetas(visit);
  }

  // Opens the blob for reading; the caller owns (and closes) the returned
  // fd. INVALID_ARGUMENT for a malformed digest, NOT_FOUND "blob <d> not
  // found".
  absl::StatusOr<int> OpenForRead(const std::string& digest) const;

  // A blob small enough to hold, read whole (`blob.size()` bytes):
  // OpenForRead's errors, DATA_LOSS when it is shorter.
  absl::StatusOr<std::string> Read(const deja::v1::BlobRef& blob) const;

  // The manifest `ref` names, read whole and checked (ParseManifest:
  // DATA_LOSS when it does not match); OpenForRead's errors, naming the
  // manifest.
  absl::StatusOr<deja::v1::Manifest> ReadManifest(const deja::v1::ManifestRef& ref) const;

  // Lets `project` read the blob (BlobMetadataStore::GrantBlob), durably.
  absl::Status Grant(const std::string& digest, const std::string& project) {
    return meta_->GrantBlob(digest, project);
  }
  // Whether `project` may read the blob; any blob for an empty project (a
  // worker, a token of every project, --insecure).
  bool Readable(const std::string& digest, const std::string& project) const {
    return project.empty() || meta_->BlobGranted(digest, project);
  }

  // The blob's metadata record. NOT_FOUND when there is none.
  absl::StatusOr<deja::v1::BlobMeta> GetMeta(const std::string& digest) const;

  // Stores a whole blob held in memory (a directory blob the scheduler
  // built), with the durability of an upload. OK at once when the store
  // already has it; the errors of BeginWrite, Append and Commit.
  absl::Status Put(absl::string_view bytes);

  // `dir`/<first 2 hex>/<digest>. The digest must be valid.
  std::string PathOf(const std::string& digest) const;
  const std::string& dir() const { return dir_; }

 private:
  friend class BlobWriter;
  BlobStore(std::string dir, BlobMetadataStore* meta);

  // Moves a checked temp file into place and records its metadata.
  // Returns true when the blob was already there.
  absl::StatusOr<bool> Install(const std::string& temp_path, const deja::v1::BlobRef& blob);

  // The lock of `digest`'s stripe.
  absl::Mutex& LockOf(const std::string& digest) const;

  // Constant after construction.
  const std::string dir_;
  const std::string tmp_dir_;
  BlobMetadataStore* const meta_;
  mutable absl::Mutex stripes_[64];
};

// OK for 32 lowercase hex digits; INVALID_ARGUMENT naming `field` and the
// value otherwise.
absl::Status ValidateDigest(absl::string_view field, absl::string_view digest);

}  // namespace deja

#endif  // DEJA_SCHEDULER_CONTENT_BLOB_STORE_H_
