#include "common/pipeline.h"

#include <algorithm>
#include <functional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/array_values.h"
#include "common/glob.h"
#include "common/job_spec.h"
#include "common/tree.h"

namespace deja {
namespace {

absl::Status Invalid(const std::string& field, const std::string& problem) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", problem));
}

std::string NodeField(const std::string& node, const std::string& field) {
  return absl::StrCat("nodes[", node, "]", field.empty() ? "" : ".", field);
}

// Prefixes a job-spec error ("app.command[1]: ...") with the node.
absl::Status InNode(const std::string& node, const absl::Status& status) {
  return absl::InvalidArgumentError(absl::StrCat(NodeField(node, ""), ".", status.message()));
}

bool EdgeSelects(const deja::v1::PipelineEdge& edge, const std::string& path) {
  return edge.from_output() == "*" || GlobMatches(edge.from_output(), path);
}

}  // namespace

deja::v1::JobSpec NodeJobSpec(const deja::v1::PipelineSpec& spec,
                              const deja::v1::PipelineNode& node) {
  deja::v1::JobSpec job;
  job.set_project(spec.project());
  *job.mutable_app() = node.app();
  *job.mutable_params() = node.params();
  *job.mutable_inputs() = node.inputs();
  *job.mutable_outputs() = node.outputs();
  job.set_memoization(spec.reuse() ? node.memoization() : deja::v1::MEMOIZATION_OFF);
  bool forced = spec.force() || node.force() ||
                std::find(spec.force_nodes().begin(), spec.force_nodes().end(), node.name()) !=
                    spec.force_nodes().end();
  job.set_force(forced && spec.reuse());
  job.set_reuse_job_id(node.reuse_job_id());
  if (node.has_resources()) *job.mutable_resources() = node.resources();
  job.set_fail_unplaceable(node.fail_unplaceable());
  job.set_network(node.network());
  (*job.mutable_labels())["node"] = node.name();
  NormalizeJobSpec(&job);
  return job;
}

absl::Status ValidatePipeline(const deja::v1::PipelineSpec& spec) {
  if (auto s = ValidateName("name", spec.name()); !s.ok()) return s;
  if (!spec.project().empty()) {
    if (auto s = ValidateName("project", spec.project()); !s.ok()) return s;
  }
  if (spec.nodes_size() == 0) return Invalid("nodes", "a pipeline needs at least one node");
  if (static_cast<size_t>(spec.nodes_size()) > kMaxPipelineNodes) {
    return Invalid("nodes", absl::StrCat("too many (", spec.nodes_size(), ", at most ",
                                         kMaxPipelineNodes, ")"));
  }
  if (spec.ByteSizeLong() > kMaxPipelineSpecBytes) {
    return Invalid("spec", absl::StrCat("too large (", spec.ByteSizeLong(), " bytes, at most ",
                                        kMaxPipelineSpecBytes, ")"));
  }
  std::map<std::string, const deja::v1::PipelineNode*> nodes;
  for (int i = 0; i < spec.nodes_size(); ++i) {
    const auto& node = spec.nodes(i);
    const std::string field =
        node.name().empty() ? absl::StrCat("nodes[", i, "].name") : NodeField(node.name(), "name");
    if (auto s = ValidateName(field, node.name()); !s.ok()) return s;
    if (!nodes.emplace(node.name(), &node).second) {
      return Invalid(field, absl::StrCat("duplicate node name \"", node.name(), "\""));
    }
  }
  for (int i = 0; i < spec.force_nodes_size(); ++i) {
    if (!nodes.contains(spec.force_nodes(i))) {
      return Invalid(absl::StrCat("force_nodes[", i, "]"),
                     absl::StrCat("no node is named \"", spec.force_nodes(i), "\""));
    }
  }
  // Edges: known nodes, declared outputs, one provider per input (or the
  // gathered edges of an array, each under its own name).
  // node -> input fed by edges -> their gather_as ("" for a plain edge)
  std::map<std::string, std::map<std::string, std::set<std::string>>> edge_inputs;
  for (int i = 0; i < spec.edges_size(); ++i) {
    const auto& edge = spec.edges(i);
    const std::string field = absl::StrCat("edges[", i, "]");
    auto from = nodes.find(edge.from_node());
    if (from == nodes.end()) {
      return Invalid(field + ".from_node", absl::StrCat("unknown node \"", edge.from_node(), "\""));
    }
    if (!nodes.contains(edge.to_node())) {
      return Invalid(field + ".to_node", absl::StrCat("unknown node \"", edge.to_node(), "\""));
    }
    if (edge.from_node() == edge.to_node()) {
      return Invalid("edges", absl::StrCat("cycle ", edge.from_node(), " -> ", edge.to_node()));
    }
    if (edge.from_output().empty()) return Invalid(field + ".from_output", "must not be empty");
    if (edge.from_output() != "*") {
      if (auto s = ValidateWorkspacePath(field + ".from_output", edge.from_output()); !s.ok()) {
        return s;
      }
      // A literal name must be one the upstream declares (a glob may select
      // several of them; it needs only to share a declared glob's shape).
      bool declared = false;
      for (const auto& glob : from->second->outputs()) {
        declared |= GlobMatches(glob, edge.from_output()) || glob == edge.from_output();
      }
      if (!declared) {
        return Invalid(field + ".from_output",
                       absl::StrCat("node ", edge.from_node(), " declares no output \"",
                                    edge.from_output(), "\" (its outputs: ",
                                    from->second->outputs().empty()
                                        ? "none"
                                        : absl::StrJoin(from->second->outputs(), ", "),
                                    ")"));
      }
    }
    if (edge.to_input().empty()) return Invalid(field + ".to_input", "must not be empty");
    if (!edge.gather_as().empty()) {
      if (auto s = ValidateName(field + ".gather_as", edge.gather_as()); !s.ok()) return s;
    }
    std::set<std::string>& gathered = edge_inputs[edge.to_node()][edge.to_input()];
    if (!gathered.insert(edge.gather_as()).second ||
        (gathered.size() > 1 && gathered.contains(""))) {
      return Invalid(NodeField(edge.to_node(), absl::StrCat("inputs[", edge.to_input(), "]")),
                     "provided by two edges");
    }
  }
  // Every node as the job it will become, with placeholder edge inputs.
  for (const auto& node : spec.nodes()) {
    deja::v1::JobSpec job = NodeJobSpec(spec, node);
    for (const auto& input : node.inputs()) {
      if (edge_inputs[node.name()].contains(input.name())) {
        return Invalid(NodeField(node.name(), absl::StrCat("inputs[", input.name(), "]")),
                       "provided twice (a file input and an edge)");
      }
    }
    for (const auto& group : EdgesInto(spec, node.name())) {
      auto* input = job.add_inputs();
      input->set_name(group.front()->to_input());
      input->set_kind(group.front()->gather_as().empty() ? "file" : "dir");
      input->set_digest(std::string(32, '0'));
      input->set_path(group.front()->to_path());
    }
    if (auto s = ValidateJobSpec(job); !s.ok()) return InNode(node.name(), s);
  }
  // Cycles: depth-first search, naming the first cycle found.
  auto down = Downstream(spec);
  std::map<std::string, int> color;  // 0 white, 1 on the stack, 2 done
  std::vector<std::string> stack;
  std::function<absl::Status(const std::string&)> visit = [&](const std::string& n) {
    color[n] = 1;
    stack.push_back(n);
    for (const auto& next : down[n]) {
      if (color[next] == 1) {
        auto start = std::find(stack.begin(), stack.end(), next);
        std::vector<std::string> cycle(start, stack.end());
        cycle.push_back(next);
        return Invalid("edges", absl::StrCat("cycle ", absl::StrJoin(cycle, " -> ")));
      }
      if (color[next] == 0) {
        if (auto s = visit(next); !s.ok()) return s;
      }
    }
    stack.pop_back();
    color[n] = 2;
    return absl::OkStatus();
  };
  for (const auto& node : spec.nodes()) {
    if (color[node.name()] == 0) {
      if (auto s = visit(node.name()); !s.ok()) return s;
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<deja::v1::PipelineSpec> ExpandArrayNodes(deja::v1::PipelineSpec spec) {
  for (int i = 0; i < spec.nodes_size();) {
    if (spec.nodes(i).array().empty()) {
      ++i;
      continue;
    }
    deja::v1::PipelineNode node = spec.nodes(i);
    const std::string field = NodeField(node.name(), "array");
    std::vector<ParamSet> elements(1);
    // Keys in order (a proto map has none), so elements are numbered the
    // same way every time.
    const std::map<std::string, std::string> keys(node.array().begin(), node.array().end());
    for (const auto& [key, values] : keys) {
      const std::string key_field = absl::StrCat(field, "[", key, "]");
      if (node.params().contains(key)) {
        return Invalid(key_field, absl::StrCat("param ", key, " is given by params and by array"));
      }
      absl::StatusOr<std::vector<std::string>> expanded = ExpandArrayValues(key_field, values);
      if (!expanded.ok()) return expanded.status();
      absl::StatusOr<std::vector<ParamSet>> product =
          CombineArray(elements, key, *expanded, key_field, kMaxPipelineNodes);
      if (!product.ok()) return product.status();
      elements = *std::move(product);
    }
    node.clear_array();
    std::vector<deja::v1::PipelineNode> made;
    made.reserve(elements.size());
    for (size_t e = 0; e < elements.size(); ++e) {
      deja::v1::PipelineNode& element = made.emplace_back(node);
      element.set_name(absl::StrCat(node.name(), ".", e + 1));
      element.mutable_params()->insert(elements[e].begin(), elements[e].end());
    }
    google::protobuf::RepeatedPtrField<deja::v1::PipelineEdge> edges;
    for (int e = 0; e < spec.edges_size(); ++e) {
      const deja::v1::PipelineEdge& edge = spec.edges(e);
      if (!edge.gather_as().empty() && edge.from_node() == node.name()) {
        return Invalid(absl::StrCat("edges[", e, "].gather_as"),
                       "is the scheduler's, set when it expands an array");
      }
      if (edge.to_node() == node.name()) {
        for (const auto& element : made) {
          deja::v1::PipelineEdge* copy = edges.Add();
          *copy = edge;
          copy->set_to_node(element.name());
        }
      } else if (edge.from_node() == node.name()) {
        for (const auto& element : made) {
          deja::v1::PipelineEdge* copy = edges.Add();
          *copy = edge;
          copy->set_from_node(element.name());
          copy->set_gather_as(element.name());
        }
      } else {
        *edges.Add() = edge;
      }
    }
    *spec.mutable_edges() = std::move(edges);
    google::protobuf::RepeatedPtrField<std::string> forced;
    for (const std::string& name : spec.force_nodes()) {
      if (name != node.name()) {
        *forced.Add() = name;
        continue;
      }
      for (const auto& element : made) *forced.Add() = element.name();
    }
    *spec.mutable_force_nodes() = std::move(forced);
    google::protobuf::RepeatedPtrField<deja::v1::PipelineNode> nodes;
    for (int n = 0; n < spec.nodes_size(); ++n) {
      if (n != i) {
        *nodes.Add() = spec.nodes(n);
        continue;
      }
      for (auto& element : made) *nodes.Add() = std::move(element);
    }
    *spec.mutable_nodes() = std::move(nodes);
    i += static_cast<int>(elements.size());
  }
  return spec;
}

std::vector<std::vector<const deja::v1::PipelineEdge*>> EdgesInto(
    const deja::v1::PipelineSpec& spec, const std::string& node) {
  std::vector<std::vector<const deja::v1::PipelineEdge*>> groups;
  std::map<std::string, size_t> by_input;
  for (const auto& edge : spec.edges()) {
    if (edge.to_node() != node) continue;
    auto [it, added] = by_input.emplace(edge.to_input(), groups.size());
    if (added) groups.emplace_back();
    groups[it->second].push_back(&edge);
  }
  return groups;
}

std::map<std::string, std::set<std::string>> Downstream(const deja::v1::PipelineSpec& spec) {
  std::map<std::string, std::set<std::string>> down;
  for (const auto& edge : spec.edges()) down[edge.from_node()].insert(edge.to_node());
  return down;
}

std::vector<std::string> TopologicalOrder(const deja::v1::PipelineSpec& spec) {
  std::map<std::string, int> indegree;
  for (const auto& node : spec.nodes()) indegree[node.name()] = 0;
  std::set<std::pair<std::string, std::string>> seen;
  for (const auto& edge : spec.edges()) {
    if (seen.insert({edge.from_node(), edge.to_node()}).second) ++indegree[edge.to_node()];
  }
  auto down = Downstream(spec);
  std::vector<std::string> order;
  std::set<std::string> done;
  while (order.size() < static_cast<size_t>(spec.nodes_size())) {
    bool progressed = false;
    for (const auto& node : spec.nodes()) {
      if (done.contains(node.name()) || indegree[node.name()] != 0) continue;
      order.push_back(node.name());
      done.insert(node.name());
      for (const auto& next : down[node.name()]) --indegree[next];
      progressed = true;
    }
    if (!progressed) break;  // a cycle: invalid input
  }
  return order;
}

std::set<std::string> DownstreamClosure(const deja::v1::PipelineSpec& spec,
                                        const std::string& node) {
  auto down = Downstream(spec);
  std::set<std::string> out;
  std::vector<std::string> todo = {node};
  while (!todo.empty()) {
    std::string n = todo.back();
    todo.pop_back();
    if (!out.insert(n).second) continue;
    for (const auto& next : down[n]) todo.push_back(next);
  }
  return out;
}

namespace {

// The outputs `edge` selects of `outputs`; NOT_FOUND naming the edge when
// none.
absl::StatusOr<std::vector<const deja::v1::OutputFile*>> Selected(
    const deja::v1::PipelineEdge& edge,
    const google::protobuf::RepeatedPtrField<deja::v1::OutputFile>& outputs) {
  const bool single = edge.from_output() != "*" && !HasGlobChars(edge.from_output());
  std::vector<const deja::v1::OutputFile*> files;
  for (const auto& file : outputs) {
    if (single ? file.path() == edge.from_output() : EdgeSelects(edge, file.path())) {
      files.push_back(&file);
    }
  }
  if (files.empty()) {
    return absl::NotFoundError(absl::StrCat(edge.from_node(), ".output.", edge.from_output(),
                                            " -> ", edge.to_node(), ".input.", edge.to_input(),
                                            ": no output of ", edge.from_node(), " matches"));
  }
  return files;
}

// A directory input of `files` (workspace path -> the output) at their
// paths: the tree built bottom-up, one canonical directory blob per
// directory.
EdgeInput DirectoryInput(
    const deja::v1::PipelineEdge& edge,
    const std::vector<std::pair<std::string, const deja::v1::OutputFile*>>& files) {
  EdgeInput out;
  out.input.set_name(edge.to_input());
  out.input.set_path(edge.to_path());
  struct Dir {
    std::map<std::string, Dir> dirs;
    std::vector<DirEntry> files;
  };
  Dir root;
  uint64_t total = 0;
  for (const auto& [path, file] : files) {
    std::vector<std::string> parts = absl::StrSplit(path, '/');
    Dir* dir = &root;
    for (size_t i = 0; i + 1 < parts.size(); ++i) dir = &dir->dirs[parts[i]];
    DirEntry entry;
    entry.name = parts.back();
    entry.kind = DirEntry::Kind::kFile;
    entry.executable = (file->mode() & 0111) != 0;
    entry.digest = file->digest();
    entry.size = file->size();
    total += file->size();
    dir->files.push_back(std::move(entry));
  }
  std::function<DirEntry(const std::string&, const Dir&)> encode = [&](const std::string& name,
                                                                       const Dir& dir) {
    std::vector<DirEntry> entries = dir.files;
    for (const auto& [sub, child] : dir.dirs) entries.push_back(encode(sub, child));
    std::string bytes = EncodeDirectory(std::move(entries));
    DirEntry self = DirectoryEntry(name, bytes);
    out.dir_blobs.push_back(std::move(bytes));
    return self;
  };
  DirEntry top = encode("", root);
  std::reverse(out.dir_blobs.begin(), out.dir_blobs.end());  // root first
  out.input.set_kind("dir");
  out.input.set_digest(top.digest);
  out.input.set_size(top.size);
  out.input.set_total_bytes(total);
  return out;
}

}  // namespace

absl::StatusOr<EdgeInput> ResolveEdge(
    const deja::v1::PipelineEdge& edge,
    const google::protobuf::RepeatedPtrField<deja::v1::OutputFile>& upstream_outputs) {
  absl::StatusOr<std::vector<const deja::v1::OutputFile*>> files = Selected(edge, upstream_outputs);
  if (!files.ok()) return files.status();
  if (edge.from_output() != "*" && !HasGlobChars(edge.from_output())) {
    EdgeInput out;
    out.input.set_name(edge.to_input());
    out.input.set_path(edge.to_path());
    out.input.set_kind("file");
    out.input.set_digest((*files)[0]->digest());
    out.input.set_size((*files)[0]->size());
    out.input.set_total_bytes((*files)[0]->size());
    return out;
  }
  std::vector<std::pair<std::string, const deja::v1::OutputFile*>> at_paths;
  for (const auto* file : *files) at_paths.emplace_back(file->path(), file);
  return DirectoryInput(edge, at_paths);
}

absl::StatusOr<EdgeInput> ResolveEdges(
    const std::vector<const deja::v1::PipelineEdge*>& edges,
    const std::vector<const google::protobuf::RepeatedPtrField<deja::v1::OutputFile>*>&
        upstream_outputs) {
  if (edges.size() == 1 && edges[0]->gather_as().empty()) {
    return ResolveEdge(*edges[0], *upstream_outputs[0]);
  }
  std::vector<std::pair<std::string, const deja::v1::OutputFile*>> at_paths;
  for (size_t i = 0; i < edges.size(); ++i) {
    absl::StatusOr<std::vector<const deja::v1::OutputFile*>> files =
        Selected(*edges[i], *upstream_outputs[i]);
    if (!files.ok()) return files.status();
    for (const auto* file : *files) {
      at_paths.emplace_back(absl::StrCat(edges[i]->gather_as(), "/", file->path()), file);
    }
  }
  return DirectoryInput(*edges.front(), at_paths);
}

}  // namespace deja
