#include "common/event_log.h"

#include <cstdio>
#include <nlohmann/json.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace deja {
namespace {

struct Config {
  std::string daemon = "deja";
  LogFormat format = LogFormat::kText;
};

Config& TheConfig() {
  static Config* config = new Config();
  return *config;
}

bool NeedsQuotes(absl::string_view value) {
  if (value.empty()) return true;
  for (char c : value) {
    if (c == ' ' || c == '"' || c == '=' || c == '\\' || absl::ascii_iscntrl(c)) return true;
  }
  return false;
}

}  // namespace

std::optional<LogFormat> ParseLogFormat(absl::string_view name) {
  if (name == "text") return LogFormat::kText;
  if (name == "json") return LogFormat::kJson;
  return std::nullopt;
}

std::string FormatLogLine(LogFormat format, absl::Time time, absl::string_view daemon,
                          absl::string_view message, const LogFields& fields,
                          const LogFields& keys) {
  const std::string stamp = absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", time, absl::UTCTimeZone());
  if (format == LogFormat::kJson) {
    nlohmann::ordered_json line;
    line["time"] = stamp;
    line["daemon"] = std::string(daemon);
    line["msg"] = std::string(message);
    for (const auto& [key, value] : keys) line[key] = value;
    for (const auto& [key, value] : fields) line[key] = value;
    // Invalid UTF-8 (a job's odd file name) is replaced, never thrown on.
    return line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }
  std::string line = absl::StrCat(stamp, " ", daemon, ": ", message);
  for (const auto& [key, value] : fields) {
    if (NeedsQuotes(value)) {
      absl::StrAppend(&line, " ", key, "=\"", absl::CEscape(value), "\"");
    } else {
      absl::StrAppend(&line, " ", key, "=", value);
    }
  }
  return line;
}

void ConfigureEventLog(std::string daemon, LogFormat format) {
  TheConfig().daemon = std::move(daemon);
  TheConfig().format = format;
}

void LogEvent(absl::string_view message, const LogFields& fields, const LogFields& keys) {
  const Config& config = TheConfig();
  std::string line =
      FormatLogLine(config.format, absl::Now(), config.daemon, message, fields, keys);
  line.push_back('\n');
  std::fwrite(line.data(), 1, line.size(), stderr);
}

}  // namespace deja
