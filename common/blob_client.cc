#include "common/blob_client.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/errors.h"
#include "common/grpc_status.h"
#include "common/hash.h"

namespace deja {
namespace {

std::chrono::system_clock::time_point Deadline(absl::Duration d) {
  return absl::ToChronoTime(absl::Now() + d);
}

// A stream of `bytes` gets `rpc_timeout` plus its length at the slowest rate
// that still counts as moving (kMinStreamBytesPerSecond).
absl::Duration StreamTimeout(absl::Duration rpc_timeout, uint64_t bytes) {
  return rpc_timeout + absl::Seconds(static_cast<double>(bytes) / kMinStreamBytesPerSecond);
}

// Reads a download stream, passing each chunk to `sink`, and checks the
// blob's size and digest. A local failure (the sink's, or too many bytes)
// cancels the call before Finish: the server may have more to send, and
// Finish would wait for it.
absl::Status ReadBlob(grpc::ClientContext* context,
                      grpc::ClientReader<deja::v1::DownloadChunk>* reader,
                      const deja::v1::BlobRef& blob,
                      const std::function<absl::Status(const std::string&)>& sink,
                      const ProgressFn& progress) {
  deja::v1::DownloadChunk chunk;
  Hasher hasher;
  uint64_t received = 0;
  absl::Status sink_status;
  while (reader->Read(&chunk)) {
    received += chunk.data().size();
    if (received > blob.size()) {
      sink_status = absl::DataLossError(
          absl::StrCat("blob ", blob.digest(), ": more than ", blob.size(), " bytes"));
      break;
    }
    hasher.Update(chunk.data());
    sink_status = sink(chunk.data());
    if (!sink_status.ok()) break;
    if (progress) progress(received);
  }
  if (!sink_status.ok()) context->TryCancel();
  grpc::Status status = reader->Finish();
  if (!sink_status.ok()) return sink_status;
  if (!status.ok()) return FromGrpcStatus(status);
  if (received != blob.size()) {
    return absl::DataLossError(
        absl::StrCat("blob ", blob.digest(), ": got ", received, " bytes, expected ", blob.size()));
  }
  if (hasher.HexDigest() != blob.digest()) {
    return absl::DataLossError(
        absl::StrCat("blob ", blob.digest(), ": content hashes to ", hasher.HexDigest()));
  }
  return absl::OkStatus();
}

}  // namespace

BlobClient::BlobClient(const std::shared_ptr<grpc::ChannelInterface>& channel,
                       absl::Duration rpc_timeout, RetryPolicy retry)
    : rpc_timeout_(rpc_timeout),
      retry_(std::move(retry)),
      stub_(deja::v1::ContentStore::NewStub(channel)) {}

void BlobClient::Reconnect(const std::shared_ptr<grpc::ChannelInterface>& channel) {
  std::shared_ptr<deja::v1::ContentStore::Stub> stub = deja::v1::ContentStore::NewStub(channel);
  absl::MutexLock lock(&mu_);
  stub_.swap(stub);
}

std::shared_ptr<deja::v1::ContentStore::Stub> BlobClient::Stub() const {
  absl::MutexLock lock(&mu_);
  return stub_;
}

absl::Status BlobClient::Retry(const std::function<absl::Status()>& attempt) const {
  static RealClock clock;
  return RetryTransient(retry_, &clock, attempt);
}

absl::StatusOr<std::vector<deja::v1::BlobRef>> BlobClient::FindMissing(
    const std::vector<deja::v1::BlobRef>& blobs) const {
  absl::StatusOr<std::vector<deja::v1::BlobRef>> missing;
  absl::Status status = Retry([&] {
    missing = FindMissingOnce(blobs);
    return missing.status();
  });
  if (!status.ok()) return status;
  return missing;
}

absl::Status BlobClient::UploadFile(const std::string& path, const deja::v1::BlobRef& blob,
                                    const ProgressFn& progress) const {
  return Retry([&] { return UploadFileOnce(path, blob, progress); });
}

absl::Status BlobClient::UploadBytes(const std::string& bytes) const {
  return Retry([&] { return UploadBytesOnce(bytes); });
}

absl::Status BlobClient::DownloadToFile(const deja::v1::BlobRef& blob, const std::string& path,
                                        const ProgressFn& progress,
                                        const deja::v1::SignedTicket& ticket) const {
  return Retry([&] { return DownloadToFileOnce(blob, path, progress, ticket); });
}

absl::StatusOr<std::string> BlobClient::DownloadBytes(const deja::v1::BlobRef& blob,
                                                      const deja::v1::SignedTicket& ticket) const {
  absl::StatusOr<std::string> bytes;
  absl::Status status = Retry([&] {
    bytes = DownloadBytesOnce(blob, ticket);
    return bytes.status();
  });
  if (!status.ok()) return status;
  return bytes;
}

absl::StatusOr<std::vector<deja::v1::BlobRef>> BlobClient::FindMissingOnce(
    const std::vector<deja::v1::BlobRef>& blobs) const {
  std::vector<deja::v1::BlobRef> missing;
  // Batches keep each request well under the message size limit.
  constexpr size_t kBatch = 10000;
  for (size_t start = 0; start < blobs.size(); start += kBatch) {
    grpc::ClientContext context;
    context.set_deadline(Deadline(rpc_timeout_));
    deja::v1::FindMissingBlobsRequest request;
    for (size_t i = start; i < std::min(blobs.size(), start + kBatch); ++i) {
      *request.add_blobs() = blobs[i];
    }
    deja::v1::FindMissingBlobsResponse response;
    grpc::Status status = Stub()->FindMissingBlobs(&context, request, &response);
    if (!status.ok()) return FromGrpcStatus(status);
    missing.insert(missing.end(), response.missing().begin(), response.missing().end());
  }
  return missing;
}

absl::Status BlobClient::UploadFileOnce(const std::string& path, const deja::v1::BlobRef& blob,
                                        const ProgressFn& progress) const {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus(errno, "open " + path);
  grpc::ClientContext context;
  context.set_deadline(Deadline(StreamTimeout(rpc_timeout_, blob.size())));
  deja::v1::UploadResponse response;
  const auto stub = Stub();
  auto writer = stub->Upload(&context, &response);
  deja::v1::UploadChunk chunk;
  *chunk.mutable_blob() = blob;
  std::string buffer(kBlobChunkBytes, '\0');
  uint64_t sent = 0;
  absl::Status read_status;
  bool first = true;
  while (true) {
    ssize_t n = read(fd, buffer.data(), buffer.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      read_status = ErrnoStatus(errno, "read " + path);
      break;
    }
    if (n == 0 && !first) break;
    chunk.set_data(buffer.data(), static_cast<size_t>(n));
    if (!writer->Write(chunk)) break;  // the server ended the call; Finish says why
    first = false;
    chunk.clear_blob();
    sent += static_cast<uint64_t>(n);
    if (progress) progress(sent);
    if (n == 0) break;
  }
  close(fd);
  if (!read_status.ok()) context.TryCancel();  // the store must not take a short blob
  writer->WritesDone();
  grpc::Status status = writer->Finish();
  if (!read_status.ok()) return read_status;
  return FromGrpcStatus(status);
}

absl::Status BlobClient::UploadBytesOnce(const std::string& bytes) const {
  grpc::ClientContext context;
  context.set_deadline(Deadline(StreamTimeout(rpc_timeout_, bytes.size())));
  deja::v1::UploadResponse response;
  const auto stub = Stub();
  auto writer = stub->Upload(&context, &response);
  deja::v1::UploadChunk chunk;
  chunk.mutable_blob()->set_digest(HashBytes(bytes));
  chunk.mutable_blob()->set_size(bytes.size());
  size_t pos = 0;
  do {
    size_t n = std::min(kBlobChunkBytes, bytes.size() - pos);
    chunk.set_data(bytes.substr(pos, n));
    if (!writer->Write(chunk)) break;
    chunk.clear_blob();
    pos += n;
  } while (pos < bytes.size());
  writer->WritesDone();
  return FromGrpcStatus(writer->Finish());
}

absl::Status BlobClient::DownloadToFileOnce(const deja::v1::BlobRef& blob, const std::string& path,
                                            const ProgressFn& progress,
                                            const deja::v1::SignedTicket& ticket) const {
  std::string tmp = path + ".part-XXXXXX";
  int fd = mkostemp(tmp.data(), O_CLOEXEC);
  if (fd < 0) return ErrnoStatus(errno, "create " + tmp);
  fchmod(fd, 0644);
  grpc::ClientContext context;
  context.set_deadline(Deadline(StreamTimeout(rpc_timeout_, blob.size())));
  deja::v1::DownloadRequest request;
  request.set_digest(blob.digest());
  if (!ticket.ticket().empty()) *request.mutable_ticket() = ticket;
  const auto stub = Stub();
  auto reader = stub->Download(&context, request);
  absl::Status status = ReadBlob(
      &context, reader.get(), blob,
      [&](const std::string& data) -> absl::Status {
        size_t off = 0;
        while (off < data.size()) {
          ssize_t n = write(fd, data.data() + off, data.size() - off);
          if (n < 0 && errno == EINTR) continue;
          if (n < 0) return ErrnoStatus(errno, "write " + tmp);
          off += static_cast<size_t>(n);
        }
        return absl::OkStatus();
      },
      progress);
  if (status.ok() && fsync(fd) != 0) status = ErrnoStatus(errno, "fsync " + tmp);
  close(fd);
  if (status.ok() && rename(tmp.c_str(), path.c_str()) != 0) {
    status = ErrnoStatus(errno, "rename " + tmp);
  }
  if (!status.ok()) unlink(tmp.c_str());
  return status;
}

absl::StatusOr<std::string> BlobClient::DownloadBytesOnce(
    const deja::v1::BlobRef& blob, const deja::v1::SignedTicket& ticket) const {
  grpc::ClientContext context;
  context.set_deadline(Deadline(StreamTimeout(rpc_timeout_, blob.size())));
  deja::v1::DownloadRequest request;
  request.set_digest(blob.digest());
  if (!ticket.ticket().empty()) *request.mutable_ticket() = ticket;
  const auto stub = Stub();
  auto reader = stub->Download(&context, request);
  std::string out;
  absl::Status status = ReadBlob(&context, reader.get(), blob,
                                 [&](const std::string& data) {
                                   out.append(data);
                                   return absl::OkStatus();
                                 },
                                 {});
  if (!status.ok()) return status;
  return out;
}

}  // namespace deja
