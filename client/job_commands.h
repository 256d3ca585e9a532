// JobCommands: the `deja` commands about single jobs — submit, run,
// status, logs, ls, cancel, workers (docs/cli.md). Register defines them
// (flags, help texts, handlers) on a CommandTable; each method runs one
// command against the scheduler and prints with client/job_format.h.
//
// Every method returns the process exit code (client/cli.h) and reports
// errors as "deja: <message>" on stderr. Not thread-safe: one command at a
// time, on the thread of RunCli.
#ifndef DEJA_CLIENT_JOB_COMMANDS_H_
#define DEJA_CLIENT_JOB_COMMANDS_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "client/command_context.h"
#include "client/command_table.h"
#include "client/spec_flags.h"
#include "deja/v1/scheduler.pb.h"

namespace deja::cli {

// The filters of `deja ls` and `deja cancel`, as typed.
struct JobQueryFlags {
  std::string project;
  std::vector<std::string> states;  // names, any case; "a,b" splits
  std::string app;
  std::vector<std::string> labels;  // K=V
  std::string since;                // a time flag (ParseTimeFlag)
  std::string array;                // an array id, "a12"

  bool any() const {
    return !project.empty() || !states.empty() || !app.empty() || !labels.empty() ||
           !since.empty() || !array.empty();
  }
};

// `deja submit --array K=VALUES --params-file FILE` (client/array_params.h):
// any of them makes the submit a job array.
struct ArrayFlags {
  std::vector<std::string> arrays;
  std::string params_file;

  bool any() const { return !arrays.empty() || !params_file.empty(); }
};

// The ListJobsRequest of `flags`; INVALID_ARGUMENT names the flag at fault.
absl::StatusOr<deja::v1::ListJobsRequest> ListRequestOf(const JobQueryFlags& flags, absl::Time now,
                                                        absl::TimeZone tz);

class JobCommands {
 public:
  // Defines submit, run, status, logs, ls, cancel and workers, in that order.
  static void Register(CommandTable& table);

  // `context` is not owned and must outlive this.
  explicit JobCommands(const CommandContext& context) : context_(context) {}

  // Hashes and uploads the inputs (FileCommands::PrepareSpec), submits, and
  // prints the submit line (the job as JSON with --json). With `dry_run`,
  // uploads and submits nothing and prints the spec as JSON.
  // With `array` flags, submits a job array (one SubmitArray call) and
  // prints its line (FormatArraySubmitLine; the response as JSON with
  // --json); `dry_run` then prints the SubmitArrayRequest.
  int Submit(const SpecFlags& flags, const ArrayFlags& array, bool dry_run);
  // Submits, then prints a line per state change (each change as JSON with
  // --json) until the job ends, re-watching a broken stream with backoff.
  // A job that failed: the last lines of its stderr follow on stderr. With
  // `follow`, the job's stdout and stderr are streamed to ours as it runs,
  // and the state lines go to stderr. Returns ExitCodeForJob.
  int Run(const SpecFlags& flags, bool follow);
  // A job, or an array's summary (ArrayStatusRows) for an array id.
  int Status(const std::string& job_id);
  // `status --files`: a summary line, then a FileLine per workspace file
  // (each FileEntry as JSON with --json), paged through ListJobFiles.
  int Files(const std::string& job_id);
  // The whole stdout (or stderr) log, after the reuse banner of a reused
  // job. With `follow`, then what the log gains until the job ends. With
  // --json, one object per chunk: {"job_id", "stream", "offset", "data"}.
  int Logs(const std::string& job_id, bool stderr_stream, bool follow);
  // The newest `limit` (0: all) jobs the filters match, from `cursor` (a
  // page's next cursor) on; says on stderr how to continue when more match.
  int List(const JobQueryFlags& query, uint32_t limit, const std::string& cursor);
  // Cancels the jobs named, or every job the filters match that has not
  // ended (or in the states given), after a count and a confirmation (a
  // terminal's "y", or `yes`). An array named ("a12") is its jobs that
  // have not ended, without a confirmation. Exit 1 when one could not be
  // cancelled.
  int Cancel(const std::vector<std::string>& job_ids, const JobQueryFlags& query, bool yes);
  int Workers();

 private:
  // Submit with array flags.
  int SubmitArray(const SpecFlags& flags, const ArrayFlags& array, bool dry_run);
  // Submits the spec built from `flags` (PrepareSpec with upload); prints
  // nothing but the upload line. Sets *exit_code on failure.
  std::optional<deja::v1::SubmitResponse> DoSubmit(const SpecFlags& flags, int* exit_code);
  // Polls `job_id` until it ends, handing each version to `on_job` and what
  // each log gains to `on_chunk`; reads the logs once more after the end, so
  // nothing written is missed. Returns the ended job, or the error that
  // stopped the polling (transient ones are retried).
  absl::StatusOr<deja::v1::Job> Follow(
      const std::string& job_id, bool stdout_stream, bool stderr_stream,
      const std::function<void(const deja::v1::Job&)>& on_job,
      const std::function<void(deja::v1::LogStream, uint64_t, absl::string_view)>& on_chunk);
  // After a failure: the last lines of the job's stderr on our stderr.
  void PrintStderrTail(const deja::v1::Job& job);

  const CommandContext& context_;
};

}  // namespace deja::cli

#endif  // DEJA_CLIENT_JOB_COMMANDS_H_
