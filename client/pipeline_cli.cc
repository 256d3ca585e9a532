#include "client/pipeline_cli.h"

#include <google/protobuf/util/message_differencer.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <set>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "client/cli.h"
#include "client/hash_cache.h"
#include "client/inputs.h"
#include "client/pipeline_yaml.h"
#include "client/progress.h"
#include "common/job_state.h"

namespace deja::cli {
namespace {

using deja::v1::NodeStatus;
using deja::v1::Pipeline;

std::string JobState(deja::v1::JobState state) { return std::string(JobStateName(state)); }

// Pads every column but the last to its widest cell; empty cells stay
// blank; no trailing spaces.
std::vector<std::string> AlignColumns(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> widths;
  for (const auto& row : rows) {
    if (widths.size() < row.size()) widths.resize(row.size(), 0);
    for (size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], row[i].size());
  }
  std::vector<std::string> lines;
  for (const auto& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      if (i > 0) line += "  ";
      line += row[i];
      if (i + 1 < row.size() && row[i].size() < widths[i]) {
        line.append(widths[i] - row[i].size(), ' ');
      }
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    lines.push_back(std::move(line));
  }
  return lines;
}

bool IsReuse(const NodeStatus& node) { return !node.reused_from().empty(); }

std::string WorkerOf(const NodeStatus& node, const WorkerOfJob& workers) {
  auto it = workers.find(node.job_id());
  return it == workers.end() ? "" : it->second;
}

// The live view's state cell: lower case while nothing notable happens.
std::string LiveState(const NodeStatus& node, const WorkerOfJob& workers) {
  if (node.state() == deja::v1::NODE_PENDING) return "pending";
  if (node.state() != deja::v1::NODE_SUBMITTED) return NodeStateName(node);
  const std::string worker = WorkerOf(node, workers);
  switch (node.job_state()) {
    case deja::v1::QUEUED:
    case deja::v1::JOB_STATE_UNSPECIFIED:
      return "queued";
    case deja::v1::ASSIGNED:
      return worker.empty() ? "assigned" : absl::StrCat("assigned to ", worker);
    case deja::v1::RUNNING:
      return worker.empty() ? "running" : absl::StrCat("running on ", worker);
    default:
      return JobState(node.job_state());
  }
}

// The live view's and the status table's time cell.
std::string TimeCell(const NodeStatus& node, absl::Time now) {
  if (IsReuse(node)) {
    return node.time_saved_ms() > 0 ? absl::StrCat("saved ", FormatDuration(node.time_saved_ms()))
                                    : "";
  }
  int64_t run = NodeRunMillis(node, now);
  return run > 0 ? FormatDuration(run) : "";
}

bool NodeNamed(const deja::v1::PipelineSpec& spec, const std::string& name) {
  return std::any_of(spec.nodes().begin(), spec.nodes().end(),
                     [&name](const auto& node) { return node.name() == name; });
}

}  // namespace

// ---------------------------------------------------------------------------
// Pure pieces.

absl::StatusOr<std::map<std::string, std::string>> ParseParamOverrides(
    const std::vector<std::string>& params) {
  std::map<std::string, std::string> overrides;
  for (const std::string& arg : params) {
    absl::StatusOr<std::pair<std::string, std::string>> kv = ParseKeyValue("--param", arg);
    if (!kv.ok()) return kv.status();
    if (!overrides.emplace(kv->first, kv->second).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("--param \"", arg, "\": key \"", kv->first, "\" given twice"));
    }
  }
  return overrides;
}

absl::Status ApplyPipelineFlags(const PipelineFlags& flags, deja::v1::PipelineSpec* spec) {
  if (!flags.project.empty()) spec->set_project(flags.project);
  if (flags.force) spec->set_force(true);
  if (flags.no_reuse) spec->set_reuse(false);
  for (const std::string& node : flags.force_nodes) {
    if (!NodeNamed(*spec, node)) {
      std::vector<std::string> names;
      for (const auto& n : spec->nodes()) names.push_back(n.name());
      return absl::InvalidArgumentError(
          absl::StrCat("--force-node \"", node, "\": the pipeline has no node of that name (its "
                       "nodes: ",
                       absl::StrJoin(names, ", "), ")"));
    }
    if (std::find(spec->force_nodes().begin(), spec->force_nodes().end(), node) ==
        spec->force_nodes().end()) {
      spec->add_force_nodes(node);
    }
  }
  return absl::OkStatus();
}

std::string PipelineStateName(deja::v1::PipelineState state) {
  switch (state) {
    case deja::v1::PIPELINE_RUNNING:
      return "RUNNING";
    case deja::v1::PIPELINE_SUCCEEDED:
      return "SUCCEEDED";
    case deja::v1::PIPELINE_FAILED:
      return "FAILED";
    case deja::v1::PIPELINE_CANCELLED:
      return "CANCELLED";
    default:
      return "UNKNOWN";
  }
}

bool IsNodeDone(deja::v1::NodeState state) {
  return state == deja::v1::NODE_SUCCEEDED || state == deja::v1::NODE_FAILED ||
         state == deja::v1::NODE_UPSTREAM_FAILED || state == deja::v1::NODE_CANCELLED;
}

std::string NodeStateName(const NodeStatus& node) {
  switch (node.state()) {
    case deja::v1::NODE_PENDING:
      return "PENDING";
    case deja::v1::NODE_SUBMITTED:
      return node.job_state() == deja::v1::JOB_STATE_UNSPECIFIED ? "SUBMITTED"
                                                                 : JobState(node.job_state());
    case deja::v1::NODE_SUCCEEDED:
      return "SUCCEEDED";
    case deja::v1::NODE_FAILED:
      return "FAILED";
    case deja::v1::NODE_UPSTREAM_FAILED:
      return "UPSTREAM_FAILED";
    case deja::v1::NODE_CANCELLED:
      return "CANCELLED";
    default:
      return "UNKNOWN";
  }
}

int64_t NodeRunMillis(const NodeStatus& node, absl::Time now) {
  if (IsReuse(node)) return 0;
  if (node.run_time_ms() > 0) return node.run_time_ms();
  if (node.started_at_ms() <= 0) return 0;
  if (node.finished_at_ms() >= node.started_at_ms()) {
    return node.finished_at_ms() - node.started_at_ms();
  }
  bool running = node.state() == deja::v1::NODE_SUBMITTED &&
                 (node.job_state() == deja::v1::RUNNING || node.job_state() == deja::v1::ASSIGNED);
  if (!running) return 0;
  return std::max<int64_t>(absl::ToUnixMillis(now) - node.started_at_ms(), 0);
}

std::string PipelineSummary(const Pipeline& pipeline) {
  int done = 0, failed = 0, reused = 0;
  int64_t saved = 0;
  for (const NodeStatus& node : pipeline.nodes()) {
    if (IsNodeDone(node.state())) ++done;
    if (node.state() == deja::v1::NODE_FAILED) ++failed;
    if (node.state() == deja::v1::NODE_SUCCEEDED && IsReuse(node)) {
      ++reused;
      saved += node.time_saved_ms();
    }
  }
  std::string line = absl::StrCat(done, "/", pipeline.nodes_size(), " done");
  if (failed > 0) absl::StrAppend(&line, ", ", failed, " failed");
  absl::StrAppend(&line, ", ", reused, " reused");
  if (saved > 0) absl::StrAppend(&line, ", ", FormatDuration(saved), " saved");
  return line;
}

std::string PipelineStartLine(const Pipeline& pipeline) {
  int nodes = pipeline.nodes_size() > 0 ? pipeline.nodes_size() : pipeline.spec().nodes_size();
  std::string line = absl::StrCat("pipeline ", pipeline.pipeline_id(), ": ", nodes,
                                  nodes == 1 ? " node" : " nodes");
  if (pipeline.run() > 1) absl::StrAppend(&line, ", run ", pipeline.run());
  return line;
}

std::string PipelineEndLine(const Pipeline& pipeline) {
  std::string line =
      absl::StrCat("pipeline ", pipeline.pipeline_id(), " ", PipelineStateName(pipeline.state()));
  if (pipeline.state() != deja::v1::PIPELINE_SUCCEEDED && !pipeline.message().empty()) {
    absl::StrAppend(&line, ": ", pipeline.message());
  }
  return line;
}

int ExitCodeForPipeline(const Pipeline& pipeline) {
  return pipeline.state() == deja::v1::PIPELINE_SUCCEEDED ? kExitOk : kExitError;
}

std::vector<std::string> LiveViewLines(const Pipeline& pipeline, const WorkerOfJob& workers,
                                       absl::Time now) {
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> messages;  // follow their row directly, not in a column
  for (const NodeStatus& node : pipeline.nodes()) {
    rows.push_back({node.name(), LiveState(node, workers), node.job_id(),
                    IsReuse(node) ? absl::StrCat("reused from ", node.reused_from()) : "",
                    TimeCell(node, now)});
    bool explains = node.state() == deja::v1::NODE_FAILED ||
                    node.state() == deja::v1::NODE_UPSTREAM_FAILED ||
                    node.state() == deja::v1::NODE_CANCELLED;
    messages.push_back(explains && !node.message().empty() ? absl::StrCat(": ", node.message())
                                                           : "");
  }
  std::vector<std::string> lines = AlignColumns(rows);
  for (size_t i = 0; i < lines.size(); ++i) lines[i] += messages[i];
  lines.push_back(PipelineSummary(pipeline));
  return lines;
}

std::string NodePlainLine(const NodeStatus& node, const WorkerOfJob& workers) {
  const std::string& name = node.name();
  const std::string& job = node.job_id();
  auto with_message = [&node](std::string line) {
    if (!node.message().empty()) absl::StrAppend(&line, ": ", node.message());
    return line;
  };
  switch (node.state()) {
    case deja::v1::NODE_SUBMITTED: {
      const std::string worker = WorkerOf(node, workers);
      switch (node.job_state()) {
        case deja::v1::QUEUED:
          // Worth a line only when it says why (a memo entry it could not
          // use, a requeue).
          if (node.message().empty()) return "";
          return with_message(absl::StrCat(name, " QUEUED ", job));
        case deja::v1::RUNNING: {
          std::string line = absl::StrCat(name, " RUNNING ", job);
          if (!worker.empty()) absl::StrAppend(&line, " on ", worker);
          return line;
        }
        case deja::v1::MATERIALIZING: {
          std::string line = absl::StrCat(name, " MATERIALIZING ", job);
          if (IsReuse(node)) absl::StrAppend(&line, " from ", node.reused_from());
          if (!worker.empty()) absl::StrAppend(&line, " on ", worker);
          return line;
        }
        case deja::v1::WAITING:
          return absl::StrCat(name, " WAITING ", job, " (identical job in flight)");
        default:
          return "";
      }
    }
    case deja::v1::NODE_SUCCEEDED: {
      std::string line = absl::StrCat(name, " SUCCEEDED ", job);
      if (IsReuse(node)) {
        absl::StrAppend(&line, " reused from ", node.reused_from());
        if (node.time_saved_ms() > 0) {
          absl::StrAppend(&line, ", saved ", FormatDuration(node.time_saved_ms()));
        }
      } else if (int64_t run = NodeRunMillis(node, absl::UnixEpoch()); run > 0) {
        absl::StrAppend(&line, " in ", FormatDuration(run));
      }
      return line;
    }
    case deja::v1::NODE_FAILED:
      return with_message(absl::StrCat(name, " FAILED", job.empty() ? "" : " ", job));
    case deja::v1::NODE_UPSTREAM_FAILED:
      return with_message(absl::StrCat(name, " UPSTREAM_FAILED"));
    case deja::v1::NODE_CANCELLED:
      return with_message(absl::StrCat(name, " CANCELLED", job.empty() ? "" : " ", job));
    default:
      return "";
  }
}

std::vector<std::pair<std::string, std::string>> PipelineRows(const Pipeline& pipeline,
                                                              absl::TimeZone tz) {
  std::vector<std::pair<std::string, std::string>> rows;
  auto add = [&rows](std::string key, std::string value) {
    if (!value.empty()) rows.emplace_back(std::move(key), std::move(value));
  };
  auto time = [&tz](int64_t millis) {
    return millis > 0 ? FormatTimestamp(millis, tz) : std::string();
  };
  const deja::v1::PipelineSpec& spec = pipeline.spec();
  add("pipeline", pipeline.pipeline_id());
  add("name", spec.name());
  add("project", spec.project());
  add("state", PipelineStateName(pipeline.state()));
  add("run", pipeline.run() > 0 ? absl::StrCat(pipeline.run()) : "");
  add("source", spec.source());
  std::map<std::string, std::string> params(spec.params().begin(), spec.params().end());
  add("params", absl::StrJoin(params, " ", absl::PairFormatter("=")));
  if (!spec.reuse()) add("reuse", "off");
  if (spec.force()) add("force", "every node");
  if (!spec.force_nodes().empty()) add("force", absl::StrJoin(spec.force_nodes(), ", "));
  add("created", time(pipeline.created_at_ms()));
  add("finished", time(pipeline.finished_at_ms()));
  add("message", pipeline.message());
  return rows;
}

std::string PipelineNodesTable(const Pipeline& pipeline, absl::Time now) {
  std::vector<std::vector<std::string>> rows;
  for (const NodeStatus& node : pipeline.nodes()) {
    rows.push_back({node.name(), NodeStateName(node), node.job_id(), node.reused_from(),
                    TimeCell(node, now), node.message()});
  }
  return RenderTable({"NODE", "STATE", "JOB", "REUSED-FROM", "DURATION/SAVED", "MESSAGE"}, rows);
}

std::string PipelinesTable(const std::vector<Pipeline>& pipelines, absl::TimeZone tz) {
  std::vector<std::vector<std::string>> rows;
  for (const Pipeline& pipeline : pipelines) {
    int done = 0;
    for (const NodeStatus& node : pipeline.nodes()) done += IsNodeDone(node.state()) ? 1 : 0;
    int total = pipeline.nodes_size() > 0 ? pipeline.nodes_size() : pipeline.spec().nodes_size();
    rows.push_back({pipeline.pipeline_id(), pipeline.spec().name(), pipeline.spec().project(),
                    PipelineStateName(pipeline.state()), absl::StrCat(done, "/", total),
                    pipeline.created_at_ms() > 0 ? FormatTimestamp(pipeline.created_at_ms(), tz)
                                                 : ""});
  }
  return RenderTable({"ID", "NAME", "PROJECT", "STATE", "NODES", "CREATED"}, rows);
}

std::string PlanTable(const deja::v1::PipelinePlan& plan, absl::TimeZone tz) {
  std::vector<std::vector<std::string>> rows;
  for (const deja::v1::NodePlan& node : plan.nodes()) {
    rows.push_back(
        {node.name(), node.reused() ? "reuse" : "run", node.source_job_id(),
         node.reused() && node.expires_at_ms() > 0 ? FormatTimestamp(node.expires_at_ms(), tz)
                                                   : "",
         node.reused() && node.time_saved_ms() > 0 ? FormatDuration(node.time_saved_ms()) : "",
         node.reason()});
  }
  return RenderTable({"NODE", "WOULD", "SOURCE", "EXPIRES", "SAVES", "REASON"}, rows);
}

std::string PlanSavedLine(const deja::v1::PipelinePlan& plan) {
  return absl::StrCat("expected time saved: ",
                      plan.time_saved_ms() > 0 ? FormatDuration(plan.time_saved_ms()) : "none");
}

// ---------------------------------------------------------------------------
// The live view.

void LiveView::Draw(const std::vector<std::string>& lines) {
  if (drawn_ > 0 && lines == last_) return;
  std::string text;
  if (drawn_ > 0) absl::StrAppend(&text, "\033[", drawn_, "A");
  for (const std::string& line : lines) {
    text += "\r\033[2K";
    if (width_ > 1 && line.size() > width_ - 1) {
      text.append(line, 0, width_ - 1);
    } else {
      text += line;
    }
    text += "\n";
  }
  if (lines.size() < drawn_) text += "\033[J";
  out_ << text;
  out_.flush();
  drawn_ = lines.size();
  last_ = lines;
}

void LiveView::Erase() {
  if (drawn_ == 0) return;
  out_ << "\033[" << drawn_ << "A\r\033[J";
  out_.flush();
  drawn_ = 0;
  last_.clear();
}

bool StdoutIsTerminal(const std::ostream& out, size_t* width) {
  *width = 0;
  if (&out != &std::cout || isatty(STDOUT_FILENO) != 1) return false;
  const char* term = std::getenv("TERM");
  if (term != nullptr && std::string(term) == "dumb") return false;
  struct winsize size;
  if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &size) == 0) *width = size.ws_col;
  return true;
}

// ---------------------------------------------------------------------------
// The commands.

PipelineCommands::PipelineCommands(const DejaClient& client, std::ostream& out, std::ostream& err,
                                   PipelineCommandOptions options)
    : client_(client), out_(out), err_(err), options_(options) {}

int PipelineCommands::Fail(const absl::Status& status) {
  return ReportCallError(client_, err_, status);
}

int PipelineCommands::UsageError(const absl::Status& status) {
  err_ << "deja: " << status.message() << "\n";
  return kExitUsage;
}

std::optional<deja::v1::SubmitPipelineRequest> PipelineCommands::PrepareRequest(
    const PipelineFlags& flags, int* exit_code) {
  // The file's own problems (syntax, fields, unknown params) and a missing
  // or unreadable file are the command line's fault.
  auto usage = [](const absl::Status& s) {
    return absl::IsInvalidArgument(s) || absl::IsNotFound(s) || absl::IsPermissionDenied(s) ||
           absl::IsFailedPrecondition(s);
  };
  absl::StatusOr<std::map<std::string, std::string>> overrides =
      ParseParamOverrides(flags.params);
  if (!overrides.ok()) {
    *exit_code = UsageError(overrides.status());
    return std::nullopt;
  }
  absl::StatusOr<PipelineFile> file = LoadPipelineFile(flags.file, *overrides);
  if (!file.ok()) {
    *exit_code = usage(file.status()) ? UsageError(file.status()) : Fail(file.status());
    return std::nullopt;
  }
  deja::v1::SubmitPipelineRequest request;
  *request.mutable_spec() = std::move(file->spec);
  deja::v1::PipelineSpec* spec = request.mutable_spec();
  if (absl::Status s = ApplyPipelineFlags(flags, spec); !s.ok()) {
    *exit_code = UsageError(s);
    return std::nullopt;
  }
  request.set_request_id(RandomRequestId());
  if (file->local_inputs.empty()) return request;

  // Local files and directories: hashed like --input (one at a time, since
  // two nodes may name inputs alike), uploaded together.
  std::string warning;
  std::unique_ptr<HashCache> cache = HashCache::Load(HashCache::DefaultPath(), {}, &warning);
  if (!warning.empty()) err_ << "deja: warning: " << warning << "\n";
  std::vector<TreeBlob> blobs;
  std::set<std::string> digests;
  std::vector<std::pair<std::string, deja::v1::InputRef>> refs;  // node, input
  absl::Status failed;
  for (const LocalInput& local : file->local_inputs) {
    InputFlag flag;
    flag.name = local.name;
    flag.local_path = local.path;
    flag.workspace_path = local.workspace_path;
    flag.arg = absl::StrCat(local.name, "=", local.path);
    absl::StatusOr<PreparedInputs> prepared = PrepareInputs({flag}, cache->AsFileHasher());
    if (!prepared.ok()) {
      // "--input "<arg>": <problem>" -> "FILE: nodes[N].inputs[X]: <problem>".
      absl::string_view message = prepared.status().message();
      const std::string prefix = absl::StrCat("--input \"", flag.arg, "\": ");
      if (absl::StartsWith(message, prefix)) message.remove_prefix(prefix.size());
      failed = absl::Status(prepared.status().code(),
                            absl::StrCat(file->path.empty() ? flags.file : file->path,
                                         ": nodes[", local.node, "].inputs[", local.name,
                                         "]: ", message));
      break;
    }
    for (TreeBlob& blob : prepared->blobs) {
      if (digests.insert(blob.digest).second) blobs.push_back(std::move(blob));
    }
    refs.emplace_back(local.node, std::move(prepared->refs[0]));
  }
  if (absl::Status saved = cache->Save(); !saved.ok()) {
    err_ << "deja: warning: cannot save the hash cache: " << saved.message() << "\n";
  }
  if (!failed.ok()) {
    *exit_code = usage(failed) ? UsageError(failed) : Fail(failed);
    return std::nullopt;
  }
  for (auto& [node_name, ref] : refs) {
    auto node = std::find_if(spec->mutable_nodes()->begin(), spec->mutable_nodes()->end(),
                             [&](const auto& n) { return n.name() == node_name; });
    if (node == spec->mutable_nodes()->end()) {
      *exit_code = UsageError(absl::InvalidArgumentError(
          absl::StrCat(flags.file, ": input ", ref.name(), " of unknown node ", node_name)));
      return std::nullopt;
    }
    *node->add_inputs() = std::move(ref);
  }
  absl::StatusOr<UploadReport> report;
  {
    ProgressBar bar(err_, options_.progress, "uploading");
    report = UploadMissing(client_.blobs(), blobs,
                           [&bar](uint64_t done, uint64_t total) { bar.Update(done, total); });
  }
  if (!report.ok()) {
    *exit_code = Fail(report.status());
    return std::nullopt;
  }
  err_ << FormatUploadReport(*report) << "\n";
  return request;
}

int PipelineCommands::Run(const PipelineFlags& flags) {
  int exit_code = kExitOk;
  std::optional<deja::v1::SubmitPipelineRequest> request = PrepareRequest(flags, &exit_code);
  if (!request.has_value()) return exit_code;
  absl::StatusOr<Pipeline> pipeline = client_.SubmitPipeline(*request);
  if (!pipeline.ok()) return Fail(pipeline.status());
  return Follow(*pipeline);
}

int PipelineCommands::Plan(const PipelineFlags& flags) {
  int exit_code = kExitOk;
  std::optional<deja::v1::SubmitPipelineRequest> request = PrepareRequest(flags, &exit_code);
  if (!request.has_value()) return exit_code;
  absl::StatusOr<deja::v1::PipelinePlan> plan = client_.PlanPipeline(*request);
  if (!plan.ok()) return Fail(plan.status());
  if (options_.json) {
    out_ << ToJson(*plan) << "\n";
  } else {
    out_ << PlanTable(*plan, options_.tz) << PlanSavedLine(*plan) << "\n";
  }
  return kExitOk;
}

int PipelineCommands::Status(const std::string& pipeline_id) {
  absl::StatusOr<Pipeline> pipeline = client_.GetPipeline(pipeline_id);
  if (!pipeline.ok()) return Fail(pipeline.status());
  if (options_.json) {
    out_ << ToJson(*pipeline) << "\n";
  } else {
    out_ << RenderKeyValues(PipelineRows(*pipeline, options_.tz)) << "\n"
         << PipelineNodesTable(*pipeline, absl::Now()) << PipelineSummary(*pipeline) << "\n";
  }
  return kExitOk;
}

int PipelineCommands::List(const std::string& project, uint32_t limit) {
  absl::StatusOr<std::vector<Pipeline>> pipelines = client_.ListPipelines(project, limit);
  if (!pipelines.ok()) return Fail(pipelines.status());
  if (options_.json) {
    for (const Pipeline& pipeline : *pipelines) out_ << ToJson(pipeline) << "\n";
  } else {
    out_ << PipelinesTable(*pipelines, options_.tz);
  }
  return kExitOk;
}

int PipelineCommands::Cancel(const std::string& pipeline_id) {
  absl::StatusOr<Pipeline> pipeline = client_.CancelPipeline(pipeline_id);
  if (!pipeline.ok()) return Fail(pipeline.status());
  if (options_.json) {
    out_ << ToJson(*pipeline) << "\n";
  } else {
    out_ << PipelineEndLine(*pipeline) << "\n";
  }
  return kExitOk;
}

int PipelineCommands::Retry(const std::string& pipeline_id, const std::string& node) {
  absl::StatusOr<Pipeline> pipeline = client_.RetryPipeline(pipeline_id, node);
  if (!pipeline.ok()) return Fail(pipeline.status());
  return Follow(*pipeline);
}

absl::StatusOr<Pipeline> PipelineCommands::WatchToEnd(
    const std::string& pipeline_id, const std::function<void(const Pipeline&)>& on_update,
    const std::function<void(const std::string&)>& on_lost) {
  bool interrupted = false;
  absl::Duration backoff = options_.initial_backoff;
  auto update = [&](const Pipeline& pipeline) {
    if (interrupted) {
      interrupted = false;
      backoff = options_.initial_backoff;
    }
    on_update(pipeline);
  };
  while (true) {
    absl::StatusOr<Pipeline> pipeline = client_.WatchPipeline(pipeline_id, update);
    if (pipeline.ok() && IsPipelineDone(pipeline->state())) return pipeline;
    if (!pipeline.ok() && !IsRetryableWatchError(pipeline.status())) return pipeline.status();
    if (!interrupted) {
      on_lost(pipeline.ok() ? "stream ended" : std::string(pipeline.status().message()));
      interrupted = true;
    }
    absl::SleepFor(backoff);
    backoff = std::min(backoff * 2, absl::Seconds(5));
  }
}

void PipelineCommands::LookUpWorkers(const Pipeline& pipeline, WorkerOfJob* workers,
                                     std::map<std::string, int>* looked_up) {
  for (const NodeStatus& node : pipeline.nodes()) {
    const deja::v1::JobState state = node.job_state();
    if (node.state() != deja::v1::NODE_SUBMITTED || node.job_id().empty() ||
        (state != deja::v1::ASSIGNED && state != deja::v1::RUNNING &&
         state != deja::v1::MATERIALIZING)) {
      continue;
    }
    auto [it, inserted] = looked_up->emplace(node.job_id(), state);
    if (!inserted && it->second == state) continue;
    it->second = state;
    // Best effort: without it the line says "running" without a worker.
    absl::StatusOr<deja::v1::Job> job = client_.GetJob(node.job_id());
    if (job.ok() && !job->worker_id().empty()) (*workers)[node.job_id()] = job->worker_id();
  }
}

int PipelineCommands::Follow(const Pipeline& started) {
  const std::string id = started.pipeline_id();
  if (!options_.json) {
    out_ << PipelineStartLine(started) << "\n";
    out_.flush();
  }
  auto lost_line = [&id](const std::string& why) {
    return absl::StrCat("deja: lost the watch of ", id, " (", why, "); watching again\n");
  };
  WorkerOfJob workers;
  std::map<std::string, int> looked_up;

  if (options_.json || !options_.live) {
    std::optional<Pipeline> last;
    std::map<std::string, std::string> last_lines;  // node -> its last line
    auto on_update = [&](const Pipeline& pipeline) {
      if (options_.json) {
        if (!last.has_value() ||
            !google::protobuf::util::MessageDifferencer::Equals(*last, pipeline)) {
          out_ << ToJson(pipeline) << "\n";
          out_.flush();
        }
      } else {
        LookUpWorkers(pipeline, &workers, &looked_up);
        for (const NodeStatus& node : pipeline.nodes()) {
          std::string line = NodePlainLine(node, workers);
          if (line.empty() || last_lines[node.name()] == line) continue;
          out_ << line << "\n";
          last_lines[node.name()] = line;
        }
        out_.flush();
      }
      last = pipeline;
    };
    absl::StatusOr<Pipeline> done =
        WatchToEnd(id, on_update, [&](const std::string& why) { err_ << lost_line(why); });
    if (!done.ok()) return Fail(done.status());
    if (!options_.json) out_ << PipelineSummary(*done) << "\n" << PipelineEndLine(*done) << "\n";
    return ExitCodeForPipeline(*done);
  }

  // Live view: the watch runs on its own thread; this one redraws at most
  // every redraw_interval, so running times tick between updates.
  absl::Mutex mu;
  std::optional<Pipeline> latest;  // guarded by mu
  WorkerOfJob shared_workers;      // guarded by mu
  std::vector<std::string> lost;   // guarded by mu: reasons not printed yet
  bool finished = false;           // guarded by mu
  absl::StatusOr<Pipeline> result = absl::UnknownError("not watched");  // guarded by mu
  std::thread watcher([&] {
    absl::StatusOr<Pipeline> done = WatchToEnd(
        id,
        [&](const Pipeline& pipeline) {
          LookUpWorkers(pipeline, &workers, &looked_up);
          absl::MutexLock lock(&mu);
          latest = pipeline;
          shared_workers = workers;
        },
        [&](const std::string& why) {
          absl::MutexLock lock(&mu);
          lost.push_back(why);
        });
    absl::MutexLock lock(&mu);
    result = std::move(done);
    finished = true;
  });
  LiveView view(out_, options_.width);
  while (true) {
    std::optional<Pipeline> pipeline;
    WorkerOfJob now_workers;
    std::vector<std::string> reasons;
    bool end = false;
    {
      absl::MutexLock lock(&mu);
      mu.AwaitWithTimeout(absl::Condition(&finished), options_.redraw_interval);
      pipeline = latest;
      now_workers = shared_workers;
      reasons.swap(lost);
      end = finished;
    }
    if (!reasons.empty()) {
      view.Erase();
      for (const std::string& why : reasons) err_ << lost_line(why);
      err_.flush();
    }
    if (pipeline.has_value()) view.Draw(LiveViewLines(*pipeline, now_workers, absl::Now()));
    if (end) break;
  }
  watcher.join();
  absl::StatusOr<Pipeline> done;
  {
    absl::MutexLock lock(&mu);
    done = std::move(result);
  }
  if (!done.ok()) return Fail(done.status());
  view.Draw(LiveViewLines(*done, workers, absl::Now()));
  out_ << PipelineEndLine(*done) << "\n";
  return ExitCodeForPipeline(*done);
}

}  // namespace deja::cli
