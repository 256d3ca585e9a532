// `deja pipeline run|plan|status|ls|cancel|retry`: the pipeline commands of
// the CLI (docs/cli.md#pipelines), and the pure pieces they print with —
// the live view, the plain progress lines, the tables — exposed so tests
// can check them without a scheduler.
//
// The YAML file is parsed by LoadPipelineFile (client/pipeline_yaml.h); the
// local files it names are hashed and uploaded here, like `--input`.
#ifndef DEJA_CLIENT_PIPELINE_CLI_H_
#define DEJA_CLIENT_PIPELINE_CLI_H_

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
#include "client/deja_client.h"
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

// "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED".
std::string PipelineStateName(deja::v1::PipelineState state);
// True for a node in a final state: SUCCEEDED, FAILED, UPSTREAM_FAILED,
// CANCELLED.
bool IsNodeDone(deja::v1::NodeState state);
// The state of a node in one word: PENDING; its job's state while it is
// SUBMITTED (QUEUED, RUNNING, MATERIALIZING...); else the node's
// (SUCCEEDED, FAILED, UPSTREAM_FAILED, CANCELLED).
std::string NodeStateName(const deja::v1::NodeStatus& node);
// The node's job ran for (finished fresh), or has run for at `now` (still
// running); 0 for a reuse or a node that has not started.
int64_t NodeRunMillis(const deja::v1::NodeStatus& node, absl::Time now);

// "3/5 done, 1 failed, 2 reused, 3h12m saved": done counts nodes in a final
// state; "failed" only when some did; "saved" only when a reuse saved time.
std::string PipelineSummary(const deja::v1::Pipeline& pipeline);
// "pipeline p3: 3 nodes" (", run 2" after a retry).
std::string PipelineStartLine(const deja::v1::Pipeline& pipeline);
// "pipeline p3 SUCCEEDED", "pipeline p3 FAILED: <message>".
std::string PipelineEndLine(const deja::v1::Pipeline& pipeline);
// 0 for PIPELINE_SUCCEEDED, 1 otherwise.
int ExitCodeForPipeline(const deja::v1::Pipeline& pipeline);

// Job id -> the worker it runs on, as far as the CLI looked it up (the
// pipeline record does not carry workers).
using WorkerOfJob = std::map<std::string, std::string>;

// The live view: one line per node, in the pipeline's order, columns
// aligned — name, state (pending, queued, assigned to wN, running on wN,
// MATERIALIZING, WAITING, SUCCEEDED, FAILED, UPSTREAM_FAILED, CANCELLED),
// job id, "reused from jN", then the run time ("12.4s", counting at `now`
// while it runs) or "saved 1m12s" for a reuse, and ": <message>" for a
// failure — followed by the PipelineSummary line. No trailing newlines.
std::vector<std::string> LiveViewLines(const deja::v1::Pipeline& pipeline,
                                       const WorkerOfJob& workers, absl::Time now);

// The plain progress line of a node (stdout not a terminal), or "" when its
// state is not worth a line (PENDING, ASSIGNED, QUEUED without a message, a
// job that ended while its node has not yet): "train RUNNING j4 on w1",
// "train MATERIALIZING j4 from j2", "train WAITING j4 (identical job in
// flight)", "preprocess SUCCEEDED j3 in 2.1s", "train SUCCEEDED j4 reused
// from j2, saved 5.0s", "evaluate FAILED j5: <message>", "evaluate
// UPSTREAM_FAILED: <message>", "train CANCELLED j4". A caller prints a line
// when it differs from the node's previous one.
std::string NodePlainLine(const deja::v1::NodeStatus& node, const WorkerOfJob& workers);

// `deja pipeline status`: the pipeline's rows (pipeline, name, project,
// state, run, source, params, created, finished, message) ...
std::vector<std::pair<std::string, std::string>> PipelineRows(const deja::v1::Pipeline& pipeline,
                                                              absl::TimeZone tz);
// ... and its nodes: NODE STATE JOB REUSED-FROM DURATION/SAVED MESSAGE
// (DURATION/SAVED: the run time, or "saved 1.2s" for a reuse).
std::string PipelineNodesTable(const deja::v1::Pipeline& pipeline, absl::Time now);
// `deja pipeline ls`: ID NAME PROJECT STATE NODES CREATED (NODES: "2/3",
// nodes done of all).
std::string PipelinesTable(const std::vector<deja::v1::Pipeline>& pipelines, absl::TimeZone tz);
// `deja pipeline plan`: NODE WOULD SOURCE EXPIRES SAVES REASON, WOULD being
// "reuse" or "run".
std::string PlanTable(const deja::v1::PipelinePlan& plan, absl::TimeZone tz);
// "expected time saved: 3m12s" ("none" when nothing would be reused).
std::string PlanSavedLine(const deja::v1::PipelinePlan& plan);

// Redraws a block of lines in place on a terminal: cursor up over the
// lines drawn last time, each line cleared and rewritten, leftovers below
// erased. Lines are cut to `width` - 1 columns (0: not cut) so that none
// wraps, which would break the count. Not thread-safe.
class LiveView {
 public:
  LiveView(std::ostream& out, size_t width) : out_(out), width_(width) {}
  // Replaces the block drawn last with `lines`; the cursor ends below them.
  void Draw(const std::vector<std::string>& lines);
  // Erases the block (e.g. to print a message), so the next Draw starts
  // fresh where it was.
  void Erase();

 private:
  std::ostream& out_;
  const size_t width_;
  size_t drawn_ = 0;
  std::vector<std::string> last_;
};

// True when `out` is std::cout, file descriptor 1 is a terminal and TERM is
// not "dumb". Sets *width to the terminal's columns (0 if unknown).
bool StdoutIsTerminal(const std::ostream& out, size_t* width);

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

#endif  // DEJA_CLIENT_PIPELINE_CLI_H_
