#include "client/pipeline_format.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "client/cli.h"
#include "client/cli_format.h"
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

}  // namespace

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
    rows.push_back(
        {pipeline.pipeline_id(), pipeline.spec().name(), pipeline.spec().project(),
         PipelineStateName(pipeline.state()), absl::StrCat(done, "/", total),
         pipeline.created_at_ms() > 0 ? FormatTimestamp(pipeline.created_at_ms(), tz) : ""});
  }
  return RenderTable({"ID", "NAME", "PROJECT", "STATE", "NODES", "CREATED"}, rows);
}

std::string PlanTable(const deja::v1::PipelinePlan& plan, absl::TimeZone tz) {
  std::vector<std::vector<std::string>> rows;
  for (const deja::v1::NodePlan& node : plan.nodes()) {
    rows.push_back(
        {node.name(), node.reused() ? "reuse" : "run", node.source_job_id(),
         node.reused() && node.expires_at_ms() > 0 ? FormatTimestamp(node.expires_at_ms(), tz) : "",
         node.reused() && node.time_saved_ms() > 0 ? FormatDuration(node.time_saved_ms()) : "",
         node.reason()});
  }
  return RenderTable({"NODE", "WOULD", "SOURCE", "EXPIRES", "SAVES", "REASON"}, rows);
}

std::string PlanSavedLine(const deja::v1::PipelinePlan& plan) {
  return absl::StrCat("expected time saved: ",
                      plan.time_saved_ms() > 0 ? FormatDuration(plan.time_saved_ms()) : "none");
}

}  // namespace deja::cli
