// The plan properties both pipeline targets check (pipeline_yaml_fuzzer.cc
// on what the YAML parser produced, job_spec_fuzzer.cc on a PipelineSpec as
// the scheduler receives it), on a pipeline ValidatePipeline accepted.
#ifndef DEJA_TESTS_FUZZ_PLAN_CHECKS_H_
#define DEJA_TESTS_FUZZ_PLAN_CHECKS_H_

#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/check.h"
#include "common/pipeline.h"
#include "deja/v1/pipeline.pb.h"

namespace deja::fuzz {

// The plan's order holds every node once and each node after all its
// upstreams; the downstream closure of a node holds the target of every
// edge leaving it (the first nodes only: that check is quadratic).
inline void CheckPlan(const deja::v1::PipelineSpec& spec) {
  std::vector<std::string> order = TopologicalOrder(spec);
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
  for (int i = 0; i < spec.nodes_size() && i < 8; ++i) {
    const std::string& node = spec.nodes(i).name();
    std::set<std::string> below = DownstreamClosure(spec, node);
    for (const auto& edge : spec.edges()) {
      if (below.count(edge.from_node()) == 1) {
        DEJA_CHECK(below.count(edge.to_node()) == 1,
                   absl::StrCat("closure of ", node, " misses ", edge.to_node()));
      }
    }
  }
}

}  // namespace deja::fuzz

#endif  // DEJA_TESTS_FUZZ_PLAN_CHECKS_H_
