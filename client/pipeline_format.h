// What the pipeline commands print (`deja pipeline run|plan|status|ls|
// cancel|retry`): node and pipeline states in one word, the start, end and
// summary lines, the live view's lines and the plain progress lines, and
// the status, list and plan tables. docs/cli.md#pipelines shows each.
//
// Pure functions of their arguments (time and time zone are passed in);
// thread-safe.
#ifndef DEJA_CLIENT_PIPELINE_FORMAT_H_
#define DEJA_CLIENT_PIPELINE_FORMAT_H_

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/time/time.h"
#include "deja/v1/pipeline.pb.h"

namespace deja::cli {

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

}  // namespace deja::cli

#endif  // DEJA_CLIENT_PIPELINE_FORMAT_H_
