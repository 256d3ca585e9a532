// Pipeline YAML -> plan (client/pipeline_yaml.h): YAML parsing, apps,
// ${pipeline.X} substitution, edges and ValidatePipeline's DAG checks.
//
// Input: "PARAMS\nYAML", PARAMS being "--param" overrides as "K=V;K=V"
// (most seeds start with an empty line). Properties of an accepted file:
// the spec passes ValidatePipeline again once its local inputs are in, the
// plan's order holds every node once and each node after all its upstreams,
// and the downstream closure of a node is closed under the edges.
#include <cstddef>
#include <cstdint>
#include <map>
#include <set>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "client/pipeline_yaml.h"
#include "common/pipeline.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  deja::fuzz::Input in(data, size);
  std::map<std::string, std::string> overrides;
  const std::string params(in.Until('\n'));
  for (absl::string_view pair : absl::StrSplit(params, ';', absl::SkipEmpty())) {
    std::pair<std::string, std::string> kv = absl::StrSplit(pair, absl::MaxSplits('=', 1));
    overrides[kv.first] = kv.second;
  }
  // Relative local inputs resolve against an empty directory: they do not
  // exist, which is an error the parser must report, not a crash.
  auto file = deja::ParsePipelineYaml(std::string(in.rest()), "fuzz.yaml", deja::fuzz::ScratchDir(),
                                      overrides);
  if (!file.ok()) {
    DEJA_CHECK(!file.status().message().empty(), "an error without a message");
    return 0;
  }

  deja::v1::PipelineSpec spec = file->spec;
  for (const deja::LocalInput& local : file->local_inputs) {
    for (auto& node : *spec.mutable_nodes()) {
      if (node.name() != local.node) continue;
      auto* input = node.add_inputs();
      input->set_name(local.name);
      input->set_kind("file");
      input->set_digest("0123456789abcdef0123456789abcdef");
      input->set_path(local.workspace_path);
    }
  }
  absl::Status valid = deja::ValidatePipeline(spec);
  DEJA_CHECK(valid.ok(), absl::StrCat("accepted file fails validation: ", valid.ToString()));

  std::vector<std::string> order = deja::TopologicalOrder(spec);
  DEJA_CHECK(order.size() == static_cast<size_t>(spec.nodes_size()),
             absl::StrCat(order.size(), " nodes in order, ", spec.nodes_size(), " in the spec"));
  std::map<std::string, size_t> position;
  for (size_t i = 0; i < order.size(); ++i) {
    DEJA_CHECK(position.emplace(order[i], i).second, absl::StrCat("twice in order: ", order[i]));
  }
  for (const auto& edge : spec.edges()) {
    DEJA_CHECK(position.count(edge.from_node()) == 1 && position.count(edge.to_node()) == 1,
               absl::StrCat("edge names an unknown node: ", edge.ShortDebugString()));
    DEJA_CHECK(
        position[edge.from_node()] < position[edge.to_node()],
        absl::StrCat("order puts ", edge.to_node(), " before its upstream ", edge.from_node()));
  }
  // The closure of a node holds the target of every edge leaving it (the
  // first nodes only: the check is quadratic).
  for (int i = 0; i < spec.nodes_size() && i < 8; ++i) {
    const auto& node = spec.nodes(i);
    std::set<std::string> below = deja::DownstreamClosure(spec, node.name());
    for (const auto& edge : spec.edges()) {
      if (below.count(edge.from_node()) == 1) {
        DEJA_CHECK(below.count(edge.to_node()) == 1,
                   absl::StrCat("closure of ", node.name(), " misses ", edge.to_node()));
      }
    }
  }
  return 0;
}
