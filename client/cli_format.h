// Output pieces every `deja` command prints with: human durations, byte
// counts and timestamps, aligned tables, and protobuf JSON lines (--json).
// The command families build their own lines and tables from these
// (client/job_format.h, client/cache_format.h, client/pipeline_format.h).
//
// Pure functions of their arguments; thread-safe.
#ifndef DEJA_CLIENT_CLI_FORMAT_H_
#define DEJA_CLIENT_CLI_FORMAT_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/bytes.h"
#include "google/protobuf/message.h"

namespace deja::cli {

// Human durations: "850ms", "1.2s" (tenths, truncated), "3m12s", "2h05m".
// Negative durations print as "0ms".
std::string FormatDuration(int64_t millis);
// "2024-05-01 14:03:07" in `tz`.
std::string FormatTimestamp(int64_t unix_millis, absl::TimeZone tz);
using ::deja::FormatBytes;  // common/bytes.h
// "1 file, 12 B", "100000 files, 5.2 MiB".
std::string FormatFiles(uint64_t files, uint64_t bytes);
// `s`, or "-" when it is empty (what a table shows for an empty cell).
std::string OrDash(const std::string& s);

// The error of a bad flag argument: INVALID_ARGUMENT
// `<flag> "<arg>": <problem>`, so that every message names the flag and
// what was given.
absl::Status InvalidFlag(absl::string_view flag, absl::string_view arg, absl::string_view problem);

// Left-aligned columns separated by two spaces; no trailing spaces; every
// line ends with '\n'. Empty cells print as "-".
std::string RenderTable(const std::vector<std::string>& header,
                        const std::vector<std::vector<std::string>>& rows);
// The two-column "key  value" table of `deja status`.
std::string RenderKeyValues(const std::vector<std::pair<std::string, std::string>>& rows);

// Protobuf JSON on one line, proto field names (snake_case), default values
// included. A message that cannot be printed (invalid UTF-8 in a string
// field) gives {"error":"cannot print <type> as JSON"}: a record is never
// dropped from the output.
std::string ToJson(const google::protobuf::Message& message);

}  // namespace deja::cli

#endif  // DEJA_CLIENT_CLI_FORMAT_H_
