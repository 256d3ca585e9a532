// CacheCommands: the memoization commands of `deja` — project get|set,
// cache ls|show|evict, explain, stats (docs/memoization.md) — and the pure
// pieces that turn their flags into requests, exposed so tests can check
// them without a scheduler. Output goes through client/cache_format.h.
//
// Every command method returns the process exit code (client/cli.h) and
// reports errors as "deja: <message>" on stderr. Not thread-safe: one
// command at a time, on the thread of RunCli. The pure functions are
// thread-safe.
#ifndef DEJA_CLIENT_CACHE_COMMANDS_H_
#define DEJA_CLIENT_CACHE_COMMANDS_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "client/command_context.h"
#include "client/command_table.h"
#include "deja/v1/scheduler.pb.h"

namespace deja::cli {

// A time flag (--before, --since): RFC 3339 ("2026-11-22T10:00:00Z",
// "2026-11-22T11:00:00+01:00"), a date ("2026-11-22": midnight in `tz`), or an
// age ("90s", "30m", "2h", "3d", "1w", "1d12h") meaning `now` minus the age.
// INVALID_ARGUMENT naming `flag` and the argument otherwise.
absl::StatusOr<absl::Time> ParseTimeFlag(absl::string_view flag, absl::string_view arg,
                                         absl::Time now, absl::TimeZone tz);

// True for a job id: 'j' followed by one or more digits ("j12").
bool LooksLikeJobId(absl::string_view arg);

// `deja project set P`: `memoization` "" (unchanged), "on" or "off" (any
// case); `retention_hours` unset: unchanged. INVALID_ARGUMENT when neither is
// given or `memoization` is something else. The range of the retention is
// the scheduler's to check.
absl::StatusOr<deja::v1::SetProjectRequest> BuildSetProjectRequest(
    const std::string& project, const std::string& memoization,
    std::optional<int32_t> retention_hours);

// `deja cache show ARG`: a job id (LooksLikeJobId) selects by job, anything
// else is a job hash in `project` (empty: the scheduler's "default").
deja::v1::GetMemoRequest BuildGetMemoRequest(const std::string& arg, const std::string& project);

// The selectors of `deja cache evict`, as parsed.
struct EvictFlags {
  std::string project;
  std::string hash;
  std::string app;
  std::string before;  // a time flag (ParseTimeFlag)
};
// Exactly one of hash, app and before; INVALID_ARGUMENT otherwise (and for a
// bad --before or one before 1970).
absl::StatusOr<deja::v1::EvictMemoRequest> BuildEvictRequest(const EvictFlags& flags,
                                                             absl::Time now, absl::TimeZone tz);

class CacheCommands {
 public:
  // Defines project (get, set), cache (ls, show, evict), explain and stats,
  // in that order.
  static void Register(CommandTable& table);

  // `context` is not owned and must outlive this.
  explicit CacheCommands(const CommandContext& context) : context_(context) {}

  int ProjectGet(const std::string& project);
  int ProjectSet(const std::string& project, const std::string& memoization,
                 std::optional<int32_t> retention_hours);
  int CacheList(const std::string& project, const std::string& app, uint32_t limit);
  // `arg`: a job id, a whole job hash or a unique prefix of one (resolved
  // with ListMemo first, as is a whole hash without `project`).
  int CacheShow(const std::string& arg, const std::string& project);
  int CacheEvict(const EvictFlags& flags);
  int Explain(const std::string& job_id);
  int Stats(const std::string& project, const std::string& since);

 private:
  // Prints a project's settings (--json or a table), or fails with the call's error.
  int PrintProject(const absl::StatusOr<deja::v1::ProjectSettings>& settings);

  // The full hash of the one memo entry of `project` (empty: any) whose hash
  // starts with `prefix` (which may be a whole hash), found with ListMemo.
  // Sets *project to the entry's project. NOT_FOUND when none matches,
  // FAILED_PRECONDITION when several do.
  absl::StatusOr<std::string> ResolveHash(const std::string& prefix, std::string* project);

  const CommandContext& context_;
};

}  // namespace deja::cli

#endif  // DEJA_CLIENT_CACHE_COMMANDS_H_
