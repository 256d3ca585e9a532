#include "worker/leftovers.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <map>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/docker_engine.h"
#include "common/files.h"
#include "worker/paths.h"

namespace deja::worker {
namespace {

// How long removing a dead worker's container may take.
constexpr absl::Duration kContainerRemoveTimeout = absl::Seconds(20);

// The fields of /proc/<pid>/stat after the command name: [0] is field 3
// (state), [2] field 5 (process group), [19] field 22 (start time in clock
// ticks since boot). Empty when there is no such process.
std::vector<std::string> StatFields(const std::string& pid) {
  const std::string stat = paths::ReadSmallFile(absl::StrCat("/proc/", pid, "/stat"));
  const size_t paren = stat.rfind(')');  // the command name may hold spaces
  if (paren == std::string::npos || paren + 2 >= stat.size()) return {};
  return absl::StrSplit(stat.substr(paren + 2), ' ');
}

// Whether group `pgid` has no member left that runs: zombies do not count,
// since reaping them is up to their new parent (init, which may be slow).
bool GroupGone(pid_t pgid) {
  if (kill(-pgid, 0) != 0 && errno == ESRCH) return true;
  const std::string group = absl::StrCat(pgid);
  for (const std::string& pid : paths::ListNames("/proc")) {
    if (pid.find_first_not_of("0123456789") != std::string::npos) continue;
    const std::vector<std::string> fields = StatFields(pid);
    if (fields.size() > 2 && fields[2] == group && fields[0] != "Z") return false;
  }
  return true;
}

std::string RecordPath(const std::string& work_dir, pid_t pgid) {
  return absl::StrCat(paths::RunningDir(work_dir), "/", pgid);
}

}  // namespace

uint64_t StartTime(pid_t pid) {
  const std::vector<std::string> fields = StatFields(absl::StrCat(pid));
  uint64_t start = 0;
  if (fields.size() < 20 || !absl::SimpleAtoi(fields[19], &start)) return 0;
  return start;
}

std::vector<pid_t> Descendants(pid_t root) {
  std::multimap<pid_t, pid_t> children;  // parent -> child
  for (const std::string& name : paths::ListNames("/proc")) {
    pid_t pid = 0;
    pid_t parent = 0;
    if (!absl::SimpleAtoi(name, &pid)) continue;
    const std::vector<std::string> fields = StatFields(name);
    if (fields.size() > 1 && absl::SimpleAtoi(fields[1], &parent)) children.emplace(parent, pid);
  }
  std::vector<pid_t> below;
  std::vector<pid_t> next = {root};
  while (!next.empty()) {
    const pid_t parent = next.back();
    next.pop_back();
    for (auto [it, end] = children.equal_range(parent); it != end; ++it) {
      below.push_back(it->second);
      next.push_back(it->second);
    }
  }
  return below;
}

char ProcessState(pid_t pid) {
  const std::vector<std::string> fields = StatFields(absl::StrCat(pid));
  return fields.empty() || fields[0].empty() ? '\0' : fields[0][0];
}

absl::Status RecordRunning(const std::string& work_dir, deja::v1::RunningRecord record) {
  const std::string dir = paths::RunningDir(work_dir);
  if (absl::Status st = paths::MakeDirs(dir); !st.ok()) return st;
  if (record.start_ticks() == 0) record.set_start_ticks(StartTime(record.pgid()));
  // Not synced: it must survive this process, not the machine (whose crash
  // ends the job too).
  return WriteFileAtomically(RecordPath(work_dir, record.pgid()), record.SerializeAsString(),
                             /*sync=*/false);
}

bool MarkExited(const std::string& work_dir, pid_t pgid, uint64_t start_ticks, int exit_code) {
  deja::v1::RunningRecord record;
  if (!record.ParseFromString(paths::ReadSmallFile(RecordPath(work_dir, pgid))) ||
      record.pgid() != pgid || record.start_ticks() != start_ticks || record.exited()) {
    return false;
  }
  record.set_exited(true);
  record.set_exit_code(exit_code);
  record.set_finished_at_ms(absl::ToUnixMillis(absl::Now()));
  return RecordRunning(work_dir, std::move(record)).ok();
}

void ForgetRunning(const std::string& work_dir, pid_t pgid) {
  unlink(RecordPath(work_dir, pgid).c_str());
}

std::vector<deja::v1::RunningRecord> ReadRunning(const std::string& work_dir, bool remove_strays) {
  std::vector<deja::v1::RunningRecord> records;
  const std::string dir = paths::RunningDir(work_dir);
  for (const std::string& name : paths::ListNames(dir)) {
    const std::string path = absl::StrCat(dir, "/", name);
    const std::string bytes = paths::ReadSmallFile(path);
    deja::v1::RunningRecord record;
    pid_t pgid = 0;
    if (!absl::SimpleAtoi(name, &pgid) || !record.ParseFromString(bytes) || record.pgid() != pgid ||
        pgid <= 1) {
      if (remove_strays) unlink(path.c_str());  // a temporary, or not ours
      continue;
    }
    records.push_back(std::move(record));
  }
  std::sort(records.begin(), records.end(),
            [](const auto& a, const auto& b) { return a.pgid() < b.pgid(); });
  return records;
}

namespace {

// Sends `sig` to each recorded group still there and its own; returns the
// records of those signalled.
std::vector<const deja::v1::RunningRecord*> SignalGroups(
    const std::vector<deja::v1::RunningRecord>& records, int sig) {
  std::vector<const deja::v1::RunningRecord*> signalled;
  for (const deja::v1::RunningRecord& record : records) {
    const pid_t pgid = record.pgid();
    if (pgid <= 1) continue;
    const uint64_t now_start = StartTime(pgid);
    // The leader is the recorded process, or gone: what is left of the
    // group is the job's.
    if ((now_start != 0 && now_start != record.start_ticks()) || GroupGone(pgid)) continue;
    kill(-pgid, sig);
    signalled.push_back(&record);
  }
  return signalled;
}

}  // namespace

std::vector<std::string> KillGroups(const std::vector<deja::v1::RunningRecord>& records,
                                    absl::Duration wait) {
  // All first, then the wait: a job must not run on while another group
  // is waited for.
  const std::vector<const deja::v1::RunningRecord*> killed = SignalGroups(records, SIGKILL);
  const absl::Time deadline = absl::Now() + wait;
  auto all_gone = [&] {
    for (const auto* record : killed) {
      if (!GroupGone(record->pgid())) return false;
    }
    return true;
  };
  while (!all_gone() && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(10));
  std::vector<std::string> lines;
  lines.reserve(killed.size());
  for (const auto* record : killed) {
    lines.push_back(absl::StrCat(
        "job ", record->job_id(), " attempt ", record->attempt(), ", process group ",
        record->pgid(),
        wait == absl::ZeroDuration() || GroupGone(record->pgid()) ? "" : " (still there)"));
  }
  // An image job's container outlives its shim: the engine removes it.
  for (const deja::v1::RunningRecord& record : records) {
    if (record.container_id().empty() || record.engine_socket().empty()) continue;
    const absl::Status removed =
        DockerEngine(record.engine_socket(), kContainerRemoveTimeout).Remove(record.container_id());
    lines.push_back(absl::StrCat("job ", record.job_id(), " attempt ", record.attempt(),
                                 ", container ", record.container_id(),
                                 removed.ok() ? "" : absl::StrCat(" (", removed.message(), ")")));
  }
  return lines;
}

std::vector<std::string> KillRecorded(const std::string& work_dir, absl::Duration wait) {
  return KillGroups(ReadRunning(work_dir, /*remove_strays=*/false), wait);
}

}  // namespace deja::worker
