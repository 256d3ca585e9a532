// The values of a job array's params (`deja submit --array K=VALUES`, a
// pipeline node's `array:`), shared by the CLI and the scheduler. Pure
// functions; thread-safe.
//
//   1-3        1, 2, 3        a range of integers, going up
//   0-10:5     0, 5, 10       with a step
//   a,b,1-2    a, b, 1, 2     a list; its items may be ranges
#ifndef DEJA_COMMON_ARRAY_VALUES_H_
#define DEJA_COMMON_ARRAY_VALUES_H_

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace deja {

// One element of an array: param -> value.
using ParamSet = std::map<std::string, std::string>;

// The values `values` spells. INVALID_ARGUMENT starting with `field` for an
// empty item, a range that goes down or a step below 1, or a range of more
// than a million values.
absl::StatusOr<std::vector<std::string>> ExpandArrayValues(absl::string_view field,
                                                           absl::string_view values);

// Every element combined with every value of `key`, the elements slowest:
// ({a}, {b}) x i=1,2 -> {a,1} {a,2} {b,1} {b,2}. INVALID_ARGUMENT starting
// with `field` when an element already has `key`, or when there would be
// more than `max_elements`.
absl::StatusOr<std::vector<ParamSet>> CombineArray(const std::vector<ParamSet>& elements,
                                                   const std::string& key,
                                                   const std::vector<std::string>& values,
                                                   absl::string_view field, size_t max_elements);

}  // namespace deja

#endif  // DEJA_COMMON_ARRAY_VALUES_H_
