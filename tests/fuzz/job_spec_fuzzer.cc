// Submitted specs as the scheduler receives them: a JobSpec through
// NormalizeJobSpec, ValidateJobSpec, ExpandCommand and job identity
// (common/job_spec.h, common/job_identity.h), and a PipelineSpec through
// ValidatePipeline and the plan's order (common/pipeline.h).
//
// Input: one byte choosing the message (even: JobSpec, odd: PipelineSpec),
// then its wire bytes. Properties:
//   - the canonical encoding never crashes, on any spec, and is
//     deterministic: hashing twice gives one hash;
//   - identity is stable across parse -> encode -> parse: an accepted spec
//     serialized and parsed again has the same encoding and hash, and so
//     does the spec with its inputs and outputs listed in reverse (the
//     encoding sorts them);
//   - an accepted spec names only 32-hex-digit input digests, and its
//     expanded command has no NUL byte (exec would cut the word there);
//   - an accepted pipeline's plan holds (tests/fuzz/plan_checks.h).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/job_identity.h"
#include "common/job_spec.h"
#include "common/pipeline.h"
#include "deja/v1/job.pb.h"
#include "deja/v1/pipeline.pb.h"
#include "tests/fuzz/fuzz_util.h"
#include "tests/fuzz/plan_checks.h"

namespace {

void FuzzJobSpec(std::string_view bytes) {
  deja::v1::JobSpec spec;
  if (!spec.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) return;
  const std::string hash = deja::JobHash(spec);
  DEJA_CHECK(hash == deja::JobHash(spec), "two hashes of one spec");
  DEJA_CHECK(deja::CanonicalJobEncoding(spec) == deja::CanonicalJobEncoding(spec),
             "two encodings of one spec");

  deja::NormalizeJobSpec(&spec);
  absl::Status valid = deja::ValidateJobSpec(spec);
  if (!valid.ok()) {
    DEJA_CHECK(valid.code() == absl::StatusCode::kInvalidArgument && !valid.message().empty(),
               valid.ToString());
    return;
  }

  const std::string encoding = deja::CanonicalJobEncoding(spec);
  deja::v1::JobSpec again;
  DEJA_CHECK(again.ParseFromString(spec.SerializeAsString()), "an accepted spec does not reparse");
  DEJA_CHECK(deja::CanonicalJobEncoding(again) == encoding, "encoding changed across a reparse");
  DEJA_CHECK(deja::JobHash(again) == deja::JobHash(spec), "hash changed across a reparse");

  std::reverse(again.mutable_inputs()->begin(), again.mutable_inputs()->end());
  std::reverse(again.mutable_outputs()->begin(), again.mutable_outputs()->end());
  DEJA_CHECK(deja::CanonicalJobEncoding(again) == encoding,
             "the order of inputs or outputs changed the encoding");

  for (const auto& input : spec.inputs()) {
    DEJA_CHECK(deja::fuzz::IsLowerHex32(input.digest()),
               absl::StrCat("accepted input digest \"", input.digest(), "\""));
  }
  auto argv = deja::ExpandCommand(spec);
  DEJA_CHECK(argv.ok(), absl::StrCat("accepted spec does not expand: ", argv.status().ToString()));
  DEJA_CHECK(argv->size() == static_cast<size_t>(spec.app().command_size()), "argv size");
  for (const std::string& word : *argv) {
    DEJA_CHECK(word.find('\0') == std::string::npos, "a NUL byte in an expanded word");
  }
}

void FuzzPipelineSpec(std::string_view bytes) {
  deja::v1::PipelineSpec spec;
  if (!spec.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) return;
  absl::Status valid = deja::ValidatePipeline(spec);
  if (!valid.ok()) {
    DEJA_CHECK(valid.code() == absl::StatusCode::kInvalidArgument && !valid.message().empty(),
               valid.ToString());
    return;
  }
  deja::fuzz::CheckPlan(spec);
  for (const auto& node : spec.nodes()) {
    deja::v1::JobSpec job = deja::NodeJobSpec(spec, node);
    for (const auto& input : job.inputs()) {
      DEJA_CHECK(deja::fuzz::IsLowerHex32(input.digest()),
                 absl::StrCat("accepted input digest \"", input.digest(), "\""));
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  deja::fuzz::Input in(data, size);
  if (in.Byte() % 2 == 0) {
    FuzzJobSpec(in.rest());
  } else {
    FuzzPipelineSpec(in.rest());
  }
  return 0;
}
