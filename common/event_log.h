// The daemons' operator log: one line per event on stderr, with an RFC 3339
// UTC timestamp, as text ("2026-12-04T21:30:00.123Z deja-scheduler: job j12
// finished SUCCEEDED project=ml app=train") or, with --log_format=json, as
// one JSON object per line ({"time": ..., "daemon": ..., "msg": ..., and
// each field as a member}).
//
// Thread-safety: LogEvent may be called from any thread; each call writes
// its line with one stdio call, so lines do not interleave. ConfigureEventLog
// is called once, before the daemon starts its threads.
#ifndef DEJA_COMMON_EVENT_LOG_H_
#define DEJA_COMMON_EVENT_LOG_H_

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace deja {

enum class LogFormat { kText, kJson };

// "text" or "json".
std::optional<LogFormat> ParseLogFormat(absl::string_view name);

// Named values of an event, in order: ("job", "j12"), ("state", "FAILED").
using LogFields = std::vector<std::pair<std::string, std::string>>;

// One line, without its newline. In text, a field's value is quoted (C
// escapes) when it is empty or holds a space, a quote, '=' or a control
// character, so every line splits back into its fields. `keys` are fields
// for JSON only, first: what the text message already says ("job j12
// submitted" is {"job": "j12", "event": "submitted"}).
std::string FormatLogLine(LogFormat format, absl::Time time, absl::string_view daemon,
                          absl::string_view message, const LogFields& fields,
                          const LogFields& keys = {});

// The daemon's name and format for LogEvent (default: "deja", text).
void ConfigureEventLog(std::string daemon, LogFormat format);

// Writes FormatLogLine(now) to stderr.
void LogEvent(absl::string_view message, const LogFields& fields = {}, const LogFields& keys = {});

}  // namespace deja

#endif  // DEJA_COMMON_EVENT_LOG_H_
