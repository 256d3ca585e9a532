// The `deja` command line: argument parsing (CLI11), the commands, and the
// pure formatting pieces they use, exposed so tests can check them without a
// scheduler. docs/cli.md describes every command, flag and exit code.
#ifndef DEJA_CLIENT_CLI_H_
#define DEJA_CLIENT_CLI_H_

#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "deja/v1/job.pb.h"
#include "deja/v1/scheduler.pb.h"
#include "google/protobuf/message.h"

namespace deja {

class DejaClient;  // client/deja_client.h

// Runs `deja` with `argv` (argv[0] is the program name), writing normal output
// to `out` and errors to `err`. Returns the process exit code: 0 success;
// 1 an error from the scheduler or the connection; 2 a usage error; for
// `deja run`, the job's outcome (see ExitCodeForJob).
int RunCli(int argc, char** argv, std::ostream& out, std::ostream& err);

namespace cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitError = 1;
inline constexpr int kExitUsage = 2;

// Prints the one-line error of a failed call to `err` ("deja: <message>",
// or "deja: cannot reach scheduler at HOST:PORT: ..." when the call failed
// for want of a connection) and returns kExitError.
int ReportCallError(const DejaClient& client, std::ostream& err, const absl::Status& status);
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
  std::vector<std::string> command;
  // --timing: print the input phase's cost on stderr (FormatInputTiming).
  // Not part of the spec.
  bool timing = false;
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
// the id and the lower-case state ("j14 waiting for j12 (identical job in
// flight)").
std::string FormatSubmitLine(const deja::v1::SubmitResponse& response);
// `deja run` progress: "j12 QUEUED", "j12 RUNNING on w-a",
// "j5 WAITING for j4 (identical job in flight)",
// "j12 SUCCEEDED exit 0 in 1.2s", "j13 SUCCEEDED reused from j12, saved 1.2s",
// "j12 FAILED exit 3: <message>", "j12 CANCELLED". QUEUED, FAILED and
// CANCELLED lines, and lines of attempts after the first, end with ": <message>"
// when the job has one.
std::string FormatStateLine(const deja::v1::Job& job);
// What `deja run` prints a line for: state, attempt and worker.
std::string StateLineKey(const deja::v1::Job& job);
// `deja run`'s exit code for a terminal job: SUCCEEDED 0; FAILED its exit
// code (a signal -N gives 128+N, capped at 255), 1 without a non-zero exit
// code; CANCELLED 130.
int ExitCodeForJob(const deja::v1::Job& job);

// The rows `deja status` prints: only the fields the job has. A finished
// job whose expires_at_ms is at or before `now` (or whose workspace_expired
// is set) shows "workspace  expired at <time>" instead of "expires  <time>".
std::vector<std::pair<std::string, std::string>> StatusRows(const deja::v1::Job& job,
                                                            absl::TimeZone tz, absl::Time now);
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

// ---------------------------------------------------------------------------
// Memoization controls: project settings, the memo index, explain, stats.

// A time flag (--before, --since): RFC 3339 ("2026-11-22T10:00:00Z",
// "2026-11-22T11:00:00+01:00"), a date ("2026-11-22": midnight in `tz`), or an
// age ("90s", "30m", "2h", "3d", "1w", "1d12h") meaning `now` minus the age.
// INVALID_ARGUMENT naming `flag` and the argument otherwise.
absl::StatusOr<absl::Time> ParseTimeFlag(absl::string_view flag, absl::string_view arg,
                                         absl::Time now, absl::TimeZone tz);

// True for a job id: 'j' followed by one or more digits ("j12").
bool LooksLikeJobId(absl::string_view arg);

// `deja project set P`: `memoization` "" (unchanged), "on" or "off" (any
// case); `retention_hours` unset: unchanged. INVALID_ARGUMENT when neither is
// given or `memoization` is something else. The range of the retention is
// the scheduler's to check.
absl::StatusOr<deja::v1::SetProjectRequest> BuildSetProjectRequest(
    const std::string& project, const std::string& memoization,
    std::optional<int32_t> retention_hours);

// `deja cache show ARG`: a job id (LooksLikeJobId) selects by job, anything
// else is a job hash in `project` (empty: the scheduler's "default").
deja::v1::GetMemoRequest BuildGetMemoRequest(const std::string& arg, const std::string& project);

// The selectors of `deja cache evict`, as parsed.
struct EvictFlags {
  std::string project;
  std::string hash;
  std::string app;
  std::string before;  // a time flag (ParseTimeFlag)
};
// Exactly one of hash, app and before; INVALID_ARGUMENT otherwise (and for a
// bad --before or one before 1970).
absl::StatusOr<deja::v1::EvictMemoRequest> BuildEvictRequest(const EvictFlags& flags,
                                                             absl::Time now, absl::TimeZone tz);

// `deja project get|set`: project, memoization (on/off), retention ("24h"),
// updated (when set).
std::vector<std::pair<std::string, std::string>> ProjectRows(
    const deja::v1::ProjectSettings& settings, absl::TimeZone tz);

// Total size of the files of a manifest.
uint64_t ManifestBytes(const deja::v1::Manifest& manifest);
// `deja cache ls` and `deja cache evict`: HASH (first 12 hex) PROJECT APP
// SOURCE-JOB SIZE CREATED EXPIRES ("never" for 0).
std::string MemoTable(const std::vector<deja::v1::MemoEntry>& entries, absl::TimeZone tz);
// `deja cache show`: hash, project, app, source job, worker, run time,
// created, expires, files; then OutputsTable-like OUTPUT SIZE DIGEST rows
// (see MemoOutputsTable).
std::vector<std::pair<std::string, std::string>> MemoRows(const deja::v1::MemoEntry& entry,
                                                          absl::TimeZone tz);
std::string MemoOutputsTable(const deja::v1::MemoEntry& entry);
// `deja cache evict`: "evicted 3 entries" ("evicted 1 entry").
std::string FormatEvictLine(size_t count);

// `deja explain`: job, verdict, summary and, when the response has them, the
// nearest entry ("j12 (hash <full hash>)") and a FIELD THIS-JOB NEAREST-ENTRY
// table of the differences (long values shortened to 60 characters).
std::string ExplainText(const deja::v1::ExplainResponse& response);

// `deja stats`: APP JOBS SUCCEEDED FAILED REUSED REUSE-RATE RUN-TIME
// TIME-SAVED, one row per app and a "total" row. REUSE-RATE is a percentage
// with one decimal, "-" when nothing succeeded.
std::string StatsTable(const deja::v1::StatsResponse& stats);

// Protobuf JSON on one line, proto field names (snake_case), default values
// included.
std::string ToJson(const google::protobuf::Message& message);

}  // namespace cli
}  // namespace deja

#endif  // DEJA_CLIENT_CLI_H_
