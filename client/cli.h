// The `deja` command line: RunCli parses the arguments (CLI11) and runs the
// command given. The commands live in their families — JobCommands
// (client/job_commands.h), FileCommands (client/file_commands.h),
// CacheCommands (client/cache_commands.h), PipelineCommands
// (client/pipeline_commands.h) — which register themselves on a
// CommandTable (client/command_table.h). docs/cli.md describes every
// command, flag and exit code.
#ifndef DEJA_CLIENT_CLI_H_
#define DEJA_CLIENT_CLI_H_

#include <ostream>

namespace deja {

// Runs `deja` with `argv` (argv[0] is the program name), writing normal output
// to `out` and errors to `err`. Returns the process exit code: 0 success;
// 1 an error from the scheduler or the connection; 2 a usage error; for
// `deja run`, the job's outcome (see ExitCodeForJob in client/job_format.h).
int RunCli(int argc, char** argv, std::ostream& out, std::ostream& err);

namespace cli {

// The exit codes every command returns.
inline constexpr int kExitOk = 0;
inline constexpr int kExitError = 1;
inline constexpr int kExitUsage = 2;
inline constexpr int kExitCancelled = 130;

}  // namespace cli
}  // namespace deja

#endif  // DEJA_CLIENT_CLI_H_
