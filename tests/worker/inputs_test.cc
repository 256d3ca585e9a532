#include "worker/inputs.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/manifest.h"
#include "common/tree.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/fakes/fake_content_store.h"
#include "tests/worker/test_util.h"
#include "worker/job_runner.h"
#include "worker/paths.h"

namespace deja::worker {
namespace {

using ::deja::testing::FakeStoreServer;
using ::deja::worker::testing::MakeTempDir;
using ::deja::worker::testing::ReadFile;
using ::deja::worker::testing::RemoveTempDir;
using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr char kTool[] = "#!/bin/sh\necho tool ran\n";
constexpr char kData[] = "data\n";
constexpr char kDeep[] = "deep\n";
constexpr char kRef[] = "a file input\n";

mode_t ModeOf(const std::string& path) {
  struct stat st;
  if (lstat(path.c_str(), &st) != 0) return 0;
  return st.st_mode;
}

ino_t InodeOf(const std::string& path) {
  struct stat st;
  if (lstat(path.c_str(), &st) != 0) return 0;
  return st.st_ino;
}

class InputsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir("inputs_test");
    ws_ = paths::WorkspaceDir(dir_, "job-1");
    ASSERT_TRUE(paths::MakeDirs(ws_).ok());
    auto cache = BlobCache::Open(paths::CacheBlobsDir(dir_), 1 << 30, &server_.client());
    ASSERT_TRUE(cache.ok()) << cache.status();
    cache_ = *std::move(cache);

    // tree/
    //   bin/tool (x)   data.txt   dup.txt (same blob)   empty/
    //   link -> data.txt          nested/a/b/deep.txt
    DirEntry bin = Dir("bin", {File("tool", kTool, /*executable=*/true)});
    DirEntry deep = Dir("nested", {Dir("a", {Dir("b", {File("deep.txt", kDeep)})})});
    DirEntry link;
    link.name = "link";
    link.kind = DirEntry::Kind::kSymlink;
    link.target = "data.txt";
    tree_ = Dir("root", {bin, File("data.txt", kData), File("dup.txt", kData), Dir("empty", {}),
                         link, deep});
  }
  void TearDown() override {
    cache_.reset();
    RemoveTempDir(dir_);
  }

  DirEntry File(const std::string& name, const std::string& content, bool executable = false) {
    const deja::v1::BlobRef ref = server_.store().Put(content);
    DirEntry e;
    e.name = name;
    e.kind = DirEntry::Kind::kFile;
    e.executable = executable;
    e.digest = ref.digest();
    e.size = ref.size();
    return e;
  }
  DirEntry Dir(const std::string& name, std::vector<DirEntry> entries) {
    const deja::v1::BlobRef ref = server_.store().Put(EncodeDirectory(std::move(entries)));
    DirEntry e;
    e.name = name;
    e.kind = DirEntry::Kind::kDirectory;
    e.digest = ref.digest();
    e.size = ref.size();
    return e;
  }

  static deja::v1::InputRef Input(const std::string& name, const std::string& kind,
                                  const std::string& digest, uint64_t size,
                                  const std::string& path = "") {
    deja::v1::InputRef input;
    input.set_name(name);
    input.set_kind(kind);
    input.set_digest(digest);
    input.set_size(size);
    input.set_path(path);
    return input;
  }
  deja::v1::InputRef FileInput(const std::string& name = "ref", const std::string& path = "") {
    const deja::v1::BlobRef ref = server_.store().Put(kRef);
    return Input(name, "file", ref.digest(), ref.size(), path);
  }
  deja::v1::InputRef TreeInput(const std::string& path = "data/tree") {
    return Input("tree", "dir", tree_.digest, tree_.size, path);
  }

  absl::StatusOr<PlaceResult> Place(std::vector<deja::v1::InputRef> inputs,
                                    InputPlacer::Options options = {}) {
    google::protobuf::RepeatedPtrField<deja::v1::InputRef> field(inputs.begin(), inputs.end());
    InputPlacer placer(cache_.get(), &server_.client(), options);
    return placer.Place(ws_, field);
  }

  std::string CachedPath(const std::string& content) {
    return paths::CachedBlobPath(paths::CacheBlobsDir(dir_), HashBytes(content));
  }

  FakeStoreServer server_;
  std::string dir_, ws_;
  std::unique_ptr<BlobCache> cache_;
  DirEntry tree_;
};

TEST_F(InputsTest, PlacesFilesAndDirectoryTreesReadOnly) {
  auto placed = Place({FileInput(), TreeInput()});
  ASSERT_TRUE(placed.ok()) << placed.status();
  EXPECT_EQ(placed->files, 5u);  // ref, tool, data.txt, dup.txt, deep.txt

  EXPECT_EQ(ReadFile(ws_ + "/inputs/ref"), kRef);
  EXPECT_EQ(ModeOf(ws_ + "/inputs/ref"), S_IFREG | 0444);
  const std::string tree = ws_ + "/data/tree";
  EXPECT_EQ(ReadFile(tree + "/bin/tool"), kTool);
  EXPECT_EQ(ModeOf(tree + "/bin/tool"), S_IFREG | 0555);
  EXPECT_EQ(ReadFile(tree + "/data.txt"), kData);
  EXPECT_EQ(ModeOf(tree + "/data.txt"), S_IFREG | 0444);
  EXPECT_EQ(ReadFile(tree + "/dup.txt"), kData);
  EXPECT_EQ(ReadFile(tree + "/nested/a/b/deep.txt"), kDeep);
  EXPECT_TRUE(S_ISDIR(ModeOf(tree + "/empty")));
  EXPECT_TRUE(std::filesystem::is_empty(tree + "/empty"));
  ASSERT_TRUE(S_ISLNK(ModeOf(tree + "/link")));
  EXPECT_EQ(std::filesystem::read_symlink(tree + "/link").string(), "data.txt");

  // The inputs are part of the workspace, and so of its manifest.
  auto manifest = BuildManifest(ws_);
  ASSERT_TRUE(manifest.ok()) << manifest.status();
  std::vector<std::string> listed;
  for (const auto& entry : manifest->files()) listed.push_back(entry.path());
  EXPECT_THAT(listed, ::testing::ElementsAre("data/tree/bin/tool", "data/tree/data.txt",
                                             "data/tree/dup.txt", "data/tree/link",
                                             "data/tree/nested/a/b/deep.txt", "inputs/ref"));
}

TEST_F(InputsTest, WithoutRootFilesAreHardLinksTheJobCannotWriteThrough) {
  if (geteuid() == 0) GTEST_SKIP() << "root ignores permission bits: inputs are copies";
  auto placed = Place({FileInput(), TreeInput()});
  ASSERT_TRUE(placed.ok()) << placed.status();
  EXPECT_EQ(InodeOf(ws_ + "/inputs/ref"), InodeOf(CachedPath(kRef)));
  EXPECT_EQ(InodeOf(ws_ + "/data/tree/data.txt"), InodeOf(CachedPath(kData)));
  // An executable needs a mode of its own, so never shares the cached inode.
  EXPECT_NE(InodeOf(ws_ + "/data/tree/bin/tool"), InodeOf(CachedPath(kTool)));

  EXPECT_LT(open((ws_ + "/inputs/ref").c_str(), O_WRONLY), 0);
  EXPECT_EQ(errno, EACCES);
  RealClock clock;
  JobLaunch launch;
  launch.job_id = "job-2";
  launch.workspace = paths::WorkspaceDir(dir_, "job-2");
  launch.argv = {"sh", "-c", "echo overwritten > inputs/ref || exit 9"};
  launch.prepare = [&](const std::string& ws) {
    google::protobuf::RepeatedPtrField<deja::v1::InputRef> inputs;
    *inputs.Add() = FileInput();
    InputPlacer placer(cache_.get(), &server_.client());
    return placer.Place(ws, inputs).status();
  };
  JobOutcome outcome = JobRunner::Start(std::move(launch), &clock)->Wait();
  EXPECT_EQ(outcome.exit_code, 9) << outcome.error;
  EXPECT_EQ(ReadFile(CachedPath(kRef)), kRef);
}

TEST_F(InputsTest, WithoutHardLinksFilesAreCopiesOfTheirOwn) {
  auto placed = Place({FileInput(), TreeInput()}, {.allow_hardlink = false});
  ASSERT_TRUE(placed.ok()) << placed.status();
  EXPECT_NE(placed->method, CopyMethod::kHardlink);
  EXPECT_NE(InodeOf(ws_ + "/inputs/ref"), InodeOf(CachedPath(kRef)));
  EXPECT_EQ(ReadFile(ws_ + "/inputs/ref"), kRef);
  EXPECT_EQ(ModeOf(ws_ + "/inputs/ref"), S_IFREG | 0444);

  placed =
      Place({FileInput("again", "more/ref")}, {.allow_hardlink = false, .allow_reflink = false});
  ASSERT_TRUE(placed.ok()) << placed.status();
  EXPECT_EQ(placed->method, CopyMethod::kCopy);
  EXPECT_EQ(ReadFile(ws_ + "/more/ref"), kRef);
  EXPECT_EQ(ModeOf(ws_ + "/more/ref"), S_IFREG | 0444);
}

TEST_F(InputsTest, FailuresNameTheInput) {
  auto placed = Place({Input("ghost", "file", HashBytes("absent"), 6)});
  ASSERT_EQ(placed.status().code(), absl::StatusCode::kNotFound) << placed.status();
  EXPECT_THAT(std::string(placed.status().message()), StartsWith("input \"ghost\": "));

  placed = Place({FileInput("esc", "../outside")});
  ASSERT_EQ(placed.status().code(), absl::StatusCode::kInvalidArgument) << placed.status();
  EXPECT_THAT(std::string(placed.status().message()), StartsWith("input \"esc\": "));
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/jobs/outside"));

  placed = Place({FileInput("one", "same"), FileInput("two", "same")});
  ASSERT_EQ(placed.status().code(), absl::StatusCode::kAlreadyExists) << placed.status();
  EXPECT_THAT(std::string(placed.status().message()), StartsWith("input \"two\": "));

  placed = Place({Input("odd", "socket", HashBytes("x"), 1)});
  EXPECT_EQ(placed.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(placed.status().message()), HasSubstr("input \"odd\""));
}

TEST_F(InputsTest, NeverWritesThroughASymlinkAnInputCreated) {
  const std::string outside = MakeTempDir("inputs_test_outside");
  DirEntry escape;
  escape.name = "escape";
  escape.kind = DirEntry::Kind::kSymlink;
  escape.target = outside;
  DirEntry tree = Dir("t", {escape});
  auto placed = Place(
      {Input("tree", "dir", tree.digest, tree.size, "t"), FileInput("sneaky", "t/escape/planted")});
  ASSERT_EQ(placed.status().code(), absl::StatusCode::kInvalidArgument) << placed.status();
  EXPECT_THAT(std::string(placed.status().message()), StartsWith("input \"sneaky\": "));
  EXPECT_FALSE(std::filesystem::exists(outside + "/planted"));
  RemoveTempDir(outside);
}

TEST_F(InputsTest, AJobWhoseInputsCannotBePlacedIsNotStarted) {
  RealClock clock;
  JobLaunch launch;
  launch.job_id = "job-1";
  launch.workspace = ws_;
  launch.argv = {"touch", "ran"};
  launch.prepare = [&](const std::string& ws) {
    google::protobuf::RepeatedPtrField<deja::v1::InputRef> inputs;
    *inputs.Add() = Input("ghost", "file", HashBytes("absent"), 6);
    InputPlacer placer(cache_.get(), &server_.client());
    return placer.Place(ws, inputs).status();
  };
  std::atomic<bool> started{false};
  JobOutcome outcome = JobRunner::Start(std::move(launch), &clock, [&](pid_t, absl::Time) {
                         started = true;
                       })->Wait();
  EXPECT_EQ(outcome.exit_code, kExitInternal);
  EXPECT_THAT(outcome.error, StartsWith("input \"ghost\": "));
  EXPECT_FALSE(started);
  EXPECT_FALSE(std::filesystem::exists(ws_ + "/ran"));
  EXPECT_EQ(ReadFile(ws_ + "/logs/stderr"), outcome.error + "\n");
}

}  // namespace
}  // namespace deja::worker
