// ContentService over a real in-process gRPC server, a real RocksDB and a
// BlobStore in a temp dir: upload verification (every rejected upload stores
// nothing), concurrent uploads, FindMissing, Download.
#include "scheduler/content/content_service.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "common/grpc_status.h"
#include "common/hash.h"
#include "tests/content/test_util.h"

namespace deja {
namespace {

using deja::v1::BlobRef;
using deja::v1::UploadChunk;
using testing::ContentServer;
using testing::PollUntil;
using testing::RandomBytes;
using testing::ReadFile;
using testing::Ref;
using testing::TempDir;
using testing::WriteFile;

UploadChunk Chunk(const std::string& data) {
  UploadChunk chunk;
  chunk.set_data(data);
  return chunk;
}

UploadChunk First(const BlobRef& blob, const std::string& data) {
  UploadChunk chunk = Chunk(data);
  *chunk.mutable_blob() = blob;
  return chunk;
}

class ContentServiceTest : public ::testing::Test {
 protected:
  // Sends `chunks` as one Upload stream and returns its status.
  absl::Status RawUpload(const std::vector<UploadChunk>& chunks,
                         deja::v1::UploadResponse* response = nullptr) {
    grpc::ClientContext context;
    deja::v1::UploadResponse ignored;
    auto writer = server_.stub().Upload(&context, response != nullptr ? response : &ignored);
    for (const UploadChunk& chunk : chunks) {
      if (!writer->Write(chunk)) break;
    }
    writer->WritesDone();
    return FromGrpcStatus(writer->Finish());
  }

  // Nothing of `digest` anywhere: no blob file, no metadata, no temp file.
  void ExpectNothingStored(const std::string& digest) {
    EXPECT_TRUE(server_.BlobFiles().empty());
    EXPECT_FALSE(server_.HasMeta(digest));
    EXPECT_TRUE(PollUntil([&] { return server_.TempFiles().empty(); }))
        << "temp files left: " << server_.TempFiles().size();
  }

  TempDir tmp_;
  ContentServer server_{tmp_.path()};
};

TEST_F(ContentServiceTest, AcceptsACorrectUpload) {
  const std::string data = RandomBytes(3 * kBlobChunkBytes + 17, 1);
  WriteFile(tmp_.Sub("in"), data);
  const BlobRef blob = Ref(HashBytes(data), data.size());
  ASSERT_TRUE(server_.client().UploadFile(tmp_.Sub("in"), blob).ok());
  EXPECT_TRUE(server_.store().Has(blob));
  EXPECT_TRUE(server_.HasMeta(blob.digest()));
  EXPECT_EQ(ReadFile(server_.store().PathOf(blob.digest())), data);
  EXPECT_TRUE(server_.TempFiles().empty());

  deja::v1::UploadResponse response;
  ASSERT_TRUE(RawUpload({First(blob, data)}, &response).ok());
  EXPECT_TRUE(response.already_present());
  EXPECT_EQ(response.blob().digest(), blob.digest());
}

TEST_F(ContentServiceTest, UploadBytesAndTheEmptyBlob) {
  ASSERT_TRUE(server_.client().UploadBytes("small").ok());
  EXPECT_TRUE(server_.store().Has(Ref(HashBytes("small"), 5)));
  ASSERT_TRUE(server_.client().UploadBytes("").ok());
  EXPECT_TRUE(server_.store().Has(Ref(HashBytes(""), 0)));
}

TEST_F(ContentServiceTest, RejectsAWrongDigest) {
  const BlobRef blob = Ref(HashBytes("other"), 5);
  absl::Status status = RawUpload({First(blob, "hel"), Chunk("lo")});
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(status.message(), "expected " + blob.digest())) << status;
  EXPECT_TRUE(absl::StrContains(status.message(), "got " + HashBytes("hello"))) << status;
  ExpectNothingStored(blob.digest());
}

TEST_F(ContentServiceTest, RejectsAWrongSize) {
  // More bytes than declared (the digest is of the declared prefix).
  const BlobRef blob = Ref(HashBytes("hel"), 3);
  absl::Status status = RawUpload({First(blob, "hello")});
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(status.message(), "expected 3 bytes")) << status;
  ExpectNothingStored(blob.digest());
  // Through the client: a file that is not the declared size.
  WriteFile(tmp_.Sub("in"), "hello");
  status = server_.client().UploadFile(tmp_.Sub("in"), Ref(HashBytes("hello"), 4));
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  ExpectNothingStored(HashBytes("hello"));
}

TEST_F(ContentServiceTest, RejectsATruncatedStream) {
  const std::string data = RandomBytes(2 * kBlobChunkBytes, 2);
  const BlobRef blob = Ref(HashBytes(data), data.size());
  absl::Status status = RawUpload({First(blob, data.substr(0, kBlobChunkBytes))});
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(status.message(), "truncated: got " +
                                                      std::to_string(kBlobChunkBytes) + " of " +
                                                      std::to_string(data.size()) + " bytes"))
      << status;
  ExpectNothingStored(blob.digest());
}

TEST_F(ContentServiceTest, AClientThatGoesAwayMidStreamStoresNothing) {
  const std::string data = RandomBytes(2 * kBlobChunkBytes, 3);
  const BlobRef blob = Ref(HashBytes(data), data.size());
  {
    grpc::ClientContext context;
    deja::v1::UploadResponse response;
    auto writer = server_.stub().Upload(&context, &response);
    ASSERT_TRUE(writer->Write(First(blob, data.substr(0, kBlobChunkBytes))));
    // The server has started writing the temp file.
    ASSERT_TRUE(PollUntil([&] { return server_.TempFiles().size() == 1; }));
    context.TryCancel();
    EXPECT_EQ(writer->Finish().error_code(), grpc::StatusCode::CANCELLED);
  }
  ExpectNothingStored(blob.digest());
  EXPECT_FALSE(server_.store().Has(blob));
}

TEST_F(ContentServiceTest, TheFirstChunkMustNameTheBlob) {
  absl::Status status = RawUpload({Chunk("hello")});
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(status.message(), "the first chunk must name the blob")) << status;
  status = RawUpload({});
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  ExpectNothingStored(HashBytes("hello"));
}

TEST_F(ContentServiceTest, LaterChunksMayNotNameAnotherBlob) {
  const BlobRef blob = Ref(HashBytes("hello"), 5);
  absl::Status status = RawUpload({First(blob, "hel"), First(Ref(HashBytes("x"), 1), "lo")});
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  ExpectNothingStored(blob.digest());
}

TEST_F(ContentServiceTest, RejectsBadDigestsAndHugeBlobs) {
  absl::Status status = RawUpload({First(Ref("../../etc/passwd", 5), "hello")});
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(status.message(), "blob.digest")) << status;
  status = RawUpload({First(Ref(HashBytes("x"), kMaxBlobSize + 1), "x")});
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(status.message(), "64 GiB")) << status;
  EXPECT_TRUE(server_.TempFiles().empty());
}

TEST_F(ContentServiceTest, TwoConcurrentUploadsOfOneBlob) {
  const std::string data = RandomBytes(3 * kBlobChunkBytes + 5, 4);
  const BlobRef blob = Ref(HashBytes(data), data.size());
  grpc::ClientContext c1, c2;
  deja::v1::UploadResponse r1, r2;
  auto w1 = server_.stub().Upload(&c1, &r1);
  auto w2 = server_.stub().Upload(&c2, &r2);
  // Interleave the two streams chunk by chunk: both temp files exist at once.
  for (size_t off = 0; off < data.size(); off += kBlobChunkBytes) {
    std::string part = data.substr(off, kBlobChunkBytes);
    UploadChunk chunk = off == 0 ? First(blob, part) : Chunk(part);
    ASSERT_TRUE(w1->Write(chunk));
    ASSERT_TRUE(w2->Write(chunk));
  }
  ASSERT_TRUE(PollUntil([&] { return server_.TempFiles().size() == 2; }));
  w1->WritesDone();
  w2->WritesDone();
  std::thread finish([&] { EXPECT_TRUE(w1->Finish().ok()); });
  EXPECT_TRUE(w2->Finish().ok());
  finish.join();
  EXPECT_TRUE(server_.store().Has(blob));
  EXPECT_EQ(ReadFile(server_.store().PathOf(blob.digest())), data);
  EXPECT_EQ(server_.BlobFiles().size(), 1u);
  EXPECT_TRUE(server_.TempFiles().empty());
  EXPECT_TRUE(server_.HasMeta(blob.digest()));
}

TEST_F(ContentServiceTest, ManyConcurrentClientUploads) {
  const std::string data = RandomBytes(kBlobChunkBytes + 1, 5);
  WriteFile(tmp_.Sub("in"), data);
  const BlobRef blob = Ref(HashBytes(data), data.size());
  std::vector<std::thread> threads;
  for (int i = 0; i < 6; ++i) {
    threads.emplace_back(
        [&] { EXPECT_TRUE(server_.client().UploadFile(tmp_.Sub("in"), blob).ok()); });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ReadFile(server_.store().PathOf(blob.digest())), data);
  EXPECT_TRUE(server_.TempFiles().empty());
}

TEST_F(ContentServiceTest, FindMissing) {
  ASSERT_TRUE(server_.client().UploadBytes("have").ok());
  const BlobRef have = Ref(HashBytes("have"), 4);
  const BlobRef lack = Ref(HashBytes("lack"), 4);
  const BlobRef other_size = Ref(HashBytes("have"), 5);
  auto missing = server_.client().FindMissing({have, lack, other_size});
  ASSERT_TRUE(missing.ok()) << missing.status();
  ASSERT_EQ(missing->size(), 2u);
  EXPECT_EQ((*missing)[0].digest(), lack.digest());
  EXPECT_EQ((*missing)[1].size(), 5u);

  auto bad = server_.client().FindMissing({have, Ref("nope", 1)});
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(bad.status().message(), "blobs[1].digest")) << bad.status();
}

TEST_F(ContentServiceTest, MissingOnceTheBlobFileIsDeleted) {
  ASSERT_TRUE(server_.client().UploadBytes("gone soon").ok());
  const BlobRef blob = Ref(HashBytes("gone soon"), 9);
  ASSERT_TRUE(server_.store().Has(blob));
  ASSERT_EQ(unlink(server_.store().PathOf(blob.digest()).c_str()), 0);
  EXPECT_FALSE(server_.store().Has(blob));
  auto missing = server_.client().FindMissing({blob});
  ASSERT_TRUE(missing.ok());
  EXPECT_EQ(missing->size(), 1u);
  auto download = server_.client().DownloadBytes(blob);
  EXPECT_EQ(download.status().code(), absl::StatusCode::kNotFound);
}

TEST_F(ContentServiceTest, DownloadFromAnOffset) {
  const std::string data = RandomBytes(2 * kBlobChunkBytes + kBlobChunkBytes / 2, 6);
  ASSERT_TRUE(server_.client().UploadBytes(data).ok());
  const std::string digest = HashBytes(data);
  for (uint64_t offset : {uint64_t{0}, uint64_t{kBlobChunkBytes + 7}, uint64_t{data.size()}}) {
    grpc::ClientContext context;
    deja::v1::DownloadRequest request;
    request.set_digest(digest);
    request.set_offset(offset);
    auto reader = server_.stub().Download(&context, request);
    deja::v1::DownloadChunk chunk;
    std::string got;
    while (reader->Read(&chunk)) {
      EXPECT_LE(chunk.data().size(), kBlobChunkBytes);
      EXPECT_FALSE(chunk.data().empty());
      got += chunk.data();
    }
    ASSERT_TRUE(reader->Finish().ok());
    EXPECT_TRUE(got == data.substr(offset)) << "offset " << offset;
  }
  // Past the end.
  grpc::ClientContext context;
  deja::v1::DownloadRequest request;
  request.set_digest(digest);
  request.set_offset(data.size() + 1);
  auto reader = server_.stub().Download(&context, request);
  deja::v1::DownloadChunk chunk;
  EXPECT_FALSE(reader->Read(&chunk));
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::OUT_OF_RANGE);

  // The client's whole-file download checks and renames into place.
  ASSERT_TRUE(server_.client().DownloadToFile(Ref(digest, data.size()), tmp_.Sub("out")).ok());
  EXPECT_TRUE(ReadFile(tmp_.Sub("out")) == data);
}

// Finding 5 of issue 12: a download whose local write fails (a full disk;
// here the file size limit, which fails write(2) the same way) must stop the
// stream and return, not wait in Finish for a server that has more to send.
TEST_F(ContentServiceTest, ADownloadThatCannotBeWrittenIsCancelledAndLeavesNothing) {
  const std::string data = RandomBytes(48 * kBlobChunkBytes, 9);
  ASSERT_TRUE(server_.client().UploadBytes(data).ok());
  const BlobRef blob = Ref(HashBytes(data), data.size());
  const std::string dir = tmp_.Sub("downloads");
  std::filesystem::create_directories(dir);

  struct rlimit saved;
  ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &saved), 0);
  struct rlimit small = saved;
  small.rlim_cur = 2 * kBlobChunkBytes;
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &small), 0);
  sighandler_t saved_handler = signal(SIGXFSZ, SIG_IGN);  // EFBIG, not a signal

  // On its own thread, so that a hang fails the test instead of stopping it.
  auto done = std::make_shared<std::promise<absl::Status>>();
  std::future<absl::Status> result = done->get_future();
  std::thread([this, done, blob, path = dir + "/blob"] {
    done->set_value(server_.client().DownloadToFile(blob, path));
  }).detach();
  const bool returned = result.wait_for(std::chrono::seconds(60)) == std::future_status::ready;
  setrlimit(RLIMIT_FSIZE, &saved);
  signal(SIGXFSZ, saved_handler);
  ASSERT_TRUE(returned) << "DownloadToFile still running 60 s after its write failed";

  const absl::Status status = result.get();
  EXPECT_FALSE(status.ok());
  EXPECT_TRUE(absl::StrContains(status.message(), "File too large")) << status;
  EXPECT_TRUE(std::filesystem::is_empty(dir)) << "the temp file was left behind";
}

TEST_F(ContentServiceTest, DownloadOfAnUnknownBlob) {
  const std::string digest = HashBytes("never uploaded");
  auto got = server_.client().DownloadBytes(Ref(digest, 14));
  EXPECT_EQ(got.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(got.status().message(), "blob " + digest + " not found");
  auto bad = server_.client().DownloadBytes(Ref("../x", 1));
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace deja
