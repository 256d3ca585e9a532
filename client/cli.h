// The `deja` command line: argument parsing (CLI11), the commands, and the
// pure formatting pieces they use, exposed so tests can check them without a
// scheduler. docs/cli.md describes every command, flag and exit code.
#ifndef DEJA_CLIENT_CLI_H_
#define DEJA_CLIENT_CLI_H_

#include <cstdint>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "deja/v1/job.pb.h"
#include "deja/v1/scheduler.pb.h"
#include "google/protobuf/message.h"

namespace deja {

// Runs `deja` with `argv` (argv[0] is the program name), writing normal output
// to `out` and errors to `err`. Returns the process exit code: 0 success;
// 1 an error from the scheduler or the connection; 2 a usage error; for
// `deja run`, the job's outcome (see ExitCodeForJob).
int RunCli(int argc, char** argv, std::ostream& out, std::ostream& err);

namespace cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitError = 1;
inline constexpr int kExitUsage = 2;
inline constexpr int kExitCancelled = 130;

inline constexpr char kDefaultScheduler[] = "127.0.0.1:7070";
inline constexpr char kSchedulerEnv[] = "DEJA_SCHEDULER";

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
  std::string memo;  // "", "on", "off" or "inherit"
  bool force = false;
  bool side_effects = false;
  bool no_reuse = false;  // app.reuse = false
  std::string reuse_job;
  std::string request_id;
  std::vector<std::string> command;
};

// Splits "KEY=VALUE" at the first '='. INVALID_ARGUMENT naming `flag` and the
// argument when there is no '=' or the key is empty.
absl::StatusOr<std::pair<std::string, std::string>> ParseKeyValue(absl::string_view flag,
                                                                  absl::string_view arg);

// Builds, normalizes (NormalizeJobSpec) and validates (ValidateJobSpec) the
// spec. request_id is RandomRequestId() unless given. INVALID_ARGUMENT naming
// the flag or the spec field on bad input (a repeated key is an error).
// `flags.inputs` is not read here: hashing them is the caller's job
// (PrepareInputs), which passes the resulting `inputs`.
absl::StatusOr<deja::v1::JobSpec> BuildJobSpec(const SpecFlags& flags,
                                               const std::vector<deja::v1::InputRef>& inputs = {});

// 16 random lowercase hex characters.
std::string RandomRequestId();

// `--scheduler` if given, else $DEJA_SCHEDULER if set and non-empty, else
// 127.0.0.1:7070.
std::string ResolveScheduler(const std::string& flag_value);

// Human durations: "850ms", "1.2s" (tenths, truncated), "3m12s", "2h05m".
// Negative durations print as "0ms".
std::string FormatDuration(int64_t millis);
// "2024-05-01 14:03:07" in `tz`.
std::string FormatTimestamp(int64_t unix_millis, absl::TimeZone tz);
// "512 B", "1.5 KiB", "3.0 MiB", "1.2 GiB".
std::string FormatBytes(uint64_t bytes);
// "name@version", or "name" without a version.
std::string FormatApp(const deja::v1::AppSpec& app);
// argv joined by spaces; words with spaces or quotes are single-quoted.
std::string FormatCommand(const deja::v1::AppSpec& app);

// Left-aligned columns separated by two spaces; no trailing spaces; every
// line ends with '\n'. Empty cells print as "-".
std::string RenderTable(const std::vector<std::string>& header,
                        const std::vector<std::vector<std::string>>& rows);
// The two-column "key  value" table of `deja status`.
std::string RenderKeyValues(const std::vector<std::pair<std::string, std::string>>& rows);

// `deja submit`: "j12 queued" or "j13 reusing j12 (saves 1.2s)"; otherwise
// the id and the lower-case state ("j14 waiting").
std::string FormatSubmitLine(const deja::v1::SubmitResponse& response);
// `deja run` progress: "j12 QUEUED", "j12 RUNNING on w-a",
// "j12 SUCCEEDED exit 0 in 1.2s", "j13 SUCCEEDED reused from j12, saved 1.2s",
// "j12 FAILED exit 3: <message>", "j12 CANCELLED".
std::string FormatStateLine(const deja::v1::Job& job);
// What `deja run` prints a line for: state, attempt and worker.
std::string StateLineKey(const deja::v1::Job& job);
// `deja run`'s exit code for a terminal job: SUCCEEDED 0; FAILED its exit
// code (a signal -N gives 128+N, capped at 255), 1 without a non-zero exit
// code; CANCELLED 130.
int ExitCodeForJob(const deja::v1::Job& job);

// The rows `deja status` prints: only the fields the job has.
std::vector<std::pair<std::string, std::string>> StatusRows(const deja::v1::Job& job,
                                                            absl::TimeZone tz);
// `deja status` tables below the key/value rows; "" when the job has none.
// INPUT KIND SIZE DIGEST PATH (SIZE: a dir's total_bytes; PATH: the
// workspace path, default inputs/NAME).
std::string InputsTable(const deja::v1::Job& job);
// OUTPUT SIZE DIGEST.
std::string OutputsTable(const deja::v1::Job& job);
// `deja get`: "j12: downloaded 3 files (1.2 GiB) to j12/".
std::string FormatGetLine(const std::string& job_id, uint64_t files, uint64_t bytes,
                          const std::string& dir);
// The directory `deja get` writes into: `out_flag`, else "<job_id>".
std::string GetOutputDir(const std::string& job_id, const std::string& out_flag);
// `deja logs` banner for a reused job, without a newline; empty otherwise.
std::string ReuseBanner(const deja::v1::Job& job, absl::TimeZone tz);
// `deja ls`: JOB PROJECT APP STATE WORKER CREATED DURATION REUSED-FROM. A job
// still running shows the time since it started (at `now`).
std::string JobsTable(const std::vector<deja::v1::Job>& jobs, absl::TimeZone tz, absl::Time now);
// `deja workers`: ID SLOTS BUSY CONNECTED ADVERTISE PLATFORM.
std::string WorkersTable(const std::vector<deja::v1::WorkerInfo>& workers);

// Protobuf JSON on one line, proto field names (snake_case), default values
// included.
std::string ToJson(const google::protobuf::Message& message);

}  // namespace cli
}  // namespace deja

#endif  // DEJA_CLIENT_CLI_H_
