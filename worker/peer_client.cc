#include "worker/peer_client.h"

#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <deque>
#include <map>
#include <memory>
#include <set>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "common/credentials.h"
#include "common/errors.h"
#include "common/hash.h"
#include "common/transfer_window.h"
#include "deja/v1/peer.grpc.pb.h"
#include "google/protobuf/util/message_differencer.h"
#include "worker/file_copy.h"
#include "worker/paths.h"

namespace deja::worker {
namespace {

// Longest symlink target accepted (PATH_MAX).
constexpr uint64_t kMaxLinkTarget = 4096;

grpc::ChannelArguments PeerChannelArgs() {
  grpc::ChannelArguments args;
  // A fresh subchannel: no reconnect backoff inherited from earlier pulls.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  // No deadline on the stream, so a peer that stops answering is detected by
  // keepalive (the peer server permits pings this often).
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 30000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 20000);
  BoundTransferWindow(&args);
  return args;
}

// The file being received.
struct Incoming {
  const deja::v1::FileEntry* entry = nullptr;
  std::string dst;
  Fd fd;  // regular files only
  Hasher hasher;
  uint64_t got = 0;
  std::string target;  // symlinks only
};

// One pull: the state of the stream being read.
class Receiver {
 public:
  Receiver(const PeerSource& source, const deja::v1::ManifestRef& ref,
           const deja::v1::Manifest& manifest, std::string root)
      : source_(source), ref_(ref), manifest_(manifest), root_(std::move(root)) {
    for (int i = 0; i < manifest_.files_size(); ++i) index_[manifest_.files(i).path()] = i;
    arrived_.assign(static_cast<size_t>(manifest_.files_size()), false);
  }

  absl::Status Handle(deja::v1::WorkspaceChunk& chunk) {
    switch (chunk.chunk_case()) {
      case deja::v1::WorkspaceChunk::kManifest:
        if (got_manifest_) return Protocol("sent a second manifest");
        if (!google::protobuf::util::MessageDifferencer::Equals(chunk.manifest(), ref_)) {
          return Protocol("answered with another manifest than the one asked for");
        }
        got_manifest_ = true;
        return absl::OkStatus();
      case deja::v1::WorkspaceChunk::kFile:
        if (!got_manifest_) return Protocol("sent a file before the manifest");
        if (absl::Status st = FinishFile(); !st.ok()) return st;
        return StartFile(chunk.file());
      case deja::v1::WorkspaceChunk::kData:
        if (current_ == nullptr) return Protocol("sent data before any file");
        return Data(chunk.data());
      default:
        return Protocol(absl::StrCat("sent an unknown chunk (case ", chunk.chunk_case(), ")"));
    }
  }

  // Ends the last file and checks that every entry arrived.
  absl::Status Finish(PullResult* result) {
    if (absl::Status st = FinishFile(); !st.ok()) return st;
    if (!got_manifest_) return Protocol("sent nothing");
    for (int i = 0; i < manifest_.files_size(); ++i) {
      if (!arrived_[static_cast<size_t>(i)]) {
        return absl::DataLossError(absl::StrCat(
            manifest_.files(i).path(), ": never sent by source worker ", source_.worker_id));
      }
    }
    *result = result_;
    return absl::OkStatus();
  }

 private:
  absl::Status Protocol(const std::string& what) const {
    return absl::DataLossError(
        absl::StrCat("source worker ", source_.worker_id, " at ", source_.address, " ", what));
  }

  absl::Status StartFile(const deja::v1::FileEntry& sent) {
    auto it = index_.find(sent.path());
    if (it == index_.end()) {
      return absl::DataLossError(absl::StrCat(sent.path(), ": sent by source worker ",
                                              source_.worker_id, " but not in the manifest"));
    }
    if (arrived_[static_cast<size_t>(it->second)]) {
      return absl::DataLossError(
          absl::StrCat(sent.path(), ": sent twice by source worker ", source_.worker_id));
    }
    arrived_[static_cast<size_t>(it->second)] = true;
    auto incoming = std::make_unique<Incoming>();
    incoming->entry = &manifest_.files(it->second);
    const std::string& rel = incoming->entry->path();
    if (absl::Status st = MakeDestParents(root_, rel, &made_); !st.ok()) return st;
    incoming->dst = absl::StrCat(root_, "/", rel);
    if (S_ISREG(incoming->entry->mode())) {
      // Straight at its name (no temp name and rename): a failed pull
      // removes the whole workspace, so a partial file never outlives it.
      // Never over something already there (a manifest with "a" and "a/b"
      // is refused by MakeDestParents; O_EXCL covers the other order).
      incoming->fd.Reset(
          open(incoming->dst.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
      if (incoming->fd.get() < 0) {
        if (errno == EEXIST) {
          return absl::AlreadyExistsError(absl::StrCat(rel, ": already exists in ", root_));
        }
        return ErrnoStatus(errno, "create " + incoming->dst);
      }
    }
    current_ = std::move(incoming);
    return absl::OkStatus();
  }

  absl::Status Data(const std::string& data) {
    Incoming& in = *current_;
    const std::string& rel = in.entry->path();
    in.got += data.size();
    const bool link_too_long = in.fd.get() < 0 && in.got > kMaxLinkTarget;
    if (in.got > in.entry->size() || link_too_long) {
      return absl::DataLossError(
          absl::StrCat(rel, ": more than the manifest's ", in.entry->size(), " bytes arrived"));
    }
    in.hasher.Update(data);
    if (in.fd.get() < 0) {
      in.target.append(data);
      return absl::OkStatus();
    }
    size_t done = 0;
    while (done < data.size()) {
      ssize_t n = write(in.fd.get(), data.data() + done, data.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return ErrnoStatus(errno, "write " + in.dst);
      done += static_cast<size_t>(n);
    }
    return absl::OkStatus();
  }

  absl::Status FinishFile() {
    if (current_ == nullptr) return absl::OkStatus();
    std::unique_ptr<Incoming> in = std::move(current_);
    const deja::v1::FileEntry& entry = *in->entry;
    if (in->got != entry.size()) {
      return absl::DataLossError(absl::StrCat(entry.path(), ": ", in->got,
                                              " bytes arrived, the manifest says ", entry.size()));
    }
    const std::string digest = in->hasher.HexDigest();
    if (digest != entry.digest()) {
      return absl::DataLossError(absl::StrCat(entry.path(), ": content hashes to ", digest,
                                              ", the manifest says ", entry.digest()));
    }
    if (in->fd.get() < 0) {
      if (symlink(in->target.c_str(), in->dst.c_str()) != 0) {
        return ErrnoStatus(errno, "symlink " + in->dst);
      }
    } else {
      if (fchmod(in->fd.get(), static_cast<mode_t>(entry.mode()) & 07777) != 0) {
        return ErrnoStatus(errno, "chmod " + in->dst);
      }
      in->fd.Reset();
      result_.bytes += entry.size();
    }
    ++result_.files;
    return absl::OkStatus();
  }

  const PeerSource& source_;
  const deja::v1::ManifestRef& ref_;
  const deja::v1::Manifest& manifest_;
  const std::string root_;
  std::map<std::string, int> index_;
  std::vector<bool> arrived_;
  std::set<std::string> made_;
  bool got_manifest_ = false;
  std::unique_ptr<Incoming> current_;
  PullResult result_;
};

// Chunks read from the stream, waiting for the thread that writes them:
// receiving (gRPC, deserialisation) and the disk (file creation, writes,
// hashing) overlap. Bounded by the data bytes it holds.
class ChunkQueue {
 public:
  explicit ChunkQueue(size_t max_bytes) : max_bytes_(max_bytes) {}

  // Waits for room; false (dropping `chunk`) once Fail() was called.
  bool Push(deja::v1::WorkspaceChunk chunk) {
    const size_t size = chunk.data().size() + 1;
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(
        +[](ChunkQueue* q) ABSL_EXCLUSIVE_LOCKS_REQUIRED(q->mu_) {
          return q->failed_ || q->bytes_ == 0 || q->bytes_ < q->max_bytes_;
        },
        this));
    if (failed_) return false;
    bytes_ += size;
    chunks_.push_back(std::move(chunk));
    return true;
  }

  // Waits for a chunk; false once Close()d (or failed) and empty.
  bool Pop(deja::v1::WorkspaceChunk* chunk) {
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(
        +[](ChunkQueue* q)
             ABSL_EXCLUSIVE_LOCKS_REQUIRED(q->mu_) { return q->closed_ || !q->chunks_.empty(); },
        this));
    if (chunks_.empty()) return false;
    *chunk = std::move(chunks_.front());
    chunks_.pop_front();
    bytes_ -= chunk->data().size() + 1;
    return true;
  }

  // No more chunks will come.
  void Close() {
    absl::MutexLock lock(&mu_);
    closed_ = true;
  }

  // The consumer gave up: drop what is queued, refuse the rest.
  void Fail() {
    absl::MutexLock lock(&mu_);
    failed_ = true;
    chunks_.clear();
    bytes_ = 0;
  }

 private:
  const size_t max_bytes_;
  absl::Mutex mu_;
  std::deque<deja::v1::WorkspaceChunk> chunks_ ABSL_GUARDED_BY(mu_);
  size_t bytes_ ABSL_GUARDED_BY(mu_) = 0;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  bool failed_ ABSL_GUARDED_BY(mu_) = false;
};

// Data chunks queued between the stream and the disk, at most.
constexpr size_t kQueuedBytes = 8 << 20;

}  // namespace

WorkspacePuller::WorkspacePuller(std::string work_dir, absl::Duration connect_timeout,
                                 PeerTlsSource tls)
    : work_dir_(std::move(work_dir)), connect_timeout_(connect_timeout), tls_(std::move(tls)) {}

absl::StatusOr<PullResult> WorkspacePuller::Pull(const PeerSource& source,
                                                 const deja::v1::ManifestRef& ref,
                                                 const deja::v1::Manifest& manifest,
                                                 const std::string& new_job_id) const {
  if (absl::Status st = paths::ValidateJobId(source.job_id); !st.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("source_", st.message()));
  }
  if (absl::Status st = paths::ValidateJobId(new_job_id); !st.ok()) return st;
  std::set<std::string> seen;
  for (const deja::v1::FileEntry& entry : manifest.files()) {
    if (absl::Status st = paths::ValidateRelativePath(entry.path()); !st.ok()) return st;
    if (!S_ISREG(entry.mode()) && !S_ISLNK(entry.mode())) {
      return absl::InvalidArgumentError(absl::StrCat("manifest path \"", entry.path(), "\": mode ",
                                                     entry.mode(),
                                                     " is neither a file nor a symlink"));
    }
    if (!seen.insert(entry.path()).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("manifest path \"", entry.path(), "\": listed twice"));
    }
  }
  const std::string root = paths::WorkspaceDir(work_dir_, new_job_id);
  // An earlier attempt's workspace goes first, so that any failure below
  // leaves no workspace at all for the new job.
  if (absl::Status st = paths::RemoveTree(root); !st.ok()) return st;

  ClientSecurity security;
  security.insecure = !tls_;
  if (tls_) {
    absl::StatusOr<PeerTls> material = tls_();
    if (!material.ok()) return material.status();
    security.ca_pem = material->ca_pem;
    security.client = material->identity;
  }
  std::shared_ptr<grpc::Channel> channel = grpc::CreateCustomChannel(
      source.address, MakeChannelCredentials(security), PeerChannelArgs());
  if (!channel->WaitForConnected(absl::ToChronoTime(absl::Now() + connect_timeout_))) {
    return absl::UnavailableError(absl::StrCat(
        "source worker ", source.worker_id, " at ", source.address,
        " unreachable: no connection within ", absl::FormatDuration(connect_timeout_)));
  }
  if (absl::Status st = paths::MakeDirs(root); !st.ok()) return st;

  auto pull = [&]() -> absl::StatusOr<PullResult> {
    auto stub = deja::v1::Peer::NewStub(channel);
    grpc::ClientContext context;
    deja::v1::FetchWorkspaceRequest request;
    request.set_job_id(source.job_id);
    *request.mutable_manifest() = ref;
    *request.mutable_ticket() = source.ticket;
    auto reader = stub->FetchWorkspace(&context, request);
    Receiver receiver(source, ref, manifest, root);
    absl::Status local;  // written by the disk thread, read after join
    ChunkQueue queue(kQueuedBytes);
    std::thread disk([&] {
      deja::v1::WorkspaceChunk chunk;
      while (queue.Pop(&chunk)) {
        local = receiver.Handle(chunk);
        if (!local.ok()) {
          queue.Fail();
          context.TryCancel();
          return;
        }
      }
    });
    deja::v1::WorkspaceChunk chunk;
    while (reader->Read(&chunk)) {
      if (!queue.Push(std::move(chunk))) {
        while (reader->Read(&chunk)) {
        }
        break;
      }
      chunk.Clear();
    }
    queue.Close();
    disk.join();
    const grpc::Status status = reader->Finish();
    if (!local.ok()) return local;
    if (!status.ok()) {
      const std::string what = absl::StrCat("source worker ", source.worker_id, " at ",
                                            source.address, ": ", status.error_message());
      switch (status.error_code()) {
        case grpc::StatusCode::NOT_FOUND:
        case grpc::StatusCode::DATA_LOSS:
          return absl::DataLossError(what);
        case grpc::StatusCode::INVALID_ARGUMENT:
          return absl::InvalidArgumentError(what);
        case grpc::StatusCode::UNAUTHENTICATED:
        case grpc::StatusCode::PERMISSION_DENIED:
          return absl::PermissionDeniedError(what);
        default:
          return absl::UnavailableError(absl::StrCat("pull from ", what));
      }
    }
    PullResult result;
    if (absl::Status st = receiver.Finish(&result); !st.ok()) return st;
    if (absl::Status st =
            WriteMarkerFile(paths::ReusedMarkerPath(work_dir_, new_job_id),
                            absl::StrCat("source_job=", source.job_id,
                                         "\nsource_worker=", source.worker_id, "\nmethod=peer\n"));
        !st.ok()) {
      return st;
    }
    return result;
  };
  auto result = pull();
  if (!result.ok()) paths::RemoveTree(root).IgnoreError();
  return result;
}

}  // namespace deja::worker
