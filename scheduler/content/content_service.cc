#include "scheduler/content/content_service.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <memory>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/blob_client.h"
#include "common/credentials.h"
#include "common/errors.h"
#include "common/grpc_status.h"
#include "common/tickets.h"
#include "scheduler/access/call_auth.h"

namespace deja {
namespace {

grpc::Status Invalid(const std::string& message) {
  return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, message);
}

}  // namespace

ContentService::ContentService(BlobStore* store, AccessControl* access,
                               const std::string& ticket_ca_pem)
    : store_(store), access_(access), trees_(store) {
  if (!ticket_ca_pem.empty()) ticket_ca_ = tls::SignatureVerifier::Create(ticket_ca_pem);
}

absl::StatusOr<ContentService::Admitted> ContentService::Admit(const grpc::ServerContext& context,
                                                               const char* method,
                                                               Right user_right) const {
  auto caller = Authenticate(access_, context, method);
  if (!caller.ok()) return caller.status();
  const bool worker = caller->principal.role == deja::v1::WORKER;
  if (absl::Status st = access_->Authorize(*caller, worker ? Right::kWorker : user_right,
                                           caller->principal.project);
      !st.ok()) {
    return st;
  }
  return Admitted{worker ? std::string() : caller->principal.project, worker,
                  std::move(caller).value()};
}

grpc::Status ContentService::FindMissingBlobs(grpc::ServerContext* context,
                                              const deja::v1::FindMissingBlobsRequest* request,
                                              deja::v1::FindMissingBlobsResponse* response) {
  auto admitted = Admit(*context, "FindMissingBlobs", Right::kSubmit);
  if (!admitted.ok()) return ToGrpcStatus(admitted.status());
  const std::string& project = admitted->project;
  if (request->blobs_size() > kMaxFindMissing) {
    return Invalid(absl::StrCat("blobs: too many (", request->blobs_size(), ", at most ",
                                kMaxFindMissing, " per request)"));
  }
  for (int i = 0; i < request->blobs_size(); ++i) {
    const deja::v1::BlobRef& blob = request->blobs(i);
    if (auto s = ValidateDigest(absl::StrCat("blobs[", i, "].digest"), blob.digest()); !s.ok()) {
      return ToGrpcStatus(s);
    }
    // A blob said present is in use: the collector keeps it a while, for
    // the submit that references it. One the project may not read is
    // missing to it: uploading it proves the bytes are the project's too.
    if (!store_->Use(blob) || !store_->Readable(blob.digest(), project)) {
      *response->add_missing() = blob;
    }
  }
  return grpc::Status::OK;
}

grpc::Status ContentService::Upload(grpc::ServerContext* context,
                                    grpc::ServerReader<deja::v1::UploadChunk>* reader,
                                    deja::v1::UploadResponse* response) {
  auto admitted = Admit(*context, "Upload", Right::kSubmit);
  if (!admitted.ok()) return ToGrpcStatus(admitted.status());
  const std::string& project = admitted->project;
  deja::v1::UploadChunk chunk;
  if (!reader->Read(&chunk)) {
    if (context->IsCancelled()) {
      return grpc::Status(grpc::StatusCode::CANCELLED, "upload cancelled by the client");
    }
    return Invalid("empty upload stream: the first chunk must name the blob");
  }
  if (!chunk.has_blob()) return Invalid("the first chunk must name the blob");
  const deja::v1::BlobRef expected = chunk.blob();
  if (expected.size() > kMaxBlobSize) {
    return Invalid(absl::StrCat("blob.size: ", expected.size(), " bytes is more than the maximum ",
                                kMaxBlobSize, " (64 GiB)"));
  }
  absl::StatusOr<std::unique_ptr<BlobWriter>> writer = store_->BeginWrite(expected);
  if (!writer.ok()) return ToGrpcStatus(writer.status());
  // Every error return below destroys the writer, which deletes its temp file.
  uint64_t index = 0;
  do {
    if (index > 0 && chunk.has_blob() &&
        (chunk.blob().digest() != expected.digest() || chunk.blob().size() != expected.size())) {
      return Invalid(absl::StrCat("chunk ", index, " names blob ", chunk.blob().digest(),
                                  " but the upload is of blob ", expected.digest()));
    }
    if (auto s = (*writer)->Append(chunk.data()); !s.ok()) return ToGrpcStatus(s);
    ++index;
  } while (reader->Read(&chunk));
  // A client that went away mid-stream ends the reads early; its bytes,
  // complete or not, are not what it meant to commit.
  if (context->IsCancelled()) {
    return grpc::Status(grpc::StatusCode::CANCELLED,
                        absl::StrCat("upload of blob ", expected.digest(), " cancelled"));
  }
  absl::StatusOr<bool> already = (*writer)->Commit();
  if (!already.ok()) return ToGrpcStatus(already.status());
  if (!project.empty()) {
    if (absl::Status s = store_->Grant(expected.digest(), project); !s.ok()) {
      return ToGrpcStatus(s);
    }
  }
  *response->mutable_blob() = expected;
  response->set_already_present(*already);
  return grpc::Status::OK;
}

grpc::Status ContentService::Download(grpc::ServerContext* context,
                                      const deja::v1::DownloadRequest* request,
                                      grpc::ServerWriter<deja::v1::DownloadChunk>* writer) {
  auto admitted = Admit(*context, "Download", Right::kRead);
  if (!admitted.ok()) return ToGrpcStatus(admitted.status());
  if (auto s = ValidateDigest("digest", request->digest()); !s.ok()) return ToGrpcStatus(s);
  if (admitted->worker && ticket_ca_.has_value()) {
    absl::Status st = ticket_ca_->status();
    if (st.ok()) {
      st = CheckDownloadTicket(request->ticket(), **ticket_ca_, PresentedCommonName(*context),
                               request->digest(), absl::Now(),
                               [this](const std::string& tree, const std::string& digest) {
                                 return trees_.Holds(tree, digest);
                               });
    }
    if (!st.ok()) {
      return ToGrpcStatus(access_->Deny(admitted->caller, st.code(), std::string(st.message())));
    }
  }
  if (!store_->Readable(request->digest(), admitted->project)) {
    // As if absent: a project learns nothing of another's blobs.
    return grpc::Status(grpc::StatusCode::NOT_FOUND,
                        absl::StrCat("blob ", request->digest(), " not found"));
  }
  absl::StatusOr<int> fd = store_->OpenForRead(request->digest());
  if (!fd.ok()) return ToGrpcStatus(fd.status());
  // Closes the blob file on every return.
  struct FdCloser {
    int fd;
    ~FdCloser() { close(fd); }
  } closer{*fd};
  struct stat st;
  if (fstat(*fd, &st) != 0) {
    return ToGrpcStatus(ErrnoStatus(errno, "stat blob " + request->digest()));
  }
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  uint64_t offset = request->offset();
  if (offset > size) {
    return grpc::Status(grpc::StatusCode::OUT_OF_RANGE,
                        absl::StrCat("offset ", offset, " is past the end of blob ",
                                     request->digest(), " (", size, " bytes)"));
  }
  deja::v1::DownloadChunk chunk;
  std::string* buffer = chunk.mutable_data();
  while (offset < size) {
    if (context->IsCancelled()) {
      return grpc::Status(grpc::StatusCode::CANCELLED, "download cancelled by the client");
    }
    buffer->resize(static_cast<size_t>(std::min<uint64_t>(kBlobChunkBytes, size - offset)));
    ssize_t n = pread(*fd, buffer->data(), buffer->size(), static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      return grpc::Status(grpc::StatusCode::INTERNAL,
                          ErrnoStatus(errno, "read blob " + request->digest()).ToString());
    }
    if (n == 0) {
      return grpc::Status(grpc::StatusCode::DATA_LOSS,
                          absl::StrCat("blob ", request->digest(), " shrank while being read"));
    }
    buffer->resize(static_cast<size_t>(n));
    if (!writer->Write(chunk)) {
      return grpc::Status(grpc::StatusCode::CANCELLED, "download cancelled by the client");
    }
    offset += static_cast<uint64_t>(n);
  }
  return grpc::Status::OK;
}

}  // namespace deja
