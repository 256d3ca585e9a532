#include "client/array_params.h"

#include <cstdint>
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

// "A-B" or "A-B:STEP" with integers A and B: a range. False for anything
// else (a plain value).
bool ParseRange(absl::string_view item, int64_t* from, int64_t* to, int64_t* step) {
  std::pair<absl::string_view, absl::string_view> range_step =
      absl::StrSplit(item, absl::MaxSplits(':', 1));
  // The dash after the first character: "-3-5" is -3 to 5.
  const size_t dash = range_step.first.find('-', 1);
  if (dash == absl::string_view::npos) return false;
  *step = 1;
  return absl::SimpleAtoi(range_step.first.substr(0, dash), from) &&
         absl::SimpleAtoi(range_step.first.substr(dash + 1), to) &&
         (item.find(':') == absl::string_view::npos || absl::SimpleAtoi(range_step.second, step));
}

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

absl::StatusOr<std::vector<std::string>> ExpandArrayValues(absl::string_view flag,
                                                           absl::string_view values) {
  std::vector<std::string> out;
  for (absl::string_view item : absl::StrSplit(values, ',')) {
    if (item.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(flag, ": an empty value in \"", values,
                                                     "\" (values are separated by commas)"));
    }
    int64_t from = 0;
    int64_t to = 0;
    int64_t step = 1;
    if (!ParseRange(item, &from, &to, &step)) {
      out.emplace_back(item);
      continue;
    }
    if (from > to || step < 1) {
      return absl::InvalidArgumentError(
          absl::StrCat(flag, ": the range ", item,
                       " is empty (ranges go up, FIRST-LAST or FIRST-LAST:STEP with STEP >= 1)"));
    }
    // Bounded before anything is made: a typo must not fill the memory.
    if ((to - from) / step >= 1'000'000) {
      return absl::InvalidArgumentError(
          absl::StrCat(flag, ": the range ", item, " has more than a million values"));
    }
    for (int64_t v = from; v <= to; v += step) out.push_back(absl::StrCat(v));
  }
  return out;
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
    absl::StatusOr<std::vector<std::string>> values =
        ExpandArrayValues(absl::StrCat("--array ", kv->first), kv->second);
    if (!values.ok()) return values.status();
    if (out.size() * values->size() > max_elements) {
      return absl::InvalidArgumentError(absl::StrCat("the array would have more than ",
                                                     max_elements, " elements (",
                                                     out.size() * values->size(), " or more)"));
    }
    std::vector<ParamSet> product;
    product.reserve(out.size() * values->size());
    for (const ParamSet& element : out) {
      if (element.contains(kv->first)) {
        return absl::InvalidArgumentError(
            absl::StrCat("--array ", kv->first, ": param ", kv->first, " is given twice"));
      }
      for (const std::string& value : *values) {
        ParamSet next = element;
        next[kv->first] = value;
        product.push_back(std::move(next));
      }
    }
    out = std::move(product);
  }
  if (out.size() > max_elements) {
    return absl::InvalidArgumentError(
        absl::StrCat("the array would have ", out.size(), " elements; at most ", max_elements));
  }
  return out;
}

}  // namespace deja::cli
