#include "client/pipeline_node_parser.h"

#include <filesystem>
#include <system_error>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "common/resources.h"

namespace deja {
namespace {

namespace fs = std::filesystem;

using yaml::Contains;
using yaml::Field;
using yaml::Indexed;
using yaml::TypeName;

// The keys allowed at each level: anything else is an error (a typo must
// not be silently ignored).
constexpr absl::string_view kAppKeys[] = {
    "name", "command", "version", "env", "image", "platform", "reuse", "side_effects", "cache_key"};
// The app keys a node may give itself (an inline app named after the node).
constexpr absl::string_view kNodeAppKeys[] = {"command",  "version", "env",          "image",
                                              "platform", "reuse",   "side_effects", "cache_key"};
constexpr absl::string_view kNodeKeys[] = {
    "name",     "app",          "params",       "inputs",    "outputs", "memoization",
    "force",    "reuse_job_id", "command",      "version",   "env",     "image",
    "platform", "reuse",        "side_effects", "cache_key", "cpus",    "memory",
    "gpus",     "time_limit",   "unplaceable",  "network",   "array"};
constexpr absl::string_view kInputKeys[] = {"path", "workspace_path"};

}  // namespace

absl::Status PipelineNodeParser::ParseApps(const yaml::Entry& entry) {
  auto apps = reader_.Mapping(entry.value, entry.line, "apps", {});
  if (!apps.ok()) return apps.status();
  for (const auto& e : *apps) {
    auto app = AppMapping(e.value, e.line, Indexed("apps", e.key), e.key, e.line);
    if (!app.ok()) return app.status();
    apps_[e.key] = std::move(*app);
  }
  return absl::OkStatus();
}

absl::Status PipelineNodeParser::AppKey(const yaml::Entry& entry, const std::string& field,
                                        ParsedApp* parsed) {
  deja::v1::AppSpec& app = parsed->app;
  auto& lines = parsed->lines;
  const std::string rel = absl::StrCat(".", entry.key);
  const int line = YamlReader::Line(entry.value, entry.line);
  if (entry.key == "command") {
    parsed->has_command = true;
    if (entry.value.IsScalar()) {
      return reader_.Error(line, field,
                           "must be a list of words (argv), e.g. [python3, train.py]; for a shell "
                           "line: [sh, -c, \"...\"]");
    }
    return reader_.StringList(entry, field, yaml::Subst::kCommand, "[python3, train.py]",
                              app.mutable_command(), &lines, rel);
  }
  if (entry.key == "env") {
    return reader_.StringMap(entry, field, yaml::Subst::kValue, app.mutable_env(), &lines, rel);
  }
  if (entry.key == "platform") {
    return reader_.StringMap(entry, field, yaml::Subst::kValue, app.mutable_platform(), &lines,
                             rel);
  }
  if (entry.key == "cache_key") {
    return reader_.StringList(entry, field, yaml::Subst::kValue, "[epochs, lr]",
                              app.mutable_cache_key(), &lines, rel);
  }
  lines[rel] = line;
  if (entry.key == "reuse" || entry.key == "side_effects") {
    auto value = reader_.Bool(entry.value, entry.line, field, yaml::Subst::kValue);
    if (!value.ok()) return value.status();
    if (entry.key == "reuse") {
      app.set_reuse(*value);
    } else {
      app.set_side_effects(*value);
    }
    return absl::OkStatus();
  }
  auto value = reader_.String(entry.value, entry.line, field, yaml::Subst::kValue);
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

absl::StatusOr<PipelineNodeParser::ParsedApp> PipelineNodeParser::AppMapping(
    const YAML::Node& node, int line, const std::string& field, const std::string& default_name,
    int default_name_line) {
  auto entries = reader_.Mapping(node, line, field, kAppKeys);
  if (!entries.ok()) return entries.status();
  ParsedApp parsed;
  parsed.lines[""] = line;
  for (const auto& e : *entries) {
    if (auto s = AppKey(e, Field(field, e.key), &parsed); !s.ok()) return s;
  }
  if (!parsed.has_command) {
    return reader_.Error(YamlReader::Line(node, line), Field(field, "command"),
                         "required: the argv to run, e.g. [python3, train.py]");
  }
  if (!parsed.has_name) {
    parsed.app.set_name(default_name);
    parsed.lines[".name"] = default_name_line;
  }
  return parsed;
}

absl::Status PipelineNodeParser::ParseNode(const YAML::Node& node, int nodes_line, size_t index) {
  std::string field = Indexed("nodes", index);
  const int line = YamlReader::Line(node, nodes_line);
  if (!node.IsMap()) {
    return reader_.Error(
        line, field,
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
  auto entries = reader_.Mapping(node, line, named_field, kNodeKeys);
  if (!entries.ok()) return entries.status();
  const yaml::Entry* name_entry = nullptr;
  for (const auto& e : *entries) {
    if (e.key == "name") name_entry = &e;
  }
  if (name_entry == nullptr) return reader_.Error(line, Field(field, "name"), "required");
  auto name =
      reader_.String(name_entry->value, name_entry->line, Field(field, "name"), yaml::Subst::kNone);
  if (!name.ok()) return name.status();
  const int name_line = YamlReader::Line(name_entry->value, name_entry->line);
  reader_.Record(field, line);
  reader_.Record(Field(field, "name"), name_line);
  field = Indexed("nodes", *name);
  reader_.Record(field, line);
  reader_.Record(Field(field, "name"), name_line);

  const int node_index = out_.spec.nodes_size();
  auto* out = out_.spec.add_nodes();
  out->set_name(*name);
  ParsedApp own;  // the node's own app keys
  own.lines[""] = line;
  const yaml::Entry* app_entry = nullptr;
  const yaml::Entry* own_app_key = nullptr;
  std::map<std::string, int> lines;  // relative to the node
  for (const auto& e : *entries) {
    const std::string key_field = Field(field, e.key);
    const std::string rel = absl::StrCat(".", e.key);
    const int value_line = YamlReader::Line(e.value, e.line);
    if (e.key == "name") continue;
    if (e.key == "app") {
      app_entry = &e;
    } else if (Contains(kNodeAppKeys, e.key)) {
      if (own_app_key == nullptr) own_app_key = &e;
      if (auto s = AppKey(e, key_field, &own); !s.ok()) return s;
    } else if (e.key == "params") {
      if (auto s = reader_.StringMap(e, key_field, yaml::Subst::kValue, out->mutable_params(),
                                     &lines, rel);
          !s.ok()) {
        return s;
      }
    } else if (e.key == "array") {
      // K: VALUES, as `deja submit --array K=VALUES` (1-100, a,b,c).
      if (auto s = reader_.StringMap(e, key_field, yaml::Subst::kValue, out->mutable_array(),
                                     &lines, rel);
          !s.ok()) {
        return s;
      }
    } else if (e.key == "outputs") {
      if (auto s = reader_.StringList(e, key_field, yaml::Subst::kValue,
                                      "[model.bin, \"metrics/*.json\"]", out->mutable_outputs(),
                                      &lines, rel);
          !s.ok()) {
        return s;
      }
    } else if (e.key == "inputs") {
      if (auto s = ParseInputs(e, key_field, *name, node_index); !s.ok()) return s;
    } else if (e.key == "memoization") {
      auto value = reader_.String(e.value, e.line, key_field, yaml::Subst::kValue);
      if (!value.ok()) return value.status();
      if (*value == "on") {
        out->set_memoization(deja::v1::MEMOIZATION_ON);
      } else if (*value == "off") {
        out->set_memoization(deja::v1::MEMOIZATION_OFF);
      } else if (*value == "inherit") {
        out->set_memoization(deja::v1::MEMOIZATION_INHERIT);
      } else {
        return reader_.Error(value_line, key_field,
                             absl::StrCat("\"", *value, "\" is not on, off or inherit"));
      }
      lines[rel] = value_line;
    } else if (e.key == "force") {
      auto value = reader_.Bool(e.value, e.line, key_field, yaml::Subst::kValue);
      if (!value.ok()) return value.status();
      out->set_force(*value);
      lines[rel] = value_line;
    } else if (e.key == "cpus" || e.key == "memory" || e.key == "gpus" || e.key == "time_limit" ||
               e.key == "unplaceable" || e.key == "network") {
      if (auto s = NodeResource(e, key_field, out); !s.ok()) return s;
      lines[rel] = value_line;
    } else if (e.key == "reuse_job_id") {
      auto value = reader_.String(e.value, e.line, key_field, yaml::Subst::kValue);
      if (!value.ok()) return value.status();
      out->set_reuse_job_id(*value);
      lines[rel] = value_line;
    }
  }

  ParsedApp resolved;
  if (app_entry != nullptr && own_app_key != nullptr) {
    return reader_.Error(
        own_app_key->line, Field(field, own_app_key->key),
        absl::StrCat("a node with app: (line ", app_entry->line, ") takes its ", own_app_key->key,
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
        std::string known = names.empty() ? "the file has no apps:"
                                          : absl::StrCat("apps: ", absl::StrJoin(names, ", "));
        return reader_.Error(YamlReader::Line(value, app_entry->line), app_field,
                             absl::StrCat("unknown app \"", value.Scalar(), "\" (", known, ")"));
      }
      resolved = it->second;
      resolved.lines[""] = YamlReader::Line(value, app_entry->line);
    } else if (value.IsMap()) {
      auto app = AppMapping(value, app_entry->line, app_field, *name, name_line);
      if (!app.ok()) return app.status();
      resolved = std::move(*app);
      resolved.lines[""] = app_entry->line;
    } else {
      return reader_.Error(YamlReader::Line(value, app_entry->line), app_field,
                           absl::StrCat("must be the name of an app under apps: or a mapping with "
                                        "command, version..., not ",
                                        TypeName(value)));
    }
  } else if (own.has_command) {
    resolved = std::move(own);
    resolved.app.set_name(*name);
    resolved.lines[".name"] = name_line;
  } else {
    return reader_.Error(line, field,
                         own_app_key != nullptr
                             ? absl::StrCat("has ", own_app_key->key,
                                            " but no command: a node needs command: (its own app) "
                                            "or app:")
                             : std::string("needs command: (the argv to run) or app: (a name under "
                                           "apps: or a mapping)"));
  }
  *out->mutable_app() = resolved.app;
  for (const auto& [rel, l] : resolved.lines) reader_.Record(absl::StrCat(field, ".app", rel), l);
  for (const auto& [rel, l] : lines) reader_.Record(absl::StrCat(field, rel), l);
  return absl::OkStatus();
}

absl::Status PipelineNodeParser::NodeResource(const yaml::Entry& e, const std::string& field,
                                              deja::v1::PipelineNode* out) {
  const int line = YamlReader::Line(e.value, e.line);
  if (e.key == "network") {
    auto value = reader_.Bool(e.value, e.line, field, yaml::Subst::kValue);
    if (!value.ok()) return value.status();
    out->set_network(*value);
    return absl::OkStatus();
  }
  auto value = reader_.String(e.value, e.line, field, yaml::Subst::kValue);
  if (!value.ok()) return value.status();
  auto failed = [&](const absl::Status& st) { return reader_.Error(line, field, st.message()); };
  deja::v1::Resources* r = out->mutable_resources();
  if (e.key == "unplaceable") {
    if (*value != "wait" && *value != "fail") {
      return reader_.Error(line, field, absl::StrCat("\"", *value, "\" is not wait or fail"));
    }
    out->set_fail_unplaceable(*value == "fail");
  } else if (e.key == "cpus") {
    absl::StatusOr<uint32_t> cpus = ParseCpus("", *value);
    if (!cpus.ok()) return failed(cpus.status());
    r->set_milli_cpus(*cpus);
  } else if (e.key == "memory") {
    absl::StatusOr<uint64_t> memory = ParseMemory("", *value);
    if (!memory.ok()) return failed(memory.status());
    r->set_memory_bytes(*memory);
  } else if (e.key == "gpus") {
    int64_t gpus = 0;
    if (!absl::SimpleAtoi(*value, &gpus)) {
      return reader_.Error(line, field, absl::StrCat("\"", *value, "\" is not a whole number"));
    }
    if (absl::Status st = CheckGpus("", gpus); !st.ok()) return failed(st);
    r->set_gpus(static_cast<uint32_t>(gpus));
  } else {
    absl::StatusOr<uint64_t> limit = ParseTimeLimit("", *value);
    if (!limit.ok()) return failed(limit.status());
    r->set_time_limit_ms(*limit);
  }
  if (r->ByteSizeLong() == 0) out->clear_resources();
  return absl::OkStatus();
}

absl::Status PipelineNodeParser::ParseInputs(const yaml::Entry& entry, const std::string& field,
                                             const std::string& node, int node_index) {
  auto entries = reader_.Mapping(entry.value, entry.line, field, {});
  if (!entries.ok()) return entries.status();
  reader_.Record(field, entry.line);
  for (const auto& e : *entries) {
    const std::string input_field = Indexed(field, e.key);
    LocalInput input;
    input.node = node;
    input.name = e.key;
    int path_line = YamlReader::Line(e.value, e.line);
    int workspace_line = e.line;
    if (e.value.IsMap()) {
      auto keys = reader_.Mapping(e.value, e.line, input_field, kInputKeys);
      if (!keys.ok()) return keys.status();
      bool has_path = false;
      for (const auto& k : *keys) {
        auto value =
            reader_.String(k.value, k.line, Field(input_field, k.key), yaml::Subst::kValue);
        if (!value.ok()) return value.status();
        if (k.key == "path") {
          has_path = true;
          input.path = *value;
          path_line = YamlReader::Line(k.value, k.line);
        } else {
          input.workspace_path = *value;
          workspace_line = YamlReader::Line(k.value, k.line);
        }
      }
      if (!has_path) {
        return reader_.Error(
            e.line, Field(input_field, "path"),
            "required: the local file or directory (relative to the pipeline file)");
      }
    } else {
      auto value = reader_.String(e.value, e.line, input_field, yaml::Subst::kValue);
      if (!value.ok()) return value.status();
      input.path = *value;
    }
    if (input.path.empty()) {
      return reader_.Error(path_line, input_field, "the local path must not be empty");
    }
    fs::path local(input.path);
    if (local.is_relative()) local = fs::path(base_dir_) / local;
    local = local.lexically_normal();
    if (!local.has_filename() && local != local.root_path()) {
      local = local.parent_path();  // "dir/" -> "dir"
    }
    std::error_code ec;
    if (!fs::exists(local, ec)) {
      return reader_.Error(path_line, input_field,
                           absl::StrCat(local.string(), ": no such file or directory",
                                        ec ? absl::StrCat(" (", ec.message(), ")") : ""));
    }
    input.path = local.string();
    // Placeholder index in the node's job: local inputs first, in order.
    int index = local_count_[node_index]++;
    std::string job_field = Indexed(absl::StrCat("nodes[", node, "].inputs"), index);
    reader_.Record(Indexed(absl::StrCat("nodes[", node, "].inputs"), e.key), e.line);
    reader_.Record(job_field, e.line);
    reader_.Record(job_field + ".name", e.line);
    reader_.Record(job_field + ".path", workspace_line);
    local_node_.push_back(node_index);
    out_.local_inputs.push_back(std::move(input));
  }
  return absl::OkStatus();
}

}  // namespace deja
