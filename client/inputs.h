// Job inputs on the client: `--input NAME=PATH[:WORKSPACE_PATH]` flags become
// deja::v1::InputRefs (content digests) and the blobs behind them, and the
// blobs the content store lacks are uploaded. docs/content-store.md
// describes the store and the directory encoding.
//
// Nothing here is tied to a terminal: progress is reported through a
// callback (the CLI draws it with cli::ProgressBar).
#ifndef DEJA_CLIENT_INPUTS_H_
#define DEJA_CLIENT_INPUTS_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/blob_client.h"
#include "common/tree.h"
#include "deja/v1/job.pb.h"

namespace deja {

// One parsed `--input` flag.
struct InputFlag {
  std::string arg;             // the flag's argument, for messages
  std::string name;            // NAME: a valid key (letters, digits, '_', '-', '.')
  std::string local_path;      // PATH on this machine
  std::string workspace_path;  // WORKSPACE_PATH; "" for the default inputs/<NAME>
};

// Parses "NAME=PATH" or "NAME=PATH:WORKSPACE_PATH" (split at the first '='
// and the last ':'; a PATH holding ':' therefore needs an explicit
// WORKSPACE_PATH). INVALID_ARGUMENT naming the flag and the argument: no '=',
// a bad NAME, an empty PATH, a WORKSPACE_PATH that is empty, absolute or
// leaves the workspace (ValidateWorkspacePath).
absl::StatusOr<InputFlag> ParseInputFlag(absl::string_view arg);

struct PreparedInputs {
  // One per flag, in flag order.
  std::vector<deja::v1::InputRef> refs;
  // Every distinct blob behind them (file blobs with `path`, directory blobs
  // with `bytes`), each once even when several inputs share it.
  std::vector<TreeBlob> blobs;
};

// Hashes every input: a file (symlinks to one are followed: the user named
// it) gives kind "file", its digest and size; a directory gives kind "dir",
// the DigestTree root digest and size, and total_bytes, the bytes of every
// file below it. `hash_file` (e.g. HashCache::AsFileHasher()) hashes each
// regular file. INVALID_ARGUMENT naming the flag for a duplicate NAME or a
// PATH that is neither a file nor a directory; the file system's error
// (NOT_FOUND...) prefixed with the flag otherwise.
absl::StatusOr<PreparedInputs> PrepareInputs(const std::vector<InputFlag>& flags,
                                             const FileHasher& hash_file);

struct UploadReport {
  uint64_t offered = 0;  // distinct blobs the inputs need
  uint64_t blobs = 0;    // of which uploaded (the store lacked them)
  uint64_t bytes = 0;    // bytes uploaded
};

// Called with the bytes uploaded so far and the bytes to upload in all.
using TransferProgressFn = std::function<void(uint64_t done, uint64_t total)>;

// Asks the store which of `blobs` it lacks and uploads only those, files
// streamed from disk. A file that changed since it was hashed is rejected by
// the store (INVALID_ARGUMENT); every error names the blob and its file.
absl::StatusOr<UploadReport> UploadMissing(const BlobClient& client,
                                           const std::vector<TreeBlob>& blobs,
                                           const TransferProgressFn& progress = {});

// What preparing the inputs cost: `deja submit --timing` prints it.
struct InputTiming {
  // Wall time of the input phase: loading the hash cache, stat'ing and
  // hashing every input file (or taking its digest from the cache), saving
  // the cache. Not the upload.
  absl::Duration elapsed;
  uint64_t hashed_files = 0;
  uint64_t hashed_bytes = 0;
  uint64_t cached_files = 0;  // digests taken from the hash cache
  uint64_t cached_bytes = 0;
};

// "inputs: 152.301 ms; hashed 1 file, 1.0 GiB (7.05 GB/s); 0 files, 0 B from
// the hash cache". The rate is left out when nothing was hashed.
std::string FormatInputTiming(const InputTiming& timing);

// "uploaded 2 blobs (1.0 GiB)", "uploaded 1 blob (12 B)", or "inputs already
// in the store" when nothing was uploaded.
std::string FormatUploadReport(const UploadReport& report);

}  // namespace deja

#endif  // DEJA_CLIENT_INPUTS_H_
