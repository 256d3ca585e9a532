#include "common/array_values.h"

#include <cstdint>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace deja {
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

}  // namespace

absl::StatusOr<std::vector<std::string>> ExpandArrayValues(absl::string_view field,
                                                           absl::string_view values) {
  std::vector<std::string> out;
  for (absl::string_view item : absl::StrSplit(values, ',')) {
    if (item.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(field, ": an empty value in \"", values,
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
          absl::StrCat(field, ": the range ", item,
                       " is empty (ranges go up, FIRST-LAST or FIRST-LAST:STEP with STEP >= 1)"));
    }
    // Bounded before anything is made: a typo must not fill the memory.
    if ((to - from) / step >= 1'000'000) {
      return absl::InvalidArgumentError(
          absl::StrCat(field, ": the range ", item, " has more than a million values"));
    }
    for (int64_t v = from; v <= to; v += step) out.push_back(absl::StrCat(v));
  }
  return out;
}

absl::StatusOr<std::vector<ParamSet>> CombineArray(const std::vector<ParamSet>& elements,
                                                   const std::string& key,
                                                   const std::vector<std::string>& values,
                                                   absl::string_view field, size_t max_elements) {
  if (elements.size() * values.size() > max_elements) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": the array would have more than ",
                                                   max_elements, " elements (",
                                                   elements.size() * values.size(), ")"));
  }
  std::vector<ParamSet> product;
  product.reserve(elements.size() * values.size());
  for (const ParamSet& element : elements) {
    if (element.contains(key)) {
      return absl::InvalidArgumentError(absl::StrCat(field, ": param ", key, " is given twice"));
    }
    for (const std::string& value : values) {
      ParamSet next = element;
      next[key] = value;
      product.push_back(std::move(next));
    }
  }
  return product;
}

}  // namespace deja
