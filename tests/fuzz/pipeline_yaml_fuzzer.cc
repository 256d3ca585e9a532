// Pipeline YAML -> plan (client/pipeline_yaml.h): YAML parsing, apps,
// ${pipeline.X} substitution, edges and ValidatePipeline's DAG checks.
//
// Input: "PARAMS\nYAML", PARAMS being "--param" overrides as "K=V;K=V"
// (most seeds start with an empty line). Properties of an accepted file:
// the spec passes ValidatePipeline again once its local inputs are in, and
// its plan holds (tests/fuzz/plan_checks.h: every node once in the order,
// after all its upstreams; downstream closures closed under the edges).
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "client/pipeline_yaml.h"
#include "common/pipeline.h"
#include "tests/fuzz/fuzz_util.h"
#include "tests/fuzz/plan_checks.h"

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

  deja::fuzz::CheckPlan(spec);
  return 0;
}
