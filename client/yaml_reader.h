// YamlReader: typed reading of a YAML file for the pipeline parser
// (client/pipeline_yaml.h), where every error names the file, the line of
// the YAML node at fault and the field:
//
//   mnist.yaml:14: nodes[train].memoization: "maybe" is not on, off or inherit
//
// It also keeps the map from field paths ("nodes[train].app.command[1]") to
// the lines they came from, so that an error found later on the parsed
// spec (ValidatePipeline's field path) points back into the file, and the
// pipeline parameters that ${pipeline.X} references are substituted with.
//
// Not thread-safe: one file, one thread.
#ifndef DEJA_CLIENT_YAML_READER_H_
#define DEJA_CLIENT_YAML_READER_H_

#include <yaml-cpp/yaml.h>

#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "google/protobuf/map.h"
#include "google/protobuf/repeated_ptr_field.h"

namespace deja {
namespace yaml {

// One key: value pair of a mapping, with the line of its key.
struct Entry {
  std::string key;
  YAML::Node value;
  int line = 1;
};

// How ${pipeline.X} is substituted in a value.
enum class Subst {
  kNone,     // not at all (names, edges, defaults)
  kValue,    // the value as is; "$${pipeline." stands for a literal "${pipeline."
  kCommand,  // a command word: "${" in the value is escaped as "$${" so that
             // the scheduler's ${params.X}/${inputs.X} expansion keeps it
};

// "prefix.key" ("key" without a prefix): the field of a mapping's key.
std::string Field(absl::string_view prefix, absl::string_view key);
// "prefix[index]": an item of a list, or a key of a map of names.
template <typename T>
std::string Indexed(absl::string_view prefix, const T& index) {
  return absl::StrCat(prefix, "[", index, "]");
}
// "a list", "a mapping", "empty", "a scalar": what a node is, for messages.
std::string TypeName(const YAML::Node& node);
// True when `key` is one of `keys`.
bool Contains(absl::Span<const absl::string_view> keys, absl::string_view key);

}  // namespace yaml

class YamlReader {
 public:
  // `name` stands for the file in every message.
  explicit YamlReader(std::string name) : name_(std::move(name)) {}

  YamlReader(const YamlReader&) = delete;
  YamlReader& operator=(const YamlReader&) = delete;

  const std::string& name() const { return name_; }

  // The 1-based line of `node`, or `fallback` for a node without one (a
  // null value, "key:" with nothing, carries the mark of what follows).
  static int Line(const YAML::Node& node, int fallback);
  // INVALID_ARGUMENT "NAME:LINE: FIELD: problem" ("NAME:LINE: problem"
  // without a field).
  absl::Status Error(int line, absl::string_view field, absl::string_view problem) const;

  // Records that field path `path` comes from `line` (a path may have
  // several lines, each kept once).
  void Record(const std::string& path, int line);
  // The lines behind a field path: exact, else the longest recorded prefix
  // ending at a component, else line 1.
  std::vector<int> Lookup(const std::string& path) const;

  // The pipeline parameters in force, for ${pipeline.X}: the file's
  // defaults, then the --param overrides.
  std::map<std::string, std::string>& params() { return params_; }
  // "declared: a, b" or "the file declares no params:", for messages.
  std::string DeclaredParams() const;

  // The entries of a mapping (null = empty). `allowed` empty: any key (a map
  // of names, whose keys' fields are field[key]); otherwise only those (an
  // unknown key is an error that suggests the nearest allowed one). A
  // duplicate key is an error.
  absl::StatusOr<std::vector<yaml::Entry>> Mapping(const YAML::Node& node, int line,
                                                   const std::string& field,
                                                   absl::Span<const absl::string_view> allowed);
  // The items of a list (null = empty); `example` shows a list in the
  // message when `node` is something else.
  absl::StatusOr<std::vector<YAML::Node>> Sequence(const YAML::Node& node, int line,
                                                   const std::string& field,
                                                   absl::string_view example);
  // A scalar as text (numbers and booleans as written), with ${pipeline.X}
  // substituted per `subst`.
  absl::StatusOr<std::string> String(const YAML::Node& node, int line, const std::string& field,
                                     yaml::Subst subst);
  // true/yes/on or false/no/off, any case.
  absl::StatusOr<bool> Bool(const YAML::Node& node, int line, const std::string& field,
                            yaml::Subst subst);
  // A mapping of names to scalars (env, platform, params) into `out`; the
  // lines go to `lines` under `rel` and `rel`[key].
  absl::Status StringMap(const yaml::Entry& entry, const std::string& field, yaml::Subst subst,
                         google::protobuf::Map<std::string, std::string>* out,
                         std::map<std::string, int>* lines, const std::string& rel);
  // A list of scalars (command, outputs, cache_key) into `out`; the lines
  // go to `lines` under `rel` and `rel`[i].
  absl::Status StringList(const yaml::Entry& entry, const std::string& field, yaml::Subst subst,
                          absl::string_view example,
                          google::protobuf::RepeatedPtrField<std::string>* out,
                          std::map<std::string, int>* lines, const std::string& rel);

 private:
  absl::StatusOr<std::string> Substitute(const std::string& text, int line,
                                         const std::string& field, yaml::Subst subst);

  const std::string name_;
  std::map<std::string, std::string> params_;      // values in force
  std::map<std::string, std::vector<int>> lines_;  // field path -> lines
};

}  // namespace deja

#endif  // DEJA_CLIENT_YAML_READER_H_
