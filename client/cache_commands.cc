#include "client/cache_commands.h"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <memory>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "client/cache_format.h"
#include "client/cli.h"
#include "client/cli_format.h"

namespace deja::cli {
namespace {

// A job hash is XXH3-128 in hex.
constexpr size_t kFullHashLength = 32;

bool IsHex(absl::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
  });
}

}  // namespace

// ---------------------------------------------------------------------------
// Pure pieces.

absl::StatusOr<absl::Time> ParseTimeFlag(absl::string_view flag, absl::string_view arg,
                                         absl::Time now, absl::TimeZone tz) {
  const std::string text(arg);
  auto bad = [&]() {
    return InvalidFlag(flag, arg,
                       "expected an RFC 3339 time (2026-11-22T10:00:00Z), a date (2026-11-22), "
                       "a local time (2026-11-22 10:00:00) or an age (30m, 2h, 3d, 1w)");
  };
  if (text.empty()) return bad();
  // An age: one or more NUMBER UNIT pairs.
  if (text.find_first_not_of("0123456789smhdw") == std::string::npos &&
      !absl::ascii_isdigit(static_cast<unsigned char>(text.back()))) {
    absl::Duration age = absl::ZeroDuration();
    size_t i = 0;
    while (i < text.size()) {
      size_t start = i;
      while (i < text.size() && absl::ascii_isdigit(static_cast<unsigned char>(text[i]))) ++i;
      // Nine digits of any unit is already longer than anyone means.
      if (i == start || i - start > 9 || i == text.size()) return bad();
      int64_t n = std::stoll(text.substr(start, i - start));
      switch (text[i]) {
        case 's':
          age += absl::Seconds(n);
          break;
        case 'm':
          age += absl::Minutes(n);
          break;
        case 'h':
          age += absl::Hours(n);
          break;
        case 'd':
          age += absl::Hours(24 * n);
          break;
        case 'w':
          age += absl::Hours(int64_t{24} * 7 * n);
          break;
        default:
          return bad();
      }
      ++i;
    }
    return now - age;
  }
  absl::Time time;
  std::string error;
  if (text.size() == 10 && absl::ParseTime("%Y-%m-%d", text, tz, &time, &error)) return time;
  if (text.size() == 19 && text[10] == ' ' &&
      absl::ParseTime("%Y-%m-%d %H:%M:%S", text, tz, &time, &error)) {
    return time;
  }
  if (text.size() > 19 && (text[10] == 'T' || text[10] == 't')) {
    // This Abseil's %Ez wants a numeric offset; "Z" is UTC.
    std::string rfc3339 = text;
    if (rfc3339.back() == 'Z' || rfc3339.back() == 'z') {
      rfc3339.pop_back();
      rfc3339 += "+00:00";
    }
    if (absl::ParseTime(absl::RFC3339_full, rfc3339, &time, &error)) return time;
  }
  return bad();
}

bool LooksLikeJobId(absl::string_view arg) {
  return arg.size() >= 2 && arg[0] == 'j' && std::all_of(arg.begin() + 1, arg.end(), [](char c) {
           return absl::ascii_isdigit(static_cast<unsigned char>(c));
         });
}

absl::StatusOr<deja::v1::SetProjectRequest> BuildSetProjectRequest(
    const std::string& project, const std::string& memoization,
    std::optional<int32_t> retention_hours) {
  if (memoization.empty() && !retention_hours.has_value()) {
    return absl::InvalidArgumentError(
        "project set: nothing to change; give --memoization on|off and/or --retention HOURS");
  }
  deja::v1::SetProjectRequest request;
  request.set_project(project);
  if (!memoization.empty()) {
    std::string lowered = absl::AsciiStrToLower(memoization);
    if (lowered != "on" && lowered != "off") {
      return InvalidFlag("--memoization", memoization, "expected on or off");
    }
    request.set_use_memoization(lowered == "on");
  }
  if (retention_hours.has_value()) request.set_intermediate_files_hours(*retention_hours);
  return request;
}

deja::v1::GetMemoRequest BuildGetMemoRequest(const std::string& arg, const std::string& project) {
  deja::v1::GetMemoRequest request;
  request.set_project(project);
  if (LooksLikeJobId(arg)) {
    request.set_job_id(arg);
  } else {
    request.set_job_hash(absl::AsciiStrToLower(arg));
  }
  return request;
}

absl::StatusOr<deja::v1::EvictMemoRequest> BuildEvictRequest(const EvictFlags& flags,
                                                             absl::Time now, absl::TimeZone tz) {
  int selectors = static_cast<int>(!flags.hash.empty()) + static_cast<int>(!flags.app.empty()) +
                  static_cast<int>(!flags.before.empty());
  if (selectors != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("cache evict: give exactly one of HASH, --app NAME and --before TIME (got ",
                     selectors, ")"));
  }
  deja::v1::EvictMemoRequest request;
  request.set_project(flags.project);
  if (!flags.hash.empty()) {
    std::string hash = absl::AsciiStrToLower(flags.hash);
    if (!IsHex(hash) || hash.size() > kFullHashLength) {
      return absl::InvalidArgumentError(
          absl::StrCat("cache evict: \"", flags.hash, "\" is not a job hash (hex)"));
    }
    request.set_job_hash(hash);
  } else if (!flags.app.empty()) {
    request.set_app_name(flags.app);
  } else {
    absl::StatusOr<absl::Time> before = ParseTimeFlag("--before", flags.before, now, tz);
    if (!before.ok()) return before.status();
    int64_t before_ms = absl::ToUnixMillis(*before);
    if (before_ms <= 0) return InvalidFlag("--before", flags.before, "is before 1970");
    request.set_before_ms(before_ms);
  }
  return request;
}

// ---------------------------------------------------------------------------
// The commands.

void CacheCommands::Register(CommandTable& table) {
  // Where CLI11 writes the arguments; the handlers read them after the parse.
  struct Flags {
    // Project settings.
    std::string settings_project;
    std::string set_memoization;
    int32_t set_retention = 0;
    CLI::Option* retention = nullptr;  // given or not: count()
    // The memo index.
    std::string cache_project;
    std::string cache_app;
    uint32_t cache_limit = 0;
    std::string cache_arg;
    EvictFlags evict;
    std::string explain_job;
    std::string stats_project;
    std::string stats_since;
  };
  auto flags = std::make_shared<Flags>();

  CLI::App* project =
      table.AddGroup("project", "Show or change a project's memoization and retention settings");
  CLI::App* project_get =
      table.AddCommand(project, "get", "Show a project's settings (defaults if never set)",
                       [flags](CommandContext& context) {
                         return CacheCommands(context).ProjectGet(flags->settings_project);
                       });
  project_get->add_option("P", flags->settings_project, "Project")->required();
  CLI::App* project_set = table.AddCommand(
      project, "set",
      "Change a project's settings and print them; applies to jobs that finish after the change",
      [flags](CommandContext& context) {
        return CacheCommands(context).ProjectSet(flags->settings_project, flags->set_memoization,
                                                 flags->retention->count() > 0
                                                     ? std::optional<int32_t>(flags->set_retention)
                                                     : std::nullopt);
      });
  project_set->add_option("P", flags->settings_project, "Project")->required();
  project_set
      ->add_option("--memoization", flags->set_memoization,
                   "Memoization of the project's jobs whose --memoization is inherit")
      ->type_name("MODE")
      ->check(CLI::IsMember({"on", "off"}, CLI::ignore_case));
  flags->retention =
      project_set
          ->add_option("--retention", flags->set_retention,
                       "Hours a finished job's workspace (intermediate files, logs) is kept, and "
                       "so can be reused (1 to 120; default 24)")
          ->type_name("HOURS");

  CLI::App* cache = table.AddGroup("cache", "Inspect and evict memo entries");
  CLI::App* cache_ls = table.AddCommand(
      cache, "ls", "List memo entries as a table", [flags](CommandContext& context) {
        return CacheCommands(context).CacheList(flags->cache_project, flags->cache_app,
                                                flags->cache_limit);
      });
  cache_ls
      ->add_option("--project", flags->cache_project, "Only this project (default: every project)")
      ->type_name("P");
  cache_ls->add_option("--app", flags->cache_app, "Only this app name")->type_name("NAME");
  cache_ls->add_option("--limit", flags->cache_limit, "At most N entries (default: all)")
      ->type_name("N");
  CLI::App* cache_show = table.AddCommand(
      cache, "show", "Show one memo entry: by hash (a unique prefix will do) or by job id",
      [flags](CommandContext& context) {
        return CacheCommands(context).CacheShow(flags->cache_arg, flags->cache_project);
      });
  cache_show->add_option("HASH|JOB", flags->cache_arg, "Job hash or prefix, or a job id (j12)")
      ->required();
  cache_show
      ->add_option("--project", flags->cache_project, "Project of the hash (default: any project)")
      ->type_name("P");
  CLI::App* cache_evict = table.AddCommand(
      cache, "evict",
      "Evict memo entries: one hash, every entry of an app, or entries created before "
      "a time; evicted entries are never served again",
      [flags](CommandContext& context) { return CacheCommands(context).CacheEvict(flags->evict); });
  cache_evict->add_option("HASH", flags->evict.hash, "Job hash (a unique prefix will do)");
  cache_evict->add_option("--app", flags->evict.app, "Every entry of this app")->type_name("NAME");
  cache_evict
      ->add_option("--before", flags->evict.before,
                   "Entries created before TIME: 2026-11-22T10:00:00Z, 2026-11-22, or an age "
                   "such as 2h or 3d (older than)")
      ->type_name("TIME");
  cache_evict->add_option("--project", flags->evict.project, "Only this project (default: every)")
      ->type_name("P");

  CLI::App* explain = table.AddCommand(
      "explain", "Say why a job was or was not reused, with the nearest entry's differences",
      [flags](CommandContext& context) {
        return CacheCommands(context).Explain(flags->explain_job);
      });
  explain->add_option("JOB", flags->explain_job, "Job id, e.g. j12")->required();

  CLI::App* stats = table.AddCommand("stats", "Jobs, reuses, reuse rate and time saved, per app",
                                     [flags](CommandContext& context) {
                                       return CacheCommands(context).Stats(flags->stats_project,
                                                                           flags->stats_since);
                                     });
  stats->add_option("--project", flags->stats_project, "Only this project (default: every project)")
      ->type_name("P");
  stats
      ->add_option("--since", flags->stats_since,
                   "Only jobs created at or after TIME: 2026-11-22T10:00:00Z, 2026-11-22, or an "
                   "age such as 2h or 7d")
      ->type_name("TIME");
}

int CacheCommands::PrintProject(const absl::StatusOr<deja::v1::ProjectSettings>& settings) {
  if (!settings.ok()) return context_.Fail(settings.status());
  if (context_.json()) {
    context_.PrintJson(*settings);
  } else {
    context_.out() << RenderKeyValues(ProjectRows(*settings, context_.tz()));
  }
  return kExitOk;
}

int CacheCommands::ProjectGet(const std::string& project) {
  absl::StatusOr<deja::v1::ProjectSettings> settings = context_.client().GetProject(project);
  return PrintProject(settings);
}

int CacheCommands::ProjectSet(const std::string& project, const std::string& memoization,
                              std::optional<int32_t> retention_hours) {
  absl::StatusOr<deja::v1::SetProjectRequest> request =
      BuildSetProjectRequest(project, memoization, retention_hours);
  if (!request.ok()) return context_.UsageError(request.status());
  absl::StatusOr<deja::v1::ProjectSettings> settings = context_.client().SetProject(*request);
  return PrintProject(settings);
}

int CacheCommands::CacheList(const std::string& project, const std::string& app, uint32_t limit) {
  absl::StatusOr<std::vector<deja::v1::MemoEntry>> entries =
      context_.client().ListMemo(project, app, limit);
  if (!entries.ok()) return context_.Fail(entries.status());
  if (context_.json()) {
    for (const auto& entry : *entries) context_.PrintJson(entry);
  } else {
    context_.out() << MemoTable(*entries, context_.tz());
  }
  return kExitOk;
}

absl::StatusOr<std::string> CacheCommands::ResolveHash(const std::string& prefix,
                                                       std::string* project) {
  absl::StatusOr<std::vector<deja::v1::MemoEntry>> entries =
      context_.client().ListMemo(*project, "", 0);
  if (!entries.ok()) return entries.status();
  std::vector<const deja::v1::MemoEntry*> matches;
  for (const auto& entry : *entries) {
    if (absl::StartsWith(entry.job_hash(), prefix)) matches.push_back(&entry);
  }
  std::string where = project->empty() ? "" : absl::StrCat(" in project ", *project);
  if (matches.empty()) {
    return absl::NotFoundError(
        absl::StrCat("no memo entry", where, " has a hash starting with ", prefix));
  }
  if (matches.size() > 1) {
    return absl::FailedPreconditionError(absl::StrCat("hash prefix ", prefix, " matches ",
                                                      matches.size(), " memo entries", where,
                                                      "; give more characters (or --project)"));
  }
  *project = matches[0]->project();
  return matches[0]->job_hash();
}

int CacheCommands::CacheShow(const std::string& arg, const std::string& project) {
  std::string lowered = absl::AsciiStrToLower(arg);
  if (!LooksLikeJobId(arg) && !IsHex(lowered)) {
    return context_.UsageError(absl::InvalidArgumentError(
        absl::StrCat("\"", arg, "\" is neither a job id (j12) nor a job hash (hex)")));
  }
  deja::v1::GetMemoRequest request = BuildGetMemoRequest(arg, project);
  // A hash prefix, or a whole hash of an unnamed project, is looked up in
  // the index first (GetMemo wants a whole hash and its project).
  if (!LooksLikeJobId(arg) && (lowered.size() < kFullHashLength || project.empty())) {
    std::string resolved_project = project;
    absl::StatusOr<std::string> hash = ResolveHash(lowered, &resolved_project);
    if (!hash.ok()) return context_.Fail(hash.status());
    request.set_job_hash(*hash);
    request.set_project(resolved_project);
  }
  absl::StatusOr<deja::v1::MemoEntry> entry = context_.client().GetMemo(request);
  if (!entry.ok()) return context_.Fail(entry.status());
  if (context_.json()) {
    context_.PrintJson(*entry);
  } else {
    context_.out() << RenderKeyValues(MemoRows(*entry, context_.tz()));
    if (std::string outputs = MemoOutputsTable(*entry); !outputs.empty()) {
      context_.out() << "\n" << outputs;
    }
  }
  return kExitOk;
}

int CacheCommands::CacheEvict(const EvictFlags& flags) {
  absl::StatusOr<deja::v1::EvictMemoRequest> request =
      BuildEvictRequest(flags, absl::Now(), context_.tz());
  if (!request.ok()) return context_.UsageError(request.status());
  if (!request->job_hash().empty() && request->job_hash().size() < kFullHashLength) {
    std::string project = request->project();
    absl::StatusOr<std::string> hash = ResolveHash(request->job_hash(), &project);
    if (!hash.ok()) return context_.Fail(hash.status());
    request->set_job_hash(*hash);
    request->set_project(project);
  }
  absl::StatusOr<deja::v1::EvictMemoResponse> evicted = context_.client().EvictMemo(*request);
  if (!evicted.ok()) return context_.Fail(evicted.status());
  std::vector<deja::v1::MemoEntry> shown(evicted->evicted().begin(), evicted->evicted().end());
  if (context_.json()) {
    for (const auto& entry : shown) context_.PrintJson(entry);
  } else {
    context_.out() << FormatEvictLine(evicted->evicted_count(), shown.size()) << "\n";
    if (!shown.empty()) context_.out() << MemoTable(shown, context_.tz());
  }
  return kExitOk;
}

int CacheCommands::Explain(const std::string& job_id) {
  absl::StatusOr<deja::v1::ExplainResponse> response = context_.client().Explain(job_id);
  if (!response.ok()) return context_.Fail(response.status());
  if (context_.json()) {
    context_.PrintJson(*response);
  } else {
    context_.out() << ExplainText(*response);
  }
  return kExitOk;
}

int CacheCommands::Stats(const std::string& project, const std::string& since) {
  int64_t since_ms = 0;
  if (!since.empty()) {
    absl::StatusOr<absl::Time> time = ParseTimeFlag("--since", since, absl::Now(), context_.tz());
    if (!time.ok()) return context_.UsageError(time.status());
    since_ms = std::max<int64_t>(absl::ToUnixMillis(*time), 0);
  }
  absl::StatusOr<deja::v1::StatsResponse> stats = context_.client().Stats(project, since_ms);
  if (!stats.ok()) return context_.Fail(stats.status());
  if (context_.json()) {
    context_.PrintJson(*stats);
  } else {
    context_.out() << StatsTable(*stats) << "\n";
    // Absent for a token of one project: the figures are the whole store's.
    if (stats->has_content_store()) {
      context_.out() << ContentStoreLine(stats->content_store(), context_.tz()) << "\n";
    }
  }
  return kExitOk;
}

}  // namespace deja::cli
