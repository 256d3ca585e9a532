#include "worker/leftovers.h"

#include <dirent.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "worker/paths.h"

namespace deja::worker {
namespace {

// Field 22 of /proc/<pid>/stat (start time in clock ticks since boot), or 0
// when there is no such process.
uint64_t StartTime(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/stat"));
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const size_t paren = stat.rfind(')');  // the command name may hold spaces
  if (paren == std::string::npos) return 0;
  std::vector<std::string> fields = absl::StrSplit(stat.substr(paren + 2), ' ');
  // After ")": field 3 (state) is index 0, so field 22 is index 19.
  uint64_t start = 0;
  if (fields.size() < 20 || !absl::SimpleAtoi(fields[19], &start)) return 0;
  return start;
}

bool GroupGone(pid_t pgid) { return kill(-pgid, 0) != 0 && errno == ESRCH; }

}  // namespace

absl::Status RecordRunning(const std::string& work_dir, pid_t pgid, const std::string& job_id,
                           uint32_t attempt) {
  const std::string dir = paths::RunningDir(work_dir);
  if (absl::Status st = paths::MakeDirs(dir); !st.ok()) return st;
  const std::string path = absl::StrCat(dir, "/", pgid);
  std::ofstream out(path, std::ios::trunc);
  out << job_id << " " << attempt << " " << StartTime(pgid) << "\n";
  out.close();
  if (!out) return absl::InternalError(absl::StrCat("write ", path));
  return absl::OkStatus();
}

void ForgetRunning(const std::string& work_dir, pid_t pgid) {
  unlink(absl::StrCat(paths::RunningDir(work_dir), "/", pgid).c_str());
}

std::vector<std::string> KillLeftovers(const std::string& work_dir, absl::Duration wait) {
  std::vector<std::string> killed;
  const std::string dir = paths::RunningDir(work_dir);
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return killed;
  std::vector<std::string> names;
  while (struct dirent* e = readdir(d)) {
    if (e->d_name[0] != '.') names.emplace_back(e->d_name);
  }
  closedir(d);
  for (const std::string& name : names) {
    const std::string path = absl::StrCat(dir, "/", name);
    pid_t pgid = 0;
    std::string job_id;
    uint32_t attempt = 0;
    uint64_t recorded_start = 0;
    std::ifstream in(path);
    if (absl::SimpleAtoi(name, &pgid) && pgid > 1 && (in >> job_id >> attempt >> recorded_start)) {
      const uint64_t now_start = StartTime(pgid);
      // The leader is the recorded process, or gone: what is left of the
      // group is the job's.
      if ((now_start == 0 || now_start == recorded_start) && !GroupGone(pgid)) {
        kill(-pgid, SIGKILL);
        const absl::Time deadline = absl::Now() + wait;
        while (!GroupGone(pgid) && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(10));
        killed.push_back(absl::StrCat("job ", job_id, " attempt ", attempt, ", process group ",
                                      pgid, GroupGone(pgid) ? "" : " (still there)"));
      }
    }
    unlink(path.c_str());
  }
  return killed;
}

}  // namespace deja::worker
