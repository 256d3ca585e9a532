#include "client/cache_format.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/cli_format.h"

namespace deja::cli {
namespace {

// Table cells of `deja explain` longer than this are shortened.
constexpr size_t kMaxDiffCell = 60;

std::string Shorten(const std::string& s, size_t max) {
  if (s.size() <= max) return s;
  return s.substr(0, max - 3) + "...";
}

std::string ExpiresCell(int64_t expires_at_ms, absl::TimeZone tz) {
  return expires_at_ms > 0 ? FormatTimestamp(expires_at_ms, tz) : "never";
}

}  // namespace

std::vector<std::pair<std::string, std::string>> ProjectRows(
    const deja::v1::ProjectSettings& settings, absl::TimeZone tz) {
  std::vector<std::pair<std::string, std::string>> rows;
  rows.emplace_back("project", settings.project());
  rows.emplace_back("memoization", settings.use_memoization() ? "on" : "off");
  rows.emplace_back("retention", absl::StrCat(settings.intermediate_files_hours(), "h"));
  if (settings.updated_at_ms() > 0) {
    rows.emplace_back("updated", FormatTimestamp(settings.updated_at_ms(), tz));
  }
  return rows;
}

std::string MemoTable(const std::vector<deja::v1::MemoEntry>& entries, absl::TimeZone tz) {
  std::vector<std::vector<std::string>> rows;
  rows.reserve(entries.size());
  for (const auto& entry : entries) {
    rows.push_back({entry.job_hash().substr(0, 12), entry.project(), entry.app_name(),
                    entry.source_job_id(), FormatBytes(entry.manifest().bytes()),
                    entry.created_at_ms() > 0 ? FormatTimestamp(entry.created_at_ms(), tz) : "",
                    ExpiresCell(entry.expires_at_ms(), tz)});
  }
  return RenderTable({"HASH", "PROJECT", "APP", "SOURCE-JOB", "SIZE", "CREATED", "EXPIRES"}, rows);
}

std::vector<std::pair<std::string, std::string>> MemoRows(const deja::v1::MemoEntry& entry,
                                                          absl::TimeZone tz) {
  std::vector<std::pair<std::string, std::string>> rows;
  auto add = [&rows](std::string key, std::string value) {
    if (!value.empty()) rows.emplace_back(std::move(key), std::move(value));
  };
  add("hash", entry.job_hash());
  add("project", entry.project());
  add("app", entry.app_name());
  add("source job", entry.source_job_id());
  add("worker", entry.worker_id());
  add("run time", FormatDuration(entry.run_time_ms()));
  add("created", entry.created_at_ms() > 0 ? FormatTimestamp(entry.created_at_ms(), tz) : "");
  add("expires", ExpiresCell(entry.expires_at_ms(), tz));
  add("files", FormatFiles(entry.manifest().files(), entry.manifest().bytes()));
  uint64_t output_bytes = 0;
  for (const auto& output : entry.outputs()) output_bytes += output.size();
  add("outputs", FormatFiles(entry.outputs_size(), output_bytes));
  return rows;
}

std::string MemoOutputsTable(const deja::v1::MemoEntry& entry) {
  if (entry.outputs().empty()) return "";
  std::vector<std::vector<std::string>> rows;
  for (const deja::v1::OutputFile& output : entry.outputs()) {
    rows.push_back({output.path(), FormatBytes(output.size()), output.digest()});
  }
  return RenderTable({"OUTPUT", "SIZE", "DIGEST"}, rows);
}

std::string FormatEvictLine(uint64_t count, size_t shown) {
  std::string line = absl::StrCat("evicted ", count, count == 1 ? " entry" : " entries");
  if (shown < count) absl::StrAppend(&line, " (the newest ", shown, " shown)");
  return line;
}

std::string ExplainText(const deja::v1::ExplainResponse& response) {
  std::vector<std::pair<std::string, std::string>> rows;
  rows.emplace_back("job", response.job_id());
  rows.emplace_back("verdict", deja::v1::ExplainResponse::Verdict_Name(response.verdict()));
  if (!response.summary().empty()) rows.emplace_back("summary", response.summary());
  const deja::v1::MemoEntry& nearest = response.nearest();
  if (response.has_nearest() && (!nearest.source_job_id().empty() || !nearest.job_hash().empty())) {
    rows.emplace_back("nearest", absl::StrCat(OrDash(nearest.source_job_id()), " (hash ",
                                              OrDash(nearest.job_hash()), ")"));
  }
  std::string text = RenderKeyValues(rows);
  if (!response.differences().empty()) {
    std::vector<std::vector<std::string>> diffs;
    for (const deja::v1::FieldDiff& diff : response.differences()) {
      diffs.push_back({diff.field(), Shorten(diff.job_value(), kMaxDiffCell),
                       Shorten(diff.entry_value(), kMaxDiffCell)});
    }
    text += "\n";
    text += RenderTable({"FIELD", "THIS-JOB", "NEAREST-ENTRY"}, diffs);
  }
  return text;
}

std::string ContentStoreLine(const deja::v1::ContentStoreStats& stats, absl::TimeZone tz) {
  if (stats.collected_at_ms() == 0) return "content store: not collected yet";
  return absl::StrCat("content store: ", stats.blobs(), stats.blobs() == 1 ? " blob, " : " blobs, ",
                      FormatBytes(stats.bytes()), " (collected ", stats.collected_blobs(),
                      stats.collected_blobs() == 1 ? " blob, " : " blobs, ",
                      FormatBytes(stats.collected_bytes()), " at ",
                      FormatTimestamp(stats.collected_at_ms(), tz), ")");
}

std::string StatsTable(const deja::v1::StatsResponse& stats) {
  auto row = [](const std::string& app, const deja::v1::AppStats& s) {
    return std::vector<std::string>{
        app,
        absl::StrCat(s.jobs()),
        absl::StrCat(s.succeeded()),
        absl::StrCat(s.failed()),
        absl::StrCat(s.reused()),
        s.succeeded() > 0 ? absl::StrFormat("%.1f%%", s.reuse_rate() * 100) : "",
        FormatDuration(s.run_time_ms()),
        FormatDuration(s.time_saved_ms())};
  };
  std::vector<std::vector<std::string>> rows;
  for (const deja::v1::AppStats& app : stats.apps()) rows.push_back(row(app.app_name(), app));
  rows.push_back(row("total", stats.total()));
  return RenderTable(
      {"APP", "JOBS", "SUCCEEDED", "FAILED", "REUSED", "REUSE-RATE", "RUN-TIME", "TIME-SAVED"},
      rows);
}

}  // namespace deja::cli
