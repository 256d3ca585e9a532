#include "client/pipeline_yaml.h"

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
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "common/job_spec.h"
#include "common/pipeline.h"

namespace deja {
namespace {

namespace fs = std::filesystem;

// The digest ValidatePipeline sees for local inputs, which are hashed later.
constexpr char kPlaceholderDigest[] = "00000000000000000000000000000000";

// The keys allowed at each level: anything else is an error (a typo must
// not be silently ignored).
constexpr absl::string_view kTopKeys[] = {"name", "project", "reuse", "params",
                                          "apps", "nodes",   "edges"};
constexpr absl::string_view kAppKeys[] = {"name",  "command",  "version",
                                          "env",   "image",    "platform",
                                          "reuse", "side_effects", "cache_key"};
// The app keys a node may give itself (an inline app named after the node).
constexpr absl::string_view kNodeAppKeys[] = {"command",  "version", "env",
                                              "image",    "platform", "reuse",
                                              "side_effects", "cache_key"};
constexpr absl::string_view kNodeKeys[] = {
    "name",    "app",   "params",   "inputs", "outputs",      "memoization",
    "force",   "reuse_job_id",      "command", "version",     "env",
    "image",   "platform", "reuse", "side_effects", "cache_key"};
constexpr absl::string_view kInputKeys[] = {"path", "workspace_path"};
constexpr absl::string_view kEdgeKeys[] = {"from", "to", "path"};

constexpr char kEdgeExample[] =
    "NODE.output.NAME -> NODE.input.NAME (NAME of an output may be a glob or *)";

bool Contains(absl::Span<const absl::string_view> keys, absl::string_view key) {
  return std::find(keys.begin(), keys.end(), key) != keys.end();
}

size_t EditDistance(absl::string_view a, absl::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

std::string Field(absl::string_view prefix, absl::string_view key) {
  return prefix.empty() ? std::string(key) : absl::StrCat(prefix, ".", key);
}

template <typename T>
std::string Indexed(absl::string_view prefix, const T& index) {
  return absl::StrCat(prefix, "[", index, "]");
}

std::string TypeName(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Map:
      return "a mapping";
    case YAML::NodeType::Null:
      return "empty";
    default:
      return "a scalar";
  }
}

// Pipeline parameter names: letters, digits, '_', '-', '.', starting with a
// letter or '_' (like param and input names).
bool ValidParamName(absl::string_view name) {
  if (name.empty() || name.size() > kMaxNameLength) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    bool ok = absl::ascii_isalpha(static_cast<unsigned char>(c)) || c == '_' ||
              (i > 0 && (absl::ascii_isdigit(static_cast<unsigned char>(c)) || c == '-' ||
                         c == '.'));
    if (!ok) return false;
  }
  return true;
}

// One key: value pair of a mapping, with the line of its key.
struct Entry {
  std::string key;
  YAML::Node value;
  int line = 1;
};

// An app as parsed, with the lines of its fields relative to the app
// (".command[1]", ".env[MODE]", "" for the app itself).
struct ParsedApp {
  deja::v1::AppSpec app;
  std::map<std::string, int> lines;
  bool has_command = false;
  bool has_name = false;
};

// How ${pipeline.X} is substituted in a value.
enum class Subst {
  kNone,     // not at all (names, edges, defaults)
  kValue,    // the value as is; "$${pipeline." stands for a literal "${pipeline."
  kCommand,  // a command word: "${" in the value is escaped as "$${" so that
             // the scheduler's ${params.X}/${inputs.X} expansion keeps it
};

class Parser {
 public:
  Parser(std::string name, std::string base_dir,
         const std::map<std::string, std::string>& overrides)
      : name_(std::move(name)), base_dir_(std::move(base_dir)), overrides_(overrides) {}

  absl::StatusOr<PipelineFile> Parse(const std::string& text) {
    std::vector<YAML::Node> docs;
    try {
      docs = YAML::LoadAll(text);
    } catch (const YAML::Exception& e) {
      return absl::InvalidArgumentError(
          absl::StrCat(name_, ":", e.mark.line >= 0 ? e.mark.line + 1 : 1,
                       ": invalid YAML: ", e.msg));
    }
    if (docs.empty() || docs[0].IsNull()) {
      return Error(1, "name", "the file is empty: a pipeline needs at least name and nodes");
    }
    if (docs.size() > 1) {
      return Error(Line(docs[1], 1), "", "only one YAML document is allowed per file");
    }
    try {
      if (auto s = ParseRoot(docs[0]); !s.ok()) return s;
    } catch (const YAML::Exception& e) {
      return absl::InvalidArgumentError(
          absl::StrCat(name_, ":", e.mark.line >= 0 ? e.mark.line + 1 : 1, ": ", e.msg));
    }
    if (auto s = Validate(); !s.ok()) return s;
    out_.path = name_;
    return std::move(out_);
  }

 private:
  static int Line(const YAML::Node& node, int fallback) {
    // A null value ("key:" with nothing) carries the mark of what follows.
    if (!node.IsDefined() || node.IsNull() || node.Mark().line < 0) return fallback;
    return node.Mark().line + 1;
  }

  absl::Status Error(int line, absl::string_view field, absl::string_view problem) const {
    return absl::InvalidArgumentError(
        field.empty() ? absl::StrCat(name_, ":", line, ": ", problem)
                      : absl::StrCat(name_, ":", line, ": ", field, ": ", problem));
  }

  void Record(const std::string& path, int line) {
    auto& lines = lines_[path];
    if (std::find(lines.begin(), lines.end(), line) == lines.end()) lines.push_back(line);
  }

  // The entries of a mapping (null = empty). `allowed` empty: any key (a map
  // of names, whose keys' fields are field[key]); otherwise only those.
  absl::StatusOr<std::vector<Entry>> Mapping(const YAML::Node& node, int line,
                                             const std::string& field,
                                             absl::Span<const absl::string_view> allowed) {
    std::vector<Entry> entries;
    if (node.IsNull()) return entries;
    if (!node.IsMap()) {
      return Error(Line(node, line), field,
                   absl::StrCat("must be a mapping, not ", TypeName(node)));
    }
    std::map<std::string, int> seen;
    for (auto it = node.begin(); it != node.end(); ++it) {
      int key_line = Line(it->first, line);
      if (!it->first.IsScalar()) {
        return Error(key_line, field,
                     absl::StrCat("keys must be strings, not ", TypeName(it->first)));
      }
      Entry entry{it->first.Scalar(), it->second, key_line};
      std::string key_field =
          allowed.empty() ? Indexed(field, entry.key) : Field(field, entry.key);
      if (!allowed.empty() && !Contains(allowed, entry.key)) {
        std::string hint;
        size_t best = 3;
        for (absl::string_view known : allowed) {
          size_t d = EditDistance(absl::AsciiStrToLower(entry.key), known);
          if (d < best) {
            best = d;
            hint = absl::StrCat(" (did you mean \"", known, "\"?)");
          }
        }
        return Error(key_line, key_field,
                     absl::StrCat("unknown key \"", entry.key, "\"", hint,
                                  "; allowed here: ", absl::StrJoin(allowed, ", ")));
      }
      if (auto [prev, inserted] = seen.emplace(entry.key, key_line); !inserted) {
        return Error(key_line, key_field,
                     absl::StrCat("duplicate key \"", entry.key, "\" (first at line ",
                                  prev->second, ")"));
      }
      entries.push_back(std::move(entry));
    }
    return entries;
  }

  // The items of a list (null = empty).
  absl::StatusOr<std::vector<YAML::Node>> Sequence(const YAML::Node& node, int line,
                                                   const std::string& field,
                                                   absl::string_view example) {
    std::vector<YAML::Node> items;
    if (node.IsNull()) return items;
    if (!node.IsSequence()) {
      return Error(Line(node, line), field,
                   absl::StrCat("must be a list, e.g. ", example, ", not ", TypeName(node)));
    }
    for (const auto& item : node) items.push_back(item);
    return items;
  }

  // A scalar as text (numbers and booleans as written), with ${pipeline.X}
  // substituted per `subst`.
  absl::StatusOr<std::string> String(const YAML::Node& node, int line, const std::string& field,
                                     Subst subst) {
    line = Line(node, line);
    if (node.IsNull()) return Error(line, field, "has no value");
    if (!node.IsScalar()) {
      return Error(line, field,
                   absl::StrCat("must be a string, number or boolean, not ", TypeName(node)));
    }
    if (subst == Subst::kNone) return node.Scalar();
    return Substitute(node.Scalar(), line, field, subst);
  }

  absl::StatusOr<bool> Bool(const YAML::Node& node, int line, const std::string& field,
                            Subst subst) {
    auto text = String(node, line, field, subst);
    if (!text.ok()) return text.status();
    std::string lower = absl::AsciiStrToLower(*text);
    if (lower == "true" || lower == "yes" || lower == "on") return true;
    if (lower == "false" || lower == "no" || lower == "off") return false;
    return Error(Line(node, line), field, absl::StrCat("\"", *text, "\" is not true or false"));
  }

  std::string DeclaredParams() const {
    if (params_.empty()) return "the file declares no params:";
    std::vector<std::string> names;
    for (const auto& [k, v] : params_) names.push_back(k);
    return absl::StrCat("declared: ", absl::StrJoin(names, ", "));
  }

  absl::StatusOr<std::string> Substitute(const std::string& text, int line,
                                         const std::string& field, Subst subst) {
    static constexpr absl::string_view kRef = "${pipeline.";
    std::string out;
    size_t pos = 0;
    while (pos < text.size()) {
      if (text.compare(pos, 3, "$${") == 0) {
        // An escaped "${": a command keeps the escape for the scheduler's
        // expansion; elsewhere "$${pipeline." is a literal "${pipeline.".
        if (subst == Subst::kValue &&
            absl::StartsWith(absl::string_view(text).substr(pos + 1), kRef)) {
          out.append("${");
        } else {
          out.append("$${");
        }
        pos += 3;
        continue;
      }
      if (!absl::StartsWith(absl::string_view(text).substr(pos), kRef)) {
        out.push_back(text[pos++]);
        continue;
      }
      size_t end = text.find('}', pos);
      if (end == std::string::npos) {
        return Error(line, field, absl::StrCat("unterminated \"${pipeline.\" in \"", text, "\""));
      }
      std::string key = text.substr(pos + kRef.size(), end - pos - kRef.size());
      auto it = params_.find(key);
      if (it == params_.end()) {
        return Error(line, field,
                     absl::StrCat("unknown pipeline parameter \"", key, "\" in \"${pipeline.", key,
                                  "}\" (", DeclaredParams(), ")"));
      }
      if (subst == Subst::kCommand) {
        out.append(absl::StrReplaceAll(it->second, {{"${", "$${"}}));
      } else {
        out.append(it->second);
      }
      pos = end + 1;
    }
    return out;
  }

  // A mapping of names to scalars (env, platform, params).
  absl::Status StringMap(const Entry& entry, const std::string& field, Subst subst,
                         google::protobuf::Map<std::string, std::string>* out,
                         std::map<std::string, int>* lines, const std::string& rel) {
    auto entries = Mapping(entry.value, entry.line, field, {});
    if (!entries.ok()) return entries.status();
    (*lines)[rel] = entry.line;
    for (const auto& e : *entries) {
      auto value = String(e.value, e.line, Indexed(field, e.key), subst);
      if (!value.ok()) return value.status();
      (*out)[e.key] = *value;
      (*lines)[Indexed(rel, e.key)] = Line(e.value, e.line);
    }
    return absl::OkStatus();
  }

  absl::Status StringList(const Entry& entry, const std::string& field, Subst subst,
                          absl::string_view example,
                          google::protobuf::RepeatedPtrField<std::string>* out,
                          std::map<std::string, int>* lines, const std::string& rel) {
    auto items = Sequence(entry.value, entry.line, field, example);
    if (!items.ok()) return items.status();
    (*lines)[rel] = entry.line;
    for (size_t i = 0; i < items->size(); ++i) {
      const YAML::Node& item = (*items)[i];
      auto value = String(item, entry.line, Indexed(field, i), subst);
      if (!value.ok()) return value.status();
      out->Add(std::move(*value));
      (*lines)[Indexed(rel, i)] = Line(item, entry.line);
    }
    return absl::OkStatus();
  }

  // One key of an app (under apps:, an inline app: mapping, or a node's own
  // app keys). `field` is the key's field for messages.
  absl::Status AppKey(const Entry& entry, const std::string& field, ParsedApp* parsed) {
    deja::v1::AppSpec& app = parsed->app;
    auto& lines = parsed->lines;
    const std::string rel = absl::StrCat(".", entry.key);
    const int line = Line(entry.value, entry.line);
    if (entry.key == "command") {
      parsed->has_command = true;
      if (entry.value.IsScalar()) {
        return Error(line, field,
                     "must be a list of words (argv), e.g. [python3, train.py]; for a shell "
                     "line: [sh, -c, \"...\"]");
      }
      return StringList(entry, field, Subst::kCommand, "[python3, train.py]",
                        app.mutable_command(), &lines, rel);
    }
    if (entry.key == "env") {
      return StringMap(entry, field, Subst::kValue, app.mutable_env(), &lines, rel);
    }
    if (entry.key == "platform") {
      return StringMap(entry, field, Subst::kValue, app.mutable_platform(), &lines, rel);
    }
    if (entry.key == "cache_key") {
      return StringList(entry, field, Subst::kValue, "[epochs, lr]", app.mutable_cache_key(),
                        &lines, rel);
    }
    lines[rel] = line;
    if (entry.key == "reuse" || entry.key == "side_effects") {
      auto value = Bool(entry.value, entry.line, field, Subst::kValue);
      if (!value.ok()) return value.status();
      if (entry.key == "reuse") {
        app.set_reuse(*value);
      } else {
        app.set_side_effects(*value);
      }
      return absl::OkStatus();
    }
    auto value = String(entry.value, entry.line, field, Subst::kValue);
    if (!value.ok()) return value.status();
    if (entry.key == "name") {
      parsed->has_name = true;
      app.set_name(*value);
    } else if (entry.key == "version") {
      app.set_version(*value);
    } else if (entry.key == "image") {
      app.set_image(*value);
    }
    return absl::OkStatus();
  }

  // An app given as a mapping (under apps:, or a node's app:).
  absl::StatusOr<ParsedApp> AppMapping(const YAML::Node& node, int line, const std::string& field,
                                       const std::string& default_name, int default_name_line) {
    auto entries = Mapping(node, line, field, kAppKeys);
    if (!entries.ok()) return entries.status();
    ParsedApp parsed;
    parsed.lines[""] = line;
    for (const auto& e : *entries) {
      if (auto s = AppKey(e, Field(field, e.key), &parsed); !s.ok()) return s;
    }
    if (!parsed.has_command) {
      return Error(Line(node, line), Field(field, "command"),
                   "required: the argv to run, e.g. [python3, train.py]");
    }
    if (!parsed.has_name) {
      parsed.app.set_name(default_name);
      parsed.lines[".name"] = default_name_line;
    }
    return parsed;
  }

  absl::Status ParseRoot(const YAML::Node& root) {
    if (!root.IsMap()) {
      return Error(Line(root, 1), "",
                   absl::StrCat("the file must be a mapping with name, nodes, edges..., not ",
                                TypeName(root)));
    }
    auto entries = Mapping(root, 1, "", kTopKeys);
    if (!entries.ok()) return entries.status();
    std::map<std::string, const Entry*> top;
    for (const auto& e : *entries) top[e.key] = &e;
    auto& spec = out_.spec;
    spec.set_source(name_);

    auto name = top.find("name");
    if (name == top.end()) {
      return Error(1, "name",
                   "required: the pipeline's name (lowercase letters, digits, '-', '_', '.')");
    }
    auto name_value = String(name->second->value, name->second->line, "name", Subst::kNone);
    if (!name_value.ok()) return name_value.status();
    spec.set_name(*name_value);
    Record("name", Line(name->second->value, name->second->line));

    spec.set_project(kDefaultProject);
    if (auto it = top.find("project"); it != top.end()) {
      auto value = String(it->second->value, it->second->line, "project", Subst::kNone);
      if (!value.ok()) return value.status();
      spec.set_project(*value);
      Record("project", Line(it->second->value, it->second->line));
    }

    spec.set_reuse(true);
    if (auto it = top.find("reuse"); it != top.end()) {
      auto value = Bool(it->second->value, it->second->line, "reuse", Subst::kNone);
      if (!value.ok()) return value.status();
      spec.set_reuse(*value);
      Record("reuse", Line(it->second->value, it->second->line));
    }

    auto params = top.find("params");
    if (auto s = ParseParams(params == top.end() ? nullptr : params->second); !s.ok()) return s;

    if (auto it = top.find("apps"); it != top.end()) {
      auto apps = Mapping(it->second->value, it->second->line, "apps", {});
      if (!apps.ok()) return apps.status();
      for (const auto& e : *apps) {
        auto app = AppMapping(e.value, e.line, Indexed("apps", e.key), e.key, e.line);
        if (!app.ok()) return app.status();
        apps_[e.key] = std::move(*app);
      }
    }

    if (auto it = top.find("nodes"); it != top.end()) {
      Record("nodes", it->second->line);
      auto nodes = Sequence(it->second->value, it->second->line, "nodes",
                            "[{name: train, command: [...]}]");
      if (!nodes.ok()) return nodes.status();
      for (size_t i = 0; i < nodes->size(); ++i) {
        if (auto s = ParseNode((*nodes)[i], it->second->line, i); !s.ok()) return s;
      }
    }

    if (auto it = top.find("edges"); it != top.end()) {
      Record("edges", it->second->line);
      auto edges = Sequence(it->second->value, it->second->line, "edges",
                            "[preprocess.output.data.npz -> train.input.dataset]");
      if (!edges.ok()) return edges.status();
      for (size_t i = 0; i < edges->size(); ++i) {
        if (auto s = ParseEdge((*edges)[i], it->second->line, i); !s.ok()) return s;
      }
    }
    return absl::OkStatus();
  }

  absl::Status ParseParams(const Entry* entry) {
    int params_line = 1;
    if (entry != nullptr) {
      params_line = entry->line;
      auto params = Mapping(entry->value, entry->line, "params", {});
      if (!params.ok()) return params.status();
      for (const auto& e : *params) {
        std::string field = Indexed("params", e.key);
        if (!ValidParamName(e.key)) {
          return Error(e.line, field,
                       absl::StrCat("invalid parameter name \"", e.key,
                                    "\" (letters, digits, '_', '-', '.'; starting with a letter "
                                    "or '_')"));
        }
        if (e.value.IsNull()) {
          return Error(e.line, field, "needs a default value (\"\" for an empty one)");
        }
        auto value = String(e.value, e.line, field, Subst::kNone);
        if (!value.ok()) return value.status();
        params_[e.key] = *value;
        Record(field, Line(e.value, e.line));
      }
    }
    for (const auto& [key, value] : overrides_) {
      if (!params_.contains(key)) {
        return Error(params_line, "params",
                     absl::StrCat("--param ", key, "=", value, ": no such pipeline parameter (",
                                  DeclaredParams(), ")"));
      }
      params_[key] = value;
    }
    for (const auto& [key, value] : params_) (*out_.spec.mutable_params())[key] = value;
    return absl::OkStatus();
  }

  absl::Status ParseNode(const YAML::Node& node, int nodes_line, size_t index) {
    std::string field = Indexed("nodes", index);
    const int line = Line(node, nodes_line);
    if (!node.IsMap()) {
      return Error(line, field,
                   absl::StrCat("a node must be a mapping (name, app or command, params, inputs, "
                                "outputs...), not ",
                                TypeName(node)));
    }
    // Messages name the node by its name as soon as it has one.
    std::string named_field = field;
    for (auto it = node.begin(); it != node.end(); ++it) {
      if (it->first.IsScalar() && it->first.Scalar() == "name" && it->second.IsScalar()) {
        named_field = Indexed("nodes", it->second.Scalar());
        break;
      }
    }
    auto entries = Mapping(node, line, named_field, kNodeKeys);
    if (!entries.ok()) return entries.status();
    const Entry* name_entry = nullptr;
    for (const auto& e : *entries) {
      if (e.key == "name") name_entry = &e;
    }
    if (name_entry == nullptr) return Error(line, Field(field, "name"), "required");
    auto name = String(name_entry->value, name_entry->line, Field(field, "name"), Subst::kNone);
    if (!name.ok()) return name.status();
    const int name_line = Line(name_entry->value, name_entry->line);
    Record(field, line);
    Record(Field(field, "name"), name_line);
    field = Indexed("nodes", *name);
    Record(field, line);
    Record(Field(field, "name"), name_line);

    const int node_index = out_.spec.nodes_size();
    auto* out = out_.spec.add_nodes();
    out->set_name(*name);
    ParsedApp own;  // the node's own app keys
    own.lines[""] = line;
    const Entry* app_entry = nullptr;
    const Entry* own_app_key = nullptr;
    std::map<std::string, int> lines;  // relative to the node
    for (const auto& e : *entries) {
      const std::string key_field = Field(field, e.key);
      const std::string rel = absl::StrCat(".", e.key);
      const int value_line = Line(e.value, e.line);
      if (e.key == "name") continue;
      if (e.key == "app") {
        app_entry = &e;
      } else if (Contains(kNodeAppKeys, e.key)) {
        if (own_app_key == nullptr) own_app_key = &e;
        if (auto s = AppKey(e, key_field, &own); !s.ok()) return s;
      } else if (e.key == "params") {
        if (auto s = StringMap(e, key_field, Subst::kValue, out->mutable_params(), &lines, rel);
            !s.ok()) {
          return s;
        }
      } else if (e.key == "outputs") {
        if (auto s = StringList(e, key_field, Subst::kValue, "[model.bin, \"metrics/*.json\"]",
                                out->mutable_outputs(), &lines, rel);
            !s.ok()) {
          return s;
        }
      } else if (e.key == "inputs") {
        if (auto s = ParseInputs(e, key_field, *name, node_index); !s.ok()) return s;
      } else if (e.key == "memoization") {
        auto value = String(e.value, e.line, key_field, Subst::kValue);
        if (!value.ok()) return value.status();
        if (*value == "on") {
          out->set_memoization(deja::v1::MEMOIZATION_ON);
        } else if (*value == "off") {
          out->set_memoization(deja::v1::MEMOIZATION_OFF);
        } else if (*value == "inherit") {
          out->set_memoization(deja::v1::MEMOIZATION_INHERIT);
        } else {
          return Error(value_line, key_field,
                       absl::StrCat("\"", *value, "\" is not on, off or inherit"));
        }
        lines[rel] = value_line;
      } else if (e.key == "force") {
        auto value = Bool(e.value, e.line, key_field, Subst::kValue);
        if (!value.ok()) return value.status();
        out->set_force(*value);
        lines[rel] = value_line;
      } else if (e.key == "reuse_job_id") {
        auto value = String(e.value, e.line, key_field, Subst::kValue);
        if (!value.ok()) return value.status();
        out->set_reuse_job_id(*value);
        lines[rel] = value_line;
      }
    }

    ParsedApp resolved;
    if (app_entry != nullptr && own_app_key != nullptr) {
      return Error(own_app_key->line, Field(field, own_app_key->key),
                   absl::StrCat("a node with app: (line ", app_entry->line,
                                ") takes its ", own_app_key->key,
                                " from that app; give it there, or drop app: and give the "
                                "node its own command"));
    }
    if (app_entry != nullptr) {
      const std::string app_field = Field(field, "app");
      const YAML::Node& value = app_entry->value;
      if (value.IsScalar()) {
        auto it = apps_.find(value.Scalar());
        if (it == apps_.end()) {
          std::vector<std::string> names;
          for (const auto& [k, v] : apps_) names.push_back(k);
          std::string known = names.empty()
                                  ? "the file has no apps:"
                                  : absl::StrCat("apps: ", absl::StrJoin(names, ", "));
          return Error(Line(value, app_entry->line), app_field,
                       absl::StrCat("unknown app \"", value.Scalar(), "\" (", known, ")"));
        }
        resolved = it->second;
        resolved.lines[""] = Line(value, app_entry->line);
      } else if (value.IsMap()) {
        auto app = AppMapping(value, app_entry->line, app_field, *name, name_line);
        if (!app.ok()) return app.status();
        resolved = std::move(*app);
        resolved.lines[""] = app_entry->line;
      } else {
        return Error(Line(value, app_entry->line), app_field,
                     absl::StrCat("must be the name of an app under apps: or a mapping with "
                                  "command, version..., not ",
                                  TypeName(value)));
      }
    } else if (own.has_command) {
      resolved = std::move(own);
      resolved.app.set_name(*name);
      resolved.lines[".name"] = name_line;
    } else {
      return Error(line, field,
                   own_app_key != nullptr
                       ? absl::StrCat("has ", own_app_key->key,
                                      " but no command: a node needs command: (its own app) "
                                      "or app:")
                       : std::string("needs command: (the argv to run) or app: (a name under "
                                     "apps: or a mapping)"));
    }
    *out->mutable_app() = resolved.app;
    for (const auto& [rel, l] : resolved.lines) Record(absl::StrCat(field, ".app", rel), l);
    for (const auto& [rel, l] : lines) Record(absl::StrCat(field, rel), l);
    return absl::OkStatus();
  }

  absl::Status ParseInputs(const Entry& entry, const std::string& field, const std::string& node,
                           int node_index) {
    auto entries = Mapping(entry.value, entry.line, field, {});
    if (!entries.ok()) return entries.status();
    Record(field, entry.line);
    for (const auto& e : *entries) {
      const std::string input_field = Indexed(field, e.key);
      LocalInput input;
      input.node = node;
      input.name = e.key;
      int path_line = Line(e.value, e.line);
      int workspace_line = e.line;
      if (e.value.IsMap()) {
        auto keys = Mapping(e.value, e.line, input_field, kInputKeys);
        if (!keys.ok()) return keys.status();
        bool has_path = false;
        for (const auto& k : *keys) {
          auto value = String(k.value, k.line, Field(input_field, k.key), Subst::kValue);
          if (!value.ok()) return value.status();
          if (k.key == "path") {
            has_path = true;
            input.path = *value;
            path_line = Line(k.value, k.line);
          } else {
            input.workspace_path = *value;
            workspace_line = Line(k.value, k.line);
          }
        }
        if (!has_path) {
          return Error(e.line, Field(input_field, "path"),
                       "required: the local file or directory (relative to the pipeline file)");
        }
      } else {
        auto value = String(e.value, e.line, input_field, Subst::kValue);
        if (!value.ok()) return value.status();
        input.path = *value;
      }
      if (input.path.empty()) {
        return Error(path_line, input_field, "the local path must not be empty");
      }
      fs::path local(input.path);
      if (local.is_relative()) local = fs::path(base_dir_) / local;
      local = local.lexically_normal();
      if (!local.has_filename() && local != local.root_path()) {
        local = local.parent_path();  // "dir/" -> "dir"
      }
      std::error_code ec;
      if (!fs::exists(local, ec)) {
        return Error(path_line, input_field,
                     absl::StrCat(local.string(), ": no such file or directory",
                                  ec ? absl::StrCat(" (", ec.message(), ")") : ""));
      }
      input.path = local.string();
      // Placeholder index in the node's job: local inputs first, in order.
      int index = local_count_[node_index]++;
      std::string job_field = Indexed(absl::StrCat("nodes[", node, "].inputs"), index);
      Record(Indexed(absl::StrCat("nodes[", node, "].inputs"), e.key), e.line);
      Record(job_field, e.line);
      Record(job_field + ".name", e.line);
      Record(job_field + ".path", workspace_line);
      local_node_.push_back(node_index);
      out_.local_inputs.push_back(std::move(input));
    }
    return absl::OkStatus();
  }

  absl::Status ParseEdge(const YAML::Node& node, int edges_line, size_t index) {
    const std::string field = Indexed("edges", index);
    const int line = Line(node, edges_line);
    std::string from, to, path;
    int from_line = line, to_line = line, path_line = line;
    auto bad = [&](const std::string& what) {
      return Error(line, field, absl::StrCat(what, "; expected ", kEdgeExample));
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
      auto a = String(node[0], line, Indexed(field, 0), Subst::kNone);
      if (!a.ok()) return a.status();
      auto b = String(node[1], line, Indexed(field, 1), Subst::kNone);
      if (!b.ok()) return b.status();
      from = *a;
      to = *b;
      from_line = Line(node[0], line);
      to_line = Line(node[1], line);
    } else if (node.IsMap()) {
      auto entries = Mapping(node, line, field, kEdgeKeys);
      if (!entries.ok()) return entries.status();
      bool has_from = false, has_to = false;
      for (const auto& e : *entries) {
        auto value = String(e.value, e.line, Field(field, e.key), Subst::kNone);
        if (!value.ok()) return value.status();
        if (e.key == "from") {
          from = *value;
          from_line = Line(e.value, e.line);
          has_from = true;
        } else if (e.key == "to") {
          to = *value;
          to_line = Line(e.value, e.line);
          has_to = true;
        } else {
          path = *value;
          path_line = Line(e.value, e.line);
        }
      }
      if (!has_from || !has_to) {
        return Error(line, Field(field, has_from ? "to" : "from"),
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
      return Error(from_line, field,
                   absl::StrCat("bad edge source \"", from, "\"; expected NODE.output.NAME (NAME a "
                                "file, a glob or *)"));
    }
    size_t in_at = to.find(".input.");
    if (in_at == std::string::npos || in_at == 0 || in_at + 7 == to.size()) {
      return Error(to_line, field,
                   absl::StrCat("bad edge destination \"", to, "\"; expected NODE.input.NAME"));
    }
    edge->set_from_node(from.substr(0, out_at));
    edge->set_from_output(from.substr(out_at + 8));
    edge->set_to_node(to.substr(0, in_at));
    edge->set_to_input(to.substr(in_at + 7));
    edge->set_to_path(path);
    Record(field, line);
    Record(Field(field, "from_node"), from_line);
    Record(Field(field, "from_output"), from_line);
    Record(Field(field, "to_node"), to_line);
    Record(Field(field, "to_input"), to_line);
    Record(Field(field, "to_path"), path.empty() ? line : path_line);
    edge_lines_.push_back({line, to_line, path.empty() ? line : path_line});
    return absl::OkStatus();
  }

  // The line (and other lines) behind a ValidatePipeline field path: exact,
  // else the longest recorded prefix ending at a component, else line 1.
  std::vector<int> Lookup(const std::string& path) const {
    if (auto it = lines_.find(path); it != lines_.end()) return it->second;
    const std::vector<int>* best = nullptr;
    size_t best_size = 0;
    for (const auto& [known, lines] : lines_) {
      if (known.size() > best_size && known.size() < path.size() &&
          absl::StartsWith(path, known) &&
          (path[known.size()] == '.' || path[known.size()] == '[')) {
        best = &lines;
        best_size = known.size();
      }
    }
    return best != nullptr ? *best : std::vector<int>{1};
  }

  absl::Status Validate() {
    deja::v1::PipelineSpec check = out_.spec;
    for (size_t i = 0; i < out_.local_inputs.size(); ++i) {
      auto* ref = check.mutable_nodes(local_node_[i])->add_inputs();
      ref->set_name(out_.local_inputs[i].name);
      ref->set_kind("file");
      ref->set_digest(kPlaceholderDigest);
      ref->set_path(out_.local_inputs[i].workspace_path);
    }
    // Edge inputs follow a node's local inputs in its job (NodeJobSpec, then
    // one per edge in edge order).
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
      int index = local_count_[node->second]++;
      Record(Indexed(inputs, edge.to_input()), l.to);
      Record(Indexed(inputs, index), l.edge);
      Record(Indexed(inputs, index) + ".name", l.to);
      Record(Indexed(inputs, index) + ".path", l.path);
    }
    absl::Status status = ValidatePipeline(check);
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
    std::vector<int> lines = Lookup(field);
    if (field == "edges" && end != std::string::npos &&
        absl::StartsWith(absl::string_view(message).substr(end + 2), "cycle ")) {
      // "edges: cycle a -> b -> a": the lines of the cycle's edges, the one
      // closing it last.
      std::vector<std::string> cycle =
          absl::StrSplit(message.substr(end + 2 + 6), " -> ");
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
    return absl::InvalidArgumentError(absl::StrCat(name_, ":", lines.back(), ": ", message, also));
  }

  struct EdgeLines {
    int edge;
    int to;
    int path;
  };

  const std::string name_;
  const std::string base_dir_;
  const std::map<std::string, std::string>& overrides_;
  std::map<std::string, std::string> params_;  // values in force
  std::map<std::string, ParsedApp> apps_;
  PipelineFile out_;
  std::vector<int> local_node_;       // per local input: its node's index
  std::map<int, int> local_count_;    // node index -> inputs of its job so far
  std::vector<EdgeLines> edge_lines_;  // per edge
  std::map<std::string, std::vector<int>> lines_;  // field path -> lines
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
