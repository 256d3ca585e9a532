// The scheduler's web dashboard, driven in headless Chromium (Debian's
// `chromium`) against real daemons: what a person would see on each page,
// and that it shows only what the token may read. With
// DEJA_DASHBOARD_SCREENSHOTS=DIR set, it also saves a screenshot of each
// page there (how docs/dashboard/*.png are made).
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/fakes/file_util.h"
#include "tests/integration/cluster.h"

namespace deja::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

class DashboardTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!Installed("chromium")) GTEST_SKIP() << "chromium not found (Debian's chromium package)";
    port_file_ = files_.path() + "/http.port";
    cluster_ = std::make_unique<Cluster>(
        std::vector<std::string>{"--http_listen=127.0.0.1:0", "--http_port_file=" + port_file_});
    cluster_->StartWorker("w1");
    ASSERT_TRUE(cluster_->WaitForWorkers(1));
    ASSERT_TRUE(PollUntil([&] { return !ReadFile(port_file_).empty(); }));
    port_ = std::stoi(ReadFile(port_file_));
    admin_ = std::string(absl::StripAsciiWhitespace(ReadFile(cluster_->access().AdminTokenFile())));
  }
  void TearDown() override {
    if (HasFailure() && cluster_ != nullptr) cluster_->DumpLogs();
  }

  CommandResult Deja(const std::vector<std::string>& args) { return cluster_->Cli(args); }

  // The page at `fragment` (#jobs, #job?id=j2...) as Chromium has drawn it
  // (its DOM, once the page's script marked it ready), read with `token`.
  std::string Page(const std::string& fragment, const std::string& token,
                   const std::string& screenshot = "") {
    const std::string url = absl::StrCat("http://127.0.0.1:", port_, "/#", fragment,
                                         token.empty() ? "" : "&token=" + token);
    std::vector<std::string> flags = {"--headless",
                                      "--no-sandbox",
                                      "--disable-gpu",
                                      "--hide-scrollbars",
                                      "--user-data-dir=" + files_.path() + "/chromium",
                                      "--virtual-time-budget=10000"};
    if (!screenshot.empty()) {
      flags.push_back("--window-size=1280,1300");  // the whole of a job's page
      flags.push_back("--screenshot=" + screenshot);
    } else {
      flags.push_back("--window-size=1280,800");
      flags.push_back("--dump-dom");
    }
    flags.push_back(url);
    CommandResult run = RunCommand("/usr/bin/chromium", flags);
    EXPECT_EQ(run.exit_code, 0) << run.err;
    return run.out;
  }

  // Checks the page, and saves its screenshot when asked to.
  std::string See(const std::string& fragment, const std::string& name) {
    const std::string dom = Page(fragment, admin_);
    EXPECT_THAT(dom, Not(HasSubstr("data-ready=\"error\""))) << dom;
    if (const char* dir = std::getenv("DEJA_DASHBOARD_SCREENSHOTS"); dir != nullptr) {
      Page(fragment, admin_, absl::StrCat(dir, "/", name, ".png"));
    }
    return dom;
  }

  TempDir files_{"deja-dashboard"};
  std::string port_file_;
  std::unique_ptr<Cluster> cluster_;
  int port_ = 0;
  std::string admin_;
};

TEST_F(DashboardTest, EveryPageShowsWhatAPersonLooksFor) {
  for (int i = 0; i < 2; ++i) {
    CommandResult run =
        Deja({"run", "--project", "ml", "--name", "train", "--output", "model.txt", "--", "sh",
              "-c", "echo weights > model.txt; echo epoch 1 loss 0.31; sleep 1"});
    ASSERT_EQ(run.exit_code, 0) << run.err;
  }
  CommandResult failed =
      Deja({"run", "--project", "ml", "--", "sh", "-c", "echo 'no such file: x.csv' >&2; exit 3"});
  ASSERT_EQ(failed.exit_code, 3);
  const std::string pipeline = std::string(DEJA_SOURCE_DIR) + "/examples/pipeline/pipeline.yaml";
  for (int i = 0; i < 2; ++i) {
    CommandResult ran = Deja({"pipeline", "run", pipeline});
    ASSERT_EQ(ran.exit_code, 0) << ran.out << ran.err;
  }

  const std::string jobs = See("jobs", "jobs");
  EXPECT_THAT(jobs, HasSubstr("data-ready=\"jobs\""));
  EXPECT_THAT(jobs, HasSubstr("<a href=\"#job?id=j2\">j2</a>"));
  EXPECT_THAT(jobs, HasSubstr(">REUSED</span>"));
  EXPECT_THAT(jobs, HasSubstr(">FAILED</span>"));
  const std::string filtered = Page("jobs?state=failed", admin_);
  EXPECT_THAT(filtered, HasSubstr("#job?id=j3"));
  EXPECT_THAT(filtered, Not(HasSubstr("#job?id=j2\"")));

  const std::string reused = See("job?id=j2", "job");
  EXPECT_THAT(reused, HasSubstr("id=\"reuse-banner\">reused from j1, saved 1s</div>"));
  EXPECT_THAT(reused, HasSubstr("id=\"timeline\""));
  EXPECT_THAT(reused, HasSubstr("id=\"stdout\">epoch 1 loss 0.31"));
  EXPECT_THAT(reused, HasSubstr("REUSED: reused from j1"));
  EXPECT_THAT(reused, HasSubstr("<td>model.txt</td><td>8 B</td>"));
  // The workspace's files, logs included.
  EXPECT_THAT(reused, HasSubstr("<td>logs/stdout</td><td>18 B</td>"));
  const std::string failure = Page("job?id=j3", admin_);
  EXPECT_THAT(failure, HasSubstr("id=\"stderr\">no such file: x.csv"));
  EXPECT_THAT(failure, HasSubstr("command exited with code 3"));

  const std::string dag = See("pipeline?id=p2", "pipeline");
  EXPECT_THAT(dag, HasSubstr("id=\"dag\""));
  for (const char* node : {"preprocess", "train", "evaluate"}) {
    EXPECT_THAT(dag,
                HasSubstr(absl::StrCat("data-node=\"", node, "\" data-state=\"NODE_SUCCEEDED\"")));
  }
  EXPECT_THAT(dag, HasSubstr("3 of 3 nodes reused"));
  EXPECT_THAT(dag, HasSubstr("reused from j"));
  EXPECT_THAT(See("pipelines", "pipelines"), HasSubstr("#pipeline?id=p2"));

  const std::string stats = See("stats", "stats");
  EXPECT_THAT(stats, HasSubstr("id=\"saved-chart\""));
  EXPECT_THAT(stats, HasSubstr("<td>train</td>"));
  EXPECT_THAT(stats, HasSubstr("id=\"time-saved\""));

  const std::string workers = See("workers", "workers");
  EXPECT_THAT(workers, HasSubstr("<td>w1</td><td>yes</td><td>0 of 1 busy</td>"));
}

TEST_F(DashboardTest, ItTakesTheCliTokensAndShowsOnlyWhatTheyMayRead) {
  ASSERT_EQ(Deja({"run", "--project", "ml", "--", "echo", "ml"}).exit_code, 0);
  ASSERT_EQ(Deja({"run", "--project", "web", "--", "echo", "web"}).exit_code, 0);
  // No token: the sign-in form, no job.
  const std::string anonymous = Page("jobs", "");
  EXPECT_THAT(anonymous, HasSubstr("Sign in"));
  EXPECT_THAT(anonymous, Not(HasSubstr("#job?id=j1")));
  // A reader of project web sees web's job, not ml's, and not ml's page.
  CommandResult made = Deja({"token", "create", "--project", "web", "--role", "reader"});
  ASSERT_EQ(made.exit_code, 0) << made.err;
  std::string reader;
  for (absl::string_view word : absl::StrSplit(made.out, absl::ByAnyChar(" \n"))) {
    if (absl::StartsWith(word, "t") && absl::StrContains(word, ".")) reader = std::string(word);
  }
  ASSERT_FALSE(reader.empty()) << made.out;
  const std::string web = Page("jobs", reader);
  EXPECT_THAT(web, HasSubstr("#job?id=j2"));
  EXPECT_THAT(web, Not(HasSubstr("#job?id=j1\"")));
  EXPECT_THAT(Page("job?id=j1", reader), HasSubstr("cannot read"));
}

}  // namespace
}  // namespace deja::testing
