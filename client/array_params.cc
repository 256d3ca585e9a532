#include "client/array_params.h"

#include <utility>

#include "absl/algorithm/container.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "client/spec_flags.h"
#include "nlohmann/json.hpp"

namespace deja::cli {
namespace {

absl::Status LineError(absl::string_view name, size_t line, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(name, ":", line, ": ", what));
}

absl::StatusOr<ParamSet> ParseJsonLine(absl::string_view line) {
  nlohmann::json json = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded()) return absl::InvalidArgumentError("not valid JSON");
  if (!json.is_object()) return absl::InvalidArgumentError("a JSON line must be an object");
  ParamSet params;
  for (const auto& [key, value] : json.items()) {
    if (value.is_string()) {
      params[key] = value.get<std::string>();
    } else if (value.is_number() || value.is_boolean()) {
      params[key] = value.dump();
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("\"", key, "\": a value must be a string, a number or a boolean"));
    }
  }
  return params;
}

}  // namespace

bool IsArrayId(absl::string_view id) {
  return id.size() > 1 && id[0] == 'a' && absl::c_all_of(id.substr(1), absl::ascii_isdigit);
}

absl::StatusOr<std::vector<ParamSet>> ParseParamsFile(absl::string_view name,
                                                      absl::string_view content) {
  std::vector<ParamSet> out;
  size_t number = 0;
  for (absl::string_view line : absl::StrSplit(content, '\n')) {
    ++number;
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || line[0] == '#') continue;
    if (line[0] == '{') {
      absl::StatusOr<ParamSet> params = ParseJsonLine(line);
      if (!params.ok()) return LineError(name, number, params.status().message());
      out.push_back(*std::move(params));
      continue;
    }
    ParamSet params;
    for (absl::string_view word : absl::StrSplit(line, ' ', absl::SkipWhitespace())) {
      absl::StatusOr<std::pair<std::string, std::string>> kv = ParseKeyValue("a param", word);
      if (!kv.ok()) return LineError(name, number, kv.status().message());
      if (!params.emplace(kv->first, kv->second).second) {
        return LineError(name, number, absl::StrCat("param ", kv->first, " is given twice"));
      }
    }
    out.push_back(std::move(params));
  }
  if (out.empty()) return absl::InvalidArgumentError(absl::StrCat(name, ": no params in it"));
  return out;
}

absl::StatusOr<std::vector<ParamSet>> ArrayElements(const std::vector<std::string>& array_flags,
                                                    const std::vector<ParamSet>& file_elements,
                                                    size_t max_elements) {
  std::vector<ParamSet> out = file_elements.empty() ? std::vector<ParamSet>(1) : file_elements;
  for (const std::string& flag : array_flags) {
    absl::StatusOr<std::pair<std::string, std::string>> kv = ParseKeyValue("--array", flag);
    if (!kv.ok()) return kv.status();
    const std::string field = absl::StrCat("--array ", kv->first);
    absl::StatusOr<std::vector<std::string>> values = ExpandArrayValues(field, kv->second);
    if (!values.ok()) return values.status();
    absl::StatusOr<std::vector<ParamSet>> product =
        CombineArray(out, kv->first, *values, field, max_elements);
    if (!product.ok()) return product.status();
    out = *std::move(product);
  }
  if (out.size() > max_elements) {
    return absl::InvalidArgumentError(
        absl::StrCat("the array would have ", out.size(), " elements; at most ", max_elements));
  }
  return out;
}

}  // namespace deja::cli
