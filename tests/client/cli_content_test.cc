// The `deja` commands that move content: submit/run --input (hash, upload
// what is missing, submit), `deja get`, and the inputs/outputs of `deja
// status`, against an in-process server holding a fake Scheduler service
// and a fake content store (tests/fakes).
#include <gmock/gmock.h>
#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdlib>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "client/cli.h"
#include "client/cli_format.h"
#include "client/hash_cache.h"
#include "client/job_format.h"
#include "common/hash.h"
#include "tests/client/cli_test_util.h"
#include "tests/fakes/fake_scheduler.h"
#include "tests/fakes/file_util.h"
#include "tests/fakes/temp_dir.h"

namespace deja::cli {
namespace {

using deja::testing::ReadFile;
using deja::testing::TempDir;
using deja::testing::WriteFile;
using deja::v1::Job;

using ::deja::cli::testing::CliResult;
using ::deja::cli::testing::RunDeja;

class CliContentTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* old = std::getenv(kHashCacheEnv);
    if (old != nullptr) saved_cache_env_ = old;
    setenv(kHashCacheEnv, tmp_.Sub("hashes").c_str(), 1);
  }
  void TearDown() override {
    if (saved_cache_env_.has_value()) {
      setenv(kHashCacheEnv, saved_cache_env_->c_str(), 1);
    } else {
      unsetenv(kHashCacheEnv);
    }
  }

  CliResult Deja(std::vector<std::string> args) {
    // Global flags go before the command so that `--` stays last.
    args.insert(args.begin(), {"--scheduler", server_.address(), "--insecure"});
    return RunDeja(std::move(args));
  }

  // Stores `content` in the content store and returns its OutputFile.
  deja::v1::OutputFile Output(const std::string& path, const std::string& content, uint32_t mode) {
    server_.store().Put(content);
    deja::v1::OutputFile output;
    output.set_path(path);
    output.set_digest(HashBytes(content));
    output.set_size(content.size());
    output.set_mode(mode);
    return output;
  }

  TempDir tmp_;
  deja::testing::FakeSchedulerServer server_;
  // Submit answers "j<n> queued"; GetJob answers the jobs a test adds.
  deja::testing::FakeScheduler& scheduler_ = server_.scheduler();
  std::optional<std::string> saved_cache_env_;
};

TEST_F(CliContentTest, SubmitUploadsInputsOnceThenSubmits) {
  WriteFile(tmp_.Sub("data/a"), "alpha");
  WriteFile(tmp_.Sub("data/sub/b"), "beta");
  WriteFile(tmp_.Sub("model.bin"), "weights");
  CliResult first =
      Deja({"submit", "--input", "data=" + tmp_.Sub("data"), "--input",
            "model=" + tmp_.Sub("model.bin") + ":m/model.bin", "--", "cat", "${inputs.data}/a"});
  ASSERT_EQ(first.code, 0) << first.err;
  EXPECT_EQ(first.out, "j1 queued\n");
  // a, b, model.bin, data/, data/sub/.
  EXPECT_TRUE(absl::StartsWith(first.err, "uploaded 5 blobs (")) << first.err;

  auto specs = scheduler_.submitted();
  ASSERT_EQ(specs.size(), 1u);
  ASSERT_EQ(specs[0].inputs_size(), 2);
  const deja::v1::InputRef data = specs[0].inputs(0);
  EXPECT_EQ(data.name(), "data");
  EXPECT_EQ(data.kind(), "dir");
  EXPECT_EQ(data.total_bytes(), 9u);
  EXPECT_TRUE(server_.store().Has(data.digest()));
  const deja::v1::InputRef model = specs[0].inputs(1);
  EXPECT_EQ(model.kind(), "file");
  EXPECT_EQ(model.digest(), HashBytes("weights"));
  EXPECT_EQ(model.path(), "m/model.bin");

  CliResult second =
      Deja({"submit", "--input", "data=" + tmp_.Sub("data"), "--input",
            "model=" + tmp_.Sub("model.bin") + ":m/model.bin", "--", "cat", "${inputs.data}/a"});
  ASSERT_EQ(second.code, 0) << second.err;
  EXPECT_EQ(second.err, "inputs already in the store\n");
  specs = scheduler_.submitted();
  ASSERT_EQ(specs.size(), 2u);
  EXPECT_EQ(specs[1].inputs(0).digest(), data.digest());
}

TEST_F(CliContentTest, DryRunHashesButUploadsNothing) {
  WriteFile(tmp_.Sub("f"), "content");
  CliResult result = Deja({"submit", "--dry-run", "--input", "f=" + tmp_.Sub("f"), "--", "true"});
  ASSERT_EQ(result.code, 0) << result.err;
  deja::v1::JobSpec spec;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(result.out, &spec).ok()) << result.out;
  ASSERT_EQ(spec.inputs_size(), 1);
  EXPECT_EQ(spec.inputs(0).digest(), HashBytes("content"));
  EXPECT_EQ(server_.store().uploads(), 0);
  EXPECT_TRUE(scheduler_.submitted().empty());
}

TEST_F(CliContentTest, TimingSaysHowLongTheInputsTookAndWhatWasHashed) {
  WriteFile(tmp_.Sub("f"), "content");
  CliResult result =
      Deja({"submit", "--dry-run", "--timing", "--input", "f=" + tmp_.Sub("f"), "--", "true"});
  ASSERT_EQ(result.code, 0) << result.err;
  deja::v1::JobSpec spec;
  EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(result.out, &spec).ok()) << result.out;
  // The file was just written, so it is hashed (and, being racy, not cached).
  EXPECT_THAT(result.err, ::testing::MatchesRegex(
                              "deja: inputs: [0-9]+\\.[0-9]{3} ms; hashed 1 file, 7 B \\([0-9.]+ "
                              "GB/s\\); 0 files, 0 B from the hash cache\n"));
  // Without --timing, nothing on stderr.
  result = Deja({"submit", "--dry-run", "--input", "f=" + tmp_.Sub("f"), "--", "true"});
  ASSERT_EQ(result.code, 0) << result.err;
  EXPECT_EQ(result.err, "");
}

TEST_F(CliContentTest, BadInputsAreUsageErrorsAndSubmitNothing) {
  WriteFile(tmp_.Sub("f"), "x");
  struct Case {
    std::vector<std::string> args;
    std::string message;
  };
  std::vector<Case> cases = {
      {{"--input", "nopath"}, "--input \"nopath\": expected NAME=PATH"},
      {{"--input", "x=" + tmp_.Sub("missing")}, "No such file or directory"},
      {{"--input", "x=" + tmp_.Sub("f"), "--input", "x=" + tmp_.Sub("f")}, "duplicate input"},
      {{"--input", "x=" + tmp_.Sub("f") + ":../out"}, "could leave the workspace"},
  };
  for (Case& c : cases) {
    std::vector<std::string> args = {"submit"};
    args.insert(args.end(), c.args.begin(), c.args.end());
    args.insert(args.end(), {"--", "true"});
    CliResult result = Deja(args);
    EXPECT_EQ(result.code, kExitUsage) << c.message << ": " << result.err;
    EXPECT_TRUE(absl::StrContains(result.err, c.message)) << result.err;
  }
  // A command naming an input that was not given is caught before hashing.
  CliResult unknown = Deja({"submit", "--input", "x=" + tmp_.Sub("f"), "--", "cat", "${inputs.y}"});
  EXPECT_EQ(unknown.code, kExitUsage);
  EXPECT_TRUE(absl::StrContains(unknown.err, "unknown input \"y\"")) << unknown.err;
  EXPECT_TRUE(scheduler_.submitted().empty());
  EXPECT_EQ(server_.store().uploads(), 0);
}

TEST_F(CliContentTest, GetDownloadsEveryOutputWithItsMode) {
  Job job;
  job.set_job_id("j7");
  job.set_state(deja::v1::SUCCEEDED);
  const std::string big = deja::testing::RandomBytes(3 << 20, 9);
  *job.add_outputs() = Output("model.bin", big, 0100755);
  *job.add_outputs() = Output("out/sub/log.txt", "log line\n", 0100644);
  *job.add_outputs() = Output("empty", "", 0100600);
  scheduler_.AddJob(job);

  const std::string dir = tmp_.Sub("results");
  CliResult result = Deja({"get", "j7", "--out", dir});
  ASSERT_EQ(result.code, 0) << result.err;
  EXPECT_EQ(result.out,
            "j7: downloaded 3 files (" + FormatBytes(big.size() + 9) + ") to " + dir + "/\n");
  EXPECT_EQ(result.err, "") << "no progress bar when stderr is not a terminal";
  EXPECT_TRUE(ReadFile(dir + "/model.bin") == big);
  EXPECT_EQ(ReadFile(dir + "/out/sub/log.txt"), "log line\n");
  EXPECT_EQ(ReadFile(dir + "/empty"), "");
  struct stat st;
  ASSERT_EQ(stat((dir + "/model.bin").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0755u);
  ASSERT_EQ(stat((dir + "/out/sub/log.txt").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0644u);
  ASSERT_EQ(stat((dir + "/empty").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);

  // Again into the same directory: the files are replaced, not appended to.
  result = Deja({"get", "j7", "--out", dir});
  ASSERT_EQ(result.code, 0) << result.err;
  EXPECT_TRUE(ReadFile(dir + "/model.bin") == big);
  EXPECT_EQ(deja::testing::FilesUnder(dir).size(), 3u) << "no temp files left";
}

TEST_F(CliContentTest, GetRefusesJobsWithoutOutputs) {
  Job running;
  running.set_job_id("j1");
  running.set_state(deja::v1::RUNNING);
  scheduler_.AddJob(running);
  Job none;
  none.set_job_id("j2");
  none.set_state(deja::v1::SUCCEEDED);
  scheduler_.AddJob(none);
  Job lost;
  lost.set_job_id("j3");
  lost.set_state(deja::v1::SUCCEEDED);
  deja::v1::OutputFile* output = lost.add_outputs();
  output->set_path("gone.bin");
  output->set_digest(HashBytes("never stored"));
  output->set_size(12);
  scheduler_.AddJob(lost);
  Job evil;
  evil.set_job_id("j4");
  evil.set_state(deja::v1::SUCCEEDED);
  *evil.add_outputs() = Output("../escape", "x", 0644);
  scheduler_.AddJob(evil);

  const std::string dir = tmp_.Sub("out");
  CliResult r = Deja({"get", "j1", "--out", dir});
  EXPECT_EQ(r.code, kExitError);
  EXPECT_EQ(r.err, "deja: job j1 is RUNNING; only a SUCCEEDED job has outputs to get\n");
  r = Deja({"get", "j2", "--out", dir});
  EXPECT_EQ(r.code, kExitError);
  EXPECT_TRUE(absl::StrContains(r.err, "job j2 has no outputs")) << r.err;
  r = Deja({"get", "j3", "--out", dir});
  EXPECT_EQ(r.code, kExitError);
  EXPECT_TRUE(absl::StrContains(
      r.err, "get gone.bin of j3: blob " + HashBytes("never stored") + " not found"))
      << r.err;
  r = Deja({"get", "j4", "--out", dir});
  EXPECT_EQ(r.code, kExitError);
  EXPECT_TRUE(absl::StrContains(r.err, "outputs[0].path")) << r.err;
  r = Deja({"get", "j99", "--out", dir});
  EXPECT_EQ(r.code, kExitError);
  EXPECT_EQ(r.err, "deja: job j99 not found\n");
  struct stat st;
  EXPECT_NE(stat(tmp_.Sub("escape").c_str(), &st), 0);
}

TEST_F(CliContentTest, StatusListsInputsAndOutputs) {
  Job job;
  job.set_job_id("j5");
  job.set_state(deja::v1::SUCCEEDED);
  auto* input = job.mutable_spec()->add_inputs();
  input->set_name("data");
  input->set_kind("dir");
  input->set_digest(std::string(32, 'a'));
  input->set_size(120);
  input->set_total_bytes(2048);
  auto* file = job.mutable_spec()->add_inputs();
  file->set_name("cfg");
  file->set_kind("file");
  file->set_digest(std::string(32, 'b'));
  file->set_size(10);
  file->set_path("conf/cfg.yaml");
  *job.add_outputs() = Output("model.bin", "weights", 0644);
  scheduler_.AddJob(job);
  CliResult r = Deja({"status", "j5"});
  ASSERT_EQ(r.code, 0) << r.err;
  const std::string a(32, 'a');
  const std::string b(32, 'b');
  EXPECT_TRUE(absl::StrContains(r.out,
                                "\nINPUT  KIND  SIZE     DIGEST                            PATH\n"
                                "data   dir   2.0 KiB  " +
                                    a +
                                    "  inputs/data\n"
                                    "cfg    file  10 B     " +
                                    b + "  conf/cfg.yaml\n"))
      << r.out;
  EXPECT_TRUE(absl::StrContains(
      r.out, "\nOUTPUT     SIZE  DIGEST\nmodel.bin  7 B   " + HashBytes("weights") + "\n"))
      << r.out;
}

TEST(GetOutputDirTest, DefaultsToTheJobId) {
  EXPECT_EQ(GetOutputDir("j12", ""), "j12");
  EXPECT_EQ(GetOutputDir("j12", "/tmp/x"), "/tmp/x");
  EXPECT_EQ(FormatGetLine("j12", 1, 3, "j12"), "j12: downloaded 1 file (3 B) to j12/");
}

}  // namespace
}  // namespace deja::cli
