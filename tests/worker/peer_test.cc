// The peer file service and the remote reuse: two workers' work dirs in
// temp dirs, a PeerServer on one, a WorkspacePuller on the other.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/hash.h"
#include "common/manifest.h"
#include "deja/v1/peer.grpc.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/worker/test_util.h"
#include "worker/paths.h"
#include "worker/peer_client.h"
#include "worker/peer_service.h"

namespace deja::worker {
namespace {

using ::deja::worker::testing::FakeManifests;
using ::deja::worker::testing::MakeTempDir;
using ::deja::worker::testing::ReadFile;
using ::deja::worker::testing::RemoveTempDir;
using ::deja::worker::testing::WriteFile;
using ::testing::HasSubstr;

// A field of /proc/self/status, in KiB.
int64_t StatusKiB(const std::string& field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field + ":", 0) != 0) continue;
    std::vector<std::string> parts =
        absl::StrSplit(line.substr(field.size() + 1), absl::ByAnyChar(" \t"), absl::SkipEmpty());
    int64_t kib = 0;
    if (!parts.empty() && absl::SimpleAtoi(parts[0], &kib)) return kib;
  }
  return -1;
}

class PeerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    source_dir_ = MakeTempDir("peer_test_source");
    dest_dir_ = MakeTempDir("peer_test_dest");
    src_ = paths::WorkspaceDir(source_dir_, "src");
    auto server = PeerServer::Start("127.0.0.1:0", source_dir_, manifests_.loader());
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    source_ = PeerSource{"w-source", absl::StrCat("127.0.0.1:", server_->port()), "src", {}};
  }
  void TearDown() override {
    server_.reset();
    RemoveTempDir(source_dir_);
    RemoveTempDir(dest_dir_);
  }

  // A finished workspace with every kind of entry; returns its manifest.
  deja::v1::Manifest MakeSource() {
    std::string big(3 * 1024 * 1024 + 17, '\0');  // several chunks
    std::mt19937 rng(7);
    for (char& c : big) c = static_cast<char>(rng());
    WriteFile(src_ + "/out/result.txt", "forty-two\n");
    WriteFile(src_ + "/bin/run.sh", "#!/bin/sh\necho hi\n", 0755);
    WriteFile(src_ + "/deep/a/b/big.bin", big, 0600);
    WriteFile(src_ + "/empty", "", 0444);
    WriteFile(src_ + "/logs/stdout", "job said hello\n");
    WriteFile(src_ + "/logs/stderr", "");
    EXPECT_EQ(symlink("out/result.txt", (src_ + "/latest").c_str()), 0);
    auto manifest = BuildManifest(src_);
    EXPECT_TRUE(manifest.ok()) << manifest.status();
    EXPECT_EQ(manifest->files_size(), 7);
    return *manifest;
  }

  absl::StatusOr<PullResult> Pull(const deja::v1::Manifest& manifest,
                                  const PeerSource* source = nullptr) {
    WorkspacePuller puller(dest_dir_, absl::Seconds(2));
    return puller.Pull(source != nullptr ? *source : source_, manifests_.Put(manifest), manifest,
                       "dst");
  }

  std::string Dst() const { return paths::WorkspaceDir(dest_dir_, "dst"); }

  std::string source_dir_, dest_dir_, src_;
  FakeManifests manifests_;  // before server_, which uses it
  std::unique_ptr<PeerServer> server_;
  PeerSource source_;
};

TEST_F(PeerTest, PullsAByteIdenticalCopyWithModesAndSymlinks) {
  const deja::v1::Manifest manifest = MakeSource();
  auto pulled = Pull(manifest);
  ASSERT_TRUE(pulled.ok()) << pulled.status();
  EXPECT_EQ(pulled->files, 7u);
  uint64_t file_bytes = 0;
  for (const auto& entry : manifest.files()) {
    if (S_ISREG(entry.mode())) file_bytes += entry.size();
  }
  EXPECT_EQ(pulled->bytes, file_bytes);

  EXPECT_TRUE(VerifyManifest(Dst(), manifest).ok());
  for (const auto& entry : manifest.files()) {
    const std::string a = src_ + "/" + entry.path();
    const std::string b = Dst() + "/" + entry.path();
    struct stat sa, sb;
    ASSERT_EQ(lstat(a.c_str(), &sa), 0);
    ASSERT_EQ(lstat(b.c_str(), &sb), 0) << entry.path();
    if (S_ISLNK(sa.st_mode)) {
      EXPECT_TRUE(S_ISLNK(sb.st_mode)) << entry.path();
      EXPECT_EQ(std::filesystem::read_symlink(b), std::filesystem::read_symlink(a));
    } else {
      EXPECT_EQ(sb.st_mode, sa.st_mode) << entry.path();
      EXPECT_EQ(ReadFile(b), ReadFile(a)) << entry.path();
      EXPECT_NE(sb.st_ino, sa.st_ino);
    }
  }
  EXPECT_EQ(ReadFile(Dst() + "/REUSED"), "source_job=src\nsource_worker=w-source\nmethod=peer\n");
  // No temp file is left behind.
  auto rebuilt = BuildManifest(Dst());
  ASSERT_TRUE(rebuilt.ok());
  EXPECT_EQ(rebuilt->files_size(), manifest.files_size() + 1);  // + REUSED
}

TEST_F(PeerTest, AFileModifiedAfterTheManifestFailsVerificationNamingIt) {
  const deja::v1::Manifest manifest = MakeSource();
  WriteFile(src_ + "/out/result.txt", "forty-one\n");  // same size, other content
  auto pulled = Pull(manifest);
  ASSERT_EQ(pulled.status().code(), absl::StatusCode::kDataLoss) << pulled.status();
  EXPECT_THAT(std::string(pulled.status().message()), HasSubstr("out/result.txt"));
  EXPECT_FALSE(std::filesystem::exists(Dst()));

  WriteFile(src_ + "/out/result.txt", "forty-two and more\n");  // other size
  pulled = Pull(manifest);
  ASSERT_EQ(pulled.status().code(), absl::StatusCode::kDataLoss) << pulled.status();
  EXPECT_THAT(std::string(pulled.status().message()), HasSubstr("out/result.txt"));
  EXPECT_FALSE(std::filesystem::exists(Dst()));
}

TEST_F(PeerTest, AVanishedFileOrWorkspaceIsNamed) {
  const deja::v1::Manifest manifest = MakeSource();
  ASSERT_EQ(unlink((src_ + "/deep/a/b/big.bin").c_str()), 0);
  auto pulled = Pull(manifest);
  ASSERT_EQ(pulled.status().code(), absl::StatusCode::kDataLoss) << pulled.status();
  EXPECT_THAT(std::string(pulled.status().message()), HasSubstr("deep/a/b/big.bin"));
  EXPECT_FALSE(std::filesystem::exists(Dst()));

  std::filesystem::remove_all(src_);
  pulled = Pull(manifest);
  ASSERT_EQ(pulled.status().code(), absl::StatusCode::kDataLoss) << pulled.status();
  EXPECT_THAT(std::string(pulled.status().message()), HasSubstr("workspace of job src is gone"));
}

TEST_F(PeerTest, TheServiceAnswersNotFoundForAMissingWorkspace) {
  auto channel = grpc::CreateChannel(source_.address, grpc::InsecureChannelCredentials());
  auto stub = deja::v1::Peer::NewStub(channel);
  grpc::ClientContext context;
  deja::v1::FetchWorkspaceRequest request;
  request.set_job_id("no-such-job");
  auto reader = stub->FetchWorkspace(&context, request);
  deja::v1::WorkspaceChunk chunk;
  EXPECT_FALSE(reader->Read(&chunk));
  grpc::Status status = reader->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_THAT(status.error_message(), HasSubstr("no-such-job"));
}

TEST_F(PeerTest, TheServiceServesOnlyValidatedManifestPaths) {
  MakeSource();
  const std::string outside = MakeTempDir("peer_test_outside");
  WriteFile(outside + "/secret", "secret\n");
  ASSERT_EQ(symlink(outside.c_str(), (src_ + "/escape").c_str()), 0);
  auto channel = grpc::CreateChannel(source_.address, grpc::InsecureChannelCredentials());
  auto stub = deja::v1::Peer::NewStub(channel);
  auto fetch = [&](const std::string& path) {
    grpc::ClientContext context;
    deja::v1::FetchWorkspaceRequest request;
    request.set_job_id("src");
    deja::v1::Manifest manifest;
    deja::v1::FileEntry* entry = manifest.add_files();
    entry->set_path(path);
    entry->set_mode(S_IFREG | 0644);
    entry->set_size(7);
    *request.mutable_manifest() = manifests_.Put(manifest);
    auto reader = stub->FetchWorkspace(&context, request);
    deja::v1::WorkspaceChunk chunk;
    std::string data;
    while (reader->Read(&chunk)) data += chunk.data();
    EXPECT_EQ(data, "") << path;
    return reader->Finish();
  };
  grpc::Status st = fetch("../peer_test_outside/secret");
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  st = fetch("escape/secret");
  EXPECT_EQ(st.error_code(), grpc::StatusCode::DATA_LOSS);
  EXPECT_THAT(st.error_message(), HasSubstr("escape/secret"));
  RemoveTempDir(outside);

  // Through the puller, the same manifest is a verification failure.
  deja::v1::Manifest manifest;
  deja::v1::FileEntry* entry = manifest.add_files();
  entry->set_path("escape/secret");
  entry->set_mode(S_IFREG | 0644);
  entry->set_size(7);
  entry->set_digest(HashBytes("secret\n"));
  auto pulled = Pull(manifest);
  EXPECT_EQ(pulled.status().code(), absl::StatusCode::kDataLoss) << pulled.status();
}

TEST_F(PeerTest, AnUnreachablePeerIsNamed) {
  const deja::v1::Manifest manifest = MakeSource();
  const std::string address = source_.address;
  server_->Shutdown();  // nothing listens there any more
  PeerSource gone{"w-gone", address, "src", {}};
  WorkspacePuller puller(dest_dir_, absl::Milliseconds(300));
  auto pulled = puller.Pull(gone, manifests_.Put(manifest), manifest, "dst");
  ASSERT_EQ(pulled.status().code(), absl::StatusCode::kUnavailable) << pulled.status();
  EXPECT_THAT(std::string(pulled.status().message()),
              HasSubstr(absl::StrCat("source worker w-gone at ", address, " unreachable: ")));
  EXPECT_FALSE(std::filesystem::exists(Dst()));
}

TEST_F(PeerTest, ALargeFileStreamsInBoundedMemory) {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  GTEST_SKIP() << "resident-set bounds are checked without sanitizers (their shadow memory and "
                  "quarantine count as resident)";
#endif
  constexpr off_t kSize = off_t{64} << 20;
  {
    std::filesystem::create_directories(src_);
    const std::string path = src_ + "/huge.bin";
    int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(ftruncate(fd, kSize), 0);  // sparse: no disk, no memory
    close(fd);
  }
  auto manifest = BuildManifest(src_);
  ASSERT_TRUE(manifest.ok());
  // Warm up gRPC (channel, threads, arenas) so that only the transfer counts.
  deja::v1::Manifest empty;
  ASSERT_TRUE(Pull(empty).ok());

  const int64_t rss_before = StatusKiB("VmRSS");
  // Reset the high-water mark when the kernel allows, so VmHWM is this pull's.
  std::ofstream("/proc/self/clear_refs") << "5";
  const int64_t hwm_before = StatusKiB("VmHWM");
  auto pulled = Pull(*manifest);
  ASSERT_TRUE(pulled.ok()) << pulled.status();
  EXPECT_EQ(pulled->bytes, static_cast<uint64_t>(kSize));
  const int64_t rss_after = StatusKiB("VmRSS");
  const int64_t hwm_after = StatusKiB("VmHWM");
  ASSERT_GT(rss_before, 0);
  // Well under the file's 64 MiB: what a copy held whole would cost. gRPC's
  // arenas make the rest: 5-13 MiB alone, 17.4 MiB seen on a loaded 2-core
  // machine (a Docker build beside the whole suite), so the bound is the
  // peak's.
  EXPECT_LT(rss_after - rss_before, 24 * 1024) << "VmRSS grew " << rss_after - rss_before << " KiB";
  // The peak, against the larger of the two baselines (clear_refs may be
  // unsupported, then VmHWM is the whole run's peak). Generous: gRPC's
  // buffers and the allocator's arenas (measured 5-13 MiB).
  EXPECT_LT(hwm_after - std::max(rss_before, hwm_before), 24 * 1024)
      << "VmHWM grew " << hwm_after - std::max(rss_before, hwm_before) << " KiB";
  struct stat st;
  ASSERT_EQ(stat((Dst() + "/huge.bin").c_str(), &st), 0);
  EXPECT_EQ(st.st_size, kSize);
}

}  // namespace
}  // namespace deja::worker
