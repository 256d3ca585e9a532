// Flag-parsing setup shared by the daemons' main.cc files, so that --help
// lists the flags defined in the daemon's own main.cc.
#ifndef DEJA_COMMON_DAEMON_FLAGS_H_
#define DEJA_COMMON_DAEMON_FLAGS_H_

#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/match.h"

namespace deja {

// Sets the usage text, makes --help show the flags of files named
// "main.cc", and parses argv (exits on --help or an unknown flag).
inline void ParseDaemonFlags(int argc, char** argv, const char* usage) {
  absl::SetProgramUsageMessage(usage);
  absl::FlagsUsageConfig config;
  config.contains_help_flags = [](absl::string_view path) {
    return absl::EndsWith(path, "main.cc");
  };
  config.contains_helpshort_flags = config.contains_help_flags;
  absl::SetFlagsUsageConfig(config);
  absl::ParseCommandLine(argc, argv);
}

}  // namespace deja

#endif  // DEJA_COMMON_DAEMON_FLAGS_H_
