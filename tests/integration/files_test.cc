// Inputs, outputs and workspaces that travel between workers, end to end:
// the deja CLI uploads inputs, two workers with separate work dirs fetch
// them, outputs go to the scheduler's content store, reuses cross workers.
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <regex>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/hash.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/cluster.h"

namespace deja::testing {
namespace {

namespace fs = std::filesystem;
using deja::v1::Job;
using ::testing::HasSubstr;

class FilesTest : public ::testing::Test {
 protected:
  void SetUp() override { cluster_ = std::make_unique<Cluster>(); }

  CommandResult Deja(std::vector<std::string> args, bool measure_peak_rss = false) {
    std::vector<std::string> env = cluster_->CliEnv();
    env.push_back("DEJA_HASH_CACHE=" + cluster_->root() + "/hashes");
    return RunCommand(DEJA_CLI_BIN, args, env, measure_peak_rss);
  }
  // Submits with the CLI (--json) and returns the job id.
  // With `result`, the command's output and its own peak RSS go there.
  std::string Submit(std::vector<std::string> args, CommandResult* result = nullptr) {
    args.insert(args.begin(), {"submit", "--json", "--project", "files"});
    CommandResult r = Deja(args, /*measure_peak_rss=*/result != nullptr);
    if (result != nullptr) *result = r;
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
    std::smatch m;
    std::regex id("\"job_id\":\"(j[0-9]+)\"");
    if (!std::regex_search(r.out, m, id)) {
      ADD_FAILURE() << "no job id in: " << r.out << r.err;
      return "";
    }
    return m[1];
  }
  Job Await(const std::string& id) {
    auto job = cluster_->client().WaitForJob(id, absl::Seconds(120));
    EXPECT_TRUE(job.ok()) << job.status();
    return job.ok() ? *job : Job();
  }
  // Blob files in the scheduler's content store.
  size_t BlobCount() {
    size_t n = 0;
    std::error_code ec;
    for (const auto& e : fs::recursive_directory_iterator(cluster_->DataDir() + "/blobs", ec)) {
      if (e.is_regular_file() && e.path().parent_path().filename() != "tmp") ++n;
    }
    return n;
  }
  std::string BlobPath(const std::string& digest) {
    return cluster_->DataDir() + "/blobs/" + digest.substr(0, 2) + "/" + digest;
  }

  std::unique_ptr<Cluster> cluster_;
};

TEST_F(FilesTest, FileAndDirectoryInputsAreUploadedOnceAndReadable) {
  cluster_->StartWorker("w1");
  cluster_->StartWorker("w2");
  ASSERT_TRUE(cluster_->WaitForWorkers(2));
  const std::string src = cluster_->root() + "/src";
  fs::create_directories(src + "/tree/sub");
  fs::create_directories(src + "/tree/empty");
  WriteFile(src + "/data.txt", "hello input\n");
  WriteFile(src + "/tree/a.txt", "a\n");
  WriteFile(src + "/tree/sub/b.txt", "b\n");
  WriteFile(src + "/tree/sub/run.sh", "#!/bin/sh\necho ran\n");
  fs::permissions(src + "/tree/sub/run.sh", fs::perms::owner_all);
  fs::create_symlink("a.txt", src + "/tree/link");

  const std::string script =
      "cat inputs/data; cat in/tree/a.txt in/tree/sub/b.txt; in/tree/sub/run.sh; "
      "readlink in/tree/link; test -d in/tree/empty && echo empty-dir";
  std::string id = Submit({"--input", "data=" + src + "/data.txt", "--input",
                           "tree=" + src + "/tree:in/tree", "--", "sh", "-c", script});
  Job job = Await(id);
  ASSERT_EQ(job.state(), deja::v1::SUCCEEDED) << job.message();
  EXPECT_EQ(*cluster_->client().ReadLogs(id, deja::v1::LOG_STDOUT),
            "hello input\na\nb\nran\na.txt\nempty-dir\n");
  ASSERT_EQ(job.spec().inputs_size(), 2);
  EXPECT_EQ(job.spec().inputs(1).kind(), "dir");
  size_t blobs = BlobCount();
  EXPECT_GE(blobs, 7u) << "data, a, b, run.sh, and the tree, sub and empty directory blobs";

  // Unchanged inputs: nothing more is uploaded; a new job sees the same files.
  std::string again =
      Submit({"--input", "data=" + src + "/data.txt", "--input", "tree=" + src + "/tree:in/tree",
              "--", "sh", "-c", script + "; true"});
  EXPECT_EQ(Await(again).state(), deja::v1::SUCCEEDED);
  EXPECT_EQ(BlobCount(), blobs);
  // A changed file is a different input, so a different job.
  WriteFile(src + "/tree/a.txt", "A\n");
  std::string changed = Submit({"--input", "data=" + src + "/data.txt", "--input",
                                "tree=" + src + "/tree:in/tree", "--", "sh", "-c", script});
  Job changed_job = Await(changed);
  EXPECT_NE(changed_job.job_hash(), job.job_hash());
  EXPECT_TRUE(changed_job.reused_from().empty());
  EXPECT_THAT(*cluster_->client().ReadLogs(changed, deja::v1::LOG_STDOUT), HasSubstr("A\nb\n"));
}

TEST_F(FilesTest, OutputsDownloadByteIdentical) {
  cluster_->StartWorker("w1");
  ASSERT_TRUE(cluster_->WaitForWorkers(1));
  std::string id = Submit({"--output", "out/*.bin", "--output", "report.txt", "--", "sh", "-c",
                           "mkdir -p out/skip; head -c 300000 /dev/urandom > out/a.bin; "
                           "head -c 5 /dev/urandom > out/b.bin; echo ok > report.txt; "
                           "echo no > out/skip/c.bin"});
  Job job = Await(id);
  ASSERT_EQ(job.state(), deja::v1::SUCCEEDED) << job.message();
  std::vector<std::string> paths;
  for (const auto& o : job.outputs()) paths.push_back(o.path());
  EXPECT_THAT(paths, ::testing::ElementsAre("out/a.bin", "out/b.bin", "report.txt"));

  const std::string dest = cluster_->root() + "/download";
  CommandResult get = Deja({"get", id, "--out", dest});
  ASSERT_EQ(get.exit_code, 0) << get.out << get.err;
  for (const auto& p : paths) {
    EXPECT_EQ(ReadFile(dest + "/" + p), ReadFile(cluster_->Workspace("w1", id) + "/" + p)) << p;
  }
  CommandResult status = Deja({"status", id});
  EXPECT_THAT(status.out, HasSubstr("out/a.bin"));
  EXPECT_THAT(status.out, HasSubstr(job.outputs(0).digest()));
}

TEST_F(FilesTest, AMissingDeclaredOutputFailsTheJobNamingIt) {
  cluster_->StartWorker("w1");
  ASSERT_TRUE(cluster_->WaitForWorkers(1));
  std::string id = Submit({"--output", "model.bin", "--", "sh", "-c", "echo forgot"});
  Job job = Await(id);
  EXPECT_EQ(job.state(), deja::v1::FAILED);
  EXPECT_THAT(job.message(), HasSubstr("model.bin"));
  Job again = Await(Submit({"--output", "model.bin", "--", "sh", "-c", "echo forgot"}));
  EXPECT_TRUE(again.reused_from().empty()) << "a failure is never memoized";
}

TEST_F(FilesTest, AReuseWhoseSourceIsOnTheOtherWorkerPullsTheWorkspace) {
  cluster_->StartWorker("w1");
  ASSERT_TRUE(cluster_->WaitForWorkers(1));
  const std::vector<std::string> job = {
      "--output",
      "model.bin",
      "--",
      "sh",
      "-c",
      "mkdir -p work; head -c 2000000 /dev/urandom > "
      "work/inter.dat; cp work/inter.dat model.bin; echo trained"};
  std::string src = Submit(job);
  ASSERT_EQ(Await(src).state(), deja::v1::SUCCEEDED);
  cluster_->StartWorker("w2");
  ASSERT_TRUE(cluster_->WaitForWorkers(2));

  // Keep the holder's only slot busy, so the reuse goes to w2.
  const std::string gate = cluster_->root() + "/gate";
  std::string blocker =
      Submit({"--", "sh", "-c", "while [ ! -e " + gate + " ]; do sleep 0.02; done"});
  ASSERT_TRUE(PollUntil([&] {
    auto j = cluster_->client().GetJob(blocker);
    return j.ok() && j->state() == deja::v1::RUNNING;
  }));
  ASSERT_EQ(cluster_->client().GetJob(blocker)->worker_id(), "w1");

  std::string reuse = Submit(job);
  Job copy = Await(reuse);
  ASSERT_EQ(copy.state(), deja::v1::SUCCEEDED) << copy.message();
  EXPECT_EQ(copy.reused_from(), src);
  EXPECT_EQ(copy.worker_id(), "w2");
  for (const std::string p : {"work/inter.dat", "model.bin", "logs/stdout", "logs/stderr"}) {
    EXPECT_EQ(ReadFile(cluster_->Workspace("w2", reuse) + "/" + p),
              ReadFile(cluster_->Workspace("w1", src) + "/" + p))
        << p;
  }
  EXPECT_THAT(ReadFile(cluster_->Workspace("w2", reuse) + "/REUSED"),
              HasSubstr("source_job=" + src));
  EXPECT_EQ(*cluster_->client().ReadLogs(reuse, deja::v1::LOG_STDOUT), "trained\n");
  WriteFile(gate, "");
}

TEST_F(FilesTest, ACorruptedSourceWorkspaceMakesTheNextSubmitRunFresh) {
  cluster_->StartWorker("w1");
  ASSERT_TRUE(cluster_->WaitForWorkers(1));
  const std::string runs = cluster_->root() + "/runs";
  const std::vector<std::string> job = {"--", "sh", "-c",
                                        "echo run >> " + runs + "; echo state > state.txt"};
  std::string src = Submit(job);
  ASSERT_EQ(Await(src).state(), deja::v1::SUCCEEDED);
  WriteFile(cluster_->Workspace("w1", src) + "/state.txt", "STATE\n");  // same size, new bytes

  Job second = Await(Submit(job));
  EXPECT_EQ(second.state(), deja::v1::SUCCEEDED);
  EXPECT_TRUE(second.reused_from().empty());
  EXPECT_THAT(second.message(), HasSubstr("state.txt"));
  EXPECT_THAT(second.message(), HasSubstr("running fresh"));
  EXPECT_EQ(ReadFile(runs), "run\nrun\n");
  CommandResult status = Deja({"status", second.job_id()});
  EXPECT_THAT(status.out, HasSubstr("running fresh"));
  // The fresh run's entry serves the next one.
  EXPECT_EQ(Await(Submit(job)).reused_from(), second.job_id());
}

TEST_F(FilesTest, ADeletedOutputBlobMakesTheNextSubmitRunFresh) {
  cluster_->StartWorker("w1");
  ASSERT_TRUE(cluster_->WaitForWorkers(1));
  const std::vector<std::string> job = {"--output", "o.txt", "--", "sh", "-c", "echo out > o.txt"};
  std::string src = Submit(job);
  Job first = Await(src);
  ASSERT_EQ(first.state(), deja::v1::SUCCEEDED);
  ASSERT_EQ(first.outputs_size(), 1);
  ASSERT_TRUE(fs::remove(BlobPath(first.outputs(0).digest())));

  Job second = Await(Submit(job));
  EXPECT_EQ(second.state(), deja::v1::SUCCEEDED);
  EXPECT_TRUE(second.reused_from().empty());
  EXPECT_THAT(second.message(), HasSubstr("missing from the content store"));
  EXPECT_TRUE(fs::exists(BlobPath(first.outputs(0).digest()))) << "the fresh run uploaded it again";
}

// 1 GiB through the CLI, the scheduler and a worker, and back, while each
// process stays within about 100 MB of its idle memory.
TEST_F(FilesTest, AOneGibInputRoundTripsInBoundedMemory) {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  GTEST_SKIP() << "resident-set bounds are checked without sanitizers (their shadow memory and "
                  "quarantine count as resident)";
#endif
  cluster_->StartWorker("w1");
  ASSERT_TRUE(cluster_->WaitForWorkers(1));
  const std::string big = cluster_->root() + "/big.bin";
  {
    // Not sparse: every byte is read, hashed, sent and written.
    std::string block(1 << 20, '\0');
    for (size_t i = 0; i < block.size(); ++i) block[i] = static_cast<char>((i * 2654435761u) >> 13);
    FILE* f = std::fopen(big.c_str(), "wb");
    ASSERT_NE(f, nullptr);
    for (int i = 0; i < 1024; ++i) {
      block[0] = static_cast<char>(i);
      block[1] = static_cast<char>(i >> 8);
      ASSERT_EQ(std::fwrite(block.data(), 1, block.size(), f), block.size());
    }
    std::fclose(f);
  }
  const long sched_idle = RssKb(cluster_->scheduler_pid());
  const long worker_idle = RssKb(cluster_->worker_pid("w1"));
  // The CLI's own peak, for a command that moves no data: the baseline.
  CommandResult idle_cli = Deja({"ls"}, /*measure_peak_rss=*/true);

  CommandResult upload;
  std::string id = Submit(
      {"--input", "big=" + big, "--output", "copy.bin", "--", "sh", "-c", "cp inputs/big copy.bin"},
      &upload);
  Job job = Await(id);
  ASSERT_EQ(job.state(), deja::v1::SUCCEEDED) << job.message();
  const std::string dest = cluster_->root() + "/download";
  CommandResult get = Deja({"get", id, "--out", dest}, /*measure_peak_rss=*/true);
  ASSERT_EQ(get.exit_code, 0) << get.err;
  EXPECT_EQ(*HashFile(dest + "/copy.bin"), *HashFile(big));
  fs::remove(dest + "/copy.bin");

  constexpr long kBudgetKb = 100 * 1024;
  EXPECT_LT(PeakRssKb(cluster_->scheduler_pid()) - sched_idle, kBudgetKb);
  EXPECT_LT(PeakRssKb(cluster_->worker_pid("w1")) - worker_idle, kBudgetKb);
  EXPECT_LT(upload.max_rss_kb - idle_cli.max_rss_kb, kBudgetKb);
  EXPECT_LT(get.max_rss_kb - idle_cli.max_rss_kb, kBudgetKb);
  std::fprintf(stderr,
               "peak RSS over idle: scheduler %ld KiB, worker %ld KiB, deja submit %ld KiB, "
               "deja get %ld KiB (deja ls peaked at %ld KiB)\n",
               PeakRssKb(cluster_->scheduler_pid()) - sched_idle,
               PeakRssKb(cluster_->worker_pid("w1")) - worker_idle,
               upload.max_rss_kb - idle_cli.max_rss_kb, get.max_rss_kb - idle_cli.max_rss_kb,
               idle_cli.max_rss_kb);
}

}  // namespace
}  // namespace deja::testing
