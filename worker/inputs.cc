#include "worker/inputs.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <set>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/errors.h"
#include "common/tree.h"
#include "worker/paths.h"

namespace deja::worker {

struct InputPlacer::State {
  const deja::v1::SignedTicket& ticket;
  bool try_hardlink;
  bool try_reflink;
  PlaceResult result;
  int weakest = -1;

  void Count(CopyMethod method, uint64_t size) {
    ++result.files;
    result.bytes += size;
    if (CopyMethodWeakness(method) > weakest) {
      weakest = CopyMethodWeakness(method);
      result.method = method;
    }
  }
};

namespace {

bool HardlinkFallbackErrno(int err) {
  return err == EXDEV || err == EMLINK || err == EPERM || err == EOPNOTSUPP;
}

deja::v1::BlobRef Ref(const std::string& digest, uint64_t size) {
  deja::v1::BlobRef ref;
  ref.set_digest(digest);
  ref.set_size(size);
  return ref;
}

}  // namespace

InputPlacer::InputPlacer(BlobCache* cache, const BlobClient* client)
    : InputPlacer(cache, client, Options()) {}

InputPlacer::InputPlacer(BlobCache* cache, const BlobClient* client, Options options)
    : cache_(cache), client_(client), options_(options) {}

absl::Status InputPlacer::PlaceFile(const deja::v1::BlobRef& blob, const std::string& dst,
                                    bool executable, State* state) const {
  auto pin = cache_->Fetch(blob, state->ticket);
  if (!pin.ok()) return pin.status();
  const std::string& src = pin->path();
  if (!executable && state->try_hardlink && geteuid() != 0) {
    if (link(src.c_str(), dst.c_str()) == 0) {
      state->Count(CopyMethod::kHardlink, blob.size());
      return absl::OkStatus();
    }
    if (!HardlinkFallbackErrno(errno)) return ErrnoStatus(errno, "link " + dst);
    state->try_hardlink = false;  // another filesystem (most likely): stop asking
  }
  const mode_t mode = executable ? 0555 : 0444;
  Fd in(open(src.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (in.get() < 0) return ErrnoStatus(errno, "open " + src);
  if (state->try_reflink) {
    auto cloned = ReflinkFile(in.get(), dst, mode);
    if (!cloned.ok()) return cloned.status();
    if (*cloned) {
      state->Count(CopyMethod::kReflink, blob.size());
      return absl::OkStatus();
    }
    state->try_reflink = false;
  }
  auto copied = CopyFile(in.get(), src, dst, mode);
  if (!copied.ok()) return copied.status();
  if (*copied != blob.size()) {
    return absl::DataLossError(
        absl::StrCat("cached blob ", src, " has ", *copied, " bytes, expected ", blob.size()));
  }
  state->Count(CopyMethod::kCopy, blob.size());
  return absl::OkStatus();
}

absl::Status InputPlacer::PlaceDir(const deja::v1::BlobRef& blob, const std::string& dst,
                                   State* state) const {
  auto bytes = client_->DownloadBytes(blob, state->ticket);
  if (!bytes.ok()) {
    return absl::Status(bytes.status().code(), absl::StrCat("directory blob ", blob.digest(), ": ",
                                                            bytes.status().message()));
  }
  auto entries = DecodeDirectory(*bytes);
  if (!entries.ok()) {
    return absl::DataLossError(
        absl::StrCat("directory blob ", blob.digest(), ": ", entries.status().message()));
  }
  bytes->clear();
  if (mkdir(dst.c_str(), 0755) != 0) return ErrnoStatus(errno, "mkdir " + dst);
  for (const DirEntry& entry : *entries) {
    const std::string child = absl::StrCat(dst, "/", entry.name);
    absl::Status st;
    switch (entry.kind) {
      case DirEntry::Kind::kDirectory:
        st = PlaceDir(Ref(entry.digest, entry.size), child, state);
        break;
      case DirEntry::Kind::kSymlink:
        if (symlink(entry.target.c_str(), child.c_str()) != 0) {
          st = ErrnoStatus(errno, "symlink " + child);
        }
        break;
      case DirEntry::Kind::kFile:
        st = PlaceFile(Ref(entry.digest, entry.size), child, entry.executable, state);
        break;
    }
    if (!st.ok()) return st;
  }
  return absl::OkStatus();
}

absl::StatusOr<PlaceResult> InputPlacer::Place(
    const std::string& workspace,
    const google::protobuf::RepeatedPtrField<deja::v1::InputRef>& inputs,
    const deja::v1::SignedTicket& ticket) const {
  State state{ticket, options_.allow_hardlink, options_.allow_reflink, {}, -1};
  std::set<std::string> made;
  for (const deja::v1::InputRef& input : inputs) {
    auto fail = [&](const absl::Status& st) {
      return absl::Status(st.code(), absl::StrCat("input \"", input.name(), "\": ", st.message()));
    };
    const std::string rel =
        input.path().empty() ? absl::StrCat("inputs/", input.name()) : input.path();
    if (input.name().empty()) return absl::InvalidArgumentError("input \"\": name is empty");
    if (absl::Status st = paths::ValidateRelativePath(rel); !st.ok()) {
      return fail(absl::InvalidArgumentError(
          absl::StrCat("path \"", rel, "\": must be relative and stay in the workspace")));
    }
    if (absl::Status st = MakeDestParents(workspace, rel, &made); !st.ok()) return fail(st);
    const std::string dst = absl::StrCat(workspace, "/", rel);
    struct stat st;
    if (lstat(dst.c_str(), &st) == 0) {
      return fail(absl::AlreadyExistsError(absl::StrCat("path \"", rel, "\": already exists")));
    }
    absl::Status placed;
    if (input.kind() == "file") {
      placed = PlaceFile(Ref(input.digest(), input.size()), dst, /*executable=*/false, &state);
    } else if (input.kind() == "dir") {
      placed = PlaceDir(Ref(input.digest(), input.size()), dst, &state);
    } else {
      placed = absl::InvalidArgumentError(
          absl::StrCat("kind \"", input.kind(), "\": expected \"file\" or \"dir\""));
    }
    if (!placed.ok()) return fail(placed);
  }
  return state.result;
}

}  // namespace deja::worker
