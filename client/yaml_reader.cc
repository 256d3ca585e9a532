#include "client/yaml_reader.h"

#include <algorithm>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"

namespace deja {
namespace {

using yaml::Contains;
using yaml::Field;
using yaml::Indexed;
using yaml::TypeName;

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

}  // namespace

namespace yaml {

std::string Field(absl::string_view prefix, absl::string_view key) {
  return prefix.empty() ? std::string(key) : absl::StrCat(prefix, ".", key);
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

bool Contains(absl::Span<const absl::string_view> keys, absl::string_view key) {
  return std::find(keys.begin(), keys.end(), key) != keys.end();
}

}  // namespace yaml

int YamlReader::Line(const YAML::Node& node, int fallback) {
  // A null value ("key:" with nothing) carries the mark of what follows.
  if (!node.IsDefined() || node.IsNull() || node.Mark().line < 0) return fallback;
  return node.Mark().line + 1;
}

absl::Status YamlReader::Error(int line, absl::string_view field, absl::string_view problem) const {
  return absl::InvalidArgumentError(
      field.empty() ? absl::StrCat(name_, ":", line, ": ", problem)
                    : absl::StrCat(name_, ":", line, ": ", field, ": ", problem));
}

void YamlReader::Record(const std::string& path, int line) {
  auto& lines = lines_[path];
  if (std::find(lines.begin(), lines.end(), line) == lines.end()) lines.push_back(line);
}

absl::StatusOr<std::vector<yaml::Entry>> YamlReader::Mapping(
    const YAML::Node& node, int line, const std::string& field,
    absl::Span<const absl::string_view> allowed) {
  std::vector<yaml::Entry> entries;
  if (node.IsNull()) return entries;
  if (!node.IsMap()) {
    return Error(Line(node, line), field, absl::StrCat("must be a mapping, not ", TypeName(node)));
  }
  std::map<std::string, int> seen;
  for (auto it = node.begin(); it != node.end(); ++it) {
    int key_line = Line(it->first, line);
    if (!it->first.IsScalar()) {
      return Error(key_line, field,
                   absl::StrCat("keys must be strings, not ", TypeName(it->first)));
    }
    yaml::Entry entry{it->first.Scalar(), it->second, key_line};
    std::string key_field = allowed.empty() ? Indexed(field, entry.key) : Field(field, entry.key);
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
      return Error(
          key_line, key_field,
          absl::StrCat("duplicate key \"", entry.key, "\" (first at line ", prev->second, ")"));
    }
    entries.push_back(std::move(entry));
  }
  return entries;
}

absl::StatusOr<std::vector<YAML::Node>> YamlReader::Sequence(const YAML::Node& node, int line,
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

absl::StatusOr<std::string> YamlReader::String(const YAML::Node& node, int line,
                                               const std::string& field, yaml::Subst subst) {
  line = Line(node, line);
  if (node.IsNull()) return Error(line, field, "has no value");
  if (!node.IsScalar()) {
    return Error(line, field,
                 absl::StrCat("must be a string, number or boolean, not ", TypeName(node)));
  }
  if (subst == yaml::Subst::kNone) return node.Scalar();
  return Substitute(node.Scalar(), line, field, subst);
}

absl::StatusOr<bool> YamlReader::Bool(const YAML::Node& node, int line, const std::string& field,
                                      yaml::Subst subst) {
  auto text = String(node, line, field, subst);
  if (!text.ok()) return text.status();
  std::string lower = absl::AsciiStrToLower(*text);
  if (lower == "true" || lower == "yes" || lower == "on") return true;
  if (lower == "false" || lower == "no" || lower == "off") return false;
  return Error(Line(node, line), field, absl::StrCat("\"", *text, "\" is not true or false"));
}

std::string YamlReader::DeclaredParams() const {
  if (params_.empty()) return "the file declares no params:";
  std::vector<std::string> names;
  for (const auto& [k, v] : params_) names.push_back(k);
  return absl::StrCat("declared: ", absl::StrJoin(names, ", "));
}

absl::StatusOr<std::string> YamlReader::Substitute(const std::string& text, int line,
                                                   const std::string& field, yaml::Subst subst) {
  static constexpr absl::string_view kRef = "${pipeline.";
  std::string out;
  size_t pos = 0;
  while (pos < text.size()) {
    if (text.compare(pos, 3, "$${") == 0) {
      // An escaped "${": a command keeps the escape for the scheduler's
      // expansion; elsewhere "$${pipeline." is a literal "${pipeline.".
      if (subst == yaml::Subst::kValue &&
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
    if (subst == yaml::Subst::kCommand) {
      out.append(absl::StrReplaceAll(it->second, {{"${", "$${"}}));
    } else {
      out.append(it->second);
    }
    pos = end + 1;
  }
  return out;
}

absl::Status YamlReader::StringMap(const yaml::Entry& entry, const std::string& field,
                                   yaml::Subst subst,
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

absl::Status YamlReader::StringList(const yaml::Entry& entry, const std::string& field,
                                    yaml::Subst subst, absl::string_view example,
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

std::vector<int> YamlReader::Lookup(const std::string& path) const {
  if (auto it = lines_.find(path); it != lines_.end()) return it->second;
  const std::vector<int>* best = nullptr;
  size_t best_size = 0;
  for (const auto& [known, lines] : lines_) {
    if (known.size() > best_size && known.size() < path.size() && absl::StartsWith(path, known) &&
        (path[known.size()] == '.' || path[known.size()] == '[')) {
      best = &lines;
      best_size = known.size();
    }
  }
  return best != nullptr ? *best : std::vector<int>{1};
}

}  // namespace deja
