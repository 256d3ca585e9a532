// PipelineCommands: `deja pipeline run|plan|status|ls|cancel|retry`, the
// pipeline commands of the CLI (docs/cli.md#pipelines) — their flags and
// help texts (Register), and running them: following a pipeline to its end
// with the live view (client/live_view.h), plain lines or JSON. What they
// print is made by client/pipeline_format.h.
//
// The YAML file is parsed by LoadPipelineFile (client/pipeline_yaml.h); the
// local files it names are hashed and uploaded here, like `--input`.
#ifndef DEJA_CLIENT_PIPELINE_COMMANDS_H_
#define DEJA_CLIENT_PIPELINE_COMMANDS_H_

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "client/command_table.h"
#include "client/deja_client.h"
#include "client/pipeline_format.h"
#include "deja/v1/pipeline.pb.h"

namespace deja::cli {

// The flags of `deja pipeline run` and `deja pipeline plan`, as parsed.
struct PipelineFlags {
  std::string file;
  std::vector<std::string> params;  // "K=V": overrides of pipeline parameters
  std::string project;              // "" keeps the file's (or the default)
  bool force = false;               // spec.force: every node runs fresh
  std::vector<std::string> force_nodes;
  bool no_reuse = false;  // spec.reuse = false
};

// `--param K=V`... as a map. INVALID_ARGUMENT naming the flag for a bad
// K=V or a key given twice.
absl::StatusOr<std::map<std::string, std::string>> ParseParamOverrides(
    const std::vector<std::string>& params);

// Applies --project, --force, --force-node and --no-reuse to `spec`.
// INVALID_ARGUMENT naming the flag when --force-node names no node of the
// pipeline (the message lists the nodes).
absl::Status ApplyPipelineFlags(const PipelineFlags& flags, deja::v1::PipelineSpec* spec);

struct PipelineCommandOptions {
  bool json = false;
  // Draw the live view instead of plain lines (stdout is a terminal).
  bool live = false;
  size_t width = 0;  // of the terminal, for the live view
  // Draw upload progress bars on `err` (stderr is a terminal).
  bool progress = false;
  absl::TimeZone tz = absl::LocalTimeZone();
  // Redraw interval of the live view; first backoff of a re-watch.
  absl::Duration redraw_interval = absl::Milliseconds(100);
  absl::Duration initial_backoff = absl::Milliseconds(250);
};

// The commands. Each returns the process exit code (cli::kExit*) and prints
// errors as "deja: <message>" on `err`. `client` is not owned and must
// outlive this. Thread-compatible: one command at a time.
class PipelineCommands {
 public:
  // Defines `deja pipeline` and its commands run, plan, status, ls, cancel
  // and retry, in that order. Their handlers draw the live view when stdout
  // is a terminal.
  static void Register(CommandTable& table);

  PipelineCommands(const DejaClient& client, std::ostream& out, std::ostream& err,
                   PipelineCommandOptions options);

  // Loads the file, uploads its local inputs, submits, watches to the end.
  // 0 when the pipeline SUCCEEDED, 1 otherwise, 2 for a usage error (a bad
  // flag, a bad pipeline file, an input that cannot be read).
  int Run(const PipelineFlags& flags);
  // The same up to the submit, then PlanPipeline and the plan table.
  int Plan(const PipelineFlags& flags);
  int Status(const std::string& pipeline_id);
  int List(const std::string& project, uint32_t limit);
  int Cancel(const std::string& pipeline_id);
  // RetryPipeline, then watches like Run.
  int Retry(const std::string& pipeline_id, const std::string& node);

 private:
  int Fail(const absl::Status& status);
  int UsageError(const absl::Status& status);
  // Loads and resolves `flags.file` into a request: parameters, flags,
  // local inputs hashed (through the hash cache), uploaded and attached.
  // Sets *exit_code on failure.
  std::optional<deja::v1::SubmitPipelineRequest> PrepareRequest(const PipelineFlags& flags,
                                                                int* exit_code);
  // Prints the start line, follows the pipeline to its end (live view,
  // plain lines or JSON) and returns the exit code.
  int Follow(const deja::v1::Pipeline& started);
  // Watches until the pipeline ends, re-watching a broken stream with
  // backoff; `on_lost` is called with the reason once per interruption.
  absl::StatusOr<deja::v1::Pipeline> WatchToEnd(
      const std::string& pipeline_id,
      const std::function<void(const deja::v1::Pipeline&)>& on_update,
      const std::function<void(const std::string&)>& on_lost);
  // Looks up the worker of every node whose job is ASSIGNED, RUNNING or
  // MATERIALIZING and was not looked up in that state yet.
  void LookUpWorkers(const deja::v1::Pipeline& pipeline, WorkerOfJob* workers,
                     std::map<std::string, int>* looked_up);

  const DejaClient& client_;
  std::ostream& out_;
  std::ostream& err_;
  const PipelineCommandOptions options_;
};

}  // namespace deja::cli

#endif  // DEJA_CLIENT_PIPELINE_COMMANDS_H_
