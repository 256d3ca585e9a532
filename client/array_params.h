// The elements of a job array, from `deja submit --array K=VALUES` and
// `--params-file FILE` (docs/cli.md, "Job arrays"). Pure functions;
// thread-safe. VALUES are common/array_values.h's (1-3, 0-10:5, a,b,1-2);
// several --array flags make the product, the first flag slowest:
// --array i=1-2 --array s=x,y is (1,x) (1,y) (2,x) (2,y).
//
// A params file holds one element per line: `k=v k2=v2` (separated by
// spaces) or a JSON object (`{"k": "v", "n": 3}`: strings, numbers and
// booleans); empty lines and lines starting with '#' are skipped. With both,
// every line is combined with every --array element (the file's lines
// slowest).
#ifndef DEJA_CLIENT_ARRAY_PARAMS_H_
#define DEJA_CLIENT_ARRAY_PARAMS_H_

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/array_values.h"

namespace deja::cli {

// "a12": the id of a job array (an "a" and its first job's number).
bool IsArrayId(absl::string_view id);

// One element per line of a params file's `content`; `name` (the file's
// path) and the line number name a bad line.
absl::StatusOr<std::vector<ParamSet>> ParseParamsFile(absl::string_view name,
                                                      absl::string_view content);

// The elements of `--array` flags (each "K=VALUES") combined with
// `file_elements` (none: the --array product alone). INVALID_ARGUMENT for a
// malformed flag, a key given twice, or more than `max_elements`.
absl::StatusOr<std::vector<ParamSet>> ArrayElements(const std::vector<std::string>& array_flags,
                                                    const std::vector<ParamSet>& file_elements,
                                                    size_t max_elements);

}  // namespace deja::cli

#endif  // DEJA_CLIENT_ARRAY_PARAMS_H_
