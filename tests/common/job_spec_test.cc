#include "common/job_spec.h"

#include <functional>
#include <string>
#include <vector>

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

  // Found by the paths fuzzer (tests/fuzz): "." and "./" were accepted,
  // as an input path too, where the worker then refused them at run time.
  for (const char* itself : {".", "./", ".//.", "./."}) {
    spec = Valid();
    spec.add_outputs(itself);
    ExpectInvalid(spec, "outputs[0]");
    EXPECT_THAT(std::string(ValidateJobSpec(spec).message()), HasSubstr("the workspace itself"));
  }
  spec = testing::FullSpec();
  spec.mutable_inputs(0)->set_path("./");
  ExpectInvalid(spec, "inputs[0].path");

  spec = Valid();
  spec.add_outputs("ok.txt");
  spec.add_outputs("a/../../escape");
  ExpectInvalid(spec, "outputs[1]");
  EXPECT_THAT(std::string(ValidateJobSpec(spec).message()), HasSubstr(".."));
}

// Found writing the job_spec fuzzer's properties (tests/fuzz): only the length was checked,
// so "../../../../../../../etc/passwd" (32 bytes) passed as a digest.
TEST(JobSpecTest, RejectsAnInputDigestThatIsNotHex) {
  for (const char* bad : {"../../../../../../../etc/passwd", "0123456789ABCDEF0123456789ABCDEF",
                          "0123456789abcdef0123456789abcde"}) {
    JobSpec spec = testing::FullSpec();
    spec.mutable_inputs(0)->set_digest(bad);
    ExpectInvalid(spec, "inputs[0].digest");
    EXPECT_THAT(std::string(ValidateJobSpec(spec).message()),
                HasSubstr("must be 32 lowercase hex digits"));
  }
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

// Issue 12, finding 7: a NUL cut a param silently, and a string that is not
// UTF-8 got "UNIMPLEMENTED ''" from the server, which could not parse it.
TEST(JobSpecTest, RejectsNulBytesAndInvalidUtf8InEveryStringNamingTheField) {
  const std::string nul("a\0b", 3);
  const std::string bad_utf8 = "caf\xc3";  // a cut two-byte sequence
  struct Case {
    std::string field;
    std::function<void(JobSpec*, const std::string&)> set;
  };
  const std::vector<Case> cases = {
      {"params[p]", [](JobSpec* s, const std::string& v) { (*s->mutable_params())["p"] = v; }},
      {"app.env[E]",
       [](JobSpec* s, const std::string& v) { (*s->mutable_app()->mutable_env())["E"] = v; }},
      {"labels[l]", [](JobSpec* s, const std::string& v) { (*s->mutable_labels())["l"] = v; }},
      {"app.platform[gpu]",
       [](JobSpec* s, const std::string& v) {
         (*s->mutable_app()->mutable_platform())["gpu"] = v;
       }},
      {"app.command[2]",
       [](JobSpec* s, const std::string& v) { s->mutable_app()->add_command(v); }},
      {"app.version", [](JobSpec* s, const std::string& v) { s->mutable_app()->set_version(v); }},
      {"app.image", [](JobSpec* s, const std::string& v) { s->mutable_app()->set_image(v); }},
      {"outputs[0]", [](JobSpec* s, const std::string& v) { s->add_outputs(v); }},
      {"request_id", [](JobSpec* s, const std::string& v) { s->set_request_id(v); }},
  };
  for (const Case& c : cases) {
    JobSpec spec = Valid();
    c.set(&spec, nul);
    ExpectInvalid(spec, c.field);
    EXPECT_THAT(std::string(ValidateJobSpec(spec).message()), HasSubstr("NUL byte (at offset 1)"))
        << c.field;
    spec = Valid();
    c.set(&spec, bad_utf8);
    ExpectInvalid(spec, c.field);
    EXPECT_THAT(std::string(ValidateJobSpec(spec).message()),
                HasSubstr("not valid UTF-8 (byte 0xc3 at offset 3)"))
        << c.field;
  }
}

TEST(JobSpecTest, AcceptsWellFormedUtf8AndRejectsOverlongsAndSurrogates) {
  for (const char* good : {"plain", "caf\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80"}) {
    JobSpec spec = Valid();
    (*spec.mutable_params())["p"] = good;
    EXPECT_TRUE(ValidateJobSpec(spec).ok()) << good;
  }
  for (const char* bad :
       {"\xc0\xaf", "\xe0\x80\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xff", "\x80"}) {
    JobSpec spec = Valid();
    (*spec.mutable_params())["p"] = bad;
    EXPECT_THAT(std::string(ValidateJobSpec(spec).message()), HasSubstr("not valid UTF-8"));
  }
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
