// The flags of `deja submit` and `deja run` that describe a job: their
// CLI11 definitions (help texts included) and their translation into a
// normalized, validated deja::v1::JobSpec. Hashing the --input files is not
// done here (client/file_commands.h does it).
//
// Pure functions apart from AddSpecFlags (which only registers options) and
// RandomRequestId; thread-safe.
#ifndef DEJA_CLIENT_SPEC_FLAGS_H_
#define DEJA_CLIENT_SPEC_FLAGS_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "deja/v1/job.pb.h"

namespace CLI {
class App;
}  // namespace CLI

namespace deja::cli {

// The flags of `deja submit` and `deja run` that describe the job, as parsed.
struct SpecFlags {
  std::string project;
  std::string name;
  std::string version;
  std::string image;
  std::vector<std::string> env;       // "K=V"
  std::vector<std::string> params;    // "K=V"
  std::vector<std::string> platform;  // "K=V"
  std::vector<std::string> labels;    // "K=V"
  std::vector<std::string> outputs;
  // "NAME=PATH[:WORKSPACE_PATH]" (client/inputs.h); resolved by the caller,
  // see BuildJobSpec.
  std::vector<std::string> inputs;
  std::vector<std::string> cache_key;
  // --memoization: "", "on", "off" or "inherit", any case. memo_alias is
  // its hidden former name --memo; giving both is an error.
  std::string memo;
  std::string memo_alias;
  bool force = false;
  bool side_effects = false;
  bool no_reuse = false;  // app.reuse = false
  // --reuse JOB (spec.reuse_job_id); reuse_job_alias is its hidden former
  // name --reuse-job.
  std::string reuse_job;
  std::string reuse_job_alias;
  std::string request_id;
  // Resources (common/resources.h), "" when not given; not identity.
  std::string cpus;
  std::string memory;
  int64_t gpus = 0;
  std::string time_limit;
  // --unplaceable: "wait" (default) or "fail".
  std::string unplaceable;
  bool network = false;
  std::vector<std::string> command;
  // --timing: print the input phase's cost on stderr (FormatInputTiming).
  // Not part of the spec.
  bool timing = false;
};

// Defines the options of `flags` on `app` (`deja submit`, `deja run`); CLI11
// fills `flags`, which must outlive the parse.
void AddSpecFlags(CLI::App* app, SpecFlags* flags);

// Splits "KEY=VALUE" at the first '='. INVALID_ARGUMENT naming `flag` and the
// argument when there is no '=' or the key is empty.
absl::StatusOr<std::pair<std::string, std::string>> ParseKeyValue(absl::string_view flag,
                                                                  absl::string_view arg);

// Builds, normalizes (NormalizeJobSpec) and validates (ValidateJobSpec) the
// spec, leaving its project empty when --project is not given. request_id is RandomRequestId()
// unless given. INVALID_ARGUMENT naming the flag or the spec field on bad input (a repeated key is
// an error). `flags.inputs` is not read here: hashing them is the caller's job (PrepareInputs),
// which passes the resulting `inputs`.
absl::StatusOr<deja::v1::JobSpec> BuildJobSpec(const SpecFlags& flags,
                                               const std::vector<deja::v1::InputRef>& inputs = {});

// ValidateJobSpec of `spec` as the scheduler sees it: an empty project is
// the scheduler's to choose (the token's project, else "default").
absl::Status ValidateSpecToSend(deja::v1::JobSpec spec);

// 16 random lowercase hex characters.
std::string RandomRequestId();

}  // namespace deja::cli

#endif  // DEJA_CLIENT_SPEC_FLAGS_H_
