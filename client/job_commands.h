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
#include <optional>
#include <string>

#include "client/command_context.h"
#include "client/command_table.h"
#include "client/spec_flags.h"
#include "deja/v1/scheduler.pb.h"

namespace deja::cli {

class JobCommands {
 public:
  // Defines submit, run, status, logs, ls, cancel and workers, in that order.
  static void Register(CommandTable& table);

  // `context` is not owned and must outlive this.
  explicit JobCommands(const CommandContext& context) : context_(context) {}

  // Hashes and uploads the inputs (FileCommands::PrepareSpec), submits, and
  // prints the submit line (the job as JSON with --json). With `dry_run`,
  // uploads and submits nothing and prints the spec as JSON.
  int Submit(const SpecFlags& flags, bool dry_run);
  // Submits, then prints a line per state change (each change as JSON with
  // --json) until the job ends, re-watching a broken stream with backoff.
  // Returns ExitCodeForJob.
  int Run(const SpecFlags& flags);
  int Status(const std::string& job_id);
  // `status --files`: a summary line, then a FileLine per workspace file
  // (each FileEntry as JSON with --json), paged through ListJobFiles.
  int Files(const std::string& job_id);
  // The whole stdout (or stderr) log, after the reuse banner of a reused
  // job.
  int Logs(const std::string& job_id, bool stderr_stream);
  // `state_name` "" or a job state name (any case); usage error otherwise.
  int List(const std::string& project, const std::string& state_name, uint32_t limit);
  int Cancel(const std::string& job_id);
  int Workers();

 private:
  // Submits the spec built from `flags` (PrepareSpec with upload); prints
  // nothing but the upload line. Sets *exit_code on failure.
  std::optional<deja::v1::SubmitResponse> DoSubmit(const SpecFlags& flags, int* exit_code);

  const CommandContext& context_;
};

}  // namespace deja::cli

#endif  // DEJA_CLIENT_JOB_COMMANDS_H_
