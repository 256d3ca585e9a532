// Flag-parsing setup shared by the daemons' main.cc files: --help lists the
// flags defined in the daemon's own main.cc under its program name (never a
// build path), and --version prints VersionLine(program).
#ifndef DEJA_COMMON_DAEMON_FLAGS_H_
#define DEJA_COMMON_DAEMON_FLAGS_H_

#include <cstdio>
#include <fstream>
#include <string>

#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/match.h"
#include "common/version.h"

namespace deja {

// Sets the usage text and the version, and parses argv (exits on --help,
// --version or an unknown flag). `program` is what --help's "Flags from"
// line and --version name ("deja-scheduler").
inline void ParseDaemonFlags(int argc, char** argv, const char* program, const char* usage) {
  static std::string name;  // the config's callbacks outlive this call
  name = program;
  absl::SetProgramUsageMessage(usage);
  absl::FlagsUsageConfig config;
  // Abseil groups flags by the file defining them and prints that file's
  // path; the daemon's own main.cc is shown as the program, every other
  // file (Abseil's, gRPC's) is left out of --help.
  config.normalize_filename = [](absl::string_view path) -> std::string {
    return absl::EndsWith(path, "/main.cc") ? name : std::string(path);
  };
  config.contains_help_flags = [](absl::string_view file) { return file == name; };
  config.contains_helpshort_flags = config.contains_help_flags;
  config.version_string = [] { return VersionLine(name) + "\n"; };
  absl::SetFlagsUsageConfig(config);
  absl::ParseCommandLine(argc, argv);
}

// Writes `port` into `file` (nothing when `file` is empty) atomically: a
// reader sees all of it or nothing (--port_file, --http_port_file).
inline void WritePortFile(const std::string& file, int port) {
  if (file.empty()) return;
  const std::string tmp = file + ".tmp";
  std::ofstream(tmp) << port << "\n";
  std::rename(tmp.c_str(), file.c_str());
}

}  // namespace deja

#endif  // DEJA_COMMON_DAEMON_FLAGS_H_
