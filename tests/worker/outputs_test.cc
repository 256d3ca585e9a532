#include "worker/outputs.h"

#include <sys/stat.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "common/hash.h"
#include "common/manifest.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/fakes/fake_content_store.h"
#include "tests/worker/test_util.h"

namespace deja::worker {
namespace {

using ::deja::testing::FakeStoreServer;
using ::deja::worker::testing::MakeTempDir;
using ::deja::worker::testing::RemoveTempDir;
using ::deja::worker::testing::WriteFile;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(GlobMatchesTest, StarStaysInOneComponentAndDoubleStarSpansAny) {
  EXPECT_TRUE(GlobMatches("out/*", "out/a.txt"));
  EXPECT_FALSE(GlobMatches("out/*", "out/sub/a.txt"));
  EXPECT_FALSE(GlobMatches("out/*", "out"));
  EXPECT_TRUE(GlobMatches("*.txt", "a.txt"));
  EXPECT_FALSE(GlobMatches("*.txt", "dir/a.txt"));
  EXPECT_TRUE(GlobMatches("out/*", "out/.hidden"));
  EXPECT_TRUE(GlobMatches("**/*.txt", "a.txt"));
  EXPECT_TRUE(GlobMatches("**/*.txt", "x/y/z/a.txt"));
  EXPECT_FALSE(GlobMatches("**/*.txt", "x/y/a.bin"));
  EXPECT_TRUE(GlobMatches("out/**", "out/a/b/c"));
  EXPECT_TRUE(GlobMatches("a/**/b", "a/b"));
  EXPECT_TRUE(GlobMatches("a/**/b", "a/x/y/b"));
  EXPECT_FALSE(GlobMatches("a/**/b", "a/x/y/c"));
  EXPECT_TRUE(GlobMatches("r?sult.[ct]sv", "result.csv"));
  EXPECT_TRUE(GlobMatches("exact/path", "exact/path"));
  EXPECT_FALSE(GlobMatches("exact/path", "exact/path2"));
  // Found by tests/fuzz/paths_fuzzer.cc: a backslash escaped the next
  // character, so "a\\b" (no metacharacter) did not match the file "a\\b".
  EXPECT_TRUE(GlobMatches("a\\b", "a\\b"));
  EXPECT_TRUE(GlobMatches("dir\\", "dir\\"));
  EXPECT_FALSE(GlobMatches("a\\*", "a*"));
  EXPECT_TRUE(GlobMatches("a[*]", "a*"));
  // No exponential blow-up on many `**`.
  EXPECT_FALSE(GlobMatches("**/**/**/**/**/**/**/**/**/**/**/**/**/**/x",
                           "a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p/q/r/s/t/y"));
}

class OutputsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ws_ = MakeTempDir("outputs_test");
    WriteFile(ws_ + "/out/a.txt", "alpha\n");
    WriteFile(ws_ + "/out/b.txt", "beta\n", 0755);
    WriteFile(ws_ + "/out/sub/c.txt", "gamma\n");
    WriteFile(ws_ + "/out/same.txt", "alpha\n");  // same blob as a.txt
    WriteFile(ws_ + "/logs/stdout", "");
    WriteFile(ws_ + "/elsewhere/secret.txt", "not an output\n");
    std::filesystem::create_directories(ws_ + "/out/emptydir");
    ASSERT_EQ(symlink("a.txt", (ws_ + "/out/link.txt").c_str()), 0);
    ASSERT_EQ(symlink("elsewhere", (ws_ + "/linkdir").c_str()), 0);
    auto manifest = BuildManifest(ws_);
    ASSERT_TRUE(manifest.ok()) << manifest.status();
    manifest_ = *manifest;
  }
  void TearDown() override { RemoveTempDir(ws_); }

  std::vector<std::string> Paths(const std::vector<std::string>& globs) {
    auto outputs = MatchOutputs(manifest_, globs);
    EXPECT_TRUE(outputs.ok()) << outputs.status();
    std::vector<std::string> paths;
    if (outputs.ok()) {
      for (const auto& out : *outputs) paths.push_back(out.path());
    }
    return paths;
  }

  std::string ws_;
  deja::v1::Manifest manifest_;
};

TEST_F(OutputsTest, MatchesOnlyRegularFilesSortedOnce) {
  EXPECT_THAT(Paths({"out/*"}), ElementsAre("out/a.txt", "out/b.txt", "out/same.txt"));
  EXPECT_THAT(Paths({"out/**", "out/*.txt"}),
              ElementsAre("out/a.txt", "out/b.txt", "out/same.txt", "out/sub/c.txt"));
  EXPECT_THAT(Paths({"**/c.txt"}), ElementsAre("out/sub/c.txt"));

  auto outputs = MatchOutputs(manifest_, {"out/b.txt"});
  ASSERT_TRUE(outputs.ok());
  ASSERT_EQ(outputs->size(), 1u);
  EXPECT_EQ((*outputs)[0].digest(), HashBytes("beta\n"));
  EXPECT_EQ((*outputs)[0].size(), 5u);
  EXPECT_EQ((*outputs)[0].mode(), S_IFREG | 0755u);
}

// A job's record must fit a response: its outputs list is at most 1 MiB.
TEST(MatchOutputsTest, MoreOutputsThanARecordHoldsIsAnErrorThatSaysSo) {
  deja::v1::Manifest manifest;
  for (int i = 0; i < 20'000; ++i) {
    deja::v1::FileEntry* file = manifest.add_files();
    file->set_path(absl::StrCat("out/part-", i));
    file->set_mode(S_IFREG | 0644);
    file->set_digest(HashBytes(file->path()));
  }
  EXPECT_TRUE(MatchOutputs(manifest, {"out/part-1*"}).ok());
  auto all = MatchOutputs(manifest, {"out/*"});
  ASSERT_EQ(all.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(all.status().message()),
              HasSubstr("declared outputs matched 20000 files, whose list takes"));
  EXPECT_THAT(std::string(all.status().message()), HasSubstr("at most 1048576"));
}

TEST_F(OutputsTest, AGlobThatMatchesNoFileIsAnError) {
  auto outputs = MatchOutputs(manifest_, {"out/*.txt", "results/*.csv"});
  ASSERT_EQ(outputs.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(outputs.status().message(), "declared output \"results/*.csv\" matched no file");
  // A symlink, a directory, or a file behind a symlinked directory is no output.
  for (const std::string glob : {"out/link.txt", "out/emptydir", "linkdir/*", "out/sub"}) {
    outputs = MatchOutputs(manifest_, {glob});
    EXPECT_EQ(outputs.status().message(),
              absl::StrCat("declared output \"", glob, "\" matched no file"));
  }
}

TEST_F(OutputsTest, GlobsNeverEscapeTheWorkspace) {
  for (const std::string glob : {"../*", "out/../../x", "/etc/passwd", "./out/*", ""}) {
    auto outputs = MatchOutputs(manifest_, {glob});
    EXPECT_EQ(outputs.status().code(), absl::StatusCode::kInvalidArgument) << glob;
    EXPECT_THAT(std::string(outputs.status().message()),
                HasSubstr(absl::StrCat("declared output \"", glob, "\"")));
  }
}

TEST_F(OutputsTest, UploadsOnlyWhatTheStoreLacks) {
  FakeStoreServer server;
  server.store().Put("beta\n");  // already there
  auto outputs = MatchOutputs(manifest_, {"out/**"});
  ASSERT_TRUE(outputs.ok());
  ASSERT_TRUE(UploadOutputs(ws_, *outputs, server.client()).ok());
  for (const auto& out : *outputs) EXPECT_TRUE(server.store().Has(out.digest())) << out.path();
  EXPECT_EQ(server.store().Get(HashBytes("gamma\n")), "gamma\n");
  EXPECT_EQ(server.store().uploads(), 2);  // alpha (once for two files), gamma
}

TEST_F(OutputsTest, AnUploadFailureNamesTheFile) {
  FakeStoreServer server;
  server.store().RejectUploads(true);
  auto outputs = MatchOutputs(manifest_, {"out/sub/*"});
  ASSERT_TRUE(outputs.ok());
  absl::Status st = UploadOutputs(ws_, *outputs, server.client());
  EXPECT_FALSE(st.ok());
  EXPECT_THAT(std::string(st.message()), HasSubstr("upload output \"out/sub/c.txt\""));
}

}  // namespace
}  // namespace deja::worker
