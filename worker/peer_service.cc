#include "worker/peer_service.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/credentials.h"
#include "common/errors.h"
#include "common/grpc_status.h"
#include "common/tickets.h"
#include "worker/file_copy.h"
#include "worker/log.h"
#include "worker/paths.h"

namespace deja::worker {
namespace {

grpc::Status Error(grpc::StatusCode code, const std::string& message) {
  return grpc::Status(code, message);
}

// A pulled workspace is a finished one that nothing writes any more; a file
// that vanished or changed is the receiver's verification failure, named.
grpc::Status FileError(int err, const std::string& rel, const std::string& job_id,
                       const std::string& what) {
  return Error(
      err == ENOENT ? grpc::StatusCode::NOT_FOUND : grpc::StatusCode::DATA_LOSS,
      absl::StrCat(rel, ": ", what, " in the workspace of job ", job_id, ": ", std::strerror(err)));
}

// PATH_MAX: the longest symlink target read.
constexpr size_t kMaxSymlinkTarget = 4096;

}  // namespace

PeerService::PeerService(std::string work_dir, ManifestLoader load_manifest,
                         WorkspaceRetention* retention, std::optional<PeerGuard> guard)
    : work_dir_(std::move(work_dir)),
      load_manifest_(std::move(load_manifest)),
      retention_(retention),
      guard_(std::move(guard)) {
  if (guard_.has_value()) ticket_ca_ = tls::SignatureVerifier::Create(guard_->tls.ca_pem);
}

grpc::Status PeerService::FetchWorkspace(grpc::ServerContext* context,
                                         const deja::v1::FetchWorkspaceRequest* request,
                                         grpc::ServerWriter<deja::v1::WorkspaceChunk>* writer) {
  const std::string& job_id = request->job_id();
  if (absl::Status st = paths::ValidateJobId(job_id); !st.ok()) {
    return Error(grpc::StatusCode::INVALID_ARGUMENT, std::string(st.message()));
  }
  if (guard_.has_value()) {
    const PeerFetch fetch{job_id, request->manifest().digest(), guard_->worker_id,
                          PresentedCommonName(*context)};
    absl::Status st = ticket_ca_->status();
    if (st.ok()) st = CheckPeerTicket(request->ticket(), **ticket_ca_, fetch, absl::Now());
    if (!st.ok()) {
      Log("refused a fetch of the workspace of %s by %s (%s): %s", job_id,
          fetch.caller_worker_id.empty() ? "a caller without a worker certificate"
                                         : "worker " + fetch.caller_worker_id,
          context->peer(), st.message());
      return ToGrpcStatus(st);
    }
  }
  // Held until the handler returns: the sweeper skips a leased workspace.
  std::optional<WorkspaceRetention::Lease> lease;
  if (retention_ != nullptr) {
    auto acquired = retention_->Acquire(job_id);
    if (!acquired.ok()) {
      return Error(grpc::StatusCode::NOT_FOUND, std::string(acquired.status().message()));
    }
    lease = *std::move(acquired);
  }
  const std::string root = paths::WorkspaceDir(work_dir_, job_id);
  struct stat st;
  if (lstat(root.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return Error(grpc::StatusCode::NOT_FOUND,
                 absl::StrCat("the workspace of job ", job_id, " is gone"));
  }

  // Only now, for a workspace that is here.
  absl::StatusOr<deja::v1::Manifest> manifest =
      load_manifest_(request->manifest(), request->ticket());
  if (!manifest.ok()) return ToGrpcStatus(manifest.status());
  for (const deja::v1::FileEntry& entry : manifest->files()) {
    if (absl::Status st = paths::ValidateRelativePath(entry.path()); !st.ok()) {
      return Error(grpc::StatusCode::INVALID_ARGUMENT, std::string(st.message()));
    }
    if (!S_ISREG(entry.mode()) && !S_ISLNK(entry.mode())) {
      return Error(grpc::StatusCode::INVALID_ARGUMENT,
                   absl::StrCat("manifest path \"", entry.path(), "\": mode ", entry.mode(),
                                " is neither a file nor a symlink"));
    }
  }
  deja::v1::WorkspaceChunk chunk;
  *chunk.mutable_manifest() = request->manifest();
  if (!writer->Write(chunk)) return Error(grpc::StatusCode::CANCELLED, "receiver went away");

  std::string buffer(kMaxSymlinkTarget, '\0');
  deja::v1::WorkspaceChunk data_chunk;
  std::string* const data = data_chunk.mutable_data();
  std::set<std::string> checked;
  for (const deja::v1::FileEntry& entry : manifest->files()) {
    const std::string& rel = entry.path();
    if (absl::Status s = CheckSourceParents(root, rel, &checked); !s.ok()) {
      return Error(grpc::StatusCode::DATA_LOSS, absl::StrCat(s.message(), " (job ", job_id, ")"));
    }
    const std::string path = absl::StrCat(root, "/", rel);
    chunk.Clear();
    *chunk.mutable_file() = entry;
    if (S_ISLNK(entry.mode())) {
      ssize_t n = readlink(path.c_str(), buffer.data(), buffer.size());
      if (n < 0) return FileError(errno, rel, job_id, "cannot read the symlink");
      if (!writer->Write(chunk)) return Error(grpc::StatusCode::CANCELLED, "receiver went away");
      chunk.Clear();
      chunk.set_data(buffer.data(), static_cast<size_t>(n));
      if (!writer->Write(chunk)) return Error(grpc::StatusCode::CANCELLED, "receiver went away");
      continue;
    }
    Fd fd(open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    if (fd.get() < 0) return FileError(errno, rel, job_id, "cannot open");
    if (fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) {
      return Error(
          grpc::StatusCode::DATA_LOSS,
          absl::StrCat(rel, ": no longer a regular file in the workspace of job ", job_id));
    }
    // Corked: the header goes out with the file's first data chunk.
    if (!writer->Write(chunk, grpc::WriteOptions().set_buffer_hint())) {
      return Error(grpc::StatusCode::CANCELLED, "receiver went away");
    }
    // Read straight into the message (no staging buffer; `data` keeps its
    // capacity across files), sized to what is left of the file so the
    // string is not zero-filled only to be overwritten. What the file holds
    // past its stat size is not sent: the receiver checks size and digest
    // against the manifest anyway.
    const uint64_t file_size = static_cast<uint64_t>(st.st_size);
    uint64_t sent = 0;
    while (sent < file_size) {
      if (context->IsCancelled()) return Error(grpc::StatusCode::CANCELLED, "cancelled");
      data->resize(static_cast<size_t>(std::min<uint64_t>(kPeerChunkBytes, file_size - sent)));
      ssize_t n = read(fd.get(), data->data(), data->size());
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return FileError(errno, rel, job_id, "cannot read");
      if (n == 0) break;  // shrank: the receiver reports the short file
      data->resize(static_cast<size_t>(n));
      sent += static_cast<uint64_t>(n);
      if (!writer->Write(data_chunk)) {
        return Error(grpc::StatusCode::CANCELLED, "receiver went away");
      }
    }
  }
  return grpc::Status::OK;
}

PeerServer::PeerServer(std::string work_dir, ManifestLoader load_manifest,
                       WorkspaceRetention* retention, std::optional<PeerGuard> guard)
    : service_(std::move(work_dir), std::move(load_manifest), retention, std::move(guard)) {}

absl::StatusOr<std::unique_ptr<PeerServer>> PeerServer::Start(const std::string& listen_address,
                                                              std::string work_dir,
                                                              ManifestLoader load_manifest,
                                                              WorkspaceRetention* retention,
                                                              std::optional<PeerGuard> guard) {
  ServerSecurity security;
  security.insecure = !guard.has_value();
  if (guard.has_value()) {
    security.server = guard->tls.identity;
    security.client_ca_pem = guard->tls.ca_pem;
    security.require_client_cert = true;
  }
  std::unique_ptr<PeerServer> server(
      new PeerServer(std::move(work_dir), std::move(load_manifest), retention, std::move(guard)));
  grpc::EnableDefaultHealthCheckService(true);  // grpc.health.v1 for probes
  grpc::ServerBuilder builder;
  builder.AddListeningPort(listen_address, MakeServerCredentials(security), &server->port_);
  builder.RegisterService(&server->service_);
  // Pullers send keepalive pings on long transfers (peer_client.cc).
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 10000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  server->server_ = builder.BuildAndStart();
  if (server->server_ == nullptr || server->port_ == 0) {
    return absl::UnavailableError(absl::StrCat("peer service: cannot listen on ", listen_address));
  }
  return server;
}

PeerServer::~PeerServer() { Shutdown(); }

void PeerServer::Shutdown() {
  if (server_ == nullptr) return;
  server_->Shutdown(absl::ToChronoTime(absl::Now() + absl::Seconds(1)));
  server_->Wait();
  server_.reset();
}

}  // namespace deja::worker
