// Resources: what a job asks of its worker (--cpus, --memory, --gpus,
// --time-limit) and what a worker offers, as people write and read them,
// and whether one fits the other. Not part of a job's identity.
//
// Pure functions; thread-safe.
#ifndef DEJA_COMMON_RESOURCES_H_
#define DEJA_COMMON_RESOURCES_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "deja/v1/job.pb.h"

namespace deja {

// Upper bounds of a request, far above any machine: a larger value is a
// typo, not a job.
inline constexpr uint32_t kMaxMilliCpus = 1024 * 1000;
inline constexpr uint64_t kMaxMemoryBytes = uint64_t{1} << 50;  // 1 PiB
inline constexpr uint32_t kMaxGpus = 1024;
inline constexpr uint64_t kMaxTimeLimitMs = uint64_t{366} * 24 * 3600 * 1000;

// The parsers' errors read "FLAG TEXT: why", or "\"TEXT\": why" with an
// empty `flag` (the caller names the field).
//
// "2", "0.5", "1.25": CPUs, to thousandths. INVALID_ARGUMENT naming `flag`
// for anything else, zero, or more than kMaxMilliCpus.
absl::StatusOr<uint32_t> ParseCpus(absl::string_view flag, absl::string_view text);
// "4GiB", "4G", "4g", "512MiB", "512M", "100KiB", "1048576" (bytes):
// binary units (K = KiB = 1024). INVALID_ARGUMENT naming `flag` for anything
// else, zero, or more than kMaxMemoryBytes.
absl::StatusOr<uint64_t> ParseMemory(absl::string_view flag, absl::string_view text);
// "2h", "90m", "1h30m", "45s", "500ms" (absl::ParseDuration), in
// milliseconds. INVALID_ARGUMENT naming `flag` unless positive, at least
// 1 ms and at most kMaxTimeLimitMs.
absl::StatusOr<uint64_t> ParseTimeLimit(absl::string_view flag, absl::string_view text);
// A GPU count: INVALID_ARGUMENT naming `flag` above kMaxGpus.
absl::Status CheckGpus(absl::string_view flag, int64_t gpus);

// "1.5" from 1500, "2" from 2000.
std::string FormatCpus(uint32_t milli_cpus);
// In the largest unit it reaches, whole where exact: "4 GiB", "512 MiB",
// "1.5 GiB", "23.5 GiB", "1000 B".
std::string FormatMemory(uint64_t bytes);
// "2h", "1h30m", "45s", "1.5s": what a person would have typed.
std::string FormatTimeLimit(uint64_t ms);
// "cpus 2, memory 4 GiB, gpus 1, time limit 2h": the fields set, or "".
std::string FormatResources(const deja::v1::Resources& resources);

// INVALID_ARGUMENT naming "<field>.milli_cpus" etc. for a value past its
// bound.
absl::Status ValidateResources(absl::string_view field, const deja::v1::Resources& resources);

// What of `want` (cpus, memory, gpus) `have` lacks, as "gpus ≥ 1": the first
// dimension that does not fit, or "" when all do. Zero in `want` asks for
// nothing.
std::string Shortfall(const deja::v1::Resources& want, const deja::v1::Resources& have);

// `have` minus `used`, per dimension, never below zero.
deja::v1::Resources Remaining(const deja::v1::Resources& have, const deja::v1::Resources& used);
// Adds (sign +1) or removes (-1) `job`'s cpus, memory and gpus to `total`.
void AddUse(const deja::v1::Resources& job, int sign, deja::v1::Resources* total);

}  // namespace deja

#endif  // DEJA_COMMON_RESOURCES_H_
