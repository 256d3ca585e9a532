#include "common/job_spec.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/common/vectors.h"

namespace deja {
namespace {

using deja::v1::JobSpec;
using ::testing::HasSubstr;

JobSpec Valid() {
  JobSpec spec = testing::MinimalSpec();
  NormalizeJobSpec(&spec);
  return spec;
}

void ExpectInvalid(const JobSpec& spec, const std::string& field) {
  absl::Status s = ValidateJobSpec(spec);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << field;
  EXPECT_THAT(std::string(s.message()), HasSubstr(field + ":"));
}

TEST(JobSpecTest, AcceptsTheVectors) {
  EXPECT_TRUE(ValidateJobSpec(Valid()).ok());
  EXPECT_TRUE(ValidateJobSpec(testing::FullSpec()).ok()) << ValidateJobSpec(testing::FullSpec());
}

TEST(JobSpecTest, NormalizeFillsProjectAndAppName) {
  JobSpec spec;
  spec.mutable_app()->add_command("/usr/bin/Python3");
  NormalizeJobSpec(&spec);
  EXPECT_EQ(spec.project(), "default");
  EXPECT_EQ(spec.app().name(), "python3");
}

TEST(JobSpecTest, RejectsAnEmptyCommand) {
  JobSpec spec = Valid();
  spec.mutable_app()->clear_command();
  ExpectInvalid(spec, "app.command");
  spec.mutable_app()->add_command("");
  ExpectInvalid(spec, "app.command[0]");
}

TEST(JobSpecTest, RejectsBadProjectAndAppNames) {
  for (const char* bad : {"Has Space", "UPPER", "-dash-first", "a/b", ""}) {
    JobSpec spec = Valid();
    spec.set_project(bad);
    ExpectInvalid(spec, "project");
  }
  JobSpec spec = Valid();
  spec.mutable_app()->set_name("no/slash");
  ExpectInvalid(spec, "app.name");
}

TEST(JobSpecTest, RejectsBadOutputGlobs) {
  JobSpec spec = Valid();
  spec.add_outputs("out/*.txt");
  spec.add_outputs("out/*.txt");
  ExpectInvalid(spec, "outputs[1]");
  EXPECT_THAT(std::string(ValidateJobSpec(spec).message()), HasSubstr("duplicate"));

  spec = Valid();
  spec.add_outputs("/etc/passwd");
  ExpectInvalid(spec, "outputs[0]");
  EXPECT_THAT(std::string(ValidateJobSpec(spec).message()), HasSubstr("absolute"));

  spec = Valid();
  spec.add_outputs("ok.txt");
  spec.add_outputs("a/../../escape");
  ExpectInvalid(spec, "outputs[1]");
  EXPECT_THAT(std::string(ValidateJobSpec(spec).message()), HasSubstr(".."));
}

TEST(JobSpecTest, RejectsOversizedFields) {
  JobSpec spec = Valid();
  spec.set_project(std::string(kMaxNameLength + 1, 'a'));
  ExpectInvalid(spec, "project");

  spec = Valid();
  spec.mutable_app()->add_command(std::string(kMaxValueLength + 1, 'x'));
  ExpectInvalid(spec, "app.command[2]");

  spec = Valid();
  (*spec.mutable_params())["p"] = std::string(kMaxValueLength + 1, 'x');
  ExpectInvalid(spec, "params[p]");

  spec = Valid();
  spec.add_outputs(std::string(kMaxPathLength + 1, 'o'));
  ExpectInvalid(spec, "outputs[0]");

  spec = Valid();
  for (size_t i = 0; i <= kMaxEntries; ++i) spec.mutable_app()->add_command("w");
  ExpectInvalid(spec, "app.command");
}

TEST(JobSpecTest, RejectsBadKeys) {
  JobSpec spec = Valid();
  (*spec.mutable_app()->mutable_env())["1BAD"] = "x";
  ExpectInvalid(spec, "app.env[1BAD]");
  spec = Valid();
  (*spec.mutable_params())["has space"] = "x";
  ExpectInvalid(spec, "params[has space]");
}

TEST(JobSpecTest, ExpandsParamsAndInputs) {
  JobSpec spec = testing::FullSpec();
  spec.mutable_app()->add_command("${inputs.data}/x");
  spec.mutable_app()->add_command("$${params.lr}");
  auto argv = ExpandCommand(spec);
  ASSERT_TRUE(argv.ok()) << argv.status();
  EXPECT_EQ((*argv)[3], "0.1");
  EXPECT_EQ((*argv)[4], "inputs/data/x");
  EXPECT_EQ((*argv)[5], "${params.lr}");
}

TEST(JobSpecTest, UnknownReferencesNameTheWord) {
  JobSpec spec = Valid();
  spec.mutable_app()->add_command("${params.nope}");
  ExpectInvalid(spec, "app.command[2]");
  EXPECT_THAT(std::string(ValidateJobSpec(spec).message()), HasSubstr("nope"));
  spec = Valid();
  spec.mutable_app()->add_command("${oops}");
  ExpectInvalid(spec, "app.command[2]");
}

}  // namespace
}  // namespace deja
