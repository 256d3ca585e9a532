// The deja CLI against a real cluster.
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/cluster.h"

namespace deja::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    cluster_ = std::make_unique<Cluster>();
    cluster_->StartWorker("w1", 2);
    ASSERT_TRUE(cluster_->WaitForWorkers(1));
  }
  CommandResult Deja(std::vector<std::string> args) { return cluster_->Cli(args); }
  // The job id a submit printed first.
  static std::string FirstWord(const std::string& out) {
    return std::string(out.substr(0, out.find_first_of(" \n")));
  }
  std::unique_ptr<Cluster> cluster_;
};

TEST_F(CliTest, RunStreamsStatesAndExitsWithTheJobsCode) {
  CommandResult ok = Deja({"run", "--project", "cli", "--", "sh", "-c", "echo hi"});
  EXPECT_EQ(ok.exit_code, 0) << ok.out << ok.err;
  EXPECT_THAT(ok.out, HasSubstr("SUCCEEDED"));
  CommandResult fail = Deja({"run", "--", "sh", "-c", "exit 4"});
  EXPECT_EQ(fail.exit_code, 4) << fail.out << fail.err;
  EXPECT_THAT(fail.out, HasSubstr("FAILED"));
}

TEST_F(CliTest, SecondSubmitIsReusedAndItsLogsSaySo) {
  std::vector<std::string> submit = {
      "submit", "--param", "n=1", "--env", "K=v", "--", "sh", "-c", "echo same ${params.n} $K"};
  CommandResult first = Deja(submit);
  ASSERT_EQ(first.exit_code, 0) << first.err;
  std::string first_id = FirstWord(first.out);
  ASSERT_TRUE(cluster_->client().WaitForJob(first_id, absl::Seconds(30)).ok());

  CommandResult second = Deja(submit);
  ASSERT_EQ(second.exit_code, 0) << second.err;
  EXPECT_THAT(second.out, HasSubstr("reusing " + first_id));
  std::string second_id = FirstWord(second.out);
  ASSERT_TRUE(cluster_->client().WaitForJob(second_id, absl::Seconds(30)).ok());

  CommandResult logs = Deja({"logs", second_id});
  EXPECT_EQ(logs.exit_code, 0) << logs.err;
  EXPECT_THAT(logs.out, StartsWith("reused from " + first_id + " (finished "));
  EXPECT_THAT(logs.out, HasSubstr("\nsame 1 v\n"));

  CommandResult status = Deja({"status", second_id});
  EXPECT_THAT(status.out, HasSubstr(first_id));
  EXPECT_THAT(status.out, HasSubstr("SUCCEEDED"));
  CommandResult json = Deja({"status", "--json", second_id});
  EXPECT_THAT(json.out, HasSubstr("\"reused_from\":\"" + first_id + "\""));

  CommandResult ls = Deja({"ls", "--state", "succeeded"});
  EXPECT_THAT(ls.out, HasSubstr(first_id));
  EXPECT_THAT(ls.out, HasSubstr(second_id));
}

TEST_F(CliTest, ErrorsAreOneClearLine) {
  CommandResult missing = Deja({"status", "j999"});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_EQ(missing.err, "deja: job j999 not found\n");
  CommandResult bad = Deja({"submit", "--project", "Bad Name", "--", "true"});
  EXPECT_EQ(bad.exit_code, 2) << "a bad spec is a usage error";
  EXPECT_THAT(bad.err, StartsWith("deja: project: invalid name"));
  CommandResult state = Deja({"ls", "--state", "sleeping"});
  EXPECT_NE(state.exit_code, 0);
  EXPECT_THAT(state.err, HasSubstr("QUEUED"));
  CommandResult unreachable =
      RunCommand(DEJA_CLI_BIN, {"--scheduler", "127.0.0.1:1", "ls", "--timeout", "2"});
  EXPECT_EQ(unreachable.exit_code, 1);
  EXPECT_THAT(unreachable.err, StartsWith("deja: cannot reach scheduler at 127.0.0.1:1"));
}

}  // namespace
}  // namespace deja::testing

namespace deja::testing {
namespace {

using ::testing::HasSubstr;

TEST_F(CliTest, MemoizationControlsFromTheCommandLine) {
  CommandResult bad = Deja({"project", "set", "memo", "--retention", "0"});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_THAT(bad.err, HasSubstr("out of range (1 to 120 hours)"));
  CommandResult set = Deja({"project", "set", "memo", "--retention", "48"});
  EXPECT_EQ(set.exit_code, 0) << set.err;
  EXPECT_THAT(Deja({"project", "get", "memo"}).out, HasSubstr("48"));

  auto run = [&](const std::string& n, std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"run",   "--project", "memo",  "--name",
                                     "count", "--param",   "n=" + n};
    args.insert(args.end(), extra.begin(), extra.end());
    for (const char* w : {"--", "sh", "-c", "echo ${params.n}"}) args.push_back(w);
    CommandResult r = Deja(args);
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
    return FirstWord(r.out);
  };
  std::string first = run("1");
  std::string second = run("2");
  CommandResult explain = Deja({"explain", second});
  EXPECT_EQ(explain.exit_code, 0) << explain.err;
  EXPECT_THAT(explain.out, HasSubstr("NO_MATCHING_ENTRY"));
  EXPECT_THAT(explain.out, HasSubstr("params[n]"));
  EXPECT_THAT(explain.out, HasSubstr(first));

  std::string reused = run("1");
  EXPECT_THAT(Deja({"explain", reused}).out, HasSubstr("REUSED"));
  EXPECT_THAT(Deja({"status", reused}).out, HasSubstr("expires"));

  CommandResult off = Deja({"project", "set", "memo", "--memoization", "off"});
  EXPECT_EQ(off.exit_code, 0) << off.err;
  std::string fresh = run("1");
  EXPECT_THAT(Deja({"status", fresh}).out, HasSubstr("project memo has memoization off"));
  EXPECT_THAT(Deja({"explain", fresh}).out, HasSubstr("MEMOIZATION_OFF"));
  std::string forced_on = run("1", {"--memoization", "on"});
  EXPECT_THAT(Deja({"explain", forced_on}).out, HasSubstr("REUSED"));

  CommandResult ls = Deja({"cache", "ls", "--project", "memo"});
  EXPECT_THAT(ls.out, HasSubstr(first));
  EXPECT_THAT(ls.out, HasSubstr(second));
  CommandResult stats = Deja({"stats", "--project", "memo"});
  EXPECT_EQ(stats.exit_code, 0) << stats.err;
  EXPECT_THAT(stats.out, HasSubstr("count"));
  CommandResult evict = Deja({"cache", "evict", "--app", "count", "--project", "memo"});
  EXPECT_EQ(evict.exit_code, 0) << evict.err;
  EXPECT_THAT(evict.out, HasSubstr("evicted 2 entries"));
  EXPECT_EQ(Deja({"cache", "ls", "--project", "memo", "--json"}).out, "");
  std::string after = run("1", {"--memoization", "on"});
  EXPECT_THAT(Deja({"explain", after}).out, HasSubstr("NO_MATCHING_ENTRY"));
}

}  // namespace
}  // namespace deja::testing
