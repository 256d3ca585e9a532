#include "client/suggest.h"

#include <CLI/CLI.hpp>

#include "gtest/gtest.h"
#include "tests/client/cli_test_util.h"

namespace deja::cli {
namespace {

using ::deja::cli::testing::CliResult;
using ::deja::cli::testing::RunDeja;

TEST(SuggestTest, EditDistanceCountsASwapAsOne) {
  EXPECT_EQ(EditDistance("submit", "submit"), 0u);
  EXPECT_EQ(EditDistance("sumbit", "submit"), 1u);
  EXPECT_EQ(EditDistance("sbmit", "submit"), 1u);
  EXPECT_EQ(EditDistance("", "ls"), 2u);
  EXPECT_EQ(EditDistance("kitten", "sitting"), 3u);
}

TEST(SuggestTest, ClosestNameOnlyWhenCloseEnough) {
  const std::vector<std::string> commands = {"submit", "status", "stats", "ls", "logs", "pipeline"};
  EXPECT_EQ(ClosestName("sumbit", commands), "submit");
  EXPECT_EQ(ClosestName("stauts", commands), "status");
  EXPECT_EQ(ClosestName("lgos", commands), "logs");
  EXPECT_EQ(ClosestName("lgs", commands), "ls");         // a tie: the first
  EXPECT_EQ(ClosestName("pipe", commands), "pipeline");  // cut short
  EXPECT_EQ(ClosestName("frobnicate", commands), std::nullopt);
  EXPECT_EQ(ClosestName("x", commands), std::nullopt);
}

// Through the real command table: what a user who mistypes sees.
TEST(SuggestTest, TheCliNamesTheMistypedCommandOrFlag) {
  CliResult command = RunDeja({"sumbit", "--", "true"});
  EXPECT_EQ(command.code, 2);
  EXPECT_EQ(command.err,
            "deja: unknown command 'sumbit'; did you mean 'submit'? (see deja --help)\n");
  CliResult flag = RunDeja({"submit", "--projet", "ml", "--", "true"});
  EXPECT_EQ(flag.code, 2);
  EXPECT_EQ(flag.err,
            "deja: unknown flag '--projet'; did you mean '--project'? (see deja submit --help)\n");
  CliResult nested = RunDeja({"cache", "lss"});
  EXPECT_EQ(nested.err,
            "deja: unknown command 'lss'; did you mean 'ls'? (see deja cache --help)\n");
  CliResult global = RunDeja({"--schedular", "h:1", "ls"});
  EXPECT_EQ(global.err,
            "deja: unknown flag '--schedular'; did you mean '--scheduler'? (see deja --help)\n");
  // Far from everything: no guess.
  CliResult unknown = RunDeja({"frobnicate"});
  EXPECT_EQ(unknown.err, "deja: unknown command 'frobnicate' (see deja --help)\n");
  // What follows -- is the job's own command line, never checked.
  CliResult job = RunDeja({"submit", "--dry-run", "--", "sh", "--projet"});
  EXPECT_EQ(job.code, 0) << job.err;
}

TEST(SuggestTest, VersionIsNotAMissingCommand) {
  CliResult version = RunDeja({"--version"});
  EXPECT_EQ(version.code, 0) << version.err;
  EXPECT_EQ(version.out.rfind("deja 0.", 0), 0u) << version.out;
  EXPECT_NE(version.out.find("(commit "), std::string::npos) << version.out;
}

}  // namespace
}  // namespace deja::cli
