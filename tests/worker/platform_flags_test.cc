// --platform: repeatable, merged before Abseil parses; K=V pairs with os and
// arch detected.
#include "worker/platform_flags.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace deja::worker {
namespace {

using ::testing::ElementsAre;
using ::testing::Pair;

std::vector<std::string> Merge(std::vector<std::string> args) {
  std::vector<char*> argv;
  for (std::string& arg : args) argv.push_back(arg.data());
  std::string storage;
  std::vector<char*> merged =
      MergePlatformFlags(static_cast<int>(argv.size()), argv.data(), &storage);
  return std::vector<std::string>(merged.begin(), merged.end());
}

TEST(MergePlatformFlagsTest, MergesEveryOccurrenceIntoOneFlagAfterTheProgramName) {
  EXPECT_THAT(Merge({"deja-worker", "--work_dir=/w", "--platform", "gpu=a100", "-platform=zone=b",
                     "--slots=2", "--platform=x=1,y=2"}),
              ElementsAre("deja-worker", "--platform=gpu=a100,zone=b,x=1,y=2", "--work_dir=/w",
                          "--slots=2"));
}

TEST(MergePlatformFlagsTest, LeavesArgumentsAfterTheTerminatorAndOtherFlagsAlone) {
  EXPECT_THAT(Merge({"deja-worker", "--work_dir=/w", "--", "--platform=k=v"}),
              ElementsAre("deja-worker", "--work_dir=/w", "--", "--platform=k=v"));
  EXPECT_THAT(Merge({"deja-worker", "--platforms=1", "--platform"}),
              ElementsAre("deja-worker", "--platforms=1", "--platform"));
}

TEST(ParsePlatformTest, AddsOsAndArch) {
  auto platform = ParsePlatform({"gpu=a100", "empty="});
  ASSERT_TRUE(platform.ok()) << platform.status();
  EXPECT_EQ(platform->at("os"), "linux");
  EXPECT_FALSE(platform->at("arch").empty());
  EXPECT_EQ(platform->at("gpu"), "a100");
  EXPECT_EQ(platform->at("empty"), "");
  EXPECT_EQ(platform->size(), 4u);
}

TEST(ParsePlatformTest, NamesTheBadValue) {
  EXPECT_EQ(ParsePlatform({"novalue"}).status().message(), "--platform \"novalue\": expected K=V");
  EXPECT_EQ(ParsePlatform({"=v"}).status().message(), "--platform \"=v\": expected K=V");
  EXPECT_EQ(ParsePlatform({"os=mac"}).status().message(),
            "--platform \"os=mac\": os is detected, not set");
  EXPECT_EQ(ParsePlatform({"k=1", "k=2"}).status().message(), "--platform: k given twice");
}

}  // namespace
}  // namespace deja::worker
