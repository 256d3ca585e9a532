#include "client/pipeline_yaml.h"

#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <system_error>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "client/pipeline_node_parser.h"
#include "client/yaml_reader.h"
#include "common/job_spec.h"
#include "common/pipeline.h"

namespace deja {
namespace {

namespace fs = std::filesystem;

// Where each YAML document of a stream starts. yaml-cpp 0.7's LoadAll loops
// for ever (allocating a null document per turn) on some malformed input,
// such as tests/fuzz/corpus/pipeline_yaml/regress-yaml-cpp-loadall-loop
// (found by that fuzzer; fixed upstream in yaml-cpp PR 1319, after the
// version Debian 12 ships): documents are counted here, at most `max` of
// them, and only the first one is loaded.
class DocumentStarts : public YAML::EventHandler {
 public:
  static std::vector<YAML::Mark> Of(const std::string& text, size_t max) {
    std::istringstream in(text);
    YAML::Parser parser(in);
    DocumentStarts starts;
    while (starts.marks_.size() < max && parser.HandleNextDocument(starts)) {
    }
    return std::move(starts.marks_);
  }

  void OnDocumentStart(const YAML::Mark& mark) override { marks_.push_back(mark); }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t,
                const std::string&) override {}
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {}
  void OnMapEnd() override {}

 private:
  std::vector<YAML::Mark> marks_;
};

using yaml::Field;
using yaml::Indexed;
using yaml::TypeName;

// The digest ValidatePipeline sees for local inputs, which are hashed later.
constexpr char kPlaceholderDigest[] = "00000000000000000000000000000000";

// The keys allowed at each level: anything else is an error (a typo must
// not be silently ignored).
constexpr absl::string_view kTopKeys[] = {"name", "project", "reuse", "params",
                                          "apps", "nodes",   "edges"};
constexpr absl::string_view kEdgeKeys[] = {"from", "to", "path"};

constexpr char kEdgeExample[] =
    "NODE.output.NAME -> NODE.input.NAME (NAME of an output may be a glob or *)";

// Pipeline parameter names: letters, digits, '_', '-', '.', starting with a
// letter or '_' (like param and input names).
bool ValidParamName(absl::string_view name) {
  if (name.empty() || name.size() > kMaxNameLength) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    bool ok =
        absl::ascii_isalpha(static_cast<unsigned char>(c)) || c == '_' ||
        (i > 0 && (absl::ascii_isdigit(static_cast<unsigned char>(c)) || c == '-' || c == '.'));
    if (!ok) return false;
  }
  return true;
}

// The whole file: the top level and params here, apps and nodes by
// PipelineNodeParser, edges here, then ValidatePipeline with its field path
// mapped back to a line.
class Parser {
 public:
  Parser(std::string name, std::string base_dir,
         const std::map<std::string, std::string>& overrides)
      : overrides_(overrides),
        reader_(std::move(name)),
        nodes_(reader_, std::move(base_dir), out_) {}

  absl::StatusOr<PipelineFile> Parse(const std::string& text) {
    YAML::Node root;
    std::vector<YAML::Mark> starts;
    try {
      starts = DocumentStarts::Of(text, 2);
      root = YAML::Load(text);
    } catch (const YAML::Exception& e) {
      return absl::InvalidArgumentError(absl::StrCat(
          reader_.name(), ":", e.mark.line >= 0 ? e.mark.line + 1 : 1, ": invalid YAML: ", e.msg));
    }
    if (starts.empty() || root.IsNull()) {
      return reader_.Error(1, "name",
                           "the file is empty: a pipeline needs at least name and nodes");
    }
    if (starts.size() > 1) {
      return reader_.Error(starts[1].line >= 0 ? starts[1].line + 1 : 1, "",
                           "only one YAML document is allowed per file");
    }
    try {
      if (auto s = ParseRoot(root); !s.ok()) return s;
    } catch (const YAML::Exception& e) {
      return absl::InvalidArgumentError(
          absl::StrCat(reader_.name(), ":", e.mark.line >= 0 ? e.mark.line + 1 : 1, ": ", e.msg));
    }
    if (auto s = Validate(); !s.ok()) return s;
    out_.path = reader_.name();
    return std::move(out_);
  }

 private:
  absl::Status ParseRoot(const YAML::Node& root) {
    if (!root.IsMap()) {
      return reader_.Error(
          YamlReader::Line(root, 1), "",
          absl::StrCat("the file must be a mapping with name, nodes, edges..., not ",
                       TypeName(root)));
    }
    auto entries = reader_.Mapping(root, 1, "", kTopKeys);
    if (!entries.ok()) return entries.status();
    std::map<std::string, const yaml::Entry*> top;
    for (const auto& e : *entries) top[e.key] = &e;
    auto& spec = out_.spec;
    spec.set_source(reader_.name());

    auto name = top.find("name");
    if (name == top.end()) {
      return reader_.Error(
          1, "name", "required: the pipeline's name (lowercase letters, digits, '-', '_', '.')");
    }
    auto name_value =
        reader_.String(name->second->value, name->second->line, "name", yaml::Subst::kNone);
    if (!name_value.ok()) return name_value.status();
    spec.set_name(*name_value);
    reader_.Record("name", YamlReader::Line(name->second->value, name->second->line));

    // No project: the scheduler's choice (the token's project, else
    // "default").
    if (auto it = top.find("project"); it != top.end()) {
      auto value =
          reader_.String(it->second->value, it->second->line, "project", yaml::Subst::kNone);
      if (!value.ok()) return value.status();
      spec.set_project(*value);
      reader_.Record("project", YamlReader::Line(it->second->value, it->second->line));
    }

    spec.set_reuse(true);
    if (auto it = top.find("reuse"); it != top.end()) {
      auto value = reader_.Bool(it->second->value, it->second->line, "reuse", yaml::Subst::kNone);
      if (!value.ok()) return value.status();
      spec.set_reuse(*value);
      reader_.Record("reuse", YamlReader::Line(it->second->value, it->second->line));
    }

    auto params = top.find("params");
    if (auto s = ParseParams(params == top.end() ? nullptr : params->second); !s.ok()) return s;

    if (auto it = top.find("apps"); it != top.end()) {
      if (auto s = nodes_.ParseApps(*it->second); !s.ok()) return s;
    }

    if (auto it = top.find("nodes"); it != top.end()) {
      reader_.Record("nodes", it->second->line);
      auto nodes = reader_.Sequence(it->second->value, it->second->line, "nodes",
                                    "[{name: train, command: [...]}]");
      if (!nodes.ok()) return nodes.status();
      for (size_t i = 0; i < nodes->size(); ++i) {
        if (auto s = nodes_.ParseNode((*nodes)[i], it->second->line, i); !s.ok()) return s;
      }
    }

    if (auto it = top.find("edges"); it != top.end()) {
      reader_.Record("edges", it->second->line);
      auto edges = reader_.Sequence(it->second->value, it->second->line, "edges",
                                    "[preprocess.output.data.npz -> train.input.dataset]");
      if (!edges.ok()) return edges.status();
      for (size_t i = 0; i < edges->size(); ++i) {
        if (auto s = ParseEdge((*edges)[i], it->second->line, i); !s.ok()) return s;
      }
    }
    return absl::OkStatus();
  }

  absl::Status ParseParams(const yaml::Entry* entry) {
    int params_line = 1;
    if (entry != nullptr) {
      params_line = entry->line;
      auto params = reader_.Mapping(entry->value, entry->line, "params", {});
      if (!params.ok()) return params.status();
      for (const auto& e : *params) {
        std::string field = Indexed("params", e.key);
        if (!ValidParamName(e.key)) {
          return reader_.Error(
              e.line, field,
              absl::StrCat("invalid parameter name \"", e.key,
                           "\" (letters, digits, '_', '-', '.'; starting with a letter "
                           "or '_')"));
        }
        if (e.value.IsNull()) {
          return reader_.Error(e.line, field, "needs a default value (\"\" for an empty one)");
        }
        auto value = reader_.String(e.value, e.line, field, yaml::Subst::kNone);
        if (!value.ok()) return value.status();
        reader_.params()[e.key] = *value;
        reader_.Record(field, YamlReader::Line(e.value, e.line));
      }
    }
    for (const auto& [key, value] : overrides_) {
      if (!reader_.params().contains(key)) {
        return reader_.Error(
            params_line, "params",
            absl::StrCat("--param ", key, "=", value, ": no such pipeline parameter (",
                         reader_.DeclaredParams(), ")"));
      }
      reader_.params()[key] = value;
    }
    for (const auto& [key, value] : reader_.params()) (*out_.spec.mutable_params())[key] = value;
    return absl::OkStatus();
  }

  absl::Status ParseEdge(const YAML::Node& node, int edges_line, size_t index) {
    const std::string field = Indexed("edges", index);
    const int line = YamlReader::Line(node, edges_line);
    std::string from, to, path;
    int from_line = line, to_line = line, path_line = line;
    auto bad = [&](const std::string& what) {
      return reader_.Error(line, field, absl::StrCat(what, "; expected ", kEdgeExample));
    };
    if (node.IsScalar()) {
      const std::string& text = node.Scalar();
      std::vector<std::string> parts = absl::StrSplit(text, "->");
      if (parts.size() != 2) return bad(absl::StrCat("bad edge \"", text, "\""));
      from = std::string(absl::StripAsciiWhitespace(parts[0]));
      to = std::string(absl::StripAsciiWhitespace(parts[1]));
    } else if (node.IsSequence()) {
      if (node.size() != 2) {
        return bad(absl::StrCat("a list edge is [FROM, TO], this one has ", node.size(), " items"));
      }
      auto a = reader_.String(node[0], line, Indexed(field, 0), yaml::Subst::kNone);
      if (!a.ok()) return a.status();
      auto b = reader_.String(node[1], line, Indexed(field, 1), yaml::Subst::kNone);
      if (!b.ok()) return b.status();
      from = *a;
      to = *b;
      from_line = YamlReader::Line(node[0], line);
      to_line = YamlReader::Line(node[1], line);
    } else if (node.IsMap()) {
      auto entries = reader_.Mapping(node, line, field, kEdgeKeys);
      if (!entries.ok()) return entries.status();
      bool has_from = false, has_to = false;
      for (const auto& e : *entries) {
        auto value = reader_.String(e.value, e.line, Field(field, e.key), yaml::Subst::kNone);
        if (!value.ok()) return value.status();
        if (e.key == "from") {
          from = *value;
          from_line = YamlReader::Line(e.value, e.line);
          has_from = true;
        } else if (e.key == "to") {
          to = *value;
          to_line = YamlReader::Line(e.value, e.line);
          has_to = true;
        } else {
          path = *value;
          path_line = YamlReader::Line(e.value, e.line);
        }
      }
      if (!has_from || !has_to) {
        return reader_.Error(
            line, Field(field, has_from ? "to" : "from"),
            "required: an edge mapping is {from: NODE.output.NAME, to: NODE.input.NAME, "
            "path: WORKSPACE_PATH (optional)}");
      }
    } else {
      return bad(
          absl::StrCat("an edge must be a string, a list or a mapping, not ", TypeName(node)));
    }
    auto* edge = out_.spec.add_edges();
    size_t out_at = from.find(".output.");
    if (out_at == std::string::npos || out_at == 0 || out_at + 8 == from.size()) {
      return reader_.Error(from_line, field,
                           absl::StrCat("bad edge source \"", from,
                                        "\"; expected NODE.output.NAME (NAME a "
                                        "file, a glob or *)"));
    }
    size_t in_at = to.find(".input.");
    if (in_at == std::string::npos || in_at == 0 || in_at + 7 == to.size()) {
      return reader_.Error(
          to_line, field,
          absl::StrCat("bad edge destination \"", to, "\"; expected NODE.input.NAME"));
    }
    edge->set_from_node(from.substr(0, out_at));
    edge->set_from_output(from.substr(out_at + 8));
    edge->set_to_node(to.substr(0, in_at));
    edge->set_to_input(to.substr(in_at + 7));
    edge->set_to_path(path);
    reader_.Record(field, line);
    reader_.Record(Field(field, "from_node"), from_line);
    reader_.Record(Field(field, "from_output"), from_line);
    reader_.Record(Field(field, "to_node"), to_line);
    reader_.Record(Field(field, "to_input"), to_line);
    reader_.Record(Field(field, "to_path"), path.empty() ? line : path_line);
    edge_lines_.push_back({line, to_line, path.empty() ? line : path_line});
    return absl::OkStatus();
  }

  absl::Status Validate() {
    deja::v1::PipelineSpec check = out_.spec;
    for (size_t i = 0; i < out_.local_inputs.size(); ++i) {
      auto* ref = check.mutable_nodes(nodes_.local_node()[i])->add_inputs();
      ref->set_name(out_.local_inputs[i].name);
      ref->set_kind("file");
      ref->set_digest(kPlaceholderDigest);
      ref->set_path(out_.local_inputs[i].workspace_path);
    }
    // Edge inputs follow a node's local inputs in its job (NodeJobSpec, then
    // one per edge in edge order).
    std::map<int, int> local_count = nodes_.local_count();
    std::map<std::string, int> first_node;
    for (int i = 0; i < out_.spec.nodes_size(); ++i) {
      first_node.emplace(out_.spec.nodes(i).name(), i);
    }
    for (int i = 0; i < out_.spec.edges_size(); ++i) {
      const auto& edge = out_.spec.edges(i);
      const EdgeLines& l = edge_lines_[i];
      auto node = first_node.find(edge.to_node());
      if (node == first_node.end()) continue;
      std::string inputs = absl::StrCat("nodes[", edge.to_node(), "].inputs");
      int index = local_count[node->second]++;
      reader_.Record(Indexed(inputs, edge.to_input()), l.to);
      reader_.Record(Indexed(inputs, index), l.edge);
      reader_.Record(Indexed(inputs, index) + ".name", l.to);
      reader_.Record(Indexed(inputs, index) + ".path", l.path);
    }
    // Array nodes as the scheduler expands them (errors name the node).
    absl::StatusOr<deja::v1::PipelineSpec> expanded = ExpandArrayNodes(check);
    absl::Status status = expanded.ok() ? ValidatePipeline(*expanded) : expanded.status();
    if (status.ok()) return status;
    const std::string message(status.message());
    // The field: up to the first ": " outside brackets (node names may hold
    // anything before they are validated).
    size_t end = std::string::npos;
    int depth = 0;
    for (size_t i = 0; i + 1 < message.size(); ++i) {
      if (message[i] == '[') ++depth;
      if (message[i] == ']' && depth > 0) --depth;
      if (depth == 0 && message[i] == ':' && message[i + 1] == ' ') {
        end = i;
        break;
      }
    }
    const std::string field = message.substr(0, end);
    std::vector<int> lines = reader_.Lookup(field);
    if (field == "edges" && end != std::string::npos &&
        absl::StartsWith(absl::string_view(message).substr(end + 2), "cycle ")) {
      // "edges: cycle a -> b -> a": the lines of the cycle's edges, the one
      // closing it last.
      std::vector<std::string> cycle = absl::StrSplit(message.substr(end + 2 + 6), " -> ");
      std::vector<int> edge_lines;
      for (size_t k = 0; k + 1 < cycle.size(); ++k) {
        for (int i = 0; i < out_.spec.edges_size(); ++i) {
          if (out_.spec.edges(i).from_node() == cycle[k] &&
              out_.spec.edges(i).to_node() == cycle[k + 1]) {
            edge_lines.push_back(edge_lines_[i].edge);
            break;
          }
        }
      }
      if (!edge_lines.empty()) lines = edge_lines;
    }
    std::string also;
    if (lines.size() > 1) {
      also = absl::StrCat(" (see also line", lines.size() > 2 ? "s " : " ",
                          absl::StrJoin(lines.begin(), lines.end() - 1, ", "), ")");
    }
    return absl::InvalidArgumentError(
        absl::StrCat(reader_.name(), ":", lines.back(), ": ", message, also));
  }

  struct EdgeLines {
    int edge;
    int to;
    int path;
  };

  const std::map<std::string, std::string>& overrides_;
  YamlReader reader_;
  PipelineFile out_;
  PipelineNodeParser nodes_;
  std::vector<EdgeLines> edge_lines_;  // per edge
};

}  // namespace

absl::StatusOr<PipelineFile> ParsePipelineYaml(
    const std::string& text, const std::string& name, const std::string& base_dir,
    const std::map<std::string, std::string>& param_overrides) {
  std::error_code ec;
  fs::path dir = base_dir.empty() ? fs::current_path(ec) : fs::absolute(base_dir, ec);
  if (ec) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, ": cannot resolve the directory \"", base_dir, "\": ", ec.message()));
  }
  Parser parser(name, dir.lexically_normal().string(), param_overrides);
  return parser.Parse(text);
}

absl::StatusOr<PipelineFile> LoadPipelineFile(
    const std::string& path, const std::map<std::string, std::string>& param_overrides) {
  std::error_code ec;
  fs::file_status status = fs::status(path, ec);
  if (ec) {
    return absl::ErrnoToStatus(ec.value(), absl::StrCat(path, ": cannot read the pipeline file"));
  }
  if (fs::is_directory(status)) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": is a directory, not a pipeline file"));
  }
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  if (!in.good() && !in.eof()) {
    return absl::UnavailableError(absl::StrCat(path, ": cannot read the pipeline file"));
  }
  fs::path dir = fs::absolute(path, ec).parent_path();
  if (ec) return absl::ErrnoToStatus(ec.value(), absl::StrCat(path, ": cannot resolve"));
  return ParsePipelineYaml(text.str(), path, dir.string(), param_overrides);
}

}  // namespace deja
