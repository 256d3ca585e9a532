// JobUser: who a worker's jobs run as (issue 13, docs/security.md). A
// worker started as root never runs a job as root: it runs them as
// --job_user, by default a dedicated unprivileged user, `deja-job`, which it
// creates (useradd --system) when missing, else `nobody`. --job_user=root
// needs --allow_root_jobs. A worker not started as root runs its jobs as
// itself (it cannot switch) and refuses a --job_user naming anyone else.
//
// A job's workspace is handed to the job user for the run (GiveWorkspace:
// owner, mode 0700) and taken back before its manifest is built
// (TakeBackWorkspace), so that a finished workspace, the source of every
// reuse, is the worker's and cannot be changed by a later job. The command
// is started through util-linux's setpriv, which sets the ids and clears
// the supplementary groups before it execs the command (posix_spawn cannot).
//
// Thread-safety: the functions share nothing.
#ifndef DEJA_WORKER_JOB_USER_H_
#define DEJA_WORKER_JOB_USER_H_

#include <sys/types.h>

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace deja::worker {

struct JobUser {
  std::string name;
  uid_t uid = 0;
  gid_t gid = 0;
};

inline constexpr char kDefaultJobUser[] = "deja-job";
inline constexpr char kSetpriv[] = "/usr/bin/setpriv";

// What ResolveJobUser needs of the system (injected by tests).
struct UserDatabase {
  // The user named (or numbered) `name`; NOT_FOUND when there is none.
  std::function<absl::StatusOr<JobUser>(const std::string& name)> lookup;
  // Creates the system user `name` (useradd --system).
  std::function<absl::Status(const std::string& name)> create;
};
UserDatabase SystemUsers();

// Who jobs run as, for a worker running as `euid` given `flag` (--job_user,
// empty: the default) and `allow_root` (--allow_root_jobs); nullopt: as the
// worker itself (it is not root). Errors name the flag and what to do.
absl::StatusOr<std::optional<JobUser>> ResolveJobUser(const std::string& flag, bool allow_root,
                                                      uid_t euid, const UserDatabase& users,
                                                      std::vector<std::string>* notes);

// The argv that runs `program` with `argv` (argv[0] included) as `user`.
std::vector<std::string> AsUser(const JobUser& user, const std::string& program,
                                const std::vector<std::string>& argv);

// Readies `work_dir` for jobs run as `user`: the work dir and jobs/ 0711
// (the job user passes through to its own workspace but lists nothing),
// every other entry of the work dir 0700 (the blob cache, the worker's
// records). FAILED_PRECONDITION when a directory above jobs/ does not let
// `user` through, naming it and saying what to do.
absl::Status PrepareWorkDir(const std::string& work_dir, const JobUser& user);

// Makes everything under `workspace` the job user's, the top 0700.
absl::Status GiveWorkspace(const std::string& workspace, const JobUser& user);
// Makes everything under `workspace` the worker's again, the top 0700.
absl::Status TakeBackWorkspace(const std::string& workspace);

}  // namespace deja::worker

#endif  // DEJA_WORKER_JOB_USER_H_
