// Pipeline YAML files (docs/pipelines.md): parsed into a resolved
// deja::v1::PipelineSpec — apps inlined, ${pipeline.X} substituted, edges
// split into their parts — and validated with ValidatePipeline. Every error
// names the file, the line of the YAML node at fault and the field:
//
//   mnist.yaml:14: nodes[train].memoization: "maybe" is not on, off or inherit
//
// Node inputs that are local files or directories are not hashed here: they
// are returned as LocalInputs for the CLI to hash, upload and append.
#ifndef DEJA_CLIENT_PIPELINE_YAML_H_
#define DEJA_CLIENT_PIPELINE_YAML_H_

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "deja/v1/pipeline.pb.h"

namespace deja {

// A file or directory input of a node, on the local disk: the CLI hashes and
// uploads it, then appends the InputRef to the node's inputs.
struct LocalInput {
  std::string node;            // node name
  std::string name;            // input name
  std::string path;            // absolute local path (relative ones resolved against the YAML
                               // file's directory)
  std::string workspace_path;  // "" = inputs/<name>
};

struct PipelineFile {
  // Resolved: apps inlined, pipeline params substituted, reuse default true,
  // project default "default", source = the file as given. Node inputs from
  // files are NOT yet in spec (see local_inputs).
  deja::v1::PipelineSpec spec;
  // In file order: nodes in order, each node's inputs in order.
  std::vector<LocalInput> local_inputs;
  std::string path;  // the file as given
};

// Parses and validates `path` with `param_overrides` (from --param K=V; an
// override of a parameter the file does not declare is an error). Errors
// are INVALID_ARGUMENT "FILE:LINE: FIELD: problem" (LINE 1-based, of the
// YAML node at fault). Runs ValidatePipeline on the result (with
// placeholder digests for local inputs) and maps its field path back to a
// line, so every validation error names file, line and field. A local input
// that does not exist is an error too. A file that cannot be read is the
// file system's error (NOT_FOUND...) naming the file.
absl::StatusOr<PipelineFile> LoadPipelineFile(
    const std::string& path, const std::map<std::string, std::string>& param_overrides);

// Same, from text (for tests); `name` stands for the file name in messages
// and `base_dir` for its directory (relative input paths are resolved
// against it; "" = the current directory).
absl::StatusOr<PipelineFile> ParsePipelineYaml(
    const std::string& text, const std::string& name, const std::string& base_dir,
    const std::map<std::string, std::string>& param_overrides);

}  // namespace deja

#endif  // DEJA_CLIENT_PIPELINE_YAML_H_
