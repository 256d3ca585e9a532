// `deja completion bash|zsh|fish` and `deja man`, made from the command
// table: checked by the shells (and groff) themselves.
#include "client/completion.h"

#include <cstdio>
#include <fstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/client/cli_test_util.h"
#include "tests/fakes/file_util.h"
#include "tests/fakes/temp_dir.h"

namespace deja::cli {
namespace {

using ::deja::cli::testing::CliResult;
using ::deja::cli::testing::RunDeja;
using ::deja::testing::Installed;
using ::testing::HasSubstr;

// Runs `script` with /bin/sh; its stdout and exit code.
std::pair<int, std::string> Shell(const std::string& script) {
  FILE* pipe = popen(script.c_str(), "r");
  std::string out;
  char buffer[4096];
  size_t n;
  while ((n = fread(buffer, 1, sizeof(buffer), pipe)) > 0) out.append(buffer, n);
  const int status = pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

class CompletionTest : public ::testing::Test {
 protected:
  // What bash offers after typing `words` (the last one being completed).
  std::string Complete(const std::string& words) {
    const std::string script = dir_.path() + "/deja.bash";
    std::ofstream(script) << RunDeja({"completion", "bash"}).out;
    auto [code, out] = Shell("bash -c 'source " + script + "; COMP_WORDS=(" + words +
                             "); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); _deja; "
                             "echo \"${COMPREPLY[*]}\"'");
    EXPECT_EQ(code, 0) << words;
    return out;
  }

  deja::testing::TempDir dir_;
};

TEST_F(CompletionTest, BashCompletesCommandsThenTheirFlags) {
  EXPECT_EQ(Complete("deja su"), "submit\n");
  EXPECT_EQ(Complete("deja cache l"), "ls\n");
  EXPECT_EQ(Complete("deja --json pipeline re"), "retry\n");
  EXPECT_EQ(Complete("deja submit --pro"), "--project\n");
  EXPECT_EQ(Complete("deja ls --cur"), "--cursor\n");
  EXPECT_EQ(Complete("deja submit -- ls --pro"), "\n");  // the job's own command
}

TEST_F(CompletionTest, ZshAndFishScriptsParse) {
  CliResult zsh = RunDeja({"completion", "zsh"});
  EXPECT_EQ(zsh.code, 0);
  EXPECT_THAT(zsh.out, HasSubstr("#compdef deja\n"));
  CliResult fish = RunDeja({"completion", "fish"});
  EXPECT_THAT(fish.out, HasSubstr("complete -c deja -n '__fish_use_subcommand' -a submit"));
  EXPECT_THAT(fish.out, HasSubstr("complete -c deja -n '__fish_seen_subcommand_from cache; and "
                                  "not __fish_seen_subcommand_from ls show evict' -a ls"));
  for (const auto& [shell, text] : {std::pair{"zsh", zsh.out}, std::pair{"fish", fish.out}}) {
    if (!Installed(shell)) continue;  // checked where the shell is installed
    const std::string file = dir_.path() + "/deja." + shell;
    std::ofstream(file) << text;
    EXPECT_EQ(Shell(std::string(shell) + " -n " + file).first, 0) << shell;
  }
  EXPECT_EQ(RunDeja({"completion", "tcsh"}).code, 2);
}

TEST_F(CompletionTest, TheManPageHoldsEveryCommandAndRendersCleanly) {
  CliResult man = RunDeja({"man"});
  ASSERT_EQ(man.code, 0) << man.err;
  EXPECT_THAT(man.out, HasSubstr(".TH DEJA 1"));
  for (const char* command : {"submit", "logs", "cache evict", "pipeline run", "health"}) {
    EXPECT_THAT(man.out, HasSubstr(std::string(".SS deja ") + command + "\n")) << command;
  }
  EXPECT_THAT(man.out, HasSubstr(".B \\-\\-follow, \\-f"));
  if (!Installed("groff")) GTEST_SKIP() << "groff not installed: the page was not rendered";
  const std::string page = dir_.path() + "/deja.1";
  std::ofstream(page) << man.out;
  auto [code, text] = Shell("groff -man -Tutf8 -ww -z " + page + " 2>&1");
  EXPECT_EQ(code, 0);
  EXPECT_EQ(text, "") << "groff warned";
}

}  // namespace
}  // namespace deja::cli
