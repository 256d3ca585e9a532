// FileCommands: what moves files between the local disk and the content
// store — the --input files of `deja submit|run` (hashed through the hash
// cache, uploaded when the store lacks them, attached to the spec) and
// `deja get` (a succeeded job's outputs, downloaded with their mode bits).
//
// Every method reports errors as "deja: <message>" on stderr: a bad flag or
// an unreadable input is a usage error (exit 2), a failed call exit 1. Not
// thread-safe: one command at a time, on the thread of RunCli.
#ifndef DEJA_CLIENT_FILE_COMMANDS_H_
#define DEJA_CLIENT_FILE_COMMANDS_H_

#include <optional>
#include <string>

#include "client/command_context.h"
#include "client/command_table.h"
#include "client/spec_flags.h"
#include "deja/v1/job.pb.h"

namespace deja::cli {

class FileCommands {
 public:
  // Defines `deja get`.
  static void Register(CommandTable& table);

  // `context` is not owned and must outlive this.
  explicit FileCommands(const CommandContext& context) : context_(context) {}

  // Builds the spec from `flags`: checks every flag first, then hashes the
  // inputs (through the hash cache) and, when `upload`, uploads the blobs
  // the store lacks, printing what it did on stderr (and the input phase's
  // cost with --timing). Sets *exit_code on failure.
  std::optional<deja::v1::JobSpec> PrepareSpec(const SpecFlags& flags, bool upload, int* exit_code);

  // `deja get`: every output of a SUCCEEDED job into `out_dir` (default
  // ./JOB/), byte-identical and with its mode bits; output paths are
  // validated like a user's flag before anything is written.
  int Get(const std::string& job_id, const std::string& out_dir);

 private:
  const CommandContext& context_;
};

}  // namespace deja::cli

#endif  // DEJA_CLIENT_FILE_COMMANDS_H_
