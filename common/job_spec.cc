#include "common/job_spec.h"

#include <set>
#include <string_view>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "common/hash.h"
#include "common/resources.h"

namespace deja {
namespace {

bool IsNameChar(char c, bool first) {
  if (c >= 'a' && c <= 'z') return true;
  if (c >= '0' && c <= '9') return true;
  return !first && (c == '-' || c == '_' || c == '.');
}

absl::Status Invalid(absl::string_view field, absl::string_view problem) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", problem));
}

// The offset of the first byte of `text` that does not start or continue a
// well-formed UTF-8 sequence (RFC 3629: no overlongs, no surrogates, at most
// U+10FFFF), or npos.
size_t FirstInvalidUtf8(absl::string_view text) {
  size_t i = 0;
  while (i < text.size()) {
    const auto b = static_cast<unsigned char>(text[i]);
    size_t len = 0;
    unsigned char lo = 0x80, hi = 0xBF;  // the second byte's range
    if (b < 0x80) {
      len = 1;
    } else if (b >= 0xC2 && b <= 0xDF) {
      len = 2;
    } else if (b >= 0xE0 && b <= 0xEF) {
      len = 3;
      if (b == 0xE0) lo = 0xA0;
      if (b == 0xED) hi = 0x9F;
    } else if (b >= 0xF0 && b <= 0xF4) {
      len = 4;
      if (b == 0xF0) lo = 0x90;
      if (b == 0xF4) hi = 0x8F;
    } else {
      return i;
    }
    if (i + len > text.size()) return i;
    for (size_t k = 1; k < len; ++k) {
      const auto c = static_cast<unsigned char>(text[i + k]);
      if (c < (k == 1 ? lo : 0x80) || c > (k == 1 ? hi : 0xBF)) return i;
    }
    i += len;
  }
  return absl::string_view::npos;
}

absl::Status CheckLength(absl::string_view field, absl::string_view value, size_t max) {
  if (value.size() > max) {
    return Invalid(field, absl::StrCat("too long (", value.size(), " bytes, at most ", max, ")"));
  }
  return absl::OkStatus();
}

// Any string the spec carries: at most `max` bytes, UTF-8 (protobuf's string
// fields must be: a peer drops a message that is not), and no NUL byte (a
// command line or environment would end there, silently).
absl::Status CheckText(absl::string_view field, absl::string_view value, size_t max) {
  if (auto s = CheckLength(field, value, max); !s.ok()) return s;
  if (const size_t at = FirstInvalidUtf8(value); at != absl::string_view::npos) {
    return Invalid(field, absl::StrFormat("not valid UTF-8 (byte 0x%02x at offset %d)",
                                          static_cast<unsigned char>(value[at]), at));
  }
  if (const size_t at = value.find('\0'); at != absl::string_view::npos) {
    return Invalid(field, absl::StrCat("contains a NUL byte (at offset ", at, ")"));
  }
  return absl::OkStatus();
}

// Identifier-like keys: env names, params, input names, cache_key entries.
absl::Status CheckKey(absl::string_view field, absl::string_view key) {
  if (key.empty()) return Invalid(field, "must not be empty");
  if (auto s = CheckLength(field, key, kMaxNameLength); !s.ok()) return s;
  for (size_t i = 0; i < key.size(); ++i) {
    char c = key[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
              (i > 0 && ((c >= '0' && c <= '9') || c == '-' || c == '.'));
    if (!ok) {
      return Invalid(field, absl::StrCat("invalid name \"", key,
                                         "\" (letters, digits, '_', '-', '.'; "
                                         "starting with a letter or '_')"));
    }
  }
  return absl::OkStatus();
}

template <typename Map>
absl::Status CheckMap(absl::string_view field, const Map& map) {
  if (map.size() > kMaxEntries) {
    return Invalid(field,
                   absl::StrCat("too many entries (", map.size(), ", at most ", kMaxEntries, ")"));
  }
  for (const auto& [key, value] : map) {
    std::string entry = absl::StrCat(field, "[", key, "]");
    if (auto s = CheckKey(entry, key); !s.ok()) return s;
    if (auto s = CheckText(entry, value, kMaxValueLength); !s.ok()) return s;
  }
  return absl::OkStatus();
}

}  // namespace

void NormalizeJobSpec(deja::v1::JobSpec* spec) {
  if (spec->project().empty()) spec->set_project(kDefaultProject);
  auto* app = spec->mutable_app();
  if (app->name().empty() && app->command_size() > 0) {
    absl::string_view argv0 = app->command(0);
    size_t slash = argv0.rfind('/');
    if (slash != absl::string_view::npos) argv0.remove_prefix(slash + 1);
    std::string name;
    for (char c : argv0) {
      char lower = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
      name.push_back(IsNameChar(lower, name.empty()) ? lower : '_');
    }
    app->set_name(name.substr(0, kMaxNameLength));
  }
  // An image named by its ID is pinned to it.
  if (app->image_id().empty() && IsImageId(app->image())) app->set_image_id(app->image());
}

bool IsImageId(std::string_view text) {
  constexpr std::string_view kPrefix = "sha256:";
  if (text.size() != kPrefix.size() + 64 || text.substr(0, kPrefix.size()) != kPrefix) {
    return false;
  }
  return IsLowerHex(text.substr(kPrefix.size()));
}

absl::Status ValidateWorkspacePath(const std::string& field, const std::string& path) {
  if (path.empty()) return Invalid(field, "must not be empty");
  if (auto s = CheckText(field, path, kMaxPathLength); !s.ok()) return s;
  if (path.front() == '/') {
    return Invalid(field,
                   absl::StrCat("\"", path, "\" is absolute; use a workspace-relative path"));
  }
  bool names_something = false;
  for (absl::string_view part : absl::StrSplit(path, '/')) {
    if (part == "..") {
      return Invalid(field,
                     absl::StrCat("\"", path, "\" contains \"..\" and could leave the workspace"));
    }
    names_something = names_something || (!part.empty() && part != ".");
  }
  if (!names_something) {
    return Invalid(
        field, absl::StrCat("\"", path, "\" is the workspace itself; name something inside it"));
  }
  return absl::OkStatus();
}

absl::Status ValidateName(const std::string& field, const std::string& name) {
  if (name.empty()) return Invalid(field, "must not be empty");
  if (auto s = CheckLength(field, name, kMaxNameLength); !s.ok()) return s;
  for (size_t i = 0; i < name.size(); ++i) {
    if (!IsNameChar(name[i], i == 0)) {
      return Invalid(field, absl::StrCat("invalid name \"", name,
                                         "\" (lowercase letters, digits, '-', '_', '.'; "
                                         "starting with a letter or digit)"));
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateJobSpec(const deja::v1::JobSpec& spec) {
  if (spec.ByteSizeLong() > kMaxSpecBytes) {
    return Invalid("spec", absl::StrCat("too large (", spec.ByteSizeLong(), " bytes, at most ",
                                        kMaxSpecBytes, ")"));
  }
  if (auto s = ValidateName("project", spec.project()); !s.ok()) return s;
  const auto& app = spec.app();
  // Before app.name, which defaults to argv[0].
  if (app.command_size() == 0) return Invalid("app.command", "must not be empty");
  if (app.command(0).empty()) return Invalid("app.command[0]", "must not be empty");
  if (auto s = ValidateName("app.name", app.name()); !s.ok()) return s;
  if (auto s = CheckText("app.version", app.version(), kMaxNameLength); !s.ok()) return s;
  if (auto s = CheckText("app.image", app.image(), kMaxPathLength); !s.ok()) return s;
  if (!app.image_id().empty()) {
    if (!IsImageId(app.image_id())) {
      return Invalid("app.image_id", "must be \"sha256:\" and 64 lowercase hex digits");
    }
    if (app.image().empty()) return Invalid("app.image_id", "given without app.image");
  }
  if (static_cast<size_t>(app.command_size()) > kMaxEntries) {
    return Invalid("app.command", absl::StrCat("too many words (", app.command_size(), ", at most ",
                                               kMaxEntries, ")"));
  }
  for (int i = 0; i < app.command_size(); ++i) {
    std::string field = absl::StrCat("app.command[", i, "]");
    if (auto s = CheckText(field, app.command(i), kMaxValueLength); !s.ok()) return s;
  }
  if (auto s = CheckMap("app.env", app.env()); !s.ok()) return s;
  if (auto s = CheckMap("app.platform", app.platform()); !s.ok()) return s;
  for (int i = 0; i < app.cache_key_size(); ++i) {
    if (auto s = CheckKey(absl::StrCat("app.cache_key[", i, "]"), app.cache_key(i)); !s.ok()) {
      return s;
    }
  }
  if (auto s = CheckMap("params", spec.params()); !s.ok()) return s;
  if (auto s = CheckMap("labels", spec.labels()); !s.ok()) return s;
  if (auto s = ValidateResources("resources", spec.resources()); !s.ok()) return s;

  std::set<std::string> input_names;
  for (int i = 0; i < spec.inputs_size(); ++i) {
    const auto& input = spec.inputs(i);
    std::string field = absl::StrCat("inputs[", i, "]");
    if (auto s = CheckKey(field + ".name", input.name()); !s.ok()) return s;
    if (!input_names.insert(input.name()).second) {
      return Invalid(field + ".name", absl::StrCat("duplicate input \"", input.name(), "\""));
    }
    if (input.kind() != "file" && input.kind() != "dir") {
      return Invalid(field + ".kind", absl::StrCat("\"", input.kind(), "\" is not file or dir"));
    }
    if (!IsDigest(input.digest())) {
      return Invalid(field + ".digest", "must be 32 lowercase hex digits");
    }
    if (!input.path().empty()) {
      if (auto s = ValidateWorkspacePath(field + ".path", input.path()); !s.ok()) return s;
    }
  }

  if (static_cast<size_t>(spec.outputs_size()) > kMaxEntries) {
    return Invalid("outputs", absl::StrCat("too many globs (", spec.outputs_size(), ", at most ",
                                           kMaxEntries, ")"));
  }
  std::set<std::string> globs;
  for (int i = 0; i < spec.outputs_size(); ++i) {
    std::string field = absl::StrCat("outputs[", i, "]");
    if (auto s = ValidateWorkspacePath(field, spec.outputs(i)); !s.ok()) return s;
    if (!globs.insert(spec.outputs(i)).second) {
      return Invalid(field, absl::StrCat("duplicate output glob \"", spec.outputs(i), "\""));
    }
  }
  if (auto s = CheckText("request_id", spec.request_id(), kMaxNameLength); !s.ok()) return s;
  if (auto s = CheckText("reuse_job_id", spec.reuse_job_id(), kMaxNameLength); !s.ok()) return s;
  return ExpandCommand(spec).status();
}

absl::StatusOr<std::vector<std::string>> ExpandCommand(const deja::v1::JobSpec& spec) {
  std::vector<std::string> argv;
  for (int i = 0; i < spec.app().command_size(); ++i) {
    const std::string& word = spec.app().command(i);
    std::string out;
    size_t pos = 0;
    while (pos < word.size()) {
      if (word.compare(pos, 3, "$${") == 0) {
        out.append("${");
        pos += 3;
        continue;
      }
      if (word.compare(pos, 2, "${") != 0) {
        out.push_back(word[pos++]);
        continue;
      }
      size_t end = word.find('}', pos);
      std::string field = absl::StrCat("app.command[", i, "]");
      if (end == std::string::npos) return Invalid(field, "unterminated \"${\"");
      std::string ref = word.substr(pos + 2, end - pos - 2);
      if (absl::StartsWith(ref, "params.")) {
        auto it = spec.params().find(ref.substr(7));
        if (it == spec.params().end()) {
          return Invalid(field, absl::StrCat("refers to unknown param \"", ref.substr(7), "\""));
        }
        out.append(it->second);
      } else if (absl::StartsWith(ref, "inputs.")) {
        std::string name = ref.substr(7);
        const deja::v1::InputRef* found = nullptr;
        for (const auto& input : spec.inputs()) {
          if (input.name() == name) found = &input;
        }
        if (found == nullptr) {
          return Invalid(field, absl::StrCat("refers to unknown input \"", name, "\""));
        }
        out.append(found->path().empty() ? "inputs/" + name : found->path());
      } else {
        return Invalid(field,
                       absl::StrCat("unknown reference \"${", ref,
                                    "}\" (use ${params.X} or ${inputs.X}; $${ for a literal)"));
      }
      pos = end + 1;
    }
    argv.push_back(std::move(out));
  }
  return argv;
}

}  // namespace deja
