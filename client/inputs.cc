#include "client/inputs.h"

#include <sys/stat.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/cli_format.h"
#include "common/errors.h"
#include "common/job_spec.h"

namespace deja {
namespace {

absl::Status BadFlag(absl::string_view arg, absl::string_view problem) {
  return absl::InvalidArgumentError(absl::StrCat("--input \"", arg, "\": ", problem));
}

// The same rule as ValidateJobSpec's input names.
bool IsValidName(absl::string_view name) {
  if (name.empty() || name.size() > kMaxNameLength) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
              (i > 0 && ((c >= '0' && c <= '9') || c == '-' || c == '.'));
    if (!ok) return false;
  }
  return true;
}

// `status` with "--input "<arg>": " in front of its message, same code.
absl::Status WithFlag(const InputFlag& flag, const absl::Status& status) {
  return absl::Status(status.code(),
                      absl::StrCat("--input \"", flag.arg, "\": ", status.message()));
}

}  // namespace

absl::StatusOr<InputFlag> ParseInputFlag(absl::string_view arg) {
  InputFlag flag;
  flag.arg = std::string(arg);
  size_t eq = arg.find('=');
  if (eq == absl::string_view::npos) return BadFlag(arg, "expected NAME=PATH[:WORKSPACE_PATH]");
  flag.name = std::string(arg.substr(0, eq));
  if (!IsValidName(flag.name)) {
    return BadFlag(arg, absl::StrCat("invalid input name \"", flag.name,
                                     "\" (letters, digits, '_', '-', '.'; starting with a "
                                     "letter or '_'; at most ",
                                     kMaxNameLength, " characters)"));
  }
  absl::string_view rest = arg.substr(eq + 1);
  size_t colon = rest.rfind(':');
  if (colon != absl::string_view::npos) {
    flag.local_path = std::string(rest.substr(0, colon));
    flag.workspace_path = std::string(rest.substr(colon + 1));
    if (auto s = ValidateWorkspacePath("WORKSPACE_PATH", flag.workspace_path); !s.ok()) {
      return BadFlag(arg, s.message());
    }
  } else {
    flag.local_path = std::string(rest);
  }
  if (flag.local_path.empty()) return BadFlag(arg, "the PATH after '=' is empty");
  return flag;
}

absl::StatusOr<PreparedInputs> PrepareInputs(const std::vector<InputFlag>& flags,
                                             const FileHasher& hash_file) {
  PreparedInputs prepared;
  std::set<std::string> names;
  std::set<std::string> blobs;  // digests already in prepared.blobs
  auto add_blob = [&](TreeBlob blob) {
    if (blobs.insert(blob.digest).second) prepared.blobs.push_back(std::move(blob));
  };
  for (const InputFlag& flag : flags) {
    if (!names.insert(flag.name).second) {
      return BadFlag(flag.arg, absl::StrCat("input \"", flag.name, "\" given twice"));
    }
    // The named path itself may be a symlink (the user chose it); inside a
    // directory, symlinks are recorded and never followed (DigestTree).
    char resolved_buffer[PATH_MAX];
    if (realpath(flag.local_path.c_str(), resolved_buffer) == nullptr) {
      return WithFlag(flag, ErrnoStatus(errno, flag.local_path));
    }
    const std::string resolved = resolved_buffer;
    struct stat st;
    if (stat(resolved.c_str(), &st) != 0) return WithFlag(flag, ErrnoStatus(errno, resolved));
    deja::v1::InputRef ref;
    ref.set_name(flag.name);
    ref.set_path(flag.workspace_path);
    if (S_ISREG(st.st_mode)) {
      absl::StatusOr<std::string> digest = hash_file(resolved, st);
      if (!digest.ok()) return WithFlag(flag, digest.status());
      ref.set_kind("file");
      ref.set_digest(*digest);
      ref.set_size(static_cast<uint64_t>(st.st_size));
      add_blob(TreeBlob{*digest, static_cast<uint64_t>(st.st_size), resolved, ""});
    } else if (S_ISDIR(st.st_mode)) {
      absl::StatusOr<TreeDigest> tree = DigestTree(resolved, hash_file);
      if (!tree.ok()) return WithFlag(flag, tree.status());
      ref.set_kind("dir");
      ref.set_digest(tree->digest);
      ref.set_size(tree->size);
      ref.set_total_bytes(tree->total_file_bytes);
      for (TreeBlob& blob : tree->blobs) add_blob(std::move(blob));
    } else {
      return BadFlag(flag.arg, absl::StrCat(flag.local_path, " is not a file or a directory"));
    }
    prepared.refs.push_back(std::move(ref));
  }
  return prepared;
}

absl::StatusOr<UploadReport> UploadMissing(const BlobClient& client,
                                           const std::vector<TreeBlob>& blobs,
                                           const TransferProgressFn& progress) {
  UploadReport report;
  report.offered = blobs.size();
  std::vector<deja::v1::BlobRef> refs;
  refs.reserve(blobs.size());
  for (const TreeBlob& blob : blobs) {
    deja::v1::BlobRef ref;
    ref.set_digest(blob.digest);
    ref.set_size(blob.size);
    refs.push_back(std::move(ref));
  }
  absl::StatusOr<std::vector<deja::v1::BlobRef>> missing = client.FindMissing(refs);
  if (!missing.ok()) return missing.status();
  std::set<std::string> wanted;
  uint64_t total = 0;
  for (const deja::v1::BlobRef& ref : *missing) {
    if (wanted.insert(ref.digest()).second) total += ref.size();
  }
  if (progress && total > 0) progress(0, total);
  for (size_t i = 0; i < blobs.size(); ++i) {
    const TreeBlob& blob = blobs[i];
    if (wanted.count(blob.digest) == 0) continue;
    const uint64_t base = report.bytes;
    absl::Status status;
    std::string what;
    if (!blob.path.empty()) {
      what = absl::StrCat("upload ", blob.path, " (blob ", blob.digest, ")");
      status = client.UploadFile(blob.path, refs[i], [&](uint64_t done) {
        if (progress) progress(base + done, total);
      });
    } else {
      what = absl::StrCat("upload directory blob ", blob.digest);
      status = client.UploadBytes(blob.bytes);
    }
    if (!status.ok()) {
      std::string hint = status.code() == absl::StatusCode::kInvalidArgument && !blob.path.empty()
                             ? " (did the file change after it was hashed?)"
                             : "";
      return absl::Status(status.code(), absl::StrCat(what, ": ", status.message(), hint));
    }
    report.blobs += 1;
    report.bytes += blob.size;
    if (progress) progress(report.bytes, total);
  }
  return report;
}

std::string FormatUploadReport(const UploadReport& report) {
  if (report.blobs == 0) return "inputs already in the store";
  return absl::StrCat("uploaded ", report.blobs, report.blobs == 1 ? " blob (" : " blobs (",
                      cli::FormatBytes(report.bytes), ")");
}

std::string FormatInputTiming(const InputTiming& timing) {
  auto files = [](uint64_t n) { return absl::StrCat(n, n == 1 ? " file" : " files"); };
  const double seconds = absl::ToDoubleSeconds(timing.elapsed);
  std::string rate;
  if (timing.hashed_bytes > 0 && seconds > 0) {
    const double gb = static_cast<double>(timing.hashed_bytes) / 1e9;
    rate = absl::StrFormat(" (%.2f GB/s)", gb / seconds);
  }
  return absl::StrFormat("inputs: %.3f ms; hashed %s, %s%s; %s, %s from the hash cache",
                         seconds * 1e3, files(timing.hashed_files),
                         cli::FormatBytes(timing.hashed_bytes), rate, files(timing.cached_files),
                         cli::FormatBytes(timing.cached_bytes));
}

}  // namespace deja
