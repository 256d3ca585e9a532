#include "worker/leftovers.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/files.h"
#include "worker/paths.h"

namespace deja::worker {
namespace {

// Field 22 of /proc/<pid>/stat (start time in clock ticks since boot), or 0
// when there is no such process.
uint64_t StartTime(pid_t pid) {
  const std::string stat = paths::ReadSmallFile(absl::StrCat("/proc/", pid, "/stat"));
  const size_t paren = stat.rfind(')');  // the command name may hold spaces
  if (paren == std::string::npos) return 0;
  std::vector<std::string> fields = absl::StrSplit(stat.substr(paren + 2), ' ');
  // After ")": field 3 (state) is index 0, so field 22 is index 19.
  uint64_t start = 0;
  if (fields.size() < 20 || !absl::SimpleAtoi(fields[19], &start)) return 0;
  return start;
}

bool GroupGone(pid_t pgid) { return kill(-pgid, 0) != 0 && errno == ESRCH; }

std::string RecordPath(const std::string& work_dir, pid_t pgid) {
  return absl::StrCat(paths::RunningDir(work_dir), "/", pgid);
}

}  // namespace

absl::Status RecordRunning(const std::string& work_dir, deja::v1::RunningRecord record) {
  const std::string dir = paths::RunningDir(work_dir);
  if (absl::Status st = paths::MakeDirs(dir); !st.ok()) return st;
  if (record.start_ticks() == 0) record.set_start_ticks(StartTime(record.pgid()));
  // Not synced: it must survive this process, not the machine (whose crash
  // ends the job too).
  return WriteFileAtomically(RecordPath(work_dir, record.pgid()), record.SerializeAsString(),
                             /*sync=*/false);
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

std::optional<std::string> KillGroup(const deja::v1::RunningRecord& record, absl::Duration wait) {
  const pid_t pgid = record.pgid();
  if (pgid <= 1) return std::nullopt;
  const uint64_t now_start = StartTime(pgid);
  // The leader is the recorded process, or gone: what is left of the group
  // is the job's.
  if ((now_start != 0 && now_start != record.start_ticks()) || GroupGone(pgid)) return std::nullopt;
  kill(-pgid, SIGKILL);
  const absl::Time deadline = absl::Now() + wait;
  while (!GroupGone(pgid) && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(10));
  return absl::StrCat("job ", record.job_id(), " attempt ", record.attempt(), ", process group ",
                      pgid,
                      wait == absl::ZeroDuration() || GroupGone(pgid) ? "" : " (still there)");
}

std::vector<std::string> KillRecorded(const std::string& work_dir, absl::Duration wait) {
  std::vector<std::string> killed;
  for (const deja::v1::RunningRecord& record : ReadRunning(work_dir, /*remove_strays=*/false)) {
    if (auto line = KillGroup(record, wait)) killed.push_back(*std::move(line));
  }
  return killed;
}

}  // namespace deja::worker
