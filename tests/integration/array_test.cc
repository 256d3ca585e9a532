// Job arrays (SubmitArray, GetArray) through the CLI and the client: one
// call and one commit for every element, each element memoized on its own,
// status, ls and cancel of an array, a params file, retries by request id,
// and bad input that leaves nothing behind. Real daemons on port 0.
#include <algorithm>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/fakes/poll_until.h"
#include "tests/fakes/temp_dir.h"
#include "tests/integration/cluster.h"

namespace deja::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// "a3: 20 jobs, ..." -> "a3".
std::string ArrayIdIn(const std::string& line) { return line.substr(0, line.find(':')); }

size_t JobCount(Cluster& c) {
  auto jobs = c.client().ListJobs("", deja::v1::JOB_STATE_UNSPECIFIED, 0);
  return jobs.ok() ? jobs->size() : 0;
}

// Waits until every element of `array_id` has ended; returns the array.
deja::v1::JobArray Ended(Cluster& c, const std::string& array_id) {
  deja::v1::JobArray array;
  EXPECT_TRUE(PollUntil([&] {
    auto got = c.client().GetArray(array_id);
    if (!got.ok()) return false;
    array = *got;
    for (const auto& job : array.jobs()) {
      if (job.state() != deja::v1::SUCCEEDED && job.state() != deja::v1::FAILED &&
          job.state() != deja::v1::CANCELLED) {
        return false;
      }
    }
    return true;
  })) << array.DebugString();
  return array;
}

TEST(ArrayTest, OneCommandSubmitsEveryElementAndEachIsMemoizedOnItsOwn) {
  Cluster c;
  c.StartWorker("w1", 2);
  ASSERT_TRUE(c.WaitForWorkers(1));
  const std::vector<std::string> command = {
      "--output", "out.txt", "--", "sh", "-c", "echo ${params.i} | tee out.txt"};
  std::vector<std::string> args = {"submit", "--array", "i=1-20"};
  args.insert(args.end(), command.begin(), command.end());
  CommandResult first = c.Cli(args);
  ASSERT_EQ(first.exit_code, 0) << first.err;
  EXPECT_THAT(first.out, HasSubstr(": 20 jobs, j1 to j20: "));
  const std::string id = ArrayIdIn(first.out);
  EXPECT_EQ(id, "a1");
  deja::v1::JobArray array = Ended(c, id);
  ASSERT_EQ(array.jobs_size(), 20);
  EXPECT_EQ(array.states().at("SUCCEEDED"), 20u);
  EXPECT_EQ(array.reused(), 0u);
  EXPECT_EQ(array.jobs(6).params().at("i"), "7");
  auto seventh = c.client().ReadLogs(array.jobs(6).job_id(), deja::v1::LOG_STDOUT);
  ASSERT_TRUE(seventh.ok()) << seventh.status();
  EXPECT_EQ(*seventh, "7\n");
  auto job = c.client().GetJob(array.jobs(6).job_id());
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(job->array_id(), id);
  EXPECT_EQ(job->outputs_size(), 1);

  CommandResult status = c.Cli({"status", id});
  EXPECT_EQ(status.exit_code, 0) << status.err;
  EXPECT_THAT(status.out, HasSubstr("20 jobs, j1 to j20"));
  EXPECT_THAT(status.out, HasSubstr("20 succeeded"));
  EXPECT_THAT(c.Cli({"status", "j7"}).out, HasSubstr("a1 (element 7 of 20)"));
  EXPECT_EQ(c.Cli({"status", "a999"}).exit_code, 1);

  // The same elements again are all reused; new ones run.
  args[2] = "i=1-22";
  CommandResult again = c.Cli(args);
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_THAT(again.out, HasSubstr("a21: 22 jobs, j21 to j42: "));
  EXPECT_THAT(again.out, HasSubstr("(20 reused)"));
  deja::v1::JobArray second = Ended(c, "a21");
  EXPECT_EQ(second.reused(), 20u);
  EXPECT_EQ(second.states().at("SUCCEEDED"), 22u);
  EXPECT_THAT(c.Cli({"status", "a21"}).out, ::testing::ContainsRegex("reused +20\n"));

  // ls of one array lists its elements only.
  CommandResult ls = c.Cli({"ls", "--array", "a21", "--json"});
  EXPECT_EQ(ls.exit_code, 0) << ls.err;
  EXPECT_EQ(std::count(ls.out.begin(), ls.out.end(), '\n'), 22) << ls.out;
  EXPECT_THAT(ls.out, Not(HasSubstr("\"job_id\":\"j20\"")));
  EXPECT_EQ(c.Cli({"ls", "--array", "j1"}).exit_code, 2);
}

TEST(ArrayTest, AParamsFileAndAProductOfArraysMakeOneElementEach) {
  Cluster c;  // no worker: every job stays QUEUED
  TempDir dir;
  const std::string file = dir.path() + "/params.txt";
  WriteFile(file, "# sample, reference\nsample=a ref=x\n\n{\"sample\": \"b c\", \"ref\": 2}\n");
  CommandResult submitted = c.Cli(
      {"submit", "--params-file", file, "--array", "k=1,2", "--", "echo", "${params.sample}"});
  ASSERT_EQ(submitted.exit_code, 0) << submitted.err;
  EXPECT_THAT(submitted.out, HasSubstr("4 jobs, j1 to j4: 4 queued"));
  auto array = c.client().GetArray(ArrayIdIn(submitted.out));
  ASSERT_TRUE(array.ok()) << array.status();
  std::vector<std::string> seen;
  for (const auto& job : array->jobs()) {
    seen.push_back(absl::StrCat(job.params().at("sample"), "/", job.params().at("ref"), "/",
                                job.params().at("k")));
  }
  EXPECT_THAT(seen, ::testing::ElementsAre("a/x/1", "a/x/2", "b c/2/1", "b c/2/2"));

  // Bad input names its problem, and nothing is stored.
  const size_t jobs = JobCount(c);
  WriteFile(file, "sample=a\nsample\n");
  CommandResult bad_line = c.Cli({"submit", "--params-file", file, "--", "true"});
  EXPECT_EQ(bad_line.exit_code, 2);
  EXPECT_THAT(bad_line.err, HasSubstr("params.txt:2: "));
  CommandResult down = c.Cli({"submit", "--array", "i=5-1", "--", "true"});
  EXPECT_EQ(down.exit_code, 2);
  EXPECT_THAT(down.err, HasSubstr("the range 5-1 is empty"));
  CommandResult twice = c.Cli({"submit", "--param", "i=1", "--array", "i=1-2", "--", "true"});
  EXPECT_EQ(twice.exit_code, 2);
  EXPECT_THAT(twice.err, HasSubstr("param i is given by --param and by the array"));
  CommandResult huge = c.Cli({"submit", "--array", "i=1-200", "--array", "j=1-200", "--", "true"});
  EXPECT_EQ(huge.exit_code, 2);
  EXPECT_THAT(huge.err, HasSubstr("more than 10000 elements"));
  WriteFile(file, "i=1\n" + std::string(200, 'k') + "=2\n");
  CommandResult long_key = c.Cli({"submit", "--params-file", file, "--", "true"});
  EXPECT_EQ(long_key.exit_code, 2) << long_key.out;
  EXPECT_THAT(long_key.err, HasSubstr("too long (200 bytes, at most 128)"));
  // The scheduler checks every element before it stores any.
  deja::v1::SubmitArrayRequest request;
  request.mutable_spec()->mutable_app()->add_command("true");
  request.add_elements();
  (*request.add_elements()->mutable_params())[std::string(200, 'k')] = "2";
  auto refused = c.client().SubmitArray(request);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(refused.status().message(), HasSubstr("elements[1]: params["));
  request.clear_elements();
  EXPECT_EQ(c.client().SubmitArray(request).status().code(), absl::StatusCode::kInvalidArgument)
      << "an array has at least one element";
  EXPECT_EQ(JobCount(c), jobs);
}

TEST(ArrayTest, ARetriedCallReturnsTheSameArrayAndCancelTakesAnArray) {
  Cluster c;  // no worker: every job stays QUEUED
  deja::v1::SubmitArrayRequest request;
  for (const char* w : {"sh", "-c", "echo ${params.i}"}) {
    request.mutable_spec()->mutable_app()->add_command(w);
  }
  request.mutable_spec()->set_request_id("retry-me");
  for (int i = 0; i < 5; ++i) (*request.add_elements()->mutable_params())["i"] = absl::StrCat(i);
  auto first = c.client().SubmitArray(request);
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_EQ(first->jobs_size(), 5);
  // After a restart too: the array is read back from the store.
  c.StopScheduler();
  c.StartScheduler();
  auto retried = c.client().SubmitArray(request);
  ASSERT_TRUE(retried.ok()) << retried.status();
  EXPECT_EQ(retried->array_id(), first->array_id());
  EXPECT_EQ(retried->jobs(4).job_id(), first->jobs(4).job_id());
  EXPECT_EQ(JobCount(c), 5u);

  CommandResult cancelled = c.Cli({"cancel", first->array_id()});
  EXPECT_EQ(cancelled.exit_code, 0) << cancelled.err;
  EXPECT_EQ(cancelled.out, "cancelled 5 jobs\n");
  EXPECT_THAT(c.Cli({"status", first->array_id()}).out, HasSubstr("5 cancelled"));
  EXPECT_EQ(c.Cli({"cancel", "a1", "j1"}).exit_code, 2);
}

// A pipeline node with `array:` runs once per element, each memoized on its
// own; its downstream gets every element's outputs, a directory each.
TEST(ArrayTest, APipelineNodeFansOutAndItsDownstreamGathersEveryElement) {
  Cluster c;
  c.StartWorker("w1", 2);
  ASSERT_TRUE(c.WaitForWorkers(1));
  const std::string file = c.root() + "/fan.yaml";
  auto write = [&](const std::string& range) {
    WriteFile(file, absl::StrCat(R"(name: fan
nodes:
  - name: split
    command: [sh, -c, "echo data > data.txt"]
    outputs: [data.txt]
  - name: score
    array: {i: ")",
                                 range, R"("}
    command: [sh, -c, "echo score ${params.i} $(cat ${inputs.data}) > score.txt"]
    outputs: [score.txt]
  - name: merge
    command: [sh, -c, "cd ${inputs.scores} && for d in *; do cat $d/score.txt; done | tee $OLDPWD/all.txt"]
    outputs: [all.txt]
edges:
  - split.output.data.txt -> score.input.data
  - score.output.score.txt -> merge.input.scores
)"));
  };
  write("1-3");
  CommandResult first = c.Cli({"pipeline", "run", file});
  ASSERT_EQ(first.exit_code, 0) << first.out << first.err;
  auto pipelines = c.client().ListPipelines("", 0);
  ASSERT_TRUE(pipelines.ok());
  const deja::v1::Pipeline& ran = pipelines->back();
  std::vector<std::string> names;
  for (const auto& node : ran.nodes()) names.push_back(node.name());
  EXPECT_THAT(names, ::testing::ElementsAre("split", "score.1", "score.2", "score.3", "merge"));
  const std::string merge_job = ran.nodes(4).job_id();
  auto merged = c.client().ReadLogs(merge_job, deja::v1::LOG_STDOUT);
  ASSERT_TRUE(merged.ok()) << merged.status();
  EXPECT_EQ(*merged, "score 1 data\nscore 2 data\nscore 3 data\n");

  // One more element: the three before are reused; the new one and the
  // gather run.
  write("1-4");
  CommandResult second = c.Cli({"pipeline", "run", file});
  ASSERT_EQ(second.exit_code, 0) << second.out << second.err;
  const deja::v1::Pipeline rerun = c.client().ListPipelines("", 0)->back();
  ASSERT_EQ(rerun.nodes_size(), 6);
  for (int i = 0; i < 4; ++i) {
    EXPECT_FALSE(rerun.nodes(i).reused_from().empty()) << rerun.nodes(i).name();
  }
  EXPECT_TRUE(rerun.nodes(4).reused_from().empty()) << "score.4 is new";
  EXPECT_TRUE(rerun.nodes(5).reused_from().empty()) << "merge has a new input";
  EXPECT_EQ(*c.client().ReadLogs(rerun.nodes(5).job_id(), deja::v1::LOG_STDOUT),
            "score 1 data\nscore 2 data\nscore 3 data\nscore 4 data\n");

  // A bad array names the node, its line, and nothing is submitted.
  write("4-1");
  CommandResult bad = c.Cli({"pipeline", "run", file});
  EXPECT_EQ(bad.exit_code, 2) << bad.out;
  EXPECT_THAT(bad.err, HasSubstr("nodes[score].array[i]: the range 4-1 is empty"));
  EXPECT_EQ(c.client().ListPipelines("", 0)->size(), 2u);
}

}  // namespace
}  // namespace deja::testing
