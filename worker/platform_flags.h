// The worker's platform properties (Register.platform), from the repeatable
// --platform K=V flag plus what is detected (os, arch).
#ifndef DEJA_WORKER_PLATFORM_FLAGS_H_
#define DEJA_WORKER_PLATFORM_FLAGS_H_

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace deja::worker {

// Abseil keeps only the last occurrence of a flag; --platform is documented
// as repeatable, so this returns argv with every occurrence of it
// ("--platform V", "--platform=V", one dash too) merged into one
// "--platform=V1,V2,..." placed right after argv[0] and stored in
// `*merged_storage` (which must outlive the result). Arguments after "--"
// are left alone. The other pointers are argv's own.
std::vector<char*> MergePlatformFlags(int argc, char** argv, std::string* merged_storage);

// The platform map from the --platform values ("K=V" each): os=linux and
// arch=<uname -m> are added. INVALID_ARGUMENT naming the flag and value for
// a value without "K=", a key given twice, or os/arch (detected, not set).
absl::StatusOr<std::map<std::string, std::string>> ParsePlatform(
    const std::vector<std::string>& values);

}  // namespace deja::worker

#endif  // DEJA_WORKER_PLATFORM_FLAGS_H_
