// What the job commands print (`deja submit|run|status|logs|ls|workers|get`):
// one-line states, the `deja status` rows and tables, the job and worker
// tables, and `deja run`'s exit code. docs/cli.md shows each.
//
// Pure functions of their arguments (time and time zone are passed in);
// thread-safe.
#ifndef DEJA_CLIENT_JOB_FORMAT_H_
#define DEJA_CLIENT_JOB_FORMAT_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/time/time.h"
#include "deja/v1/job.pb.h"
#include "deja/v1/scheduler.pb.h"

namespace deja::cli {

// "name@version", or "name" without a version.
std::string FormatApp(const deja::v1::AppSpec& app);
// argv joined by spaces; words with spaces or quotes are single-quoted.
std::string FormatCommand(const deja::v1::AppSpec& app);

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
// Job arrays. "1998 succeeded, 2 failed": counts by state name
// (JobArray.states), in the order jobs go through the states; "no jobs"
// when empty.
std::string ArrayStateCounts(const google::protobuf::Map<std::string, uint32_t>& states);
// `deja submit --array`: "a101: 2000 jobs, j101 to j2100: 1360 queued, 640
// materializing (640 reused)".
std::string FormatArraySubmitLine(const deja::v1::SubmitArrayResponse& response);
// `deja status a101`: array, project, created, jobs, states, reused, and
// the first failed jobs.
std::vector<std::pair<std::string, std::string>> ArrayStatusRows(const deja::v1::JobArray& array,
                                                                 absl::TimeZone tz);

// `deja status` tables below the key/value rows; "" when the job has none.
// INPUT KIND SIZE DIGEST PATH (SIZE: a dir's total_bytes; PATH: the
// workspace path, default inputs/NAME).
std::string InputsTable(const deja::v1::Job& job);
// OUTPUT SIZE DIGEST.
std::string OutputsTable(const deja::v1::Job& job);
// `deja status --files`, one line per file: mode (octal, "l" for a
// symlink), size in bytes right-aligned to 12, path:
// "0644       1048576  out/model.bin".
std::string FileLine(const deja::v1::FileEntry& file);
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
// DISK: "12.3 GiB free", or "disk full: 812.0 MiB free" while the worker
// takes no job (its disk is below --min_free_disk); "-" before it said.
std::string WorkersTable(const std::vector<deja::v1::WorkerInfo>& workers);

}  // namespace deja::cli

#endif  // DEJA_CLIENT_JOB_FORMAT_H_
