#include "client/cli_format.h"

#include <google/protobuf/util/json_util.h>

#include <algorithm>
#include <iterator>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace deja::cli {
namespace {

// Pads `cell` to `width` bytes.
std::string Pad(const std::string& cell, size_t width) {
  std::string padded = cell;
  if (padded.size() < width) padded.append(width - padded.size(), ' ');
  return padded;
}

}  // namespace

std::string FormatDuration(int64_t millis) {
  if (millis < 0) millis = 0;
  if (millis < 1000) return absl::StrCat(millis, "ms");
  if (millis < 60'000) return absl::StrFormat("%d.%ds", millis / 1000, (millis % 1000) / 100);
  int64_t seconds = millis / 1000;
  if (seconds < 3600) return absl::StrFormat("%dm%02ds", seconds / 60, seconds % 60);
  int64_t minutes = seconds / 60;
  return absl::StrFormat("%dh%02dm", minutes / 60, minutes % 60);
}

std::string FormatTimestamp(int64_t unix_millis, absl::TimeZone tz) {
  return absl::FormatTime("%Y-%m-%d %H:%M:%S", absl::FromUnixMillis(unix_millis), tz);
}

std::string FormatFiles(uint64_t files, uint64_t bytes) {
  return absl::StrCat(files, files == 1 ? " file, " : " files, ", FormatBytes(bytes));
}

std::string OrDash(const std::string& s) { return s.empty() ? "-" : s; }

absl::Status InvalidFlag(absl::string_view flag, absl::string_view arg, absl::string_view problem) {
  return absl::InvalidArgumentError(absl::StrCat(flag, " \"", arg, "\": ", problem));
}

std::string RenderTable(const std::vector<std::string>& header,
                        const std::vector<std::vector<std::string>>& rows) {
  std::vector<std::vector<std::string>> lines;
  if (!header.empty()) lines.push_back(header);
  for (const auto& row : rows) {
    std::vector<std::string> line;
    line.reserve(row.size());
    for (const std::string& cell : row) line.push_back(OrDash(cell));
    lines.push_back(std::move(line));
  }
  std::vector<size_t> widths;
  for (const auto& line : lines) {
    if (widths.size() < line.size()) widths.resize(line.size(), 0);
    for (size_t i = 0; i < line.size(); ++i) widths[i] = std::max(widths[i], line[i].size());
  }
  std::string text;
  for (const auto& line : lines) {
    std::string rendered;
    for (size_t i = 0; i < line.size(); ++i) {
      if (i > 0) rendered += "  ";
      rendered += (i + 1 == line.size()) ? line[i] : Pad(line[i], widths[i]);
    }
    while (!rendered.empty() && rendered.back() == ' ') rendered.pop_back();
    text += rendered;
    text += "\n";
  }
  return text;
}

std::string RenderKeyValues(const std::vector<std::pair<std::string, std::string>>& rows) {
  std::vector<std::vector<std::string>> table;
  table.reserve(rows.size());
  for (const auto& [key, value] : rows) table.push_back({key, value});
  return RenderTable({}, table);
}

std::string ToJson(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  options.always_print_primitive_fields = true;
  options.add_whitespace = false;
  std::string json;
  auto status = google::protobuf::util::MessageToJsonString(message, &json, options);
  if (!status.ok()) {
    // Only invalid UTF-8 in a string field gets here; never drop the record.
    return absl::StrCat("{\"error\":\"cannot print ", message.GetTypeName(), " as JSON\"}");
  }
  return json;
}

}  // namespace deja::cli
