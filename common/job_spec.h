// Validation of submitted job specs and expansion of their command.
#ifndef DEJA_COMMON_JOB_SPEC_H_
#define DEJA_COMMON_JOB_SPEC_H_

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "deja/v1/job.pb.h"

namespace deja {

// Limits on submitted fields; a larger field is INVALID_ARGUMENT.
inline constexpr size_t kMaxNameLength = 128;                 // project, app name, version, keys
inline constexpr size_t kMaxValueLength = size_t{64} * 1024;  // one argv word, env or param value
inline constexpr size_t kMaxEntries = 1024;                   // argv words, env, params, outputs
inline constexpr size_t kMaxPathLength = 1024;                // output globs, input paths
inline constexpr size_t kMaxArrayElements = 10000;            // jobs in one job array
// A job record (spec, outputs, state) must fit a 4 MiB message with room to
// spare: the spec is at most 1 MiB, and so are its outputs (kMaxOutputsBytes).
inline constexpr size_t kMaxSpecBytes = size_t{1} << 20;
// The declared outputs a finished job may report (the list of paths and
// digests, not the files); a job whose globs match more fails, saying so.
inline constexpr size_t kMaxOutputsBytes = size_t{1} << 20;

// The largest gRPC message the scheduler and its clients send or accept: a
// reply of a large job array, a CancelJobs of 10000 jobs.
inline constexpr int kMaxGrpcMessageBytes = 64 << 20;

// The project used when a spec names none.
inline constexpr char kDefaultProject[] = "default";

// Checks `spec` and returns INVALID_ARGUMENT whose message starts with the
// offending field ("app.command: must not be empty", "outputs[2]: ...").
// Expects defaults applied (NormalizeJobSpec) first.
absl::Status ValidateJobSpec(const deja::v1::JobSpec& spec);

// Fills defaults: project "default", app name = basename of argv[0], and
// app.image_id = app.image when the image is named by its ID.
void NormalizeJobSpec(deja::v1::JobSpec* spec);

// Whether `text` is an image ID: "sha256:" and 64 lowercase hex digits.
bool IsImageId(std::string_view text);

// Project and app names: 1-128 of lowercase letters, digits, '-', '_', '.',
// starting with a letter or digit. INVALID_ARGUMENT naming `field`.
absl::Status ValidateName(const std::string& field, const std::string& name);

// Returns INVALID_ARGUMENT naming `field` unless `path` is a relative path
// that stays inside the workspace and names something in it (no "..", not
// absolute, not empty, not only "." and "/": "./" is the workspace itself).
absl::Status ValidateWorkspacePath(const std::string& field, const std::string& path);

// The argv to execute: "${params.X}" becomes the param's value and
// "${inputs.X}" the input's workspace path. "$${" escapes a literal "${".
// INVALID_ARGUMENT names the unknown reference.
absl::StatusOr<std::vector<std::string>> ExpandCommand(const deja::v1::JobSpec& spec);

}  // namespace deja

#endif  // DEJA_COMMON_JOB_SPEC_H_
