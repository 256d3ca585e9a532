// PipelineNodeParser: the `apps:` and `nodes:` of a pipeline YAML file
// (docs/pipelines.md) — apps (named, inline, or a node's own command...),
// each node's params, outputs, memoization, force, reuse_job_id, and its
// local inputs — parsed into the PipelineFile being built, with the line of
// every field recorded in the YamlReader. The top level, parameters, edges
// and the final validation are client/pipeline_yaml.cc's.
//
// Local inputs are resolved against the file's directory and must exist;
// they are not hashed here (PipelineFile::local_inputs).
//
// Not thread-safe: one file, one thread.
#ifndef DEJA_CLIENT_PIPELINE_NODE_PARSER_H_
#define DEJA_CLIENT_PIPELINE_NODE_PARSER_H_

#include <yaml-cpp/yaml.h>

#include <cstddef>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "client/pipeline_yaml.h"
#include "client/yaml_reader.h"
#include "deja/v1/job.pb.h"

namespace deja {

class PipelineNodeParser {
 public:
  // `reader` (errors, lines, parameters) and `out` (nodes and local inputs
  // are appended to it) are not owned and must outlive this. `base_dir` is
  // the absolute directory relative input paths are resolved against.
  PipelineNodeParser(YamlReader& reader, std::string base_dir, PipelineFile& out)
      : reader_(reader), base_dir_(std::move(base_dir)), out_(out) {}

  PipelineNodeParser(const PipelineNodeParser&) = delete;
  PipelineNodeParser& operator=(const PipelineNodeParser&) = delete;

  // The top-level `apps:` mapping; before any node.
  absl::Status ParseApps(const yaml::Entry& apps);
  // Item `index` of `nodes:` (whose key is on `nodes_line`): appended to
  // out.spec.nodes, its local inputs to out.local_inputs.
  absl::Status ParseNode(const YAML::Node& node, int nodes_line, size_t index);

  // Per local input (in out.local_inputs order): the index of its node.
  const std::vector<int>& local_node() const { return local_node_; }
  // Node index -> inputs its job has so far: its local inputs, which come
  // first in its job (edge inputs follow).
  const std::map<int, int>& local_count() const { return local_count_; }

 private:
  // An app as parsed, with the lines of its fields relative to the app
  // (".command[1]", ".env[MODE]", "" for the app itself).
  struct ParsedApp {
    deja::v1::AppSpec app;
    std::map<std::string, int> lines;
    bool has_command = false;
    bool has_name = false;
  };

  // One key of an app (under apps:, an inline app: mapping, or a node's own
  // app keys). `field` is the key's field for messages.
  absl::Status AppKey(const yaml::Entry& entry, const std::string& field, ParsedApp* parsed);
  // An app given as a mapping (under apps:, or a node's app:).
  absl::StatusOr<ParsedApp> AppMapping(const YAML::Node& node, int line, const std::string& field,
                                       const std::string& default_name, int default_name_line);
  absl::Status ParseInputs(const yaml::Entry& entry, const std::string& field,
                           const std::string& node, int node_index);
  // A node's cpus, memory, gpus, time_limit, unplaceable or network key.
  absl::Status NodeResource(const yaml::Entry& entry, const std::string& field,
                            deja::v1::PipelineNode* out);

  YamlReader& reader_;
  const std::string base_dir_;
  PipelineFile& out_;
  std::map<std::string, ParsedApp> apps_;
  std::vector<int> local_node_;     // per local input: its node's index
  std::map<int, int> local_count_;  // node index -> inputs of its job so far
};

}  // namespace deja

#endif  // DEJA_CLIENT_PIPELINE_NODE_PARSER_H_
