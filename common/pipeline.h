// Validation and graph order of pipelines (protos/deja/v1/pipeline.proto),
// shared by the CLI (which maps the field paths to YAML lines) and the
// scheduler (which checks every pipeline it is sent).
#ifndef DEJA_COMMON_PIPELINE_H_
#define DEJA_COMMON_PIPELINE_H_

#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "deja/v1/job.pb.h"
#include "deja/v1/pipeline.pb.h"

namespace deja {

inline constexpr size_t kMaxPipelineNodes = 1000;
// A pipeline record (spec and node states) must fit a 4 MiB message.
inline constexpr size_t kMaxPipelineSpecBytes = size_t{1} << 20;

// INVALID_ARGUMENT whose message starts with the field at fault, written
// as a path: "name", "nodes[train].name", "nodes[train].app.command[1]",
// "nodes[train].inputs[data]", "edges[2].from_node", "edges[2].from_output",
// "edges" (a cycle, named: "edges: cycle a -> b -> a"). Checks: names,
// duplicate nodes, every node as a job (with its edge inputs), edges that
// name unknown nodes or outputs the upstream does not declare, an input
// provided twice, a missing input (a command's ${inputs.X} that nothing
// provides), force_nodes that name no node, cycles.
absl::Status ValidatePipeline(const deja::v1::PipelineSpec& spec);

// Replaces each node with an `array` by one node per element (its name
// ".1", ".2"... in element order, its element's params added), edges into it
// by edges into every element, and edges out of it by one edge from every
// element, gathered (gather_as: the element's name); force_nodes naming it
// name its elements. Nodes in spec order, so an edge between two array
// nodes feeds every element of the second all of the first. A spec without
// arrays comes back unchanged. INVALID_ARGUMENT naming the node's array
// for bad values, a param given by the node and its array, more than
// kMaxPipelineNodes elements, or an edge whose gather_as is set already.
absl::StatusOr<deja::v1::PipelineSpec> ExpandArrayNodes(deja::v1::PipelineSpec spec);

// The edges into `node`, grouped by the input they feed: one edge, or the
// gathered edges of an array (in spec order).
std::vector<std::vector<const deja::v1::PipelineEdge*>> EdgesInto(
    const deja::v1::PipelineSpec& spec, const std::string& node);

// Node names, every node after all of its upstreams; among nodes ready at
// the same time, in spec order. Expects a valid (acyclic) pipeline.
std::vector<std::string> TopologicalOrder(const deja::v1::PipelineSpec& spec);

// Node name -> the names of the nodes it feeds (directly).
std::map<std::string, std::set<std::string>> Downstream(const deja::v1::PipelineSpec& spec);

// `node` and everything downstream of it.
std::set<std::string> DownstreamClosure(const deja::v1::PipelineSpec& spec,
                                        const std::string& node);

// The job spec of `node` without its edge inputs: project, app, params,
// file inputs, outputs, memo policy (reuse: false pipelines and forced
// nodes applied). Edge inputs are added by the caller once known.
deja::v1::JobSpec NodeJobSpec(const deja::v1::PipelineSpec& spec,
                              const deja::v1::PipelineNode& node);

// The input an edge produces from the upstream's outputs, or NOT_FOUND
// naming the edge when no output matches. A single file named exactly is a
// file input; a glob or "*" yields a directory whose entries `dir_bytes`
// receives (every directory blob, root first: callers store them).
struct EdgeInput {
  deja::v1::InputRef input;
  std::vector<std::string> dir_blobs;  // canonical directory blobs to store
};
absl::StatusOr<EdgeInput> ResolveEdge(
    const deja::v1::PipelineEdge& edge,
    const google::protobuf::RepeatedPtrField<deja::v1::OutputFile>& upstream_outputs);

// The input a group of EdgesInto makes: one edge's as ResolveEdge, or, for
// gathered edges, a directory holding each edge's selected outputs under
// its gather_as/. `upstream_outputs[i]` are the outputs of edges[i]'s
// upstream. NOT_FOUND naming an edge whose upstream has no matching output.
absl::StatusOr<EdgeInput> ResolveEdges(
    const std::vector<const deja::v1::PipelineEdge*>& edges,
    const std::vector<const google::protobuf::RepeatedPtrField<deja::v1::OutputFile>*>&
        upstream_outputs);

}  // namespace deja

#endif  // DEJA_COMMON_PIPELINE_H_
